/**
 * The one zod-issue → message module (src/config/issues.ts), on small schemas. The repository
 * config's wording is pinned in repo-config.test.ts; here is what the server's configs rely on.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { describeZodIssues, issueLines, readYaml, type ConfigIssue } from "../../src/config/issues.js";

const Schema = z.strictObject({
  version: z.literal(2),
  token: z.string({ error: "required when ENABLED is set (the app's token)" }),
  level: z.enum(["low", "high"], { error: "must be `low` or `high`" }).optional(),
  stacks: z.record(z.string().regex(/^[a-z]+$/, "must be lower-case letters"), z.strictObject({ preview: z.number().optional(), deploy: z.number().optional() })).optional(),
});

function issues(text: string, schema: z.ZodType = Schema): ConfigIssue[] {
  const read = readYaml(text);
  if (!read.ok) return read.issues;
  const parsed = schema.safeParse(read.data);
  return parsed.success ? [] : describeZodIssues(parsed.error.issues, { data: read.data, schema, source: read.source });
}

describe("describeZodIssues", () => {
  it("keeps a schema's own message for a missing key when it starts with `required`; a missing literal says what to add", () => {
    expect(issues("level: low\n")).toEqual([
      { path: "version", line: 1, message: "is required (add `version: 2`)" },
      { path: "token", line: 1, message: "required when ENABLED is set (the app's token)" },
    ]);
  });

  it("names the line of each problem, through records, and suggests keys of a record's values", () => {
    expect(issues(["version: 2", "token: t", "level: medium", "stacks:", "  prod:", "    deplyo: 1", "  Bad: {}", ""].join("\n"))).toEqual([
      { path: "level", line: 3, message: 'must be `low` or `high`, got `"medium"`' },
      { path: "stacks.prod.deplyo", line: 6, message: "unknown key `deplyo` — did you mean `deploy`?" },
      { path: "stacks.Bad", line: 7, message: "the key `Bad` is not allowed here: it must be lower-case letters" },
    ]);
  });

  it("describes a value checked where it sits inside a larger document (`at`)", () => {
    const read = readYaml("outer:\n  inner:\n    level: 3\n");
    if (!read.ok) throw new Error("expected YAML");
    const Inner = z.strictObject({ level: z.string() });
    const parsed = Inner.safeParse((read.data as { outer: { inner: unknown } }).outer.inner);
    expect(describeZodIssues(parsed.error!.issues, { data: read.data, at: ["outer", "inner"], schema: Inner, source: read.source })).toEqual([
      { path: "outer.inner.level", line: 3, message: "expected a string, got the number `3` (quote it to make it text)" },
    ]);
  });

  it("works without a YAML source (environment variables): no lines", () => {
    const Env = z.object({ PORT: z.coerce.number().int().max(65535), ROLE: z.enum(["web", "worker"]) });
    const data = { PORT: "70000", ROLE: "all" };
    const described = describeZodIssues(Env.safeParse(data).error!.issues, { data, schema: Env });
    expect(described).toEqual([
      { path: "PORT", line: null, message: "must be at most 65535" },
      { path: "ROLE", line: null, message: expect.stringMatching(/^Invalid option: .*, got `"all"`$/) },
    ]);
    expect(issueLines(described).split("\n")[0]).toBe("  PORT: must be at most 65535");
  });

  it("says what the root should be", () => {
    expect(issues("[1, 2]\n")).toEqual([{ path: "", line: 1, message: "must be a mapping, got a list" }]);
  });
});

describe("readYaml", () => {
  it("reports syntax errors with lines, and an empty document as null", () => {
    expect(readYaml("a: 1\na: 2\n")).toMatchObject({ ok: false, issues: [{ path: "", line: 2, message: expect.stringMatching(/^YAML syntax error: .*unique/) }] });
    expect(readYaml("")).toMatchObject({ ok: true, data: null });
    expect(readYaml("x: 1\n", { maxBytes: 3 })).toEqual({ ok: false, issues: [{ path: "", line: null, message: "the file is too large (5 bytes; the limit is 3 bytes)" }] });
  });
});

describe("issueLines", () => {
  it("indents each issue, names the top level and appends the line", () => {
    expect(issueLines([{ path: "", line: null, message: "must be a mapping" }, { path: "a.b", line: 7, message: "is required" }])).toBe(
      "  (top level): must be a mapping\n  a.b: is required (line 7)",
    );
  });
});
