import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { ConfigIssue } from "../../src/config/issues.js";
import { formatConfigIssues, loadRepoConfig, MAX_CONFIG_BYTES, type LoadResult } from "../../src/config/repo/load.js";
import { DEFAULT_GATE, type ResolvedStack, type StepSpec } from "../../src/config/repo/resolve.js";
import { CONFIG_SCHEMA_ID, RepoConfigSchema, jsonSchema, type RepoConfig } from "../../src/config/repo/schema.js";
import { SCHEMA_FILE, isSchemaFileCurrent, renderConfigSchema } from "../../scripts/write-config-schema.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURES = join(ROOT, "test/fixtures/config");
const EXAMPLE = join(ROOT, "examples/agent.yml");

const fixture = (name: string): string => readFileSync(join(FIXTURES, name), "utf8");
const load = (name: string): LoadResult => loadRepoConfig(fixture(name));

function ok(result: LoadResult): { config: RepoConfig; stacks: ResolvedStack[] } {
  if (!result.ok) throw new Error(`expected a valid config, got:\n${formatConfigIssues(result.issues)}`);
  return result;
}

function issuesOf(result: LoadResult): ConfigIssue[] {
  if (result.ok) throw new Error("expected the config to be rejected");
  return result.issues;
}

const script = (name: StepSpec["name"], s: string, timeoutSeconds: number | null = null): StepSpec => ({
  name,
  argv: null,
  script: s,
  timeoutSeconds,
});
const argv = (name: StepSpec["name"], a: string[], timeoutSeconds: number | null = null): StepSpec => ({
  name,
  argv: a,
  script: null,
  timeoutSeconds,
});

const engineStep = (name: StepSpec["name"]): StepSpec => ({ name, argv: null, script: null, timeoutSeconds: null, engine: "pulumi" });

/** A minimal valid document with `extra` appended (top level). */
const withBase = (extra: string): string => `version: 1\nstacks:\n  - name: dev\nsteps:\n  lint: make lint\n${extra}`;

// ---------------------------------------------------------------------------------------------

