import { describe, it, expect } from "vitest";
import { parseLintAnnotations, repoRelativePath } from "../../src/render/annotations.js";

const parse = (lines: string[], stackDir = ".") => parseLintAnnotations(lines.join("\n"), stackDir);
const one = (line: string, stackDir = ".") => {
  const { annotations } = parseLintAnnotations(line, stackDir);
  expect(annotations, line).toHaveLength(1);
  return annotations[0]!;
};

describe("parseLintAnnotations: formats", () => {
  it("reads gcc-style path:line:col: with a level word", () => {
    expect(one("src/main.c:10:5: error: expected ';' before '}' token")).toEqual({
      path: "src/main.c",
      startLine: 10,
      endLine: 10,
      level: "failure",
      message: "expected ';' before '}' token",
    });
    expect(one("src/main.c:11:1: warning: unused variable 'x'").level).toBe("warning");
    expect(one("src/main.c:12:1: note: declared here").level).toBe("notice");
    expect(one("src/main.c:1:1: fatal error: x.h: No such file").level).toBe("failure");
  });

  it("reads path:line: without a column (make, some linters)", () => {
    const a = one("Makefile:10: *** missing separator.  Stop.");
    expect(a).toMatchObject({ path: "Makefile", startLine: 10, level: "notice", message: "*** missing separator.  Stop." });
    expect(one("lib/x.sh:4: [error] bad thing")).toMatchObject({ startLine: 4, level: "failure", message: "bad thing" });
  });

  it("reads ruff, flake8 and golangci-lint lines as notices with their codes", () => {
    expect(one("app/models.py:1:8: F401 [*] `os` imported but unused")).toMatchObject({ path: "app/models.py", level: "notice", message: "F401 [*] `os` imported but unused" });
    expect(one("app/views.py:22:80: E501 line too long (88 > 79 characters)")).toMatchObject({ startLine: 22, level: "notice" });
    expect(one("cmd/main.go:10:2: ineffectual assignment to err (ineffassign)")).toMatchObject({ path: "cmd/main.go", startLine: 10, level: "notice" });
  });

  it("reads shellcheck -f gcc and tflint compact levels", () => {
    expect(one("scripts/deploy.sh:3:5: warning: Double quote to prevent globbing and word splitting. [SC2086]")).toMatchObject({
      level: "warning",
      message: "Double quote to prevent globbing and word splitting. [SC2086]",
    });
    expect(one("scripts/deploy.sh:9:1: error: Couldn't parse this function. [SC1073]").level).toBe("failure");
    expect(one("main.tf:3:1: Warning - instance type is invalid (aws_instance_invalid_type)")).toMatchObject({ level: "warning", message: "instance type is invalid (aws_instance_invalid_type)" });
  });

  it("reads ESLint unix (trailing [Error/rule]) and compact formats", () => {
    expect(one("/workspace/web/src/a.js:1:10: Missing semicolon. [Error/semi]")).toMatchObject({ path: "web/src/a.js", level: "failure", message: "Missing semicolon. [Error/semi]" });
    expect(one("/workspace/web/src/a.js:2:1: Unexpected console statement. [Warning/no-console]").level).toBe("warning");
    expect(one("/workspace/web/src/a.js: line 3, col 7, Error - 'x' is not defined. (no-undef)")).toMatchObject({
      path: "web/src/a.js",
      startLine: 3,
      level: "failure",
      message: "'x' is not defined. (no-undef)",
    });
    expect(one("web/b.js: line 4, col 1, Warning - Unexpected var. (no-var)").level).toBe("warning");
  });

  it("reads TypeScript diagnostics with the error code as title", () => {
    expect(one("src/index.ts(12,4): error TS2322: Type 'string' is not assignable to type 'number'.", "infra")).toEqual({
      path: "infra/src/index.ts",
      startLine: 12,
      endLine: 12,
      level: "failure",
      message: "Type 'string' is not assignable to type 'number'.",
      title: "TS2322",
    });
  });

  it("reads ESLint stylish blocks: a path line, then indented findings with the rule as title", () => {
    const { annotations, total } = parse([
      "",
      "/workspace/infra/src/app.js",
      "   1:10  error    Missing semicolon                semi",
      "  12:1   warning  Unexpected console statement     no-console",
      "",
      "/workspace/infra/src/other.js",
      "  3:3  error  'foo' is assigned a value but never used  no-unused-vars",
      "",
      "✖ 3 problems (2 errors, 1 warning)",
      "  1 error and 0 warnings potentially fixable with the `--fix` option.",
    ]);
    expect(total).toBe(3);
    expect(annotations).toEqual([
      { path: "infra/src/app.js", startLine: 1, endLine: 1, level: "failure", message: "Missing semicolon", title: "semi" },
      { path: "infra/src/app.js", startLine: 12, endLine: 12, level: "warning", message: "Unexpected console statement", title: "no-console" },
      { path: "infra/src/other.js", startLine: 3, endLine: 3, level: "failure", message: "'foo' is assigned a value but never used", title: "no-unused-vars" },
    ]);
  });

  it("does not take indented lines for stylish findings without a file line before them", () => {
    expect(parse(["some text", "  1:10  error  Missing semicolon  semi"]).total).toBe(0);
  });

  it("strips colour codes and carriage returns", () => {
    expect(one("\u001b[1msrc/a.c:1:2: \u001b[31merror:\u001b[0m bad\r")).toMatchObject({ path: "src/a.c", level: "failure", message: "bad" });
  });

  it("ignores lines that only look similar", () => {
    const { total } = parse([
      "12:30:45: server started",
      "2024-01-01 12:30:45: something",
      "http://localhost:8080/health",
      "    at Object.<anonymous> (/workspace/a.js:10:5)",
      "Error: something went wrong",
      "src/a.c:10:5",
      "C:\\src\\a.c:1:2: error: windows path",
    ]);
    expect(total).toBe(0);
  });
});

