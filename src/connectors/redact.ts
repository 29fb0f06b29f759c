/**
 * Secret redaction. Pure code, no I/O: every piece of output that leaves the worker
 * (check runs, PR comments, logs, error messages) goes through a Redactor first.
 *
 * What is masked, for each registered value of 6+ characters:
 *  - the value itself;
 *  - its standard base64, base64url (padded and unpadded);
 *  - its URL-encoded form (encodeURIComponent);
 *  - its JSON-string-escaped form (as JSON.stringify writes it) and the ASCII-only
 *    variant (non-ASCII as \uXXXX, as Python's json.dumps writes it);
 *  - its hex in lower and in upper case (Buffer, perl, `basenc --base16`), also inside a
 *    longer hex blob (hex is byte-aligned: the secret's hex is a substring of the blob's);
 *  - its base32 and base32hex (`base32`, `basenc --base32hex`), padded and unpadded, and its
 *    base2 (`basenc --base2msbf`, `--base2lsbf`; unbroken, or wrapped as printed alone);
 *  - base64 and base32 of the value embedded in a longer blob (`user:secret`, `secret\n`, ...):
 *    for each byte alignment the "stable middle" of the encoding (the characters that depend
 *    only on the secret's bits) is registered, both base64 alphabets. Up to 3 base64 (2 base32)
 *    characters on either side of the masked part remain visible; they carry at most 4 bits of
 *    the secret each side.
 *  - base64, base32 and base2 of the whole value as the coreutils print it alone: a line break
 *    after every 76 characters;
 *  - for a multi-line value, each line (trimmed) of 6+ characters, with all the forms above.
 *
 * Broken-up forms: the text is also searched with whitespace taken out (runs of at most
 * MAX_GAP characters with at most one line break; a longer run stays a barrier) and, at line
 * starts, dump offset columns (`0000020 `, `00000010: `). Whitespace-free forms of up to
 * DENSE_MAX_LENGTH characters are looked for there too, which catches:
 *  - any of the encodings above but base2 wrapped at any column (`base64` at 76, `openssl` at
 *    64, CRLF too), also embedded in a longer blob;
 *  - the byte dumps of a Debian minbase image's `od`, with or without offsets: `od -tx1` (hex
 *    bytes), `od -x` (16-bit little-endian hex words, both byte alignments), `od` / `od -o`
 *    (16-bit octal words), `od -b` (octal bytes), `od -tu1` / `-td1` (decimal bytes, ASCII
 *    values only) and `od -c` (characters and C escapes);
 *  - the value itself printed with blanks or a line break inside (its whitespace-free form).
 *
 * Matching: one combined RegExp per search (alternatives longest first): at every position the
 * longest registered form starting there is found. Overlapping matches (of either search) are
 * merged into one `[redacted]`, so a secret containing another, or two secrets that overlap,
 * are fully masked. Adjacent (non-overlapping) matches give one token each.
 *
 * Limitations (not masked). Redaction stops accidents and the cheap, standard encodings; a step
 * that wants to print a secret it was given can always find a form nobody registered, so the
 * boundary is which steps get secrets at all. Known gaps: case-changed forms other than hex
 * (e.g. lower-case %xx escapes); dumps in other unit sizes or bases (`od -tx4`, `-tx8`, `-td2`,
 * `-tf`), od's `*` for repeated lines, `xxd` / `hexdump -C` (not in the image) with their ASCII
 * column, `basenc --z85`; up to one byte at either end of a word dump (`od -x`, `od`) that
 * shares its word with a neighbouring byte; broken-up forms longer than DENSE_MAX_LENGTH (their
 * unbroken forms and the plain 76-column wrapping of the whole value are still known);
 * encodings of encodings (base64 of the URL-encoded form, hex of base64, JSON escaped twice),
 * compressed or encrypted output, deliberate transformations (`rev`, `tr` ciphers, printing the
 * value in pieces or with other characters inserted); form-encoding with `+` for spaces;
 * terminal control sequences inside a value; and values shorter than 6 characters. Forms
 * registered after a stream started apply only to text that stream has not emitted yet.
 *
 * Long (about 430 lines) because each encoding above has its own matcher and they must be
 * applied together, in one pass over the output, to catch a secret split across chunks.
 */

export const REDACTED = "[redacted]";

/** Values (and lines of multi-line values) shorter than this are refused. */
const MIN_LENGTH = 6;

/**
 * Whitespace-free forms up to this long are also looked for in broken-up text. Bounded because
 * a stream holds back as much as the longest broken-up match can span (see maxFormLength).
 */