describe("valid configs", () => {
  it("valid-full.yml resolves every stack with merged, ordered steps and normalised dirs", () => {
    const { config, stacks } = ok(load("valid-full.yml"));
    expect(config.default_stack).toBe("dev");
    expect(config.sandbox).toEqual({ image: "ghcr.io/acme/agent-sandbox:1.2.3" });
    expect(stacks).toEqual<ResolvedStack[]>([
      {
        name: "dev",
        dir: "infra/dev",
        engine: "pulumi",
        pulumiStack: "dev",
        paths: ["infra/dev/**"],
        gate: DEFAULT_GATE,
        policy: null,
        runtime: null,
        environment: { name: "dev", protectionRule: false },
        steps: [script("lint", "npm run lint"), argv("test", ["npm", "test"]), engineStep("preview"), engineStep("deploy")],
      },
      {
        name: "prod.eu-west_1",
        dir: "infra/prod/eu",
        engine: "pulumi",
        pulumiStack: "acme/prod-eu",
        paths: ["infra/prod/eu/**"],
        gate: {
          ...DEFAULT_GATE,
          approvals: 2,
          approvers: { users: ["octo-lead"], teams: ["platform"] },
          deployPermission: "maintain",
          require: { ...DEFAULT_GATE.require, undiverged: false },
          requiredChecks: ["ci/build"],
          mergeMethod: "squash",
          mode: "merge-then-deploy",
          // Defaults to the stack's `approvals`.
          rollbackApprovals: 2,
        },
        policy: null,
        runtime: null,
        environment: { name: "prod.eu-west_1", protectionRule: false },
        steps: [script("lint", "npm run lint"), script("test", "npm test -- --prod"), engineStep("preview"), engineStep("deploy")],
      },
      {
        name: "staging",
        dir: ".",
        engine: "command",
        pulumiStack: null,
        paths: ["**"],
        gate: DEFAULT_GATE,
        policy: null,
        runtime: null,
        environment: { name: "staging", protectionRule: false },
        steps: [
          script("lint", "npm run lint"),
          argv("test", ["npm", "test"]),
          argv("preview", ["pulumi", "preview", "--diff"], 900),
          argv("deploy", ["./deploy.sh", "staging"]),
        ],
      },
      {
        name: "scripts",
        dir: ".",
        engine: "command",
        pulumiStack: null,
        paths: ["**"],
        gate: DEFAULT_GATE,
        policy: null,
        runtime: null,
        environment: { name: "scripts", protectionRule: false },
        steps: [
          script("lint", "npm run lint"),
          argv("test", ["npm", "test"]),
          argv("preview", ["./preview.sh"]),
          script("deploy", "pulumi up --yes", 1800),
        ],
      },
    ]);
  });

  it("valid-minimal.yml gets the defaults (dir `.`, engine `command`)", () => {
    const { config, stacks } = ok(load("valid-minimal.yml"));
    expect(config).toEqual({ version: 1, stacks: [{ name: "app", dir: ".", engine: "command" }], steps: { test: "make test" }, autoplan: true, autoplan_max_stacks: 50, parallel_applies: 3, review_max_live: 5 });
    expect(stacks).toEqual([{ name: "app", dir: ".", engine: "command", pulumiStack: null, paths: ["**"], steps: [script("test", "make test")], gate: DEFAULT_GATE, policy: null, runtime: null, environment: { name: "app", protectionRule: false } }]);
  });

  it("environment: the stack's GitHub environment defaults to its name; `protection_rule` opts in to answering the environment's custom protection rule", () => {
    const { stacks } = ok(loadRepoConfig('version: 1\nstacks:\n  - name: prod\n    environment: { name: production, protection_rule: true }\n  - name: dev\nsteps:\n  preview: ["true"]\n'));
    expect(stacks.map((s) => s.environment)).toEqual([{ name: "production", protectionRule: true }, { name: "dev", protectionRule: false }]);
    const bad = loadRepoConfig('version: 1\nstacks:\n  - name: prod\n    environment: { name: "", protection_rules: true }\nsteps:\n  preview: ["true"]\n');
    expect(bad.ok).toBe(false);
  });

  it("autoplan paths: default from dir, explicit globs kept, bad globs and values rejected", () => {
    const { config, stacks } = ok(
      loadRepoConfig("version: 1\nautoplan: false\nstacks:\n  - name: a\n    dir: infra/a\n  - name: b\n    paths: [\"modules/**\", \"b/*.ts\"]\nsteps:\n  preview: [\"true\"]\n"),
    );
    expect(config.autoplan).toBe(false);
    expect(stacks.map((s) => s.paths)).toEqual([["infra/a/**"], ["modules/**", "b/*.ts"]]);
    const bad = loadRepoConfig("version: 1\nautoplan: sometimes\nstacks:\n  - name: a\n    paths: [\"../etc/**\"]\nsteps:\n  preview: [\"true\"]\n");
    expect(bad.ok).toBe(false);
    const issues = (bad as { issues: Array<{ path: string; message: string }> }).issues;
    expect(issues.map((i) => i.path).sort()).toEqual(["autoplan", "stacks[0].paths[0]"]);
    expect(issues.find((i) => i.path === "autoplan")!.message).toMatch(/`true` or `false`/);
  });

  it("autoplan_max_stacks: 50 by default, a whole number from 1 to 500 otherwise", () => {
    const cfg = (v: string) => loadRepoConfig(`version: 1\nautoplan_max_stacks: ${v}\nstacks:\n  - name: a\nsteps:\n  preview: ["true"]\n`);
    expect(ok(load("valid-minimal.yml")).config.autoplan_max_stacks).toBe(50);
    expect(ok(cfg("200")).config.autoplan_max_stacks).toBe(200);
    for (const bad of ["0", "501", "2.5", "lots"]) {
      expect(issuesOf(cfg(bad))).toEqual([{ path: "autoplan_max_stacks", line: 2, message: "must be a whole number (1-500)" }]);
    }
  });

  it("valid-anchors.yml: YAML anchors and aliases are allowed in moderation", () => {
    const { stacks } = ok(load("valid-anchors.yml"));
    const expected = [argv("lint", ["make", "lint"]), argv("preview", ["make", "plan"])];
    expect(stacks.map((s) => [s.name, s.dir, s.steps])).toEqual([
      ["a", ".", expected],
      ["b", "b", expected],
    ]);
  });

  it("examples/agent.yml validates and resolves as documented in its comments", () => {
    const { config, stacks } = ok(loadRepoConfig(readFileSync(EXAMPLE, "utf8")));
    expect(config.default_stack).toBe("dev");
    expect(stacks.map((s) => `${s.name}:${s.engine}:${s.dir}`)).toEqual([
      "dev:pulumi:infra/dev",
      "prod:pulumi:infra/prod",
      "docs:command:docs",
    ]);
    const prod = stacks.find((s) => s.name === "prod")!;
    expect(prod.steps.map((s) => s.name)).toEqual(["lint", "test", "preview", "deploy"]);
    expect(prod.pulumiStack).toBe("acme/prod");
    expect(prod.dependsOn).toEqual(["dev"]);
    expect(prod.steps[1]).toEqual(argv("test", ["npm", "test", "--", "--prod"]));
    expect(prod.steps[3]).toEqual(engineStep("deploy"));
    const docs = stacks.find((s) => s.name === "docs")!;
    expect(docs.steps[2]).toEqual(script("preview", "./scripts/render-docs.sh --dry-run"));
  });

  it("every resolved step has exactly one of argv / script", () => {
    for (const file of ["valid-full.yml", "valid-minimal.yml", "valid-anchors.yml"]) {
      for (const stack of ok(load(file)).stacks) {
        for (const step of stack.steps)
          expect(step.engine === "pulumi" ? step.argv === null && step.script === null : (step.argv === null) !== (step.script === null)).toBe(true);
      }
    }
  });

  it("RepoConfigSchema can be used directly and applies the same defaults and normalisation", () => {
    const parsed = RepoConfigSchema.parse({ version: 1, stacks: [{ name: "x", dir: "./a/b/" }], steps: { lint: ["l"] } });
    expect(parsed.stacks[0]).toEqual({ name: "x", dir: "a/b", engine: "command" });
    expect(RepoConfigSchema.safeParse({ version: 1, stacks: [{ name: "x", dir: "../a" }], steps: { lint: "l" } }).success).toBe(
      false,
    );
  });
});

