/**
 * Normalisation of failure logs for embedding. Two runs of the same failure differ in
 * timestamps, request ids, SHAs, temp dirs, ports, line numbers and durations; none of that says
 * anything about the cause, so it is masked before the text is tokenised. What is kept: words and
 * identifiers (`econnrefused`, `oomkilled`, `aws:s3/bucket:bucket`), status and exit codes
 * (`exit code 137` → `code_137`), and the names of files without their line:col.
 *
 * Everything here is pure and synchronous; the embedder (./embedder.ts) builds features from it.
 */

/** Placeholder tokens left where volatile values were. All start and end with `_`. */
export const PLACEHOLDERS = {
  number: "_num_",
  hex: "_hex_",
  uuid: "_uuid_",
  ip: "_ip_",
  port: "_port_",
  duration: "_dur_",
  id: "_id_",
  tmp: "_tmp_",
} as const;

/** True for the tokens produced by masking (`_num_`, `_hex_`, …). */
export function isPlaceholder(token: string): boolean {
  return token.length > 2 && token.startsWith("_") && token.endsWith("_");
}

// ANSI CSI / OSC sequences and stray escape characters.
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-_]/g;

/** Removes ANSI colour and cursor escape sequences. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

const MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec";
const DAYS = "mon|tue|wed|thu|fri|sat|sun";

/**
 * Ordered masking rules over lowercased text. Order matters: whole timestamps before dates and
 * times, UUIDs before hex ids, IPs (with ports) before numbers, durations before numbers.
 */
