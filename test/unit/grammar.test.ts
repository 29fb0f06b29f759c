import { describe, it, expect } from "vitest";
import {
  parseComment,
  mentionsCommand,
  quoteUserText,
  truncate,
  type ParsedCommand,
} from "../../src/commands/grammar.js";

function only(body: string): ParsedCommand {
  const result = parseComment(body);
  expect(result.errors).toEqual([]);
  expect(result.commands).toHaveLength(1);
  return result.commands[0]!;
}

function agent(body: string) {
  const cmd = only(body);
  if (cmd.kind !== "agent") throw new Error(`expected agent command, got ${cmd.kind}`);
  return cmd;
}

describe("parseComment: basic commands", () => {
  it("parses a bare /agent command", () => {
    expect(parseComment("/agent preview")).toEqual({
      commands: [{ kind: "agent", name: "preview", args: [], flags: {}, line: 1, raw: "/agent preview" }],
      errors: [],
    });
  });

  it("parses positional args and keeps their case", () => {
    const cmd = agent("/agent preview Dev PROD staging");
    expect(cmd.name).toBe("preview");
    expect(cmd.args).toEqual(["Dev", "PROD", "staging"]);
  });

  it("lowercases the command name", () => {
    expect(agent("/agent PREVIEW dev").name).toBe("preview");
    expect(agent("/agent DePloY").name).toBe("deploy");
  });

  it("lowercases ASCII only: a Kelvin sign does not turn into k", () => {
    const cmd = agent("/agent unloc\u212A");
    expect(cmd.name).toBe("unloc\u212A");
    expect(cmd.name).not.toBe("unlock");
  });

  it("accepts the prefix case-insensitively", () => {
    expect(agent("/Agent status").name).toBe("status");
    expect(only("/APPROVE ok").kind).toBe("approve");
    expect(only("/Deny").kind).toBe("deny");
  });

  it("accepts leading whitespace and reports the 1-based line and trimmed raw", () => {
    const result = parseComment("hello\n\n   \t/agent status   \nbye");
    expect(result.commands).toEqual([
      { kind: "agent", name: "status", args: [], flags: {}, line: 3, raw: "/agent status" },
    ]);
  });

  it("handles CRLF and lone CR line endings", () => {
    const result = parseComment("a\r\n/agent status\r\nb\r/agent help\r\n");
    expect(result.commands.map((c) => [c.line, c.kind === "agent" ? c.name : c.kind])).toEqual([
      [2, "status"],
      [4, "help"],
    ]);
    expect(result.commands[0]!.raw).toBe("/agent status");
  });

  it("ignores text around commands and commands not at line start", () => {
    const body = "Looks good, please run /agent preview dev\nI /approve this\n`/agent deploy`\n";
    expect(parseComment(body)).toEqual({ commands: [], errors: [] });
  });

  it("requires whitespace or end of line after the prefix", () => {
    expect(parseComment("/agentx preview\n/approved\n/denying\n/agent-preview\n/agent,preview")).toEqual({
      commands: [],
      errors: [],
    });
    expect(only("/approve").kind).toBe("approve");
    expect(only("/deny").kind).toBe("deny");
  });

  it("reports /agent without a command as an error", () => {
    const result = parseComment("/agent   ");
    expect(result.commands).toEqual([]);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ line: 1, raw: "/agent" });
    expect(result.errors[0]!.message).toContain("needs a command");
  });

  it("returns empty results for empty or non-command input", () => {
    expect(parseComment("")).toEqual({ commands: [], errors: [] });
    expect(parseComment("just a comment")).toEqual({ commands: [], errors: [] });
    expect(parseComment("/")).toEqual({ commands: [], errors: [] });
  });

  it("truncates raw to 200 characters", () => {
    const arg = "a".repeat(500);
    const cmd = agent(`/agent preview ${arg}`);
    expect(cmd.raw).toHaveLength(200);
    expect(cmd.raw.startsWith("/agent preview aaa")).toBe(true);
    expect(cmd.args).toEqual([arg]);
  });
});

