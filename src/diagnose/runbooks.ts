/**
 * Runbooks are Markdown files in the repository; each section (a heading and the text under
 * it) becomes one knowledge-base entry, so a match points at the steps that apply, not at a
 * whole file. Pure code.
 */

export interface RunbookSection {
  /** GitHub's anchor for the heading (`#disk-full-on-the-runner`), unique within the file. */
  slug: string;
  heading: string;
  /** The section's Markdown, heading included, bounded. */
  body: string;
}

/** Files considered runbooks. */
export const RUNBOOK_FILE = /\.(md|markdown)$/i;
/** A section longer than this is cut (the embedding and the report only need its start). */
export const MAX_SECTION_CHARS = 4000;
/** Sections per file, so one huge file cannot crowd out the rest. */
export const MAX_SECTIONS_PER_FILE = 50;

/** GitHub's heading anchor: lower-case, punctuation dropped, spaces to hyphens. */
export function githubSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]*>/g, "")
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

const HEADING = /^(#{1,3})\s+(.+?)\s*#*\s*$/;
const FENCE = /^\s*(`{3,}|~{3,})/;

/**
 * Splits a runbook at its level 1–3 headings (outside code fences). Text before the first
 * heading belongs to a section named after the file. Empty sections are dropped.
 */
export function splitRunbook(path: string, markdown: string): RunbookSection[] {
  const fileTitle = path.split("/").pop()!.replace(RUNBOOK_FILE, "");
  const sections: Array<{ heading: string; lines: string[] }> = [{ heading: fileTitle, lines: [] }];
  let fence: string | null = null;
  for (const line of markdown.split(/\r?\n/)) {
    const f = FENCE.exec(line);
    if (f) {
      if (fence === null) fence = f[1]![0]!;
      else if (f[1]![0] === fence) fence = null;
    }
    const h = fence === null ? HEADING.exec(line) : null;
    if (h) sections.push({ heading: h[2]!.trim(), lines: [line] });
    else sections[sections.length - 1]!.lines.push(line);
  }
  const seen = new Map<string, number>();
  const out: RunbookSection[] = [];
  for (const s of sections) {
    const body = s.lines.join("\n").trim();
    // A heading alone (a file title above its first sub-heading) says nothing to search by.
    if (!body || body.split("\n").filter((l) => l.trim()).length <= 1) continue;
    const base = githubSlug(s.heading) || "section";
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.push({ slug: n === 0 ? base : `${base}-${n}`, heading: s.heading, body: body.slice(0, MAX_SECTION_CHARS) });
    if (out.length >= MAX_SECTIONS_PER_FILE) break;
  }
  return out;
}
