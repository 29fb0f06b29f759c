import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { classifyPulumiFailure } from "../../src/connectors/pulumi/errors.js";
import { parsePreviewJson, PreviewParseError, splitUrn } from "../../src/connectors/pulumi/preview-json.js";
import { previewArgv, stackSelectArgv } from "../../src/connectors/pulumi/cli.js";
import { canonicalJson, commandPlanHash, pulumiPlanHash } from "../../src/plan/hash.js";
import { orderForDisplay } from "../../src/plan/types.js";

const fixture = (name: string) => readFileSync(new URL(`../fixtures/pulumi-output/${name}`, import.meta.url), "utf8");

describe("pulumi preview --json parsing", () => {
  const mixed = parsePreviewJson(fixture("preview-mixed.json"), "dev");

  it("folds a replacement's create-replacement / replace / delete-replaced into one replace, in engine order", () => {
    expect(mixed.resources.map((r) => `${r.op} ${r.name}`)).toEqual([
      "same shop-dev",
      "create assets",
      "create lambda-exec",
      "create api::logs",
      "update api",
      "replace orders-db",
      "delete legacy-logs",
      "delete old-jobs",
      "read default",
    ]);
    expect(mixed.summary).toEqual({ create: 3, update: 1, replace: 1, delete: 2, same: 1, read: 1 });
  });

  it("keeps type, URN, changed properties (top-level, deduplicated) and replace reasons", () => {
    const api = mixed.resources.find((r) => r.name === "api")!;
    expect(api.type).toBe("aws:lambda/function:Function");
    expect(api.changedProperties).toEqual(["environment", "memorySize"]);
    const db = mixed.resources.find((r) => r.name === "orders-db")!;
    expect(db.replaceReasons).toEqual(["engineVersion"]);
    expect(db.urn).toBe("urn:pulumi:dev::shop::aws:rds/instance:Instance::orders-db");
    // A child resource: the type is the last segment of the qualified type; `::` stays in the name.
    const logs = mixed.resources.find((r) => r.name === "api::logs")!;
    expect(logs.type).toBe("aws:cloudwatch/logGroup:LogGroup");
  });

  it("keeps warnings, errors and info diagnostics with their resource", () => {
    expect(mixed.diagnostics.map((d) => d.severity)).toEqual(["warning", "warning", "info"]);
    expect(mixed.diagnostics[0]!.urn).toContain("::assets");
    expect(mixed.diagnostics[0]!.message.endsWith("\n")).toBe(false);
    expect(mixed.diagnostics[1]!.urn).toBeNull();
  });

  it("a failing program still yields its error diagnostics", () => {
    const p = parsePreviewJson(fixture("preview-program-error.json"), "dev");
    expect(p.diagnostics.filter((d) => d.severity === "error")).toHaveLength(2);
    expect(p.summary.same).toBe(1);
  });

  it("an unknown step op from a newer CLI counts as a change and is reported, never as same", () => {
    const p = parsePreviewJson(JSON.stringify({ steps: [{ op: "teleport", urn: "urn:pulumi:dev::p::t:m:R::x" }] }), "dev");
    expect(p.resources[0]!.op).toBe("update");
    expect(p.diagnostics[0]).toMatchObject({ severity: "warning", message: expect.stringContaining("teleport") });
  });

  it("takes the counts from the CLI's changeSummary (unchanged resources are not listed without --show-sames)", () => {
    const p = parsePreviewJson(
      JSON.stringify({
        steps: [{ op: "create", urn: "urn:pulumi:dev::p::t:m:R::a" }],
        changeSummary: { create: 1, same: 41, replace: 2, "create-replacement": 2, "delete-replaced": 2, import: 1 },
      }),
      "dev",
    );
    expect(p.summary).toEqual({ create: 2, update: 0, replace: 2, delete: 0, same: 41, read: 0 });
  });

  it("strips the severity prefix the CLI writes into the message", () => {
    const p = parsePreviewJson(JSON.stringify({ diagnostics: [{ message: "warning: acl is deprecated\n", severity: "warning" }] }), "dev");
    expect(p.diagnostics[0]!.message).toBe("acl is deprecated");
  });

  it("an empty preview (no steps) is no changes; extra fields of newer CLIs are accepted", () => {
    const p = parsePreviewJson(JSON.stringify({ changeSummary: {}, maybeCorrupt: false, somethingNew: 1 }), "dev");
    expect(p.resources).toEqual([]);
  });

  it("rejects text that is not JSON or not a preview digest with a clear error", () => {
    expect(() => parsePreviewJson("Previewing update (dev):", "dev")).toThrow(PreviewParseError);
    expect(() => parsePreviewJson(JSON.stringify({ steps: "nope" }), "dev")).toThrow(/unexpected shape/);
  });

  it("splits URNs; a malformed URN keeps the whole string as the name", () => {
    expect(splitUrn("urn:pulumi:s::p::a:b:C$d:e:F::n::x")).toEqual({ type: "d:e:F", name: "n::x" });
    expect(splitUrn("nonsense")).toEqual({ type: "", name: "nonsense" });
  });

  it("orders destructive operations first for display", () => {
    expect(orderForDisplay(mixed.resources).map((r) => r.op).slice(0, 3)).toEqual(["delete", "delete", "replace"]);
  });
});

