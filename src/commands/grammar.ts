/**
 * Slash-command grammar: turns a comment body into a list of parsed commands.
 *
 * Pure code, no I/O, never throws on any string input, linear in the size of the body.
 *
 * Recognised lines (after leading whitespace):
 *   /agent <command> [args...] [--flag value | --flag=value | --flag]
 *   /approve [reason...]
 *   /deny [reason...]
 *
 * The prefix must be followed by whitespace or end of line (`/agentx`, `/approved` are not
 * commands). The prefix itself is matched ASCII-case-insensitively (`/Approve` from a phone
 * keyboard still counts); `<command>` is lowercased (ASCII only); args keep their case.
 *
 * Ignored: everything that is not such a line, lines inside fenced code blocks (``` or ~~~),
 * block quotes (lines starting with `>`), and lines inside an HTML comment block that starts
 * at the beginning of a line (`<!--` ... `-->`, invisible once GitHub renders the comment).
 *
 * Tokens are split on any Unicode whitespace. There is no quoting and no shell semantics:
 * `;`, `|`, `&`, `$()` and backticks are ordinary characters inside a token.
 */

export type ParsedCommand =
  | { kind: "agent"; name: string; args: string[]; flags: Record<string, string | true>; line: number; raw: string }
  | { kind: "approve"; reason: string; line: number; raw: string }
  | { kind: "deny"; reason: string; line: number; raw: string };

export interface ParseError {
  line: number;
  raw: string;
  message: string;
}

export interface ParseResult {
  commands: ParsedCommand[];
  errors: ParseError[];
}

/** Command lines (valid or not) considered per comment; the first extra one produces one error. */
export const MAX_COMMANDS_PER_COMMENT = 10;
/** Maximum length of one command line (trimmed), in UTF-16 code units. */
export const MAX_COMMAND_LINE_LENGTH = 1000;
/** Maximum number of positional arguments of one `/agent` command. */
export const MAX_ARGS = 16;
/** `/approve` and `/deny` reasons are truncated to this length. */
export const MAX_REASON_LENGTH = 500;
/** `raw` is the trimmed line truncated to this length. */
export const MAX_RAW_LENGTH = 200;
/** At most this many characters of user text are echoed back in any message. */
export const MAX_ECHO_LENGTH = 40;

export const FLAG_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;

// No `u` flag on purpose: with `i` but without `u`, non-ASCII characters never case-fold to ASCII,
// so e.g. the Kelvin sign cannot stand in for `k`. `\s` is Unicode whitespace either way.
const PREFIX = /^\/(agent|approve|deny)(?=\s|$)/i;
// Line terminators (incl. U+2028/U+2029, which `^` honours under `m`) are excluded from the
// leading-whitespace class so that the runs tried from each line start never overlap (linear time).
const MENTION = /^[^\S\r\n\u2028\u2029]*\/(?:agent|approve|deny)(?=\s|$)/im;
const LINE_BREAK = /\r\n|\r|\n/;
const WHITESPACE_RUN = /\s+/;
const FENCE_OPEN = /^(`{3,}|~{3,})/;

/**
 * Truncate to at most `max` UTF-16 code units without splitting a surrogate pair.
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max);
  if (end > 0) {
    const c = text.charCodeAt(end - 1);
    if (c >= 0xd800 && c <= 0xdbff) end -= 1;
  }
  return text.slice(0, end);
}

// Backticks, control and format characters (incl. bidi overrides, zero-width chars), line/paragraph
// separators, private-use and lone surrogates.
const UNSAFE_FOR_CODE_SPAN = /[`\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cs}]/gu;

/**
 * Render untrusted text for a markdown message: strip backticks and control/format characters,
 * collapse whitespace, truncate to `max` characters (default 40; "…" marks a cut) and wrap the
 * result in backticks so that markdown, HTML and @mentions are inert.
 */
export function quoteUserText(text: string, max: number = MAX_ECHO_LENGTH): string {
  // Bound the work before running regexes over arbitrary input.
  const bounded = truncate(String(text), Math.max(max, 0) * 4 + 16);
  const cleaned = bounded.replace(UNSAFE_FOR_CODE_SPAN, "").replace(/\s+/g, " ").trim();
  if (cleaned.length === 0) return "(empty)";
  const cut = truncate(cleaned, max);
  const shown = cut.length < cleaned.length || bounded.length < String(text).length ? `${cut}…` : cut;
  return `\`${shown}\``;
}

/** Lowercase ASCII letters only (so that e.g. U+212A KELVIN SIGN never becomes `k`). */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

/** Cheap pre-filter: true if any line starts (after whitespace) with /agent, /approve or /deny. */
export function mentionsCommand(body: string): boolean {
  if (typeof body !== "string" || body.length === 0) return false;
  return MENTION.test(body);
}

interface Fence {
  char: "`" | "~";
  length: number;
}

