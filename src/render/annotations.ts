/**
 * File/line findings from lint output, as check-run annotations.
 *
 * Recognised, one finding per line unless said otherwise:
 * - `path:line:col: message` and `path:line: message` — gcc/clang, ESLint `unix`, ruff, flake8,
 *   shellcheck `-f gcc`, golangci-lint, tflint `compact`, make. A leading `error`/`warning`/`note`
 *   word (`error:`, `Warning -`, `[error]`) or ESLint unix's trailing `[Error/rule]` sets the level.
 * - ESLint `compact`: `path: line 3, col 7, Error - message (rule)`.
 * - TypeScript: `path(line,col): error TS2322: message`.
 * - ESLint `stylish`: a path line, then indented `  line:col  error|warning  message  rule-id` lines.
 *
 * The output comes from a pull request's code: lines are matched one at a time (overlong lines
 * skipped) with anchored patterns whose quantifiers are bounded, so 1 MB of hostile output is
 * linear work; paths that would leave the repository are dropped.
 */
import { posix } from "node:path";
import type { CheckRunAnnotation } from "../connectors/github.js";
import { MAX_ANNOTATIONS_PER_REQUEST } from "../connectors/github.js";

export interface LintAnnotations {
  /** At most 50 (what one check-run update accepts), in output order. */
  annotations: CheckRunAnnotation[];
  /** Distinct findings recognised in all. */
  total: number;
}

/** Longer lines are not findings (minified output, base64 blobs). */
const MAX_LINE = 4_096;
const MAX_MESSAGE = 1_000;
const MAX_LINE_NUMBER = 10_000_000;

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]{0,20}[A-Za-z]/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** `path(line,col): error TS2322: message` */
const TSC = /^([^\s()][^()]{0,1023})\((\d{1,9}),(\d{1,9})\): (error|warning|message) (TS\d{1,6}): (.{1,4000})$/;
/** `path: line 3, col 7, Error - message` */
const COMPACT = /^(\S{1,1024}): line (\d{1,9}), col (\d{1,9}), (Error|Warning|Info) - (.{1,4000})$/;
/** `path:line:col: message` or `path:line: message` (the path without spaces or colons). */
const GCC = /^([^\s:]{1,1024}):(\d{1,9}):(?:(\d{1,9}):)?(?: (.{1,4000}))?$/;
/** Stylish finding: `  12:5  error  message  rule-id`. */
const STYLISH = /^\s{1,16}(\d{1,9}):(\d{1,9})\s{1,16}(error|warning|info)\s{1,16}(.{1,4000})$/;
/** Stylish file line: a path on its own, flush left. */
const STYLISH_FILE = /^(?:\/|\.{0,2}[\w@-])\S{0,1023}$/;
/** A level at the start of a message: `error:`, `fatal error:`, `warning -`, `[error]`, `error[E0308]:`. */
const LEADING_LEVEL =
  /^(?:\[(error|warning|warn|note|info|notice)\]:?|(fatal error|error|warning|warn|note|info|notice)(?:\[[^\]]{0,40}\])?(?::| -))\s{0,8}/i;
/** ESLint `unix`: a trailing `[Error/rule-id]`. */
const TRAILING_LEVEL = /\s\[(Error|Warning)(?:\/[^\]\s]{0,100})?\]$/;

type Level = CheckRunAnnotation["level"];

function levelOf(word: string | undefined): Level {
  const w = (word ?? "").toLowerCase();
  if (w === "error" || w === "fatal error") return "failure";
  if (w === "warning" || w === "warn") return "warning";
  return "notice";
}

/**
 * A repository-relative path, or null when the path leaves the repository, is absolute outside
 * the workspace, or holds control characters. Relative paths are relative to the stack directory.
 */
export function repoRelativePath(raw: string, stackDir: string): string | null {
  if (raw.length === 0 || CONTROL.test(raw) || raw.includes("\\")) return null;
  let p: string;
  if (raw.startsWith("/workspace/")) p = raw.slice("/workspace/".length);
  else if (raw.startsWith("/")) return null;
  else {
    const dir = stackDir === "." || stackDir === "" ? "" : stackDir;
    if (dir.startsWith("/") || CONTROL.test(dir)) return null;
    p = dir ? `${dir}/${raw}` : raw;
  }
  const norm = posix.normalize(p);
  if (norm === "." || norm === ".." || norm.startsWith("../") || norm.startsWith("/") || norm.endsWith("/")) return null;
  return norm;
}

