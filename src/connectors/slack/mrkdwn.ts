/**
 * Slack's message format: a message (fallback text + Block Kit blocks) and the escaping rule of
 * mrkdwn text. The renderer (src/render/slack.ts) builds messages with it; the client posts them.
 */

export interface SlackMessage {
  /** Notification and screen-reader fallback (mrkdwn-escaped). */
  text: string;
  blocks: unknown[];
}

const CONTROL_RE = /[\u0000-\u0008\u000b-\u001f\u007f]/g;
const ZWSP = "\u200b";

function escapeChar(c: string): string {
  if (c === "&") return "&amp;";
  if (c === "<") return "&lt;";
  if (c === ">") return "&gt;";
  if (c === "@") return `@${ZWSP}`;
  return c;
}

/**
 * Text safe to put into mrkdwn: `&`, `<`, `>` escaped (Slack's rule), `@` defused, control
 * characters other than newline and tab removed. With `max`, the escaped result is at most that
 * long (cut between characters, never inside an entity, with `…` when cut).
 */
export function escapeMrkdwn(text: string, max = Infinity): string {
  const clean = text.replace(CONTROL_RE, "");
  let out = "";
  for (const c of clean) out += escapeChar(c);
  if (out.length <= max) return out;
  let cut = "";
  for (const c of clean) {
    const e = escapeChar(c);
    if (cut.length + e.length > max - 1) break;
    cut += e;
  }
  return `${cut}…`;
}