function openFence(trimmedStart: string): Fence | null {
  const m = FENCE_OPEN.exec(trimmedStart);
  if (!m) return null;
  const marker = m[1]!;
  const char = marker[0] as "`" | "~";
  // CommonMark: the info string of a backtick fence may not contain backticks (``` `x` ``` is inline code).
  if (char === "`" && trimmedStart.indexOf("`", marker.length) !== -1) return null;
  return { char, length: marker.length };
}

function closesFence(trimmedStart: string, fence: Fence): boolean {
  let n = 0;
  while (n < trimmedStart.length && trimmedStart[n] === fence.char) n++;
  if (n < fence.length) return false;
  return trimmedStart.slice(n).trim().length === 0;
}

type AgentParse =
  | { ok: true; name: string; args: string[]; flags: Record<string, string | true> }
  | { ok: false; message: string };

function parseAgent(rest: string): AgentParse {
  const body = rest.trim();
  if (body.length === 0) {
    return { ok: false, message: "`/agent` needs a command, for example `/agent help`." };
  }
  const tokens = body.split(WHITESPACE_RUN);
  const name = asciiLower(tokens[0]!);
  const args: string[] = [];
  const flags: Record<string, string | true> = {};

  for (let i = 1; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (!token.startsWith("--")) {
      args.push(token);
      continue;
    }
    const spec = token.slice(2);
    const eq = spec.indexOf("=");
    const flagName = eq === -1 ? spec : spec.slice(0, eq);
    if (!FLAG_NAME_PATTERN.test(flagName)) {
      return {
        ok: false,
        message:
          `Invalid flag ${quoteUserText(token)}: flag names start with a lowercase letter and contain only ` +
          "lowercase letters, digits and `-` (at most 32 characters).",
      };
    }
    if (Object.hasOwn(flags, flagName)) {
      return { ok: false, message: `Flag \`--${flagName}\` is given more than once.` };
    }
    let value: string | true;
    if (eq !== -1) {
      value = spec.slice(eq + 1);
      if (value.length === 0) {
        return { ok: false, message: `Flag \`--${flagName}\` has an empty value; write \`--${flagName} <value>\`.` };
      }
    } else {
      const next = tokens[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        value = next;
        i++;
      } else {
        value = true;
      }
    }
    flags[flagName] = value;
  }

  if (args.length > MAX_ARGS) {
    return { ok: false, message: `Too many arguments (${args.length}); a command takes at most ${MAX_ARGS}.` };
  }
  return { ok: true, name, args, flags };
}

/**
 * Parse every command in a comment body. Never throws; problems are reported in `errors`.
 * At most {@link MAX_COMMANDS_PER_COMMENT} command lines are considered (valid or not); the first
 * extra command line produces a single error and scanning stops there.
 */
export function parseComment(body: string): ParseResult {
  const commands: ParsedCommand[] = [];
  const errors: ParseError[] = [];
  if (typeof body !== "string" || body.length === 0) return { commands, errors };

  const lines = body.split(LINE_BREAK);
  let fence: Fence | null = null;
  let inHtmlComment = false;
  let seen = 0;

  for (let index = 0; index < lines.length; index++) {
    const lineText = lines[index]!;
    const lineNo = index + 1;
    const start = lineText.trimStart();

    if (fence !== null) {
      if (closesFence(start, fence)) fence = null;
      continue;
    }
    if (inHtmlComment) {
      if (lineText.includes("-->")) inHtmlComment = false;
      continue;
    }
    if (start.length === 0 || start.startsWith(">")) continue;
    if (start.startsWith("<!--")) {
      if (!start.includes("-->", 4)) inHtmlComment = true;
      continue;
    }
    const opened = openFence(start);
    if (opened !== null) {
      fence = opened;
      continue;
    }

    const match = PREFIX.exec(start);
    if (match === null) continue;

    seen++;
    const trimmed = start.trimEnd();
    const raw = truncate(trimmed, MAX_RAW_LENGTH);

    if (seen > MAX_COMMANDS_PER_COMMENT) {
      errors.push({
        line: lineNo,
        raw,
        message:
          `Too many commands in one comment: only the first ${MAX_COMMANDS_PER_COMMENT} are considered; ` +
          "this one and any later ones were ignored.",
      });
      break;
    }
    if (trimmed.length > MAX_COMMAND_LINE_LENGTH) {
      errors.push({
        line: lineNo,
        raw,
        message: `Command line is too long (${trimmed.length} characters; the limit is ${MAX_COMMAND_LINE_LENGTH}).`,
      });
      continue;
    }

    const keyword = match[1]!.toLowerCase();
    const rest = trimmed.slice(match[0].length);
    if (keyword === "approve" || keyword === "deny") {
      commands.push({ kind: keyword, reason: truncate(rest.trim(), MAX_REASON_LENGTH), line: lineNo, raw });
      continue;
    }

    const parsed = parseAgent(rest);
    if (parsed.ok) {
      commands.push({ kind: "agent", name: parsed.name, args: parsed.args, flags: parsed.flags, line: lineNo, raw });
    } else {
      errors.push({ line: lineNo, raw, message: parsed.message });
    }
  }

  return { commands, errors };
}