const DENSE_MAX_LENGTH = 1024;

/**
 * The longest run between two characters of a broken-up form: blanks, one line break, a dump's
 * offset column (`\r\n0000020   ` is 12). Longer runs, or a second line break, separate.
 */
const MAX_GAP = 12;

/** The column `base64`, `base32` and `basenc` wrap at by default. */
const COREUTILS_WRAP = 76;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

function toBase64Url(b64: string): string {
  return b64.replace(/\+/g, "-").replace(/\//g, "_");
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE32_HEX = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

/** RFC 4648 base32 without padding. */
function base32(bytes: Buffer, alphabet: string): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31];
  return out;
}

const padded = (text: string, group: number) => text + "=".repeat((group - (text.length % group)) % group);

/** base2, most or least significant bit of each byte first. */
function base2(bytes: Buffer, lsbFirst: boolean): string {
  return [...bytes]
    .map((b) => {
      const msb = b.toString(2).padStart(8, "0");
      return lsbFirst ? [...msb].reverse().join("") : msb;
    })
    .join("");
}

/** The text as the coreutils print it alone: a line break after every 76 characters. */
function wrappedAt76(text: string): string | null {
  if (text.length <= COREUTILS_WRAP) return null;
  return text.match(new RegExp(`.{1,${COREUTILS_WRAP}}`, "g"))!.join("\n");
}

