/** A code fence longer than any backtick run inside `text`, so output cannot break out of it. */
export function fenced(text: string, lang = ""): string {
  const longest = Math.max(2, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length));
  const fence = "`".repeat(longest + 1);
  return `${fence}${lang}\n${text.replace(/\n$/, "")}\n${fence}`;
}

/** Inline code for user or repo text (names, refs), with backticks and control chars removed. */
export function code(text: string, max = 100): string {
  const clean = text.replace(/[`\u0000-\u001f\u007f]/g, "").slice(0, max);
  return `\`${clean || " "}\``;
}

/** The last `max` characters of a text, starting at a line boundary where possible. */
export function tail(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(text.length - max);
  const nl = cut.indexOf("\n");
  return nl >= 0 && nl < 200 ? cut.slice(nl + 1) : cut;
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return "";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