function lineNumber(s: string): number {
  const n = Number(s);
  return Math.min(Math.max(1, Number.isFinite(n) ? n : 1), MAX_LINE_NUMBER);
}

function cleanMessage(s: string): string {
  const m = s.trim();
  return m.length > MAX_MESSAGE ? `${m.slice(0, MAX_MESSAGE - 1)}…` : m;
}

/** Stylish's last column is the rule id, after two or more spaces (scanned, not matched: linear). */
function splitRule(rest: string): { message: string; rule: string | undefined } {
  const s = rest.trimEnd();
  let j = s.length;
  while (j > 0 && !/\s/.test(s[j - 1]!)) j--;
  const rule = s.slice(j);
  if (j >= 2 && /\s/.test(s[j - 2]!) && rule.length > 0 && rule.length <= 200 && j < s.length) {
    return { message: s.slice(0, j).trimEnd(), rule };
  }
  return { message: s, rule: undefined };
}

export function parseLintAnnotations(output: string, stackDir: string): LintAnnotations {
  const annotations: CheckRunAnnotation[] = [];
  const seen = new Set<string>();
  let total = 0;
  let stylishFile: string | null = null;

  const add = (rawPath: string, line: string, level: Level, message: string, title?: string) => {
    const path = repoRelativePath(rawPath, stackDir);
    const msg = cleanMessage(message);
    if (!path || !msg || CONTROL.test(msg)) return;
    const startLine = lineNumber(line);
    const key = `${path}\u0000${startLine}\u0000${msg}`;
    if (seen.has(key)) return;
    seen.add(key);
    total++;
    if (annotations.length < MAX_ANNOTATIONS_PER_REQUEST) {
      annotations.push({ path, startLine, endLine: startLine, level, message: msg, ...(title ? { title } : {}) });
    }
  };

  let start = 0;
  while (start <= output.length) {
    let end = output.indexOf("\n", start);
    if (end < 0) end = output.length;
    const length = end - start;
    let line = length <= MAX_LINE ? output.slice(start, end) : "";
    start = end + 1;
    if (length > MAX_LINE) {
      stylishFile = null;
      continue;
    }
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.includes("\u001b")) line = line.replace(ANSI, "");
    if (line.length === 0) {
      stylishFile = null;
      continue;
    }

    let m: RegExpExecArray | null;
    if (stylishFile !== null && (m = STYLISH.exec(line))) {
      const [, ln, , level, rest] = m;
      const { message, rule } = splitRule(rest!);
      add(stylishFile, ln!, levelOf(level), message, rule);
      continue;
    }
    if ((m = TSC.exec(line))) {
      const [, path, ln, , level, tsCode, message] = m;
      add(path!, ln!, levelOf(level), message!, tsCode);
      stylishFile = null;
      continue;
    }
    if ((m = COMPACT.exec(line))) {
      const [, path, ln, , level, message] = m;
      add(path!, ln!, levelOf(level), message!);
      stylishFile = null;
      continue;
    }
    if ((m = GCC.exec(line))) {
      const [, path, ln, , rest] = m;
      let message = rest ?? "";
      let level: Level = "notice";
      const lead = LEADING_LEVEL.exec(message);
      if (lead) {
        level = levelOf(lead[1] ?? lead[2]);
        message = message.slice(lead[0].length);
      } else {
        const trail = TRAILING_LEVEL.exec(message);
        if (trail) level = levelOf(trail[1]);
      }
      // A path made of digits only is a timestamp (`12:30:45: …`), not a file.
      if (/[A-Za-z_]/.test(path!)) add(path!, ln!, level, message);
      stylishFile = null;
      continue;
    }
    stylishFile = !/^\s/.test(line) && STYLISH_FILE.test(line) ? line : null;
  }
  return { annotations, total };
}