describe("parseComment: /approve and /deny", () => {
  it("takes the rest of the line, trimmed, as the reason", () => {
    expect(only("/approve   LGTM, ship it; rm -rf / `x`  ")).toEqual({
      kind: "approve",
      reason: "LGTM, ship it; rm -rf / `x`",
      line: 1,
      raw: "/approve   LGTM, ship it; rm -rf / `x`",
    });
  });

  it("keeps internal whitespace of the reason", () => {
    const cmd = only("/deny  too   risky\tnow");
    expect(cmd).toMatchObject({ kind: "deny", reason: "too   risky\tnow" });
  });

  it("has an empty reason when none is given", () => {
    expect(only("/approve")).toMatchObject({ kind: "approve", reason: "" });
    expect(only("  /deny   ")).toMatchObject({ kind: "deny", reason: "", raw: "/deny" });
  });

  it("does not interpret flags in the reason", () => {
    expect(only("/approve --force because")).toMatchObject({ kind: "approve", reason: "--force because" });
  });

  it("truncates the reason to 500 characters", () => {
    const reason = "r".repeat(900);
    const cmd = only(`/approve ${reason}`);
    expect(cmd.kind === "approve" && cmd.reason).toBe("r".repeat(500));
  });

  it("does not split a surrogate pair when truncating", () => {
    const reason = "r".repeat(499) + "😀" + "tail";
    const cmd = only(`/deny ${reason}`);
    expect(cmd.kind === "deny" && cmd.reason).toBe("r".repeat(499));
  });
});

describe("parseComment: flags", () => {
  it("parses --name value", () => {
    const cmd = agent("/agent deploy --stack prod");
    expect(cmd.args).toEqual([]);
    expect(cmd.flags).toEqual({ stack: "prod" });
  });

  it("parses --name=value, splitting on the first =", () => {
    expect(agent("/agent deploy --stack=prod").flags).toEqual({ stack: "prod" });
    expect(agent("/agent deploy --opt=a=b").flags).toEqual({ opt: "a=b" });
  });

  it("parses a bare flag at end of line as true", () => {
    expect(agent("/agent preview dev --verbose").flags).toEqual({ verbose: true });
  });

  it("parses a bare flag followed by another flag as true", () => {
    const cmd = agent("/agent preview --dry-run --stack dev x");
    expect(cmd.flags).toEqual({ "dry-run": true, stack: "dev" });
    expect(cmd.args).toEqual(["x"]);
  });

  it("a flag not followed by a flag takes the next token as its value", () => {
    const cmd = agent("/agent preview --verbose dev");
    expect(cmd.flags).toEqual({ verbose: "dev" });
    expect(cmd.args).toEqual([]);
  });

  it("mixes args and flags in any order", () => {
    const cmd = agent("/agent preview a --stack b c");
    expect(cmd.args).toEqual(["a", "c"]);
    expect(cmd.flags).toEqual({ stack: "b" });
  });

  it("treats single-dash tokens as args", () => {
    const cmd = agent("/agent preview -rf -");
    expect(cmd.args).toEqual(["-rf", "-"]);
    expect(cmd.flags).toEqual({});
  });

  it("keeps flag values verbatim (no shell semantics)", () => {
    expect(agent("/agent preview --stack=$(id)").flags).toEqual({ stack: "$(id)" });
    expect(agent("/agent preview --stack `id`").flags).toEqual({ stack: "`id`" });
  });

  it("accepts flag names that collide with Object.prototype members", () => {
    const cmd = agent("/agent preview --constructor --tostring x --hasownproperty");
    expect(cmd.flags).toEqual({ constructor: true, tostring: "x", hasownproperty: true });
    expect(Object.keys(cmd.flags)).toEqual(["constructor", "tostring", "hasownproperty"]);
  });

  it.each([
    ["--Stack dev", "`--Stack`"],
    ["--1abc", "`--1abc`"],
    ["--", "`--`"],
    ["--=x", "`--=x`"],
    ["--foo_bar", "`--foo_bar`"],
    ["--" + "a".repeat(33), "`--aaaa"],
    ["--__proto__=1", "`--__proto__=1`"],
    ["--stäck dev", "`--stäck`"],
  ])("rejects invalid flag name in %j", (flagText, echoed) => {
    const result = parseComment(`/agent preview ${flagText}`);
    expect(result.commands).toEqual([]);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]!.message).toContain("Invalid flag");
    expect(result.errors[0]!.message).toContain(echoed);
  });

  it("accepts a 32-character flag name", () => {
    const name = "a" + "b".repeat(31);
    expect(agent(`/agent preview --${name}`).flags).toEqual({ [name]: true });
  });

  it("rejects a flag given twice", () => {
    const result = parseComment("/agent preview --stack a --stack=b");
    expect(result.commands).toEqual([]);
    expect(result.errors[0]!.message).toContain("`--stack` is given more than once");
  });

  it("rejects an empty --name= value", () => {
    const result = parseComment("/agent deploy --stack=");
    expect(result.commands).toEqual([]);
    expect(result.errors[0]!.message).toContain("empty value");
  });
});

