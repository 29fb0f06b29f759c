/**
 * Which issue templates start a diagnosis. GitHub does not say which template an issue was
 * opened from, but it applies the template's `labels` and pre-fills its `title`; an issue
 * matches a configured template when it carries all of that template's labels (templates with
 * labels), or when its title starts with the template's title prefix (templates without).
 * Both Markdown templates (front matter) and issue forms (YAML) are read. Pure code.
 */
import { parse as parseYaml } from "yaml";

export interface TemplateIdentity {
  file: string;
  title: string | null;
  labels: string[];
}

function asLabels(v: unknown): string[] {
  if (typeof v === "string") return v.split(",").map((s) => s.trim()).filter(Boolean);
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string").map((s) => s.trim()).filter(Boolean);
  return [];
}

/** What identifies issues opened from a template; null when the file is not a template. */
export function templateIdentity(file: string, text: string): TemplateIdentity | null {
  let meta: unknown;
  try {
    if (/\.ya?ml$/i.test(file)) meta = parseYaml(text);
    else {
      const m = /^---\r?\n([\s\S]*?)\r?\n---\s*(?:\r?\n|$)/.exec(text);
      if (!m) return null;
      meta = parseYaml(m[1]!);
    }
  } catch {
    return null;
  }
  if (!meta || typeof meta !== "object") return null;
  const { title, labels } = meta as Record<string, unknown>;
  const prefix = typeof title === "string" && title.trim() ? title.trim() : null;
  const identity = { file, title: prefix, labels: asLabels(labels) };
  return identity.labels.length || identity.title ? identity : null;
}

export function matchesTemplate(issue: { title: string; labels: string[] }, t: TemplateIdentity): boolean {
  if (t.labels.length) {
    const have = new Set(issue.labels.map((l) => l.toLowerCase()));
    return t.labels.every((l) => have.has(l.toLowerCase()));
  }
  return t.title !== null && issue.title.trim().toLowerCase().startsWith(t.title.toLowerCase());
}