function jsonEscaped(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

function jsonEscapedAscii(value: string): string {
  return jsonEscaped(value).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

function urlEncoded(value: string): string | null {
  try {
    return encodeURIComponent(value);
  } catch {
    return null; // lone surrogate: no URL-encoded form exists
  }
}

/**
 * The characters of encode(prefix + value + suffix) that depend only on `value`'s bytes, for
 * a value starting at each byte offset (mod the encoding's group of `groupBytes` bytes, each
 * character carrying `bitsPerChar` bits) of the encoded blob.
 */
function stableMiddles(bytes: Buffer, encode: (b: Buffer) => string, bitsPerChar: number, groupBytes: number): string[] {
  const out: string[] = [];
  for (let shift = 0; shift < groupBytes; shift++) {
    const enc = encode(Buffer.concat([Buffer.alloc(shift), bytes])).replace(/=+$/, "");
    const start = Math.ceil((8 * shift) / bitsPerChar);
    const end = Math.floor((8 * (shift + bytes.length)) / bitsPerChar);
    const mid = enc.slice(start, end);
    if (mid.length >= MIN_LENGTH) out.push(mid);
  }
  return out;
}

/** `od -c`: printable ASCII as itself, C escapes, any other byte as 3 octal digits. */
const OD_ESCAPES: Record<number, string> = { 0: "\\0", 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r" };
function odChar(b: number): string {
  if (b === 0x20) return ""; // a blank field: nothing once whitespace is taken out
  if (b > 0x20 && b < 0x7f) return String.fromCharCode(b);
  return OD_ESCAPES[b] ?? b.toString(8).padStart(3, "0");
}

/** 16-bit little-endian words of the bytes from `shift` (0 or 1) on; a byte left over is dropped. */
function words(bytes: Buffer, shift: number): number[] {
  const out: number[] = [];
  for (let i = shift; i + 1 < bytes.length; i += 2) out.push(bytes[i]! | (bytes[i + 1]! << 8));
  return out;
}

/** What `od` prints for the bytes, with whitespace and offsets taken out (see the header). */
function dumpForms(bytes: Buffer): string[] {
  const all = [...bytes];
  const forms = [all.map((b) => b.toString(8).padStart(3, "0")).join(""), all.map(odChar).join("")]; // od -b, od -c
  // od -tu1: ASCII values only; decimal bytes of arbitrary data are too often ordinary digits.
  if (all.every((b) => b >= 0x20 && b < 0x7f)) forms.push(all.map(String).join(""));
  for (const shift of [0, 1]) {
    const w = words(bytes, shift);
    forms.push(w.map((x) => x.toString(16).padStart(4, "0")).join(""), w.map((x) => x.toString(8).padStart(6, "0")).join("")); // od -x, od -o
  }
  return forms;
}

/** Every form of one value (see the header): `plain` as printed, `dense` with whitespace out. */
function derivedForms(value: string): { plain: string[]; dense: string[] } {
  const bytes = Buffer.from(value, "utf8");
  const b64 = bytes.toString("base64");
  const b32 = base32(bytes, BASE32);
  const b32hex = base32(bytes, BASE32_HEX);
  const hex = bytes.toString("hex");
  const encodings = [
    b64,
    b64.replace(/=+$/, ""),
    toBase64Url(b64),
    toBase64Url(b64).replace(/=+$/, ""),
    ...stableMiddles(bytes, (b) => b.toString("base64"), 6, 3).flatMap((m) => [m, toBase64Url(m)]),
    padded(b32, 8),
    b32,
    padded(b32hex, 8),
    b32hex,
    ...stableMiddles(bytes, (b) => base32(b, BASE32), 5, 5),
    ...stableMiddles(bytes, (b) => base32(b, BASE32_HEX), 5, 5),
    hex,
    hex.toUpperCase(),
  ];
  // base2 (8 characters a byte) as printed only: broken-up, it alone would set how much every
  // stream holds back, for an encoding hardly anyone uses.
  const binary = [base2(bytes, false), base2(bytes, true)];
  const plain = [value, jsonEscaped(value), jsonEscapedAscii(value), ...encodings];
  const url = urlEncoded(value);
  if (url !== null) plain.push(url);
  const dense = [...plain, value.replace(/\s+/g, ""), ...dumpForms(bytes)].filter((f) => f.length <= DENSE_MAX_LENGTH && !/\s/.test(f));
  for (const whole of [b64, padded(b32, 8), ...binary]) {
    const wrapped = wrappedAt76(whole);
    if (wrapped) plain.push(wrapped);
  }
  plain.push(...binary);
  return { plain: plain.filter((f) => f.length >= MIN_LENGTH), dense: dense.filter((f) => f.length >= MIN_LENGTH) };
}

/** One set of literal forms searched as one RegExp, longest first. */
class FormSet {
  readonly forms = new Set<string>();
  maxLength = 0;
  #re: RegExp | null = null;
  #dirty = false;

  add(form: string): void {
    if (this.forms.has(form)) return;
    this.forms.add(form);
    this.#dirty = true;
    if (form.length > this.maxLength) this.maxLength = form.length;
  }

  regex(): RegExp | null {
    if (this.#dirty) {
      const sorted = [...this.forms].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
      this.#re = sorted.length > 0 ? new RegExp(sorted.map(escapeRegExp).join("|"), "g") : null;
      this.#dirty = false;
    }
    return this.#re;
  }
}

/** Whether text[from, to) may join two characters of a broken-up form (see MAX_GAP). */
function joins(text: string, from: number, to: number): boolean {
  if (to - from > MAX_GAP) return false;
  let breaks = 0;
  for (let i = from; i < to; i++) if (text.charCodeAt(i) === 10 && ++breaks > 1) return false;
  return true;
}

/**
 * `text` with whitespace and line-start dump offsets taken out; `at[i]` is where view character
 * i is in `text`. A gap that may not join two characters becomes a blank, which no dense form
 * contains. `lineStart`: whether text[0] starts a line (false mid-stream after a partial line).
 */
function denseView(text: string, lineStart: boolean): { view: string; at: Int32Array } {
  const at = new Int32Array(text.length);
  let view = "";
  let n = 0;
  let lastEnd = -1; // end of the last run taken into the view
  const runs = /\S+/g;
  for (let m = runs.exec(text); m !== null; m = runs.exec(text)) {
    const start = m.index;
    const run = m[0];
    const atLineStart = start === 0 ? lineStart : text[start - 1] === "\n";
    // An offset column: `0000020` (od), `000010` (od -Ax), `00000010:` (xxd), then a blank.
    if (atLineStart && /^[0-9A-Fa-f]{6,8}:?$/.test(run) && /[ \t]/.test(text[start + run.length] ?? "")) continue;
    if (lastEnd >= 0 && !joins(text, lastEnd, start)) {
      view += " ";
      at[n++] = start - 1;
    }
    view += run;
    for (let i = 0; i < run.length; i++) at[n++] = start + i;
    lastEnd = start + run.length;
  }
  return { view, at };
}

interface Pass {
  out: string;
  /** The emitted text ends inside a redacted span that covers buf[cut, cut + carry). */
  carry: number;
}

export class Redactor {
  /** Forms as printed, matched in the text itself. */
  private readonly plain = new FormSet();
  /** Whitespace-free forms, matched in the text with whitespace and offsets taken out. */
  private readonly dense = new FormSet();

  /**
   * Registers a secret value and its derived forms. Values shorter than 6 characters
   * are refused (they would mask ordinary text): returns false and registers nothing.
   */
  register(value: string): boolean {
    if (value.length < MIN_LENGTH) return false;
    const values = new Set<string>([value]);
    if (/[\r\n]/.test(value)) {
      for (const line of value.split(/\r\n|\r|\n/)) {
        if (line.length >= MIN_LENGTH) values.add(line);
        const trimmed = line.trim();
        if (trimmed.length >= MIN_LENGTH) values.add(trimmed);
      }
    }
    for (const v of values) {
      const { plain, dense } = derivedForms(v);
      for (const f of plain) this.plain.add(f);
      for (const f of dense) this.dense.add(f);
    }
    return true;
  }

  /** Number of registered forms (values and their derived forms, deduplicated; per search). */
  get size(): number {
    return this.plain.forms.size + this.dense.forms.size;
  }

  /**
   * The most text one match can span (0 when nothing is registered): the longest form as
   * printed, or the longest whitespace-free form with a gap after each character but the last.
   * A stream holds back at most this minus one.
   */
  get maxFormLength(): number {
    const d = this.dense.maxLength;
    return Math.max(this.plain.maxLength, d > 0 ? d + (d - 1) * MAX_GAP : 0);
  }

  /** Replaces every registered form in `text` with REDACTED. */
  redact(text: string): string {
    if (this.size === 0 || text.length === 0) return text;
    return this.pass(text, text.length, 0, true).out;
  }

  /**
   * A streaming redactor: `push(chunk)` returns the text that is safe to emit now
   * (at most maxFormLength-1 input characters are held back); `end()` returns the
   * rest. The concatenation of everything returned equals `redact(whole input)`.
   */
  stream(): { push(chunk: string): string; end(): string } {
    let buf = "";
    let carry = 0;
    let lineStart = true;
    const step = (final: boolean): string => {
      if (this.size === 0) {
        // Nothing registered (yet): emit everything except what an open span covers.
        const out = buf.slice(Math.min(carry, buf.length));
        if (buf.length > 0) lineStart = buf.endsWith("\n");
        carry = 0;
        buf = "";
        return out;
      }
      const hold = final ? 0 : Math.max(0, this.maxFormLength - 1);
      const cut = Math.max(0, buf.length - hold);
      const r = this.pass(buf, cut, carry, lineStart);
      if (cut > 0) lineStart = buf[cut - 1] === "\n";
      buf = buf.slice(cut);
      carry = r.carry;
      return r.out;
    };
    return {
      push(chunk: string): string {
        if (chunk.length === 0) return "";
        buf += chunk;
        return step(false);
      },
      end(): string {
        const out = step(true);
        buf = "";
        carry = 0;
        lineStart = true;
        return out;
      },
    };
  }

  /**
   * Where registered forms start before `cut` in `buf`, as [start, end) in order of start: every
   * one is final, because a form starting there fits entirely in `buf` (the caller holds back
   * maxFormLength-1 characters). One match per start position and search: the longest form.
   */
  private spans(buf: string, cut: number, lineStart: boolean): Array<[number, number]> {
    const found: Array<[number, number]> = [];
    const plain = this.plain.regex();
    if (plain !== null) {
      plain.lastIndex = 0;
      for (let m = plain.exec(buf); m !== null && m.index < cut; m = plain.exec(buf)) {
        found.push([m.index, m.index + m[0].length]);
        // Look for overlapping matches too: the next one may start inside this one.
        plain.lastIndex = m.index + 1;
      }
    }
    const dense = this.dense.regex();
    if (dense !== null) {
      const { view, at } = denseView(buf, lineStart);
      dense.lastIndex = 0;
      for (let m = dense.exec(view); m !== null && at[m.index]! < cut; m = dense.exec(view)) {
        found.push([at[m.index]!, at[m.index + m[0].length - 1]! + 1]);
        dense.lastIndex = m.index + 1;
      }
    }
    return plain !== null && dense !== null ? found.sort((a, b) => a[0] - b[0] || b[1] - a[1]) : found;
  }

  /**
   * Redacts buf[0, cut): every match starting before `cut` is final (see spans).
   * buf[0, carry) is already covered by a REDACTED emitted earlier.
   */
  private pass(buf: string, cut: number, carry: number, lineStart: boolean): Pass {
    let out = "";
    // End of the last redacted span, or the emission cursor when outside a span.
    let pos = Math.min(carry, buf.length);
    for (const [p, end] of this.spans(buf, cut, lineStart)) {
      if (p < pos) {
        // Overlaps the current span: extend it.
        if (end > pos) pos = end;
      } else {
        out += buf.slice(pos, p) + REDACTED;
        pos = end;
      }
    }
    if (pos > cut) return { out, carry: pos - cut };
    return { out: out + buf.slice(pos, cut), carry: 0 };
  }
}