describe("parseComment: tokenisation and injection-shaped input", () => {
  it("does not split on shell metacharacters", () => {
    const cmd = agent("/agent preview dev; rm -rf /");
    expect(cmd.args).toEqual(["dev;", "rm", "-rf", "/"]);
  });

  it("keeps $(...), backticks, pipes and ampersands inside tokens", () => {
    expect(agent("/agent preview $(curl evil)").args).toEqual(["$(curl", "evil)"]);
    expect(agent("/agent preview a|b c&&d `id` ${HOME}").args).toEqual(["a|b", "c&&d", "`id`", "${HOME}"]);
  });

  it("does not honour quotes", () => {
    expect(agent(`/agent preview "dev prod" 'x y'`).args).toEqual(['"dev', 'prod"', "'x", "y'"]);
  });

  it("does not treat a semicolon or newline as starting a second command", () => {
    const result = parseComment("/agent preview dev;/agent deploy prod");
    expect(result.commands).toHaveLength(1);
    expect(result.commands[0]).toMatchObject({ name: "preview", args: ["dev;/agent", "deploy", "prod"] });
  });

  it("splits on any unicode whitespace, including non-breaking and ideographic spaces", () => {
    expect(agent("/agent preview\u00a0dev\u2003prod\u3000qa\ttest").args).toEqual(["dev", "prod", "qa", "test"]);
    expect(agent("/agent\u00a0deploy\u00a0prod")).toMatchObject({ name: "deploy", args: ["prod"] });
    expect(only("/approve\u00a0fine")).toMatchObject({ kind: "approve", reason: "fine" });
  });

  it("treats leading unicode whitespace (NBSP, BOM) as indentation", () => {
    expect(agent("\ufeff\u00a0/agent status").name).toBe("status");
  });

  it("keeps non-ASCII args verbatim", () => {
    expect(agent("/agent preview dév").args).toEqual(["dév"]);
    expect(agent("/agent preview \u0430pp").args).toEqual(["\u0430pp"]); // Cyrillic а
  });

  it("does not treat zero-width space as whitespace", () => {
    expect(agent("/agent preview dev\u200bprod").args).toEqual(["dev\u200bprod"]);
    expect(parseComment("/agent\u200b preview").commands).toEqual([]);
  });

  it("does not accept lookalike slashes or prefixes", () => {
    const body = [
      "／agent preview", // full-width solidus
      "∕agent preview", // division slash
      "⁄approve", // fraction slash
      "/аgent preview", // Cyrillic а
      "/agеnt preview", // Cyrillic е
      "//agent preview",
      "\\agent preview",
    ].join("\n");
    expect(parseComment(body)).toEqual({ commands: [], errors: [] });
    expect(mentionsCommand(body)).toBe(false);
  });

  it("rejects too many args (17) but accepts 16", () => {
    const sixteen = Array.from({ length: 16 }, (_, i) => `s${i}`);
    expect(agent(`/agent preview ${sixteen.join(" ")}`).args).toEqual(sixteen);
    const result = parseComment(`/agent preview ${sixteen.join(" ")} s16`);
    expect(result.commands).toEqual([]);
    expect(result.errors[0]!.message).toContain("Too many arguments (17)");
  });

  it("does not count flags and their values as args", () => {
    const sixteen = Array.from({ length: 16 }, (_, i) => `s${i}`);
    const cmd = agent(`/agent preview ${sixteen.join(" ")} --stack x --y`);
    expect(cmd.args).toHaveLength(16);
  });
});

