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
 *  - base64 of the value embedded in a longer blob (`user:secret`, `secret\n`, ...):
 *    for each of the three byte alignments the "stable middle" of the encoding (the
 *    characters that depend only on the secret's bits) is registered, standard and
 *    url alphabet. Up to 3 base64 characters on either side of the masked part remain
 *    visible; they carry at most 4 bits of the secret each side.
 *  - for a multi-line value, each line (trimmed) of 6+ characters, with all the forms above.
 *
 * Matching: at every text position the longest registered form starting there is
 * found (one combined RegExp, alternatives longest first); overlapping matches are
 * merged into one `[redacted]`, so a secret containing another, or two secrets that
 * overlap, are fully masked. Adjacent (non-overlapping) matches give one token each.
 *
 * Limitations (not masked): case-changed forms (e.g. lower-case %xx escapes, hex
 * in other case), hex / other encodings, encodings of encodings (base64 of the
 * URL-encoded form, JSON escaped twice), form-encoding with `+` for spaces, values
 * split by inserted characters (line wrapping of base64 at 76 columns, terminal
 * control sequences, `\r\n` vs `\n` inside a multi-line value - its lines are still
 * masked one by one), and values shorter than 6 characters. Forms registered after a
 * stream started apply only to text that stream has not emitted yet.
 */

export const REDACTED = "[redacted]";

/** Values (and lines of multi-line values) shorter than this are refused. */
const MIN_LENGTH = 6;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

function toBase64Url(b64: string): string {
  return b64.replace(/\+/g, "-").replace(/\//g, "_");
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
 * The characters of base64(prefix + value + suffix) that depend only on `value`'s bytes,
 * for a value starting at byte offset `shift` (mod 3) of the encoded blob.
 */
function stableBase64Middles(bytes: Buffer): string[] {
  const out: string[] = [];
  for (const shift of [0, 1, 2]) {
    const enc = Buffer.concat([Buffer.alloc(shift), bytes]).toString("base64").replace(/=+$/, "");
    const start = Math.ceil((8 * shift) / 6);
    const end = Math.floor((8 * (shift + bytes.length)) / 6);
    const mid = enc.slice(start, end);
    if (mid.length >= MIN_LENGTH) out.push(mid, toBase64Url(mid));
  }
  return out;
}

function derivedForms(value: string): string[] {
  const bytes = Buffer.from(value, "utf8");
  const b64 = bytes.toString("base64");
  const b64url = toBase64Url(b64);
  const forms = [
    value,
    b64,
    b64url,
    b64url.replace(/=+$/, ""),
    b64.replace(/=+$/, ""),
    jsonEscaped(value),
    jsonEscapedAscii(value),
    ...stableBase64Middles(bytes),
  ];
  const url = urlEncoded(value);
  if (url !== null) forms.push(url);
  return forms.filter((f) => f.length >= MIN_LENGTH);
}

interface Pass {
  out: string;
  /** The emitted text ends inside a redacted span that covers buf[cut, cut + carry). */
  carry: number;
}

export class Redactor {
  private readonly forms = new Set<string>();
  private re: RegExp | null = null;
  private dirty = false;
  private maxLen = 0;

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
      for (const f of derivedForms(v)) {
        if (!this.forms.has(f)) {
          this.forms.add(f);
          this.dirty = true;
          if (f.length > this.maxLen) this.maxLen = f.length;
        }
      }
    }
    return true;
  }

  /** Number of registered forms (values and their derived forms, deduplicated). */
  get size(): number {
    return this.forms.size;
  }

  /** Length of the longest registered form (0 when none). A stream holds back at most this minus one. */
  get maxFormLength(): number {
    return this.maxLen;
  }

  /** Replaces every registered form in `text` with REDACTED. */
  redact(text: string): string {
    const re = this.regex();
    if (re === null || text.length === 0) return text;
    return this.pass(re, text, text.length, 0).out;
  }

  /**
   * A streaming redactor: `push(chunk)` returns the text that is safe to emit now
   * (at most maxFormLength-1 input characters are held back); `end()` returns the
   * rest. The concatenation of everything returned equals `redact(whole input)`.
   */
  stream(): { push(chunk: string): string; end(): string } {
    let buf = "";
    let carry = 0;
    const step = (final: boolean): string => {
      const re = this.regex();
      if (re === null) {
        // Nothing registered (yet): emit everything except what an open span covers.
        const out = buf.slice(Math.min(carry, buf.length));
        carry = 0;
        buf = "";
        return out;
      }
      const hold = final ? 0 : Math.max(0, this.maxLen - 1);
      const cut = Math.max(0, buf.length - hold);
      const r = this.pass(re, buf, cut, carry);
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
        return out;
      },
    };
  }

  private regex(): RegExp | null {
    if (this.dirty) {
      const sorted = [...this.forms].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
      this.re = sorted.length > 0 ? new RegExp(sorted.map(escapeRegExp).join("|"), "g") : null;
      this.dirty = false;
    }
    return this.re;
  }

  /**
   * Redacts buf[0, cut): every match starting before `cut` is final, because a form
   * starting there fits entirely in `buf` (the caller holds back maxLen-1 characters).
   * buf[0, carry) is already covered by a REDACTED emitted earlier.
   */
  private pass(re: RegExp, buf: string, cut: number, carry: number): Pass {
    let out = "";
    // End of the last redacted span, or the emission cursor when outside a span.
    let pos = Math.min(carry, buf.length);
    re.lastIndex = 0;
    for (;;) {
      const m = re.exec(buf);
      if (m === null) break;
      const p = m.index;
      if (p >= cut) break;
      const end = p + m[0].length;
      if (p < pos) {
        // Overlaps the current span: extend it.
        if (end > pos) pos = end;
      } else {
        out += buf.slice(pos, p) + REDACTED;
        pos = end;
      }
      // Look for overlapping matches too: the next one may start inside this one.
      re.lastIndex = p + 1;
    }
    if (pos > cut) return { out, carry: pos - cut };
    return { out: out + buf.slice(pos, cut), carry: 0 };
  }
}