const RULES: Array<[RegExp, string]> = [
  // ISO 8601 / RFC 3339 timestamps: 2024-05-01t12:34:56.789z, 2024-05-01 12:34:56,123 +02:00
  [/\b\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:z|\s?[+-]\d{2}:?\d{2}\b|\s?utc\b)?/g, " "],
  // RFC 1123 / syslog dates: mon, 01 jan 2024 12:00:00 gmt; jan  5 12:00:01; 05/jan/2024:12:00:00 +0000
  [new RegExp(`\\b(?:(?:${DAYS})[a-z]*,?\\s+)?\\d{1,2}[ /-](?:${MONTHS})[a-z]*[ /-]\\d{2,4}(?:[: ]\\d{2}:\\d{2}(?::\\d{2})?)?(?:\\s?(?:gmt|utc|[+-]\\d{4}))?`, "g"), " "],
  [new RegExp(`\\b(?:(?:${DAYS})[a-z]*,?\\s+)?(?:${MONTHS})[a-z]*\\s+\\d{1,2}(?:,?\\s+\\d{4})?(?:\\s+\\d{2}:\\d{2}(?::\\d{2})?)?\\b`, "g"), " "],
  // Plain dates and times.
  [/\b\d{4}[-/.]\d{2}[-/.]\d{2}\b|\b\d{1,2}\/\d{1,2}\/\d{2,4}\b/g, " "],
  [/\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s?(?:am|pm))?\b/g, " "],
  // UUIDs (any version).
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, ` ${PLACEHOLDERS.uuid} `],
  // Hex ids and SHAs: ≥ 7 hex chars with at least one digit (so words like "defaced" survive).
  [/\b(?=[0-9a-f]*\d)[0-9a-f]{7,}\b/g, ` ${PLACEHOLDERS.hex} `],
  // Temp dirs: the random part after /tmp/, /var/folders/…, $RUNNER_TEMP-like paths.
  [/(\/(?:private\/)?(?:tmp|var\/tmp|var\/folders\/[^\s/]+\/[^\s/]+\/t|runner\/_work\/_temp))\/[^\s/:'")\]]+/g, `$1/${PLACEHOLDERS.tmp}`],
  // IPv4 with optional port, IPv6 in brackets or bare (::1, fe80::…).
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b/g, ` ${PLACEHOLDERS.ip} `],
  [/\[[0-9a-f:]*:[0-9a-f:]*\](?::\d{1,5})?|(?<![\w:])(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{1,4}\b|(?<![\w:])::1\b/g, ` ${PLACEHOLDERS.ip} `],
  // Source positions: file.ts:12:5, file.js:12, file.ts(12,5), line 12 column 5.
  [/(\.[a-z]{1,5}):\d+(?::\d+)?\b/g, "$1"],
  [/(\.[a-z]{1,5})\(\d+,\d+\)/g, "$1"],
  [/\b(line|ln|col|column)\s+\d+/g, "$1"],
  [/:\d+:\d+\b/g, ""],
  // host:port (localhost:5432, db.internal:6379); a port is 2–5 digits after a host-like word.
  [/\b([a-z][a-z0-9.-]*):\d{2,5}\b/g, `$1 ${PLACEHOLDERS.port}`],
  // Status and exit codes are causes, not noise: keep them as tokens (exit code 137 → code_137).
  [/\b(code|status|statuscode|exit|signal|http)(\s*[:=]?\s*)(\d{1,3})\b/g, "$1 $1_$3"],
  // Durations: 12.3s, 350ms, 1m20s, 1h04m, 2h, 1.5 min, 30 seconds.
  [/\b(?:\d+(?:\.\d+)?\s?(?:hours?|hrs?|h|minutes?|mins?|ms|m|seconds?|secs?|s|µs|us|ns))+\b/g, ` ${PLACEHOLDERS.duration} `],
  // Numbers (versions, counts, sizes, pids): v3.116.1, 1.2.0-rc.1, 42, 1,024, 0x1f, 12kb, 512mi. Digits inside
  // identifiers (ts2322, s3, ec2, sha256) are kept.
  [/\b0x[0-9a-f]+\b/g, ` ${PLACEHOLDERS.hex} `],
  [/(?<![a-z0-9_])v?\d+(?:\.\d+)+(?:-[a-z]+(?:\.\d+)?)?(?![a-z0-9_])/g, ` ${PLACEHOLDERS.number} `],
  [/(?<![a-z0-9_])\d+(?:,\d{3})*(?:[kmgtp]i?b?|b|%)?(?![a-z0-9_])/g, ` ${PLACEHOLDERS.number} `],
];

/** `ImagePullBackOff` → `image pull back off`, `OOMKilled` → `oom killed`; null when not a CamelCase word. */
export function splitCamelCase(word: string): string | null {
  if (!/^[A-Za-z]+$/.test(word)) return null;
  const parts = word
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .split(" ");
  // Random-looking mixed case (base64, ids) splits into short fragments: not words.
  if (parts.length < 2 || parts.length > 6 || parts.some((p) => p.length < 2)) return null;
  return parts.join(" ").toLowerCase();
}

const CAMEL = /\b[A-Za-z]*(?:[a-z][A-Z]|[A-Z]{2}[a-z])[A-Za-z]*\b/g;

/**
 * Lowercases, strips ANSI escapes and replaces volatile values by placeholders (or drops them).
 * CamelCase identifiers are kept and followed by their words (`ExpiredToken` → `expiredtoken
 * expired token`), since messages spell out what error codes abbreviate.
 */
export function normaliseLog(text: string): string {
  let s = stripAnsi(text).replace(CAMEL, (w) => {
    const words = splitCamelCase(w);
    return words ? `${w} ${words}` : w;
  });
  s = s.toLowerCase();
  for (const [re, replacement] of RULES) s = s.replace(re, replacement);
  return s;
}

/** Letters-and-digits runs longer than this that alternate between the two at least 3 times look random. */
const RANDOM_MIN_LENGTH = 8;

/** True for alphanumeric strings that look generated (pod suffixes, access key ids, request ids). */
export function looksRandom(word: string): boolean {
  if (word.length < RANDOM_MIN_LENGTH || !/^[a-z0-9]+$/.test(word)) return false;
  let switches = 0;
  for (let i = 1; i < word.length; i++) {
    const a = word.charCodeAt(i - 1) <= 57;
    const b = word.charCodeAt(i) <= 57;
    if (a !== b) switches++;
  }
  return switches >= 3;
}

// A word: runs of letters, digits and `_`, joined by `:`, `/`, `.` or `-` inside one identifier.
const COMPOUND = /[a-z0-9_]+(?:[:./-][a-z0-9_]+)*/g;
const PART = /[a-z0-9_]+/g;
/** Compounds of at most this many parts are kept whole as well (resource types, error codes). */
const MAX_COMPOUND_PARTS = 4;

/**
 * Splits normalised text into word tokens. Every alphanumeric part is a token; short compounds
 * with `:` or `/` or `-` (`aws:s3/bucket:bucket`, `image-pull-backoff`, `npm-err`) are also kept
 * whole, since they name one thing. Random-looking parts become `_id_`; single characters and
 * bare `_` runs are dropped.
 */
export function wordTokens(normalised: string): string[] {
  const out: string[] = [];
  for (const m of normalised.matchAll(COMPOUND)) {
    const compound = m[0];
    const parts = compound.match(PART) ?? [];
    let kept = 0;
    for (const raw of parts) {
      const part = looksRandom(raw) ? PLACEHOLDERS.id : raw;
      if (part.length < 2 || /^_+$/.test(part)) continue;
      out.push(part);
      kept++;
    }
    if (kept > 1 && parts.length <= MAX_COMPOUND_PARTS && !parts.some(looksRandom) && /[:/-]/.test(compound) && !parts.some(isPlaceholder)) {
      out.push(compound);
    }
  }
  return out;
}

/** Normalises then tokenises: the word tokens of a raw log. */
export function logTokens(text: string): string[] {
  return wordTokens(normaliseLog(text));
}

/**
 * Character n-grams of a word with boundary markers: `charNgrams("oom", 3, 4)` →
 * `["<oo", "oom", "om>", "<oom", "oom>"]`. Words shorter than `min` (with markers) give one gram.
 */
export function charNgrams(word: string, min = 3, max = 5): string[] {
  const w = `<${word}>`;
  if (w.length <= min) return [w];
  const grams: string[] = [];
  for (let n = min; n <= max && n <= w.length; n++) {
    for (let i = 0; i + n <= w.length; i++) grams.push(w.slice(i, i + n));
  }
  return grams;
}