describe("parseComment: code fences, quotes and HTML comments", () => {
  it("ignores commands inside ``` fences", () => {
    const body = ["```", "/agent deploy prod", "```", "/agent status"].join("\n");
    const result = parseComment(body);
    expect(result.commands).toEqual([
      { kind: "agent", name: "status", args: [], flags: {}, line: 4, raw: "/agent status" },
    ]);
  });

  it("ignores commands inside ~~~ fences with an info string", () => {
    const body = ["~~~bash", "/approve", "~~~", "/deny nope"].join("\n");
    expect(parseComment(body).commands).toEqual([{ kind: "deny", reason: "nope", line: 4, raw: "/deny nope" }]);
  });

  it("ignores commands inside indented fences", () => {
    const body = ["- item", "  ```sh", "  /agent deploy prod", "  ```", "/agent help"].join("\n");
    expect(parseComment(body).commands.map((c) => c.line)).toEqual([5]);
  });

  it("a fence is only closed by the same character with at least the same length", () => {
    const body = [
      "````",
      "```", // too short: still inside
      "/agent deploy a",
      "~~~~", // wrong char: still inside
      "/agent deploy b",
      "```` trailing", // closing fences cannot have an info string
      "/agent deploy c",
      "`````",
      "/agent status",
    ].join("\n");
    const result = parseComment(body);
    expect(result.commands).toHaveLength(1);
    expect(result.commands[0]).toMatchObject({ name: "status", line: 9 });
  });

  it("an unclosed fence hides everything after it", () => {
    expect(parseComment("/agent status\n```\n/agent deploy prod\n/approve").commands).toHaveLength(1);
  });

  it("inline code with triple backticks on one line does not open a fence", () => {
    const body = "```inline `code` ```\n/agent status";
    expect(parseComment(body).commands).toHaveLength(1);
  });

  it("ignores quoted lines, including nested and indented quotes", () => {
    const body = ["> /agent deploy prod", ">/approve", "  > > /deny", "/agent status"].join("\n");
    const result = parseComment(body);
    expect(result.commands).toHaveLength(1);
    expect(result.commands[0]).toMatchObject({ name: "status", line: 4 });
  });

  it("a fence opened inside a quote does not hide later lines", () => {
    const body = ["> ```", "/agent status"].join("\n");
    expect(parseComment(body).commands).toHaveLength(1);
  });

  it("ignores commands inside multi-line HTML comments", () => {
    const body = ["<!--", "/agent deploy prod", "-->", "<!-- one line --> ", "/agent status"].join("\n");
    const result = parseComment(body);
    expect(result.commands).toHaveLength(1);
    expect(result.commands[0]).toMatchObject({ name: "status", line: 5 });
  });

  it("commands inside fences do not count toward the limit", () => {
    const fenced = Array.from({ length: 20 }, () => "/agent status").join("\n");
    const body = "```\n" + fenced + "\n```\n/agent help";
    const result = parseComment(body);
    expect(result.errors).toEqual([]);
    expect(result.commands).toHaveLength(1);
  });
});