describe("pulumi engine settings", () => {
  it("a pulumi stack needs no steps of its own and selects its own name unless told otherwise", () => {
    const { stacks } = ok(loadRepoConfig("version: 1\nstacks:\n  - name: dev\n    engine: pulumi\n  - name: prod\n    engine: pulumi\n    pulumi: { stack: acme/infra/prod }\n"));
    expect(stacks.map((s) => [s.name, s.pulumiStack, s.steps.map((x) => x.name)])).toEqual([
      ["dev", "dev", ["preview", "deploy"]],
      ["prod", "acme/infra/prod", ["preview", "deploy"]],
    ]);
  });

  it("refuses a preview or deploy command on a pulumi stack, pulumi settings on a command stack, and bad Pulumi stack names", () => {
    const issues = issuesOf(
      loadRepoConfig(
        "version: 1\nstacks:\n  - name: dev\n    engine: pulumi\n    steps: { preview: echo hi, deploy: echo up }\n  - name: c\n    pulumi: { stack: x }\n    steps: { lint: l }\n  - name: p\n    engine: pulumi\n    pulumi: { stack: 'a/b/c/d' }\n",
      ),
    );
    expect(issues.map((i) => i.path)).toEqual(expect.arrayContaining(["stacks[2].pulumi.stack"]));
    const withSteps = issuesOf(
      loadRepoConfig("version: 1\nstacks:\n  - name: dev\n    engine: pulumi\n    steps: { preview: echo hi, deploy: echo up }\n  - name: c\n    pulumi: { stack: x }\n    steps: { lint: l }\n"),
    );
    expect(withSteps.map((i) => i.path)).toEqual(["stacks[0].steps.preview", "stacks[0].steps.deploy", "stacks[1].pulumi"]);
    expect(withSteps[0]!.message).toContain("engine: command");
  });
});

describe("the deploy gate", () => {
  it("stack keys override top-level ones, `require` key by key, defaults fill the rest", () => {
    const { stacks } = ok(
      loadRepoConfig(
        "version: 1\ngate: { approvals: 1, count: reviews, require: { lock: false, mergeable: false } }\nstacks:\n  - name: dev\n    steps: { lint: l }\n  - name: prod\n    steps: { lint: l }\n    gate: { approvals: 2, approvers: { teams: [sre] }, require: { lock: true } }\n",
      ),
    );
    expect(stacks[0]!.gate).toEqual({ ...DEFAULT_GATE, count: "reviews", require: { ...DEFAULT_GATE.require, lock: false, mergeable: false } });
    expect(stacks[1]!.gate).toEqual({
      ...DEFAULT_GATE,
      approvals: 2,
      approvers: { users: [], teams: ["sre"] },
      count: "reviews",
      require: { ...DEFAULT_GATE.require, mergeable: false, lock: true },
      // A rollback needs as many approvals as a deploy unless the stack says otherwise.
      rollbackApprovals: 2,
    });
  });

  it("`rollback_approvals: 0` lets a rollback run without approval; `mode` picks merge-first", () => {
    const { stacks } = ok(
      loadRepoConfig("version: 1\ngate: { approvals: 2, rollback_approvals: 0 }\nstacks:\n  - name: dev\n    steps: { lint: l }\n  - name: prod\n    steps: { lint: l }\n    gate: { mode: merge-then-deploy, rollback_approvals: 1 }\n"),
    );
    expect(stacks.map((s) => [s.gate.approvals, s.gate.rollbackApprovals, s.gate.mode])).toEqual([
      [2, 0, "deploy-then-merge"],
      [2, 1, "merge-then-deploy"],
    ]);
  });

  it("rejects impossible gates with a path each", () => {
    const issues = issuesOf(
      loadRepoConfig("version: 1\nstacks:\n  - name: dev\n    steps: { lint: l }\n    gate: { approvals: -1, count: votes, approvers: { users: ['bad login'] }, merge_method: yolo, mode: yolo, rollback_approvals: 11, require: { lint: true } }\n"),
    );
    expect(issues.map((i) => i.path).sort()).toEqual(
      ["stacks[0].gate.approvals", "stacks[0].gate.approvers.users[0]", "stacks[0].gate.count", "stacks[0].gate.merge_method", "stacks[0].gate.mode", "stacks[0].gate.rollback_approvals", "stacks[0].gate.require.lint"].sort(),
    );
  });
});

