/**
 * A code fence longer than any backtick run inside `text`, so output cannot break out of it.
 * Runs longer than 8 are split by zero-width spaces first, so the fence stays short however
 * many backticks a pull request prints.
 */
export function fenced(text: string, lang = ""): string {
  const body = text.replace(/`{9,}/g, (run) => run.match(/`{1,8}/g)!.join("\u200b"));
  let longest = 2;
  for (const m of body.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  const fence = "`".repeat(longest + 1);
  return `${fence}${lang}\n${body.replace(/\n$/, "")}\n${fence}`;
}

/** Inline code for user or repo text (names, refs), with backticks and control chars removed. */
export function code(text: string, max = 100): string {
  const clean = (UNSAFE_IN_CODE.test(text) ? text.replace(UNSAFE_IN_CODE_ALL, "") : text).slice(0, max);
  return `\`${clean || " "}\``;
}

const UNSAFE_IN_CODE = /[`\u0000-\u001f\u007f]/;
const UNSAFE_IN_CODE_ALL = /[`\u0000-\u001f\u007f]/g;

/** The last `max` characters of a text, starting at a line boundary where possible. */
export function tail(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return "";
  const cut = text.slice(text.length - max);
  if (text[text.length - max - 1] === "\n") return cut; // already starts a line
  const nl = cut.indexOf("\n");
  return nl >= 0 && nl < 200 ? cut.slice(nl + 1) : cut;
}

/**
 * At most `max` characters: the first quarter and the last three quarters of the text with a
 * marker between them, cut at line boundaries where possible. Errors usually show at the end,
 * the command that failed at the start.
 */
export function headTail(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max < 200) return tail(text, max);
  const room = max - 80;
  let head = text.slice(0, Math.floor(room / 4));
  const nl = head.lastIndexOf("\n");
  if (nl > head.length / 2) head = head.slice(0, nl + 1);
  const end = tail(text, room - head.length);
  const omitted = text.length - head.length - end.length;
  return `${head}${head.endsWith("\n") ? "" : "\n"}… [${omitted} characters omitted] …\n${end}`;
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return "";
  if (ms < 1000) return `${ms} ms`;
  // Round once, then split, so 119.6 s is "2 min 0 s", never "1 min 60 s".
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)} s`;
  const total = Math.round(ms / 1000);
  return `${Math.floor(total / 60)} min ${total % 60} s`;
}

/**
 * A fenced block no longer than `max` characters: output full of backticks makes the fence
 * longer, so the body is cut (keeping its end) until fence and body fit together.
 */
export function fencedWithin(text: string, max: number): string {
  let body = text;
  for (;;) {
    const block = fenced(body);
    if (block.length <= max || body.length === 0) return block;
    body = tail(body, Math.max(0, body.length - (block.length - max) - 1));
  }
}

/** `&`, `<` and `>` as entities, so text can sit inside HTML (a `<summary>`) without opening tags. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>]/g, (c) => HTML_ENTITY[c]!);
}

const HTML_ENTITY: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };

/**
 * Untrusted text (a program's diagnostic message) as plain inline markdown: on one line, at most
 * `max` characters before escaping, with markdown punctuation backslash-escaped, `<>&` as
 * entities (so it can never open HTML) and `@` followed by a zero-width space (no mentions).
 */
export function inlineText(text: string, max = 300): string {
  let s = text.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, " ").trim();
  if (s.length > max) s = s.slice(0, Math.max(0, max - 1)) + "…";
  return s.replace(/[\\`*_[\]|~<>&@!#]/g, (c) => INLINE_ESCAPE[c] ?? `\\${c}`);
}

const INLINE_ESCAPE: Record<string, string> = { "<": "&lt;", ">": "&gt;", "&": "&amp;", "@": "@\u200b" };

/** Inline code for a GFM table cell: `code()` with `|` escaped so it cannot end the cell. */
export function cell(text: string, max = 100): string {
  const c = code(text, max);
  return c.includes("|") ? c.replace(/\|/g, "\\|") : c;
}

/** An integer with thousands separators (`4,210`). */
export function fmtInt(n: number): string {
  return String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