describe("parseLintAnnotations: paths", () => {
  it("joins relative paths onto the stack directory and normalises them", () => {
    expect(one("./src/../lib/a.ts:1:1: x", "stacks/prod").path).toBe("stacks/prod/lib/a.ts");
    expect(one("../shared/a.ts:1:1: x", "stacks/prod").path).toBe("stacks/shared/a.ts");
    expect(one("a.ts:1:1: x", ".").path).toBe("a.ts");
  });

  it("removes the /workspace/ prefix of absolute paths", () => {
    expect(one("/workspace/modules/vpc/main.tf:7:1: x", "stacks/prod").path).toBe("modules/vpc/main.tf");
  });

  it("drops paths that leave the repository, other absolute paths and control characters", () => {
    expect(parse(["../../etc/passwd:1:1: error: x"], "stacks").total).toBe(0);
    expect(parse(["../../../etc/passwd:1:1: error: x"], "stacks/prod").total).toBe(0);
    expect(parse(["/etc/passwd:1:1: error: x"]).total).toBe(0);
    expect(parse(["/workspace/../etc/passwd:1:1: error: x"]).total).toBe(0);
    expect(parse(["/workspacefoo/a.ts:1:1: error: x"]).total).toBe(0);
    expect(repoRelativePath("a\u0007b.ts", ".")).toBeNull();
    expect(repoRelativePath("..", ".")).toBeNull();
    expect(repoRelativePath("/workspace/", ".")).toBeNull();
    expect(repoRelativePath("a.ts", "../outside")).toBeNull();
  });
});

describe("parseLintAnnotations: dedupe and caps", () => {
  it("keeps one annotation per (path, line, message)", () => {
    const { annotations, total } = parse([
      "a.ts:1:1: error: same",
      "a.ts:1:9: error: same",
      "./a.ts:1:1: error: same",
      "a.ts:2:1: error: same",
      "a.ts:1:1: error: other",
    ]);
    expect(total).toBe(3);
    expect(annotations.map((a) => `${a.startLine} ${a.message}`)).toEqual(["1 same", "2 same", "1 other"]);
  });

  it("returns at most 50 annotations and counts all of them", () => {
    const lines = Array.from({ length: 120 }, (_, i) => `src/f${i % 7}.py:${i + 1}:1: E${i} finding ${i}`);
    const { annotations, total } = parse(lines);
    expect(total).toBe(120);
    expect(annotations).toHaveLength(50);
    expect(annotations[0]!.message).toBe("E0 finding 0");
    expect(annotations[49]!.message).toBe("E49 finding 49");
  });

  it("bounds message length and line numbers", () => {
    const a = one(`a.ts:0:1: ${"m".repeat(3000)}`);
    expect(a.startLine).toBe(1);
    expect(a.message.length).toBeLessThanOrEqual(1000);
  });

  it("finishes on 1 MB of adversarial output", () => {
    const inputs = [
      "a".repeat(1_000_000),
      ("x".repeat(1000) + ":").repeat(1000),
      ("a:1: " + " ".repeat(3990) + "\n").repeat(250),
      ("f(1,1): error TS1: " + "(".repeat(3900) + "\n").repeat(250),
      ("/workspace/a.js\n  1:1  error  " + "a  ".repeat(1300) + "\n").repeat(250),
      ("a:1: x" + " [Error/".repeat(490) + "\n").repeat(250),
      ("p: line 1, col 1, Error - " + "- ".repeat(1900) + "\n").repeat(250),
      "a.ts:1:1: error: ok\n".repeat(50_000),
    ];
    for (const input of inputs) {
      expect(input.length).toBeGreaterThan(900_000);
      const { annotations, total } = parseLintAnnotations(input, ".");
      expect(annotations.length).toBeLessThanOrEqual(50);
      expect(total).toBeGreaterThanOrEqual(annotations.length);
    }
  });
});