describe("per-stack step overrides", () => {
  it("merges key by key over the top-level steps", () => {
    const { stacks } = ok(
      loadRepoConfig(`version: 1
steps:
  lint: top-lint
  test: top-test
  preview: { run: top-preview, timeout_seconds: 60 }
stacks:
  - name: inherit
  - name: override
    steps:
      test: ["stack", "test"]
      preview: stack-preview
      deploy: stack-deploy
`),
    );
    expect(stacks[0]!.steps).toEqual([script("lint", "top-lint"), script("test", "top-test"), script("preview", "top-preview", 60)]);
    // The override replaces the whole step, so the top-level timeout does not leak into it.
    expect(stacks[1]!.steps).toEqual([
      script("lint", "top-lint"),
      argv("test", ["stack", "test"]),
      script("preview", "stack-preview"),
      script("deploy", "stack-deploy"),
    ]);
  });

  it("orders steps lint, test, preview, deploy regardless of the order in the file", () => {
    const { stacks } = ok(
      loadRepoConfig(`version: 1
stacks:
  - name: s
    steps:
      deploy: d
      preview: p
steps:
  test: t
  lint: l
`),
    );
    expect(stacks[0]!.steps.map((s) => s.name)).toEqual(["lint", "test", "preview", "deploy"]);
  });

  it("a stack-level step alone satisfies the lint/test/preview requirement", () => {
    const { stacks } = ok(loadRepoConfig("version: 1\nstacks:\n  - name: s\n    steps:\n      preview: [p]\n"));
    expect(stacks[0]!.steps).toEqual([argv("preview", ["p"])]);
  });

  it("deploy alone (top-level or per stack) is not enough", () => {
    expect(issuesOf(loadRepoConfig("version: 1\nstacks:\n  - name: s\nsteps:\n  deploy: d\n"))).toEqual([
      { path: "stacks[0]", line: 3, message: expect.stringMatching(/^stack `s` has no `lint`, `test` or `preview` step/) },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("broken fixtures: one precise issue each", () => {
  const cases: [file: string, path: string, line: number | null, message: string | RegExp][] = [
    ["broken-yaml.yml", "", 5, /^YAML syntax error: .*without - indicator/],
    ["unknown-key.yml", "stacks[1].enigne", 6, "unknown key `enigne` — did you mean `engine`?"],
    [
      "bad-stack-name.yml",
      "stacks[1].name",
      4,
      "must be 1-63 characters of letters, digits, `.`, `_` or `-`, starting with a letter or digit",
    ],
    ["dir-escape.yml", "stacks[1].dir", 6, "must be a relative path without `..`"],
    ["duplicate-stack.yml", "stacks[2].name", 7, "duplicate stack name `dev` (already declared at `stacks[0]`)"],
    [
      "empty-steps.yml",
      "stacks[1]",
      8,
      "stack `deploy-only` has no `lint`, `test` or `preview` step: define one under the top-level `steps` or under `stacks[1].steps`",
    ],
    ["unknown-default-stack.yml", "default_stack", 2, "names an undeclared stack `prodd` (did you mean `prod`?)"],
    ["empty.yml", "", null, /the file is empty/],
    ["alias-bomb.yml", "", 3, /^too many YAML aliases/],
  ];
  it.each(cases)("%s -> %s (line %s)", (file, path, line, message) => {
    const issues = issuesOf(load(file));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toEqual({
      path,
      line,
      message: typeof message === "string" ? message : expect.stringMatching(message),
    });
  });

  it("every broken fixture in the directory is covered by a test", () => {
    const covered = new Set([...cases.map((c) => c[0]), "dir-absolute.yml", "bad-steps.yml", "missing-fields.yml"]);
    const files = readdirSync(FIXTURES).filter((f) => !f.startsWith("valid-"));
    expect(files.sort()).toEqual([...covered].sort());
  });
});

describe("broken fixtures with several issues", () => {
  it("dir-absolute.yml: absolute paths and backslashes", () => {
    expect(issuesOf(load("dir-absolute.yml"))).toEqual([
      { path: "stacks[0].dir", line: 4, message: "must be a relative path (absolute paths are not allowed)" },
      { path: "stacks[1].dir", line: 6, message: "must use `/` as separator (backslashes are not allowed)" },
    ]);
  });

  it("bad-steps.yml: each malformed step is reported at its own line with the branch the author meant", () => {
    expect(issuesOf(load("bad-steps.yml"))).toEqual([
      {
        path: "steps.lint",
        line: 5,
        message:
          "must be a command string, an argv list of strings, or a mapping with `run` (and optional `timeout_seconds`)",
      },
      { path: "steps.test[1]", line: 6, message: "expected a string, got the number `5` (quote it to make it text)" },
      { path: "steps.preview.timeout_seconds", line: 9, message: "must be at most 3600 seconds" },
      { path: "steps.deploy", line: 10, message: "an argv list needs at least one element (the program to run)" },
    ]);
  });

  it("missing-fields.yml: missing required keys point at the enclosing mapping", () => {
    expect(issuesOf(load("missing-fields.yml"))).toEqual([
      { path: "version", line: 2, message: "is required (add `version: 1`)" },
      { path: "stacks", line: 2, message: "is required" },
    ]);
  });

  it("cross-field checks still run while other parts of the file are invalid", () => {
    const issues = issuesOf(
      loadRepoConfig(`version: 1
default_stack: nope
stacks:
  - name: a
    dir: ../x
  - name: a
steps: { lint: l }
`),
    );
    expect(issues.map((i) => `${i.line} ${i.path}`)).toEqual(["2 default_stack", "5 stacks[0].dir", "6 stacks[1].name"]);
  });
});

describe("inline documents", () => {
  const cases: [name: string, yaml: string, expected: ConfigIssue[]][] = [
    [
      "wrong version",
      "version: 2\nstacks:\n  - name: a\nsteps: {lint: l}\n",
      [{ path: "version", line: 1, message: "must be 1 (the only supported config version), got `2`" }],
    ],
    [
      "version as a string",
      'version: "1"\nstacks:\n  - name: a\nsteps: {lint: l}\n',
      [{ path: "version", line: 1, message: 'must be 1 (the only supported config version), got `"1"`' }],
    ],
    [
      "not a mapping",
      "- version: 1\n",
      [{ path: "", line: 1, message: "the file must be a YAML mapping with `version` and `stacks`, got a list" }],
    ],
    [
      "unknown engine",
      withBase("").replace("  - name: dev\n", "  - name: dev\n    engine: docker\n"),
      [{ path: "stacks[0].engine", line: 4, message: 'must be `pulumi` or `command`, got `"docker"`' }],
    ],
    [
      "unknown key far from any known key lists the allowed ones",
      withBase("colour: blue\n"),
      [
        {
          path: "colour",
          line: 6,
          message: "unknown key `colour` (allowed: `version`, `default_stack`, `stacks`, `steps`, `sandbox`, `autoplan`, `autoplan_max_stacks`, `parallel_applies`, `gate`, `policy`, `diagnose`, `review_max_live`)",
        },
      ],
    ],
    [
      "unknown step kind",
      withBase("  deploi: d\n"),
      [{ path: "steps.deploi", line: 6, message: "unknown key `deploi` — did you mean `deploy`?" }],
    ],
    [
      "unknown key inside a step object",
      withBase("  test: {run: t, timeout: 5}\n"),
      [{ path: "steps.test.timeout", line: 6, message: "unknown key `timeout` — did you mean `timeout_seconds`?" }],
    ],
    [
      "wrong-case key",
      "version: 1\nStacks:\n  - name: a\nsteps: {lint: l}\n",
      [
        { path: "stacks", line: 1, message: "is required" },
        { path: "Stacks", line: 2, message: "unknown key `Stacks` — did you mean `stacks`?" },
      ],
    ],
    [
      "flow style keeps line numbers",
      "version: 1\n\nstacks: [{name: a, dir: a/../../b}]\nsteps: {lint: l}\n",
      [{ path: "stacks[0].dir", line: 3, message: "must be a relative path without `..`" }],
    ],
    [
      "null dir",
      withBase("").replace("  - name: dev\n", "  - name: dev\n    dir:\n"),
      [{ path: "stacks[0].dir", line: 4, message: "expected a string, got nothing (null)" }],
    ],
    [
      "empty stacks list",
      "version: 1\nstacks: []\nsteps: {lint: l}\n",
      [{ path: "stacks", line: 2, message: "must declare at least one stack" }],
    ],
    [
      "bad sandbox image",
      withBase("sandbox:\n  image: Agent-Sandbox\n"),
      [
        {
          path: "sandbox.image",
          line: 7,
          message: "must be a lowercase image reference such as `agent-sandbox:test` or `ghcr.io/org/image@sha256:…`",
        },
      ],
    ],
    [
      "empty argv program",
      withBase('  test: [""]\n'),
      [{ path: "steps.test[0]", line: 6, message: "the program (first argv element) must not be empty" }],
    ],
    [
      "blank command string",
      withBase('  test: "   "\n'),
      [{ path: "steps.test", line: 6, message: "a command string must not be blank" }],
    ],
    [
      "non-integer timeout",
      withBase("  test: {run: t, timeout_seconds: 1.5}\n"),
      [{ path: "steps.test.timeout_seconds", line: 6, message: "must be a whole number of seconds (1-3600)" }],
    ],
    [
      "zero timeout",
      withBase("  test: {run: t, timeout_seconds: 0}\n"),
      [{ path: "steps.test.timeout_seconds", line: 6, message: "must be at least 1 second" }],
    ],
    [
      "step object with a bad run",
      withBase("  test:\n    run: 5\n"),
      [{ path: "steps.test.run", line: 7, message: "must be a command string or an argv list of strings" }],
    ],
    [
      "NUL in an argv element",
      withBase('  test: ["a", "b\\0c"]\n'),
      [{ path: "steps.test[1]", line: 6, message: "must not contain NUL characters" }],
    ],
    [
      "duplicate YAML keys",
      "version: 1\nstacks:\n  - name: a\n    name: b\n",
      [{ path: "", line: 4, message: "YAML syntax error: Map keys must be unique" }],
    ],
    [
      "several YAML documents",
      "version: 1\n---\nversion: 1\n",
      [{ path: "", line: 2, message: expect.stringMatching(/^YAML syntax error: Source contains multiple documents/) }],
    ],
    [
      "unresolved alias",
      withBase("  test: *nope\n"),
      [{ path: "", line: 6, message: "YAML alias `*nope` refers to no anchor: define `&nope` before using it" }],
    ],
    ["explicit null document", "~\n", [{ path: "", line: null, message: expect.stringMatching(/the file is empty/) }]],
    ["whitespace only", "\n  \n", [{ path: "", line: null, message: expect.stringMatching(/the file is empty/) }]],
  ];
  it.each(cases)("%s", (_name, yaml, expected) => {
    expect(issuesOf(loadRepoConfig(yaml))).toEqual(expected);
  });

  it("issues come back sorted by line", () => {
    const issues = issuesOf(
      loadRepoConfig("sandbox: {img: x}\nversion: 3\nstacks:\n  - name: 'bad name'\n    dir: /x\nsteps: {lint: 1}\n"),
    );
    const lines = issues.map((i) => i.line ?? Infinity);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
    expect(issues.map((i) => i.path)).toEqual(["sandbox.img", "version", "stacks[0].name", "stacks[0].dir", "steps.lint"]);
  });
});

describe("dir normalisation and checks", () => {
  const dirOf = (dir: string): LoadResult =>
    loadRepoConfig(`version: 1\nstacks:\n  - name: s\n    dir: ${JSON.stringify(dir)}\nsteps: {lint: l}\n`);

  it.each([
    ["./infra/", "infra"],
    ["infra", "infra"],
    ["a//b/./c/", "a/b/c"],
    ["././x", "x"],
    ["./", "."],
    [".", "."],
    [".hidden/x", ".hidden/x"],
    ["infra..old/x", "infra..old/x"],
    ["~/x", "~/x"],
  ])("%j -> %j", (input, expected) => {
    expect(ok(dirOf(input)).stacks[0]!.dir).toBe(expected);
  });

  const rejected: [input: string, message: string][] = [
    ["..", "must be a relative path without `..`"],
    ["../x", "must be a relative path without `..`"],
    ["a/..", "must be a relative path without `..`"],
    ["./a/../../b", "must be a relative path without `..`"],
    ["/etc", "must be a relative path (absolute paths are not allowed)"],
    ["C:/x", "must be a relative path (absolute paths are not allowed)"],
    ["a\\b", "must use `/` as separator (backslashes are not allowed)"],
    ["a\u0000b", "must not contain NUL characters"],
    ["a\nb", "must not contain control characters"],
    ["", "must not be empty (use `.` for the repository root)"],
    ["x".repeat(1025), "must be at most 1024 characters"],
  ];
  it.each(rejected.map(([input, message]) => [JSON.stringify(input).slice(0, 24), input, message]))(
    "rejects %s",
    (_label, input, message) => {
      expect(issuesOf(dirOf(input))).toEqual([{ path: "stacks[0].dir", line: 4, message }]);
    },
  );
});

describe("limits", () => {
  it("argv lists may have 64 elements but not 65", () => {
    const list = (n: number) => `  test: [${Array.from({ length: n }, (_, i) => `a${i}`).join(", ")}]\n`;
    expect(ok(loadRepoConfig(withBase(list(64)))).stacks[0]!.steps[1]!.argv).toHaveLength(64);
    expect(issuesOf(loadRepoConfig(withBase(list(65))))).toEqual([
      { path: "steps.test", line: 6, message: "an argv list may have at most 64 elements" },
    ]);
  });

  it("argv elements may be 4096 characters but not 4097", () => {
    expect(ok(loadRepoConfig(withBase(`  test: [x, ${"a".repeat(4096)}]\n`))).stacks).toHaveLength(1);
    expect(issuesOf(loadRepoConfig(withBase(`  test: [x, ${"a".repeat(4097)}]\n`)))).toEqual([
      { path: "steps.test[1]", line: 6, message: "must be at most 4096 characters" },
    ]);
  });

  it("timeouts may be 3600 seconds", () => {
    expect(ok(loadRepoConfig(withBase("  test: {run: t, timeout_seconds: 3600}\n"))).stacks[0]!.steps[1]).toEqual(
      script("test", "t", 3600),
    );
  });

  it("500 stacks are fine (a platform monorepo), 501 are not", () => {
    const stacks = (n: number) =>
      `version: 1\nsteps: {lint: l}\nstacks:\n${Array.from({ length: n }, (_, i) => `  - name: s${i}\n`).join("")}`;
    expect(ok(loadRepoConfig(stacks(500))).stacks).toHaveLength(500);
    expect(issuesOf(loadRepoConfig(stacks(501)))).toEqual([{ path: "stacks", line: 3, message: "may declare at most 500 stacks" }]);
  });

  it("stack names may be 63 characters but not 64", () => {
    const named = (name: string) => `version: 1\nstacks:\n  - name: ${name}\nsteps: {lint: l}\n`;
    expect(ok(loadRepoConfig(named("a".repeat(63)))).stacks[0]!.name).toHaveLength(63);
    expect(issuesOf(loadRepoConfig(named("a".repeat(64))))[0]).toMatchObject({ path: "stacks[0].name", line: 3 });
    expect(issuesOf(loadRepoConfig(named("-leading-dash")))[0]).toMatchObject({ path: "stacks[0].name", line: 3 });
  });

  it(`accepts a file of exactly ${MAX_CONFIG_BYTES} bytes and rejects one byte more`, () => {
    const base = withBase("");
    const padded = (total: number) => base + "#" + "x".repeat(total - Buffer.byteLength(base) - 2) + "\n";
    expect(Buffer.byteLength(padded(MAX_CONFIG_BYTES))).toBe(MAX_CONFIG_BYTES);
    expect(loadRepoConfig(padded(MAX_CONFIG_BYTES)).ok).toBe(true);
    expect(issuesOf(loadRepoConfig(padded(MAX_CONFIG_BYTES + 1)))).toEqual([
      {
        path: "",
        line: null,
        message: `the file is too large (${MAX_CONFIG_BYTES + 1} bytes; the limit is ${MAX_CONFIG_BYTES} bytes)`,
      },
    ]);
  });

  it("counts bytes, not characters", () => {
    const text = withBase("# " + "é".repeat(MAX_CONFIG_BYTES / 2) + "\n");
    expect(text.length).toBeLessThan(MAX_CONFIG_BYTES);
    expect(issuesOf(loadRepoConfig(text))[0]!.message).toMatch(/too large/);
  });

  it("an alias bomb returns an issue quickly instead of expanding", () => {
    const started = Date.now();
    const result = load("alias-bomb.yml");
    expect(Date.now() - started).toBeLessThan(2000);
    expect(issuesOf(result)).toEqual([{ path: "", line: 3, message: expect.stringMatching(/too many YAML aliases/) }]);
  });

  it("pathologically deep nesting returns an issue instead of throwing", () => {
    const depth = 100_000;
    const result = loadRepoConfig(`x: ${"[".repeat(depth)}${"]".repeat(depth)}\n`);
    const issues = issuesOf(result);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.length).toBeLessThanOrEqual(10);
  });

  it("never throws on non-string input", () => {
    expect(issuesOf(loadRepoConfig(undefined as unknown as string))).toEqual([
      { path: "", line: null, message: "the config must be text" },
    ]);
  });

  it("`__proto__` keys are reported, not merged into the prototype", () => {
    const result = loadRepoConfig(withBase("__proto__: {polluted: true}\n"));
    expect(issuesOf(result)).toEqual([
      { path: "__proto__", line: 6, message: expect.stringMatching(/^unknown key `__proto__`/) },
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------

describe("formatConfigIssues", () => {
  it("renders a markdown bullet list with file, line and path", () => {
    const issues: ConfigIssue[] = [
      { path: "stacks[1].dir", line: 7, message: "must be a relative path without `..`" },
      { path: "", line: 3, message: "YAML syntax error: oops" },
      { path: "version", line: null, message: "is required" },
      { path: "", line: null, message: "the file is empty" },
    ];
    expect(formatConfigIssues(issues)).toBe(
      [
        "- `.github/agent.yml` line 7, `stacks[1].dir`: must be a relative path without `..`",
        "- `.github/agent.yml` line 3: YAML syntax error: oops",
        "- `.github/agent.yml`, `version`: is required",
        "- `.github/agent.yml`: the file is empty",
      ].join("\n"),
    );
    expect(formatConfigIssues(issues.slice(0, 1), "ci/agent.yml")).toBe(
      "- `ci/agent.yml` line 7, `stacks[1].dir`: must be a relative path without `..`",
    );
  });

  it("keeps user-controlled keys inside intact code spans", () => {
    const result = loadRepoConfig(withBase('"a`b @team\\nx": 1\n'));
    const text = formatConfigIssues(issuesOf(result));
    expect(text.split("\n")).toHaveLength(1);
    // Each backtick pair opens and closes a code span; an odd count would break the markdown.
    expect((text.match(/`/g) ?? []).length % 2).toBe(0);
    expect(text).toContain("`[\"a'b @team\\nx\"]`"); // the path is JSON-escaped
    expect(text).toContain("unknown key `a'b @team x`");
    // Outside code spans there is no user text (so no @mention can ping anyone).
    expect(text.replace(/`[^`]*`/g, "")).not.toContain("@team");
  });

  it("caps very long lists", () => {
    const issues = Array.from({ length: 60 }, (_, i) => ({ path: `p${i}`, line: i + 1, message: "m" }));
    const lines = formatConfigIssues(issues).split("\n");
    expect(lines).toHaveLength(51);
    expect(lines[50]).toBe("- … and 10 more");
  });
});

// ---------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

/**
 * A small JSON Schema (2020-12 subset) validator, just enough for the published schema. It
 * throws on keywords it does not understand so the schema cannot silently outgrow it.
 */
function validateJson(schema: Json, value: unknown, root: Json, at = "$"): string[] {
  const known = new Set([
    "$schema", "$id", "title", "description", "examples", "default", "$defs", "$ref", "type", "properties", "required",
    "additionalProperties", "items", "minItems", "maxItems", "minLength", "maxLength", "pattern", "minimum", "maximum",
    "anyOf", "const", "enum",
  ]);
  for (const k of Object.keys(schema)) if (!known.has(k)) throw new Error(`validator does not support keyword ${k}`);
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.replace(/^#\/\$defs\//, "");
    const target = (root.$defs as Record<string, Json>)[name];
    if (!target) throw new Error(`dangling $ref ${schema.$ref}`);
    return validateJson(target, value, root, at);
  }
  const errors: string[] = [];
  if (Array.isArray(schema.anyOf) && !schema.anyOf.some((s: Json) => validateJson(s, value, root, at).length === 0)) {
    errors.push(`${at}: matches no anyOf branch`);
  }
  if ("const" in schema && value !== schema.const) errors.push(`${at}: must equal ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${at}: not in enum`);
  switch (schema.type) {
    case undefined:
      break;
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return [...errors, `${at}: not an object`];
      const obj = value as Json;
      const props = (schema.properties ?? {}) as Record<string, Json>;
      for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) errors.push(`${at}.${r}: required`);
      for (const [k, v] of Object.entries(obj)) {
        if (props[k]) errors.push(...validateJson(props[k], v, root, `${at}.${k}`));
        else if (schema.additionalProperties === false) errors.push(`${at}.${k}: additional property`);
      }
      break;
    }
    case "array": {
      if (!Array.isArray(value)) return [...errors, `${at}: not an array`];
      if (typeof schema.minItems === "number" && value.length < schema.minItems) errors.push(`${at}: too few items`);
      if (typeof schema.maxItems === "number" && value.length > schema.maxItems) errors.push(`${at}: too many items`);
      if (schema.items) value.forEach((v, i) => errors.push(...validateJson(schema.items as Json, v, root, `${at}[${i}]`)));
      break;
    }
    case "string": {
      if (typeof value !== "string") return [...errors, `${at}: not a string`];
      if (typeof schema.minLength === "number" && value.length < schema.minLength) errors.push(`${at}: too short`);
      if (typeof schema.maxLength === "number" && value.length > schema.maxLength) errors.push(`${at}: too long`);
      if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) {
        errors.push(`${at}: does not match ${schema.pattern}`);
      }
      break;
    }
    case "number":
    case "integer": {
      if (typeof value !== "number" || (schema.type === "integer" && !Number.isInteger(value))) {
        return [...errors, `${at}: not a ${String(schema.type)}`];
      }
      if (typeof schema.minimum === "number" && value < schema.minimum) errors.push(`${at}: below minimum`);
      if (typeof schema.maximum === "number" && value > schema.maximum) errors.push(`${at}: above maximum`);
      break;
    }
    case "boolean": {
      if (typeof value !== "boolean") return [...errors, `${at}: not a boolean`];
      break;
    }
    default:
      throw new Error(`validator does not support type ${String(schema.type)}`);
  }
  return errors;
}

describe("JSON schema", () => {
  const schema = jsonSchema() as Json;

  it("has the canonical $id, a title and the 2020-12 dialect", () => {
    expect(schema.$id).toBe(CONFIG_SCHEMA_ID);
    expect(schema.$id).toBe("https://github.com/pr-infra-agent/schema/agent-config.schema.json");
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(typeof schema.title).toBe("string");
    expect(Object.keys(schema).slice(0, 3)).toEqual(["$schema", "$id", "title"]);
  });

  it("describes the file as written: required keys, strict objects, defaults", () => {
    expect(schema.required).toEqual(["version", "stacks"]);
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties as Json)).toEqual(["version", "default_stack", "stacks", "steps", "sandbox", "autoplan", "autoplan_max_stacks", "parallel_applies", "gate", "policy", "diagnose", "review_max_live"]);
    const stack = (schema.$defs as Record<string, Json>).stack!;
    expect(stack.required).toEqual(["name"]);
    expect(Object.keys(stack.properties as Json)).toEqual(["name", "depends_on", "environment", "drift", "review", "dir", "engine", "pulumi", "sandbox", "gate", "policy", "steps", "paths"]);
    expect((stack.properties as Record<string, Json>).dir!.default).toBe(".");
    expect((stack.properties as Record<string, Json>).engine).toMatchObject({ default: "command", enum: ["pulumi", "command"] });
    const steps = (schema.$defs as Record<string, Json>).steps!;
    expect(Object.keys(steps.properties as Json)).toEqual(["lint", "test", "preview", "deploy"]);
    expect(steps.additionalProperties).toBe(false);
  });

  it("the committed schema/agent-config.schema.json is up to date", () => {
    const committed = readFileSync(SCHEMA_FILE, "utf8");
    expect(committed).toBe(renderConfigSchema());
    expect(JSON.parse(committed)).toEqual(schema);
    expect(isSchemaFileCurrent()).toBe(true);
  });

  it("the --check logic notices a stale file", () => {
    const stale = join(mkdtempSync(join(tmpdir(), "agent-schema-")), "schema.json");
    writeFileSync(stale, renderConfigSchema().replace('"version"', '"versoin"'));
    expect(isSchemaFileCurrent(stale)).toBe(false);
    expect(isSchemaFileCurrent(join(tmpdir(), "does-not-exist", "schema.json"))).toBe(false);
  });

  it("rendering is stable (same bytes twice, 2-space indent, trailing newline)", () => {
    const a = renderConfigSchema();
    expect(renderConfigSchema()).toBe(a);
    expect(a.endsWith("}\n")).toBe(true);
    expect(a.split("\n")[1]).toMatch(/^ {2}"\$schema"/);
  });

  it("accepts examples/agent.yml and every valid fixture", () => {
    expect(validateJson(schema, parseYaml(readFileSync(EXAMPLE, "utf8")), schema)).toEqual([]);
    for (const file of ["valid-full.yml", "valid-minimal.yml", "valid-anchors.yml"]) {
      expect(validateJson(schema, parseYaml(fixture(file)), schema), file).toEqual([]);
    }
  });

  it("rejects what the runtime rejects structurally", () => {
    const errs = (file: string) => validateJson(schema, parseYaml(fixture(file)), schema);
    expect(errs("unknown-key.yml")).toEqual(["$.stacks[1].enigne: additional property"]);
    expect(errs("bad-stack-name.yml")).toEqual([expect.stringMatching(/^\$\.stacks\[1\]\.name: does not match/)]);
    expect(errs("dir-escape.yml")).toEqual([expect.stringMatching(/^\$\.stacks\[1\]\.dir: does not match/)]);
    expect(errs("dir-absolute.yml")).toHaveLength(2);
    expect(errs("missing-fields.yml")).toEqual(["$.version: required", "$.stacks: required"]);
    expect(errs("bad-steps.yml")).toEqual([
      "$.steps.lint: matches no anyOf branch",
      "$.steps.test: matches no anyOf branch",
      "$.steps.preview: matches no anyOf branch",
      "$.steps.deploy: matches no anyOf branch",
    ]);
  });
});
