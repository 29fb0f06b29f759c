import { describe, it, expect } from "vitest";
import { Redactor, REDACTED } from "../../src/connectors/redact.js";
import { seededRandom } from "../helpers/seeded-random.js";

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
const b64url = (s: string): string => b64(s).replace(/\+/g, "-").replace(/\//g, "_");
const unpad = (s: string): string => s.replace(/=+$/, "");
const json = (s: string): string => JSON.stringify(s).slice(1, -1);

/** Every derived form the spec requires, computed independently of the implementation. */
function specForms(secret: string): Record<string, string> {
  return {
    plain: secret,
    base64: b64(secret),
    base64url: b64url(secret),
    base64urlUnpadded: unpad(b64url(secret)),
    urlEncoded: encodeURIComponent(secret),
    json: json(secret),
  };
}

function redactor(...secrets: string[]): Redactor {
  const r = new Redactor();
  for (const s of secrets) expect(r.register(s)).toBe(true);
  return r;
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}


function streamAll(r: Redactor, chunks: string[]): string {
  const s = r.stream();
  let out = "";
  for (const c of chunks) out += s.push(c);
  return out + s.end();
}

// Every form of this secret differs from the plain value: `"` and `\` change the JSON form,
// `@ / ? >` the URL form, the base64 has a `+` (so base64url differs) and `==` padding,
// and `ü` is non-ASCII.
const SECRET = 'p@ss"w0rd/?>~\\ü';

describe("REDACTED", () => {
  it("is the fixed marker", () => {
    expect(REDACTED).toBe("[redacted]");
  });
});

describe("Redactor.register", () => {
  it("refuses values shorter than 6 characters and registers nothing for them", () => {
    const r = new Redactor();
    for (const v of ["", "a", "abc", "12345", "ab\ncd"]) expect(r.register(v)).toBe(false);
    expect(r.size).toBe(0);
    const text = "a abc 12345 ab\ncd YWJj";
    expect(r.redact(text)).toBe(text);
  });

  it("accepts a 6-character value", () => {
    const r = new Redactor();
    expect(r.register("123456")).toBe(true);
    expect(r.size).toBeGreaterThan(0);
    expect(r.redact("pin=123456;")).toBe(`pin=${REDACTED};`);
    expect(r.redact("pin=12345;")).toBe("pin=12345;");
  });

  it("counts forms, ignoring duplicates and refused values", () => {
    const r = new Redactor();
    r.register(SECRET);
    const n = r.size;
    // at least the six required forms, all distinct for this secret
    expect(new Set(Object.values(specForms(SECRET))).size).toBe(6);
    expect(n).toBeGreaterThanOrEqual(6);
    expect(r.register(SECRET)).toBe(true);
    expect(r.size).toBe(n);
    expect(r.register("short")).toBe(false);
    expect(r.size).toBe(n);
    r.register("another-secret-value");
    expect(r.size).toBeGreaterThan(n);
  });

  it("does not register derived forms that equal the value twice", () => {
    // for a plain alphanumeric value URL and JSON forms equal the value
    const r = new Redactor();
    r.register("abcdefgh");
    const size = r.size;
    const s = new Redactor();
    s.register("abcdefgh");
    s.register(encodeURIComponent("abcdefgh"));
    s.register(json("abcdefgh"));
    expect(s.size).toBe(size);
  });

  it("takes effect for values registered after redact() was already used", () => {
    const r = redactor("first-secret");
    expect(r.redact("first-secret second-secret")).toBe(`${REDACTED} second-secret`);
    r.register("second-secret");
    expect(r.redact("first-secret second-secret")).toBe(`${REDACTED} ${REDACTED}`);
    expect(r.redact(b64("second-secret"))).toBe(REDACTED);
  });

  it("exposes the most text one match can span", () => {
    const r = new Redactor();
    expect(r.maxFormLength).toBe(0);
    r.register("abcdefgh"); // longest spec form: base64 "YWJjZGVmZ2g=" (12); broken-up forms span more
    expect(r.maxFormLength).toBeGreaterThanOrEqual(12);
    // The longest broken-up form (od -b, 3 digits a byte) with a 12-character gap after each digit but the last.
    expect(r.maxFormLength).toBe(24 + 23 * 12);
  });
});

describe("Redactor.redact: encodings", () => {
  const forms = specForms(SECRET);
  for (const [name, form] of Object.entries(forms)) {
    it(`masks the ${name} form`, () => {
      const r = redactor(SECRET);
      if (name !== "plain") expect(form).not.toBe(SECRET);
      expect(r.redact(`before ${form} after`)).toBe(`before ${REDACTED} after`);
      expect(r.redact(form)).toBe(REDACTED);
    });
  }

  it("masks the base64 form without padding", () => {
    const r = redactor(SECRET);
    expect(r.redact(`k=${unpad(b64(SECRET))};`)).toBe(`k=${REDACTED};`);
  });

  it("masks the ASCII-only JSON form (non-ASCII as \\uXXXX)", () => {
    const r = redactor(SECRET);
    const ascii = json(SECRET).replace("ü", "\\u00fc");
    expect(r.redact(`{"token":"${ascii}"}`)).toBe(`{"token":"${REDACTED}"}`);
  });

  it("masks a JSON-escaped secret with control characters", () => {
    const secret = 'line1\tcol"2"\\end';
    const r = redactor(secret);
    const doc = JSON.stringify({ password: secret });
    expect(doc).not.toContain(secret);
    expect(r.redact(doc)).toBe(`{"password":"${REDACTED}"}`);
  });

  it("masks URL-encoded secrets inside URLs", () => {
    const secret = "p@ss w/rd&x=y";
    const r = redactor(secret);
    const url = `https://user:${encodeURIComponent(secret)}@example.com/?q=${encodeURIComponent(secret)}&z=1`;
    expect(r.redact(url)).toBe(`https://user:${REDACTED}@example.com/?q=${REDACTED}&z=1`);
  });

  it("masks a secret printed in several encodings in one text", () => {
    const r = redactor(SECRET);
    const forms = Object.values(specForms(SECRET));
    const text = forms.map((f, i) => `field${i}: ${f}`).join("\n") + "\nend";
    const out = r.redact(text);
    expect(out).toBe(forms.map((_, i) => `field${i}: ${REDACTED}`).join("\n") + "\nend");
    for (const f of forms) expect(out).not.toContain(f);
    expect(count(out, REDACTED)).toBe(forms.length);
  });

  it("masks base64 of a secret embedded at any alignment in a longer blob", () => {
    const secret = "hunter2hunter2";
    const r = redactor(secret);
    const n = Buffer.byteLength(secret);
    for (let p = 0; p <= 5; p++) {
      for (let q = 0; q <= 5; q++) {
        const prefix = "user:".slice(0, p).padEnd(p, "u");
        const suffix = "\n#xyz".slice(0, q);
        for (const enc of [b64, b64url]) {
          const blob = enc(prefix + secret + suffix);
          const out = r.redact(`Authorization: Basic ${blob}`);
          expect(count(out, REDACTED), `p=${p} q=${q}`).toBe(1);
          const [before, after] = out.slice("Authorization: Basic ".length).split(REDACTED) as [string, string];
          // Only characters carrying prefix/suffix bits (and <= 4 bits of the secret) may remain.
          expect(before.length, `p=${p} q=${q}`).toBeLessThanOrEqual(Math.ceil((4 * p) / 3));
          expect(after.length, `p=${p} q=${q}`).toBeLessThanOrEqual(blob.length - Math.floor((4 * (p + n)) / 3));
        }
      }
    }
  });
});

// What the tools of the sandbox image (a Debian minbase: coreutils' od, base32, basenc) print
// for LEAKED, captured from `agent-sandbox:test`; test/integration/redaction.test.ts runs them live.
const LEAKED = "pulumi-access-tok3n/with+special=chars";
const PRINTED: Array<{ tool: string; printed: string; masked: string }> = [
  {
    tool: "printf %s \"$S\" | od -tx1",
    printed: "0000000 70 75 6c 75 6d 69 2d 61 63 63 65 73 73 2d 74 6f\n0000020 6b 33 6e 2f 77 69 74 68 2b 73 70 65 63 69 61 6c\n0000040 3d 63 68 61 72 73\n0000046\n",
    masked: `0000000 ${REDACTED}\n0000046\n`,
  },
  {
    tool: "printf 'token=%s\\n' \"$S\" | od -An -tx1",
    printed: " 74 6f 6b 65 6e 3d 70 75 6c 75 6d 69 2d 61 63 63\n 65 73 73 2d 74 6f 6b 33 6e 2f 77 69 74 68 2b 73\n 70 65 63 69 61 6c 3d 63 68 61 72 73 0a\n",
    masked: ` 74 6f 6b 65 6e 3d ${REDACTED} 0a\n`,
  },
  {
    tool: "printf 't=%s' \"$S\" | od -x",
    printed: "0000000 3d74 7570 756c 696d 612d 6363 7365 2d73\n0000020 6f74 336b 2f6e 6977 6874 732b 6570 6963\n0000040 6c61 633d 6168 7372\n0000050\n",
    masked: `0000000 3d74 ${REDACTED}\n0000050\n`,
  },
  {
    tool: "printf %s \"$S\" | od",
    printed: "0000000 072560 072554 064555 060455 061543 071545 026563 067564\n0000020 031553 027556 064567 064164 071453 062560 064543 066141\n0000040 061475 060550 071562\n0000046\n",
    masked: `0000000 ${REDACTED}\n0000046\n`,
  },
  {
    tool: "printf %s \"$S\" | od -b",
    printed: "0000000 160 165 154 165 155 151 055 141 143 143 145 163 163 055 164 157\n0000020 153 063 156 057 167 151 164 150 053 163 160 145 143 151 141 154\n0000040 075 143 150 141 162 163\n0000046\n",
    masked: `0000000 ${REDACTED}\n0000046\n`,
  },
  {
    tool: "printf %s \"$S\" | od -c",
    printed: "0000000   p   u   l   u   m   i   -   a   c   c   e   s   s   -   t   o\n0000020   k   3   n   /   w   i   t   h   +   s   p   e   c   i   a   l\n0000040   =   c   h   a   r   s\n0000046\n",
    masked: `0000000   ${REDACTED}\n0000046\n`,
  },
  {
    tool: "printf %s \"$S\" | od -An -tu1",
    printed: " 112 117 108 117 109 105  45  97  99  99 101 115 115  45 116 111\n 107  51 110  47 119 105 116 104  43 115 112 101  99 105  97 108\n  61  99 104  97 114 115\n",
    masked: ` ${REDACTED}\n`,
  },
  { tool: "printf %s \"$S\" | basenc --base16", printed: "70756C756D692D6163636573732D746F6B336E2F776974682B7370656369616C3D6368617273\n", masked: `${REDACTED}\n` },
  { tool: "printf %s \"$S\" | base32", printed: "OB2WY5LNNEWWCY3DMVZXGLLUN5VTG3RPO5UXI2BLONYGKY3JMFWD2Y3IMFZHG===\n", masked: `${REDACTED}\n` },
  { tool: "printf %s \"$S\" | basenc --base32hex", printed: "E1QMOTBDD4MM2OR3CLPN6BBKDTLJ6RHFETKN8Q1BEDO6AOR9C5M3QOR8C5P76===\n", masked: `${REDACTED}\n` },
  {
    // Two copies, so the base64 runs past base64's 76 columns; the one character between the
    // copies carries bits of both.
    tool: "printf %s%s \"$S\" \"$S\" | base64",
    printed: "cHVsdW1pLWFjY2Vzcy10b2szbi93aXRoK3NwZWNpYWw9Y2hhcnNwdWx1bWktYWNjZXNzLXRvazNu\nL3dpdGgrc3BlY2lhbD1jaGFycw==\n",
    masked: `${REDACTED}N${REDACTED}w==\n`,
  },
  {
    tool: "printf user:%s%s \"$S\" \"$S\" | base64",
    printed: "dXNlcjpwdWx1bWktYWNjZXNzLXRvazNuL3dpdGgrc3BlY2lhbD1jaGFyc3B1bHVtaS1hY2Nlc3Mt\ndG9rM24vd2l0aCtzcGVjaWFsPWNoYXJz\n",
    masked: `dXNlcjp${REDACTED}3${REDACTED}\n`,
  },
];

describe("Redactor.redact: hex, base32 and what od and basenc print", () => {
  it("masks hex in lower and upper case, also inside a longer hex blob", () => {
    const r = redactor(SECRET);
    const hex = Buffer.from(SECRET, "utf8").toString("hex");
    expect(r.redact(`k=${hex};`)).toBe(`k=${REDACTED};`);
    expect(r.redact(`k=${hex.toUpperCase()};`)).toBe(`k=${REDACTED};`);
    const blob = Buffer.from(`user:${SECRET}\n`, "utf8").toString("hex");
    expect(r.redact(blob)).toBe(`${Buffer.from("user:").toString("hex")}${REDACTED}0a`);
  });

  it("positive control: ordinary hex stays (a commit SHA, a digest, another value's hex)", () => {
    const r = redactor(SECRET, LEAKED);
    const text = [
      "HEAD is now at 3a79d47c0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7 (One set of shared config fields)",
      "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      Buffer.from("pulumi-access-tok3n/with+special=charz").toString("hex"),
      "0000000 70 75 6c 75 6d 69 2d 61 63 63 65 73 73 2d 74 6f\n0000020 6b 33 6e 2f 77 69 74 68 2b 73 70 65 63 69 61 6d\n",
    ].join("\n");
    expect(r.redact(text)).toBe(text);
  });

  for (const { tool, printed, masked } of PRINTED) {
    it(`masks what \`${tool}\` prints`, () => {
      const r = redactor(LEAKED);
      expect(r.redact(printed)).toBe(masked);
      // Streamed in chunks cut anywhere, the same.
      for (let i = 0; i <= printed.length; i += 7) expect(streamAll(r, [printed.slice(0, i), printed.slice(i)]), `split at ${i}`).toBe(masked);
      expect(streamAll(r, [...printed])).toBe(masked);
    });
  }

  it("masks base64 wrapped at any column, CRLF too, and base2", () => {
    const r = redactor(LEAKED);
    const b64 = Buffer.from(`Basic ${LEAKED}`).toString("base64");
    for (const width of [1, 7, 64, 76]) {
      for (const eol of ["\n", "\r\n"]) {
        const wrapped = b64.match(new RegExp(`.{1,${width}}`, "g"))!.join(eol);
        const out = r.redact(wrapped);
        expect(out, `width ${width}`).toContain(REDACTED);
        expect(out.replace(/\s+/g, "").length, `width ${width}`).toBeLessThanOrEqual(REDACTED.length + Math.ceil((4 * 6) / 3) + 3);
      }
    }
    const bits = [...Buffer.from(LEAKED)].map((b) => b.toString(2).padStart(8, "0")).join("");
    expect(r.redact(bits)).toBe(REDACTED);
    expect(r.redact(bits.match(/.{1,76}/g)!.join("\n"))).toBe(REDACTED);
  });

  it("joins a value broken by blanks or one line break, not across long runs or blank lines", () => {
    const r = redactor("abcdefgh");
    expect(r.redact("x abcd efgh y")).toBe(`x ${REDACTED} y`);
    expect(r.redact("abcd\nefgh")).toBe(REDACTED);
    expect(r.redact("abc" + " ".repeat(13) + "defgh")).toBe("abc" + " ".repeat(13) + "defgh");
    expect(r.redact("abcd\n\nefgh")).toBe("abcd\n\nefgh");
    // A dump's offset column counts as a gap only at the start of a line.
    expect(r.redact("abcd\n0000020 efgh")).toBe(REDACTED);
    expect(r.redact("abcd 0000020 efgh")).toBe("abcd 0000020 efgh");
  });

  it("a stream that starts mid-line treats an offset-looking word there as text, like redact() of the whole", () => {
    const r = redactor("abcdefgh");
    const text = "abcd 0000020 efgh\nabcd\n0000020 efgh\n";
    for (let i = 0; i <= text.length; i++) expect(streamAll(r, [text.slice(0, i), text.slice(i)]), `split at ${i}`).toBe(r.redact(text));
    expect(r.redact(text)).toBe(`abcd 0000020 efgh\n${REDACTED}\n`);
  });
});

describe("Redactor.redact: matching", () => {
  it("leaves text without secrets unchanged", () => {
    const empty = new Redactor();
    const text = "ordinary output\nwith [brackets] (parens) $dollars and a.b*c\n";
    expect(empty.redact(text)).toBe(text);
    expect(empty.redact("")).toBe("");
    const r = redactor(SECRET, "abcdefgh", "a.b*c(d)+$");
    expect(r.redact(text)).toBe(text);
    // near misses: every proper prefix / suffix of the secret stays
    expect(r.redact("abcdefg bcdefgh abcdefgX")).toBe("abcdefg bcdefgh abcdefgX");
    expect(r.redact("")).toBe("");
  });

  it("treats regex metacharacters in secrets literally", () => {
    const r = redactor("a.b*c(d)+$", "x|y[z]\\q{2}^");
    expect(r.redact("v=a.b*c(d)+$ end")).toBe(`v=${REDACTED} end`);
    expect(r.redact("v=x|y[z]\\q{2}^ end")).toBe(`v=${REDACTED} end`);
    for (const near of ["aXb*c(d)+$", "abbbcd", "a.bbbc(d)+", "a.b*cd)+$", "x", "y", "x or y", "yz\\qq^", "xz"]) {
      expect(r.redact(near)).toBe(near);
    }
  });

  it("fully masks a secret that contains another, whichever is registered first", () => {
    for (const order of [
      ["abcdef", "xxabcdefyy"],
      ["xxabcdefyy", "abcdef"],
    ]) {
      const r = redactor(...order);
      expect(r.redact("<xxabcdefyy>")).toBe(`<${REDACTED}>`);
      expect(r.redact("<abcdef>")).toBe(`<${REDACTED}>`);
      expect(r.redact("<xxabcdef>")).toBe(`<xx${REDACTED}>`);
    }
  });

  it("fully masks secrets that partly overlap", () => {
    for (const order of [
      ["AAAAAABBBBBB", "BBBBBBCCCCCC"],
      ["BBBBBBCCCCCC", "AAAAAABBBBBB"],
    ]) {
      const r = redactor(...order);
      expect(r.redact("--AAAAAABBBBBBCCCCCC--")).toBe(`--${REDACTED}--`);
      expect(r.redact("--AAAAAABBBBBB--BBBBBBCCCCCC--")).toBe(`--${REDACTED}--${REDACTED}--`);
    }
  });

  it("masks repeated and back-to-back occurrences", () => {
    const r = redactor("s3cr3t-value");
    const out = r.redact("s3cr3t-values3cr3t-value s3cr3t-value");
    expect(out).not.toContain("s3cr3t");
    expect(count(out, REDACTED)).toBe(3);
  });

  it("masks multi-line secrets as a whole and line by line", () => {
    const key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0BAQEFAASC\nab\n-----END KEY-----";
    const r = redactor(key);
    expect(r.redact(`key:\n${key}\ndone`)).toBe(`key:\n${REDACTED}\ndone`);
    // printed with CRLF and indentation: each line of 6+ chars is masked on its own
    const crlf = key.split("\n").map((l) => `    ${l}`).join("\r\n");
    const out = r.redact(crlf);
    for (const line of ["MIIEvQIBADANBgkq", "hkiG9w0BAQEFAASC", "-----BEGIN KEY-----", "-----END KEY-----"]) {
      expect(out).not.toContain(line);
    }
    // the short line "ab" is not a form of its own
    expect(r.redact("ab cd")).toBe("ab cd");
    // JSON-escaped whole value (newlines as \n)
    expect(r.redact(JSON.stringify({ k: key }))).toBe(`{"k":"${REDACTED}"}`);
    // a line's base64 form
    expect(r.redact(b64("MIIEvQIBADANBgkq"))).toBe(REDACTED);
  });
});

describe("Redactor.stream", () => {
  it("never leaks a form when split at every possible boundary, and equals redact(whole)", () => {
    const r = redactor(SECRET, "abcdefgh");
    const forms = [...Object.values(specForms(SECRET)), "abcdefgh", b64("abcdefgh")];
    const text = "start " + forms.join(" | ") + " end";
    const whole = r.redact(text);
    expect(whole).toBe("start " + forms.map(() => REDACTED).join(" | ") + " end");
    for (let i = 0; i <= text.length; i++) {
      const out = streamAll(r, [text.slice(0, i), text.slice(i)]);
      expect(out, `split at ${i}`).toBe(whole);
      for (const f of forms) expect(out).not.toContain(f);
    }
  });

  it("handles a secret split into three chunks at every pair of boundaries", () => {
    const secret = "tok>>?~en\"/\\";
    const r = redactor(secret);
    for (const form of Object.values(specForms(secret))) {
      const text = `a ${form} b`;
      const whole = r.redact(text);
      expect(whole).toBe(`a ${REDACTED} b`);
      for (let i = 0; i <= text.length; i++) {
        for (let j = i; j <= text.length; j++) {
          const out = streamAll(r, [text.slice(0, i), text.slice(i, j), text.slice(j)]);
          expect(out, `${form} split at ${i},${j}`).toBe(whole);
        }
      }
    }
  });

  it("matches redact() for overlapping secrets under random chunking", () => {
    const r = redactor("AAAAAABBBBBB", "BBBBBBCCCCCC", "abcdef", "xxabcdefyy", "a.b*c(d)+$");
    const pieces = ["AAAAAABBBBBBCCCCCC", "xxabcdefyy", "abcdef", "a.b*c(d)+$", "AAAAAA", "BBBBBB", "xx", " ", "\n", "plain"];
    const rand = seededRandom(42);
    for (let round = 0; round < 200; round++) {
      let text = "";
      for (let k = 0; k < 20; k++) text += pieces[Math.floor(rand() * pieces.length)];
      const chunks: string[] = [];
      for (let i = 0; i < text.length; ) {
        const n = Math.floor(rand() * 15); // includes empty chunks
        chunks.push(text.slice(i, i + n));
        i += n;
      }
      const out = streamAll(r, chunks);
      expect(out).toBe(r.redact(text));
      for (const s of ["AAAAAABBBBBB", "BBBBBBCCCCCC", "abcdef", "a.b*c(d)+$"]) expect(out).not.toContain(s);
    }
  });

  it("works one character at a time", () => {
    const r = redactor(SECRET);
    const text = Object.values(specForms(SECRET)).join("\n");
    expect(streamAll(r, [...text])).toBe(r.redact(text));
  });

  it("holds back at most maxFormLength-1 characters", () => {
    const r = redactor("abcdefgh");
    const max = r.maxFormLength;
    const s = r.stream();
    const text = "the quick brown fox jumps over the lazy dog. ".repeat(300);
    let pushed = "";
    let emitted = "";
    for (const ch of text) {
      pushed += ch;
      emitted += s.push(ch);
      expect(pushed.startsWith(emitted)).toBe(true);
      expect(pushed.length - emitted.length).toBeLessThanOrEqual(max - 1);
    }
    const rest = s.end();
    expect(rest.length).toBeLessThanOrEqual(max - 1);
    expect(emitted + rest).toBe(text);

    // big chunks: the same bound
    const t = r.stream();
    const big = "x".repeat(10_000);
    expect(t.push(big).length).toBe(10_000 - (max - 1));
    expect(t.end()).toBe("x".repeat(max - 1));
  });

  it("does not emit a secret's prefix before the rest arrives", () => {
    const r = redactor("abcdefgh");
    const s = r.stream();
    const first = s.push("token: abcdefg");
    expect(first).not.toContain("abcdefg");
    expect(first + s.push("h\n") + s.end()).toBe(`token: ${REDACTED}\n`);
  });

  it("emits everything when nothing is registered", () => {
    const r = new Redactor();
    const s = r.stream();
    expect(s.push("hello ")).toBe("hello ");
    expect(s.push("world")).toBe("world");
    expect(s.end()).toBe("");
  });

  it("can be ended and reused", () => {
    const r = redactor("abcdefgh");
    const s = r.stream();
    expect(s.push("x abcd") + s.end()).toBe("x abcd");
    expect(s.push("efgh y") + s.end()).toBe("efgh y");
  });
});

describe("Redactor: large input", () => {
  it("redacts a 5 MB text with 50 secrets, in one call and streamed", () => {
    const rand = seededRandom(7);
    const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789/+\"@?";
    const secrets: string[] = [];
    for (let i = 0; i < 50; i++) {
      let s = `K${i}_`;
      for (let k = 0; k < 24; k++) s += alphabet[Math.floor(rand() * alphabet.length)];
      secrets.push(s);
    }
    const r = redactor(...secrets);
    const words = ["lorem", "ipsum", "dolor", "sit", "amet", "elit", "sed", "do", "tempor"];
    const textParts: string[] = [];
    const expectedParts: string[] = [];
    let length = 0;
    let placed = 0;
    while (length < 5 * 1024 * 1024) {
      let filler = "";
      for (let k = 0; k < 2000; k++) filler += words[Math.floor(rand() * words.length)] + (rand() < 0.1 ? "\n" : " ");
      textParts.push(filler);
      expectedParts.push(filler);
      length += filler.length;
      const secret = secrets[placed % secrets.length]!;
      const forms = Object.values(specForms(secret));
      const form = forms[placed % forms.length]!;
      textParts.push(form, " ");
      expectedParts.push(REDACTED, " ");
      length += form.length + 1;
      placed++;
    }
    expect(placed).toBeGreaterThan(300); // every secret appears, in several forms
    const text = textParts.join("");
    const expected = expectedParts.join("");
    expect(text.length).toBeGreaterThanOrEqual(5 * 1024 * 1024);

    const out = r.redact(text);
    expect(out.length).toBe(expected.length);
    expect(out === expected).toBe(true);
    expect(count(out, REDACTED)).toBe(placed);

    const chunks: string[] = [];
    for (let i = 0; i < text.length; i += 65_521) chunks.push(text.slice(i, i + 65_521));
    expect(streamAll(r, chunks) === expected).toBe(true);
  });
});