describe("parseComment: multiple commands and limits", () => {
  it("parses several commands in order", () => {
    const body = [
      "Thanks!",
      "/agent preview dev --stack prod",
      "",
      "/approve looks fine",
      "/deny",
      "/agent status",
    ].join("\n");
    const result = parseComment(body);
    expect(result.errors).toEqual([]);
    expect(result.commands).toEqual([
      { kind: "agent", name: "preview", args: ["dev"], flags: { stack: "prod" }, line: 2, raw: "/agent preview dev --stack prod" },
      { kind: "approve", reason: "looks fine", line: 4, raw: "/approve looks fine" },
      { kind: "deny", reason: "", line: 5, raw: "/deny" },
      { kind: "agent", name: "status", args: [], flags: {}, line: 6, raw: "/agent status" },
    ]);
  });

  it("keeps valid commands when another line has an error", () => {
    const result = parseComment("/agent preview --Bad\n/agent status");
    expect(result.commands).toHaveLength(1);
    expect(result.commands[0]).toMatchObject({ name: "status", line: 2 });
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ line: 1, raw: "/agent preview --Bad" });
  });

  it("accepts exactly 10 commands", () => {
    const body = Array.from({ length: 10 }, (_, i) => `/agent preview s${i}`).join("\n");
    const result = parseComment(body);
    expect(result.errors).toEqual([]);
    expect(result.commands).toHaveLength(10);
  });

  it("11+ commands: first 10 kept, one error for the extras", () => {
    const body = Array.from({ length: 25 }, (_, i) => `/agent preview s${i}`).join("\n");
    const result = parseComment(body);
    expect(result.commands).toHaveLength(10);
    expect(result.commands.map((c) => (c.kind === "agent" ? c.args[0] : ""))).toEqual(
      Array.from({ length: 10 }, (_, i) => `s${i}`),
    );
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]!.line).toBe(11);
    expect(result.errors[0]!.raw).toBe("/agent preview s10");
    expect(result.errors[0]!.message).toContain("Too many commands");
    expect(result.errors[0]!.message).toContain("10");
  });

  it("invalid command lines count toward the limit", () => {
    const body = [...Array.from({ length: 10 }, () => "/agent"), "/agent status"].join("\n");
    const result = parseComment(body);
    expect(result.commands).toEqual([]);
    expect(result.errors).toHaveLength(11);
    expect(result.errors[10]!.message).toContain("Too many commands");
  });

  it("rejects a command line longer than 1000 characters", () => {
    const line = "/agent preview " + "x".repeat(1000);
    const result = parseComment(`${line}\n/agent status`);
    expect(result.commands).toHaveLength(1);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]!.message).toContain("too long");
    expect(result.errors[0]!.raw).toHaveLength(200);
  });

  it("accepts a command line of exactly 1000 characters (trailing whitespace excluded)", () => {
    const line = "/agent preview " + "x".repeat(1000 - "/agent preview ".length);
    expect(line).toHaveLength(1000);
    expect(agent(`   ${line}      `).args[0]).toHaveLength(985);
  });

  it("rejects an over-long /approve line rather than truncating it", () => {
    const result = parseComment("/approve " + "y".repeat(1200));
    expect(result.commands).toEqual([]);
    expect(result.errors[0]!.message).toContain("too long");
  });
});