describe("pulumi failures get one clear message each", () => {
  const cases: [string, string, RegExp][] = [
    [
      "locked",
      "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.\n  file:///state/.pulumi/locks/organization/shop/dev/1.json: created by ci@host (pid 4) at 2026-11-20T10:00:00Z",
      /locked by another update.*pulumi cancel/,
    ],
    ["locked", "error: [409] Conflict: Another update is currently in progress.", /locked by another update/],
    [
      "pending-operations",
      "error: the current deployment has 2 resource(s) with pending operations:\n  * urn:pulumi:dev::shop::aws:s3/bucket:Bucket::a, interrupted while creating\n",
      /2 resource\(s\) with pending operations.*pulumi refresh/,
    ],
    ["missing-stack", "error: no stack named 'prod' found", /`prod` does not exist/],
    [
      "missing-passphrase",
      "error: getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables",
      /PULUMI_CONFIG_PASSPHRASE/,
    ],
    ["missing-token", "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions", /PULUMI_ACCESS_TOKEN.*PULUMI_BACKEND_URL/],
    ["no-project", "error: no Pulumi.yaml project file found (searching upwards from /workspace/x).", /Pulumi\.yaml/],
    ["plan-violation", "error: resource violates plan: urn:pulumi:dev::p::t::x: unexpected create", /no longer matches the previewed plan/],
    ["program-error", "error: preview failed", /the Pulumi program failed/],
    ["unknown", "warning: something\nerror: disk quota exceeded", /pulumi failed: disk quota exceeded/],
  ];
  it.each(cases)("%s", (kind, stderr, message) => {
    const f = classifyPulumiFailure(stderr, "dev");
    expect(f.kind).toBe(kind);
    expect(f.message).toMatch(message);
  });

  it("a program error quotes the first error diagnostic", () => {
    const f = classifyPulumiFailure("error: preview failed", "dev", ["TypeError: boom\n    at x"]);
    expect(f).toEqual({ kind: "program-error", message: "the Pulumi program failed: TypeError: boom" });
  });
});

describe("pulumi argv", () => {
  it("passes the stack as its own argument, never inside the shell text", () => {
    const hostile = "dev; rm -rf /";
    expect(stackSelectArgv(hostile).at(-1)).toBe(hostile);
    const argv = previewArgv(hostile, "/tmp/.agent-engine-0123");
    expect(argv[2]).not.toContain(hostile);
    expect(argv.at(-2)).toBe(hostile);
    expect(argv.at(-1)).toBe("/tmp/.agent-engine-0123");
    expect(argv[2]).toContain('--stack "$1" --json --save-plan "$2/plan.json"');
    // The output directory must not exist yet: nothing planted there before the engine runs is used.
    expect(argv[2]).toMatch(/^mkdir -m 0700 "\$2" &&/);
  });
});

describe("plan hash", () => {
  const plan = {
    manifest: { time: "2026-11-22T10:00:00Z", magic: "abc", version: "v3.270.0" },
    resourcePlans: { "urn:a": { goal: { type: "t", inputs: { b: 1, a: 2 } }, steps: ["create"], seed: "AAAA" } },
    config: {},
  };
  it("is stable across the volatile parts of a saved plan (time, seeds) and key order", () => {
    const again = {
      config: {},
      resourcePlans: { "urn:a": { seed: "BBBB", steps: ["create"], goal: { inputs: { a: 2, b: 1 }, type: "t" } } },
      manifest: { time: "2026-11-23T11:00:00Z", magic: "def", version: "v3.270.0" },
    };
    expect(pulumiPlanHash(JSON.stringify(plan))).toBe(pulumiPlanHash(JSON.stringify(again)));
    expect(pulumiPlanHash(JSON.stringify(plan))).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
  it("changes when the proposal changes (an input, a step)", () => {
    const base = pulumiPlanHash(JSON.stringify(plan));
    const input = structuredClone(plan);
    input.resourcePlans["urn:a"].goal.inputs.a = 3;
    const step = structuredClone(plan);
    step.resourcePlans["urn:a"].steps = ["create-replacement", "replace", "delete-replaced"];
    expect(pulumiPlanHash(JSON.stringify(input))).not.toBe(base);
    expect(pulumiPlanHash(JSON.stringify(step))).not.toBe(base);
  });
  it("command engine: the digest of the output, sensitive to every character", () => {
    expect(commandPlanHash("plan: 1 to add")).not.toBe(commandPlanHash("plan: 2 to add"));
    expect(commandPlanHash("x")).toBe(commandPlanHash("x"));
  });
  it("canonical JSON sorts keys at every level and keeps array order", () => {
    expect(canonicalJson({ b: [2, 1], a: { d: 1, c: null } })).toBe('{"a":{"c":null,"d":1},"b":[2,1]}');
  });
});