describe("parseComment: 1 MB comments", () => {
  const MB = 1024 * 1024;

  it("parses a 1 MB comment of mixed prose with commands at the start and end", () => {
    const filler = "lorem ipsum /agent deploy prod dolor sit amet ".repeat(30) + "\n";
    let body = "/agent preview dev\n";
    while (body.length < MB) body += filler;
    body += "/approve done";
    expect(body.length).toBeGreaterThan(MB);
    const result = parseComment(body);
    expect(result.errors).toEqual([]);
    expect(result.commands).toHaveLength(2);
    expect(result.commands[0]).toMatchObject({ kind: "agent", name: "preview", args: ["dev"], line: 1 });
    expect(result.commands[1]).toMatchObject({ kind: "approve", reason: "done" });
    expect(mentionsCommand(body)).toBe(true);
  });

  it("handles a single 1 MB command line", () => {
    const body = "/agent preview " + "a ".repeat(MB / 2);
    const result = parseComment(body);
    expect(result.commands).toEqual([]);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]!.message).toContain("too long");
    expect(result.errors[0]!.raw.length).toBeLessThanOrEqual(200);
  });

  it("handles 1 MB of whitespace (incl. U+2028) followed by a command", () => {
    const body = " \t\u00a0\u2028".repeat(MB / 4) + "/agent status";
    const result = parseComment(body);
    expect(result.commands).toEqual([
      { kind: "agent", name: "status", args: [], flags: {}, line: 1, raw: "/agent status" },
    ]);
    expect(mentionsCommand(body)).toBe(true);
  });

  it("handles 1 MB of whitespace runs inside one non-command line", () => {
    const body = "x" + " ".repeat(MB) + "x\n/agent help";
    expect(parseComment(body).commands).toHaveLength(1);
    expect(mentionsCommand(" ".repeat(MB) + "x")).toBe(false);
  });

  it("handles 1 MB of command lines (stops at the limit)", () => {
    const body = "/agent status\n".repeat(MB / 14);
    const result = parseComment(body);
    expect(result.commands).toHaveLength(10);
    expect(result.errors).toHaveLength(1);
  });

  it("handles 1 MB of fence and quote lines", () => {
    const body = "```\n/agent deploy prod\n```\n> /agent deploy prod\n".repeat(MB / 44) + "/deny stop";
    const result = parseComment(body);
    expect(result.commands).toEqual([
      expect.objectContaining({ kind: "deny", reason: "stop" }),
    ]);
  });

  it("handles 1 MB-long fence markers", () => {
    const fence = "`".repeat(MB / 2);
    const body = `${fence}\n/agent deploy prod\n${"`".repeat(MB / 2 - 1)}\n/agent deploy qa\n${fence}\n/agent help`;
    // the shorter run does not close the fence; the equal-length one does
    const result = parseComment(body);
    expect(result.errors).toEqual([]);
    expect(result.commands).toEqual([expect.objectContaining({ name: "help", line: 6 })]);
  });
});

describe("mentionsCommand", () => {
  it.each([
    ["/agent preview", true],
    ["  /agent", true],
    ["text\n\t/approve", true],
    ["x\r\n/deny reason", true],
    ["/Agent help", true],
    ["\u00a0/approve", true],
    ["> /agent preview", false],
    ["please /agent preview", false],
    ["/agentx", false],
    ["/approved", false],
    ["／agent preview", false],
    ["", false],
  ])("%j -> %s", (body, expected) => {
    expect(mentionsCommand(body)).toBe(expected);
  });

  it("is a superset of parseComment (never false when a command is parsed)", () => {
    const bodies = [
      "/agent status",
      "a\r/agent status",
      "a\u2028/agent status",
      "\ufeff/approve",
      "x\n \u2029 /deny",
      "```\n/agent status", // fenced: parse finds nothing, pre-filter may still say true
    ];
    for (const body of bodies) {
      const r = parseComment(body);
      if (r.commands.length + r.errors.length > 0) expect(mentionsCommand(body)).toBe(true);
    }
    expect(mentionsCommand("```\n/agent status")).toBe(true);
  });
});

describe("quoteUserText and truncate", () => {
  it("strips backticks and control/format characters and wraps in backticks", () => {
    expect(quoteUserText("a`b\u0000c\u202ed\u200be\n f")).toBe("`abcde f`");
  });

  it("truncates to 40 characters with an ellipsis", () => {
    const out = quoteUserText("z".repeat(100));
    expect(out).toBe("`" + "z".repeat(40) + "…`");
  });

  it("renders empty text as (empty)", () => {
    expect(quoteUserText("```")).toBe("(empty)");
  });

  it("does not split surrogate pairs", () => {
    expect(truncate("ab😀", 3)).toBe("ab");
    expect(truncate("ab😀", 4)).toBe("ab😀");
  });
});
