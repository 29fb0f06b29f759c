/**
 * Plan policy (src/approval/plan-policy.ts): each rule on fixture plans. The plans are built the
 * way the app builds them: a stand-in fixture (test/fixtures/pulumi/*.json) is turned into the
 * `pulumi preview --json` digest the stand-in prints (no --show-sames, no replacement steps) and
 * parsed by the real parser; the CLI capture in test/fixtures/pulumi-output/ is parsed as is.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  applyPlanDecision,
  evaluatePlanPolicy,
  mergePlanPolicy,
  missingRequiredApprovers,
  parsePlanPolicy,
  PlanPolicySchema,
  type PlanDecision,
  type PlanPolicyConfig,
} from "../../src/approval/plan-policy.js";
import { parsePreviewJson } from "../../src/connectors/pulumi/preview-json.js";
import type { CommandPreview, PreviewOutcome, PulumiPreview } from "../../src/plan/types.js";

// ---------------------------------------------------------------------------------------------
// Fixture plans
// ---------------------------------------------------------------------------------------------

interface StandinResource {
  type: string;
  name: string;
  op: "create" | "update" | "replace" | "delete" | "same" | "read";
  diff?: string[];
  replaceReasons?: string[];
}

const PROJECT = "web-infra";
const urn = (type: string, name: string, stack = "prod") => `urn:pulumi:${stack}::${PROJECT}::${type}::${name}`;

/**
 * The digest the stand-in prints for a fixture on an existing stack (root stack `same`): steps
 * in engine order (registrations, then deletions last-registered first), sames left out, a
 * replacement as its logical `replace` step, and the change summary counting every resource.
 */
function digestOf(fixture: { resources?: StandinResource[] }, stack: string): string {
  const rootType = "pulumi:pulumi:Stack";
  const root = { op: "same", urn: urn(rootType, `${PROJECT}-${stack}`, stack), oldState: { type: rootType }, newState: { type: rootType }, detailedDiff: null };
  const resources = fixture.resources ?? [];
  const step = (r: StandinResource) => {
    const diff = (r.diff ?? []).map((d) => d.replace(/^[-+~]/, ""));
    const reasons = r.op === "replace" ? (r.replaceReasons ?? []) : [];
    return {
      op: r.op,
      urn: urn(r.type, r.name, stack),
      ...(r.op !== "create" && r.op !== "read" ? { oldState: { type: r.type } } : {}),
      ...(r.op !== "delete" ? { newState: { type: r.type } } : {}),
      ...(r.op === "update" || r.op === "replace" ? { diffReasons: [...new Set([...diff, ...reasons])] } : {}),
      ...(reasons.length ? { replaceReasons: reasons } : {}),
      detailedDiff: r.op === "update" || r.op === "replace" ? Object.fromEntries(diff.map((k) => [k, { kind: "update" }])) : null,
    };
  };
  const steps = [
    root,
    ...resources.filter((r) => r.op !== "delete" && r.op !== "same").map(step),
    ...[...resources].reverse().filter((r) => r.op === "delete").map(step),
  ];
  const changeSummary: Record<string, number> = { same: 1 };
  for (const r of resources) changeSummary[r.op] = (changeSummary[r.op] ?? 0) + 1;
  return JSON.stringify({ steps, changeSummary });
}

function fixturePlan(name: string, stack = "prod"): PulumiPreview {
  const raw = JSON.parse(readFileSync(new URL(`../fixtures/pulumi/${name}.json`, import.meta.url), "utf8")) as { resources?: StandinResource[] };
  return parsePreviewJson(digestOf(raw, stack), stack);
}

/** A real `pulumi preview --json` capture (stack dev, project shop). */
function cliPlan(): PulumiPreview {
  return parsePreviewJson(readFileSync(new URL("../fixtures/pulumi-output/preview-mixed.json", import.meta.url), "utf8"), "dev");
}

const commandPlan: CommandPreview = { engine: "command", output: "Plan: 2 to add, 0 to change, 1 to destroy.", truncated: false };

/** protected.json: replaces bucket assets, creates ec2 web-1 and web-2, updates bucket logs, deletes rds orders-db and elasticache sessions. */
const PROTECTED = fixturePlan("protected");
const ORDERS_DB = urn("aws:rds/instance:Instance", "orders-db");
const SESSIONS = urn("aws:elasticache/cluster:Cluster", "sessions");
const ASSETS = urn("aws:s3/bucket:Bucket", "assets");
const WEB_1 = urn("aws:ec2/instance:Instance", "web-1");
const WEB_2 = urn("aws:ec2/instance:Instance", "web-2");

/** creates.json (stack dev): creates bucket logs, iam role app-role, bucket policy logs-policy. */
const CREATES = fixturePlan("creates", "dev");

function evaluate(policy: PlanPolicyConfig, plan: PreviewOutcome | null = PROTECTED): PlanDecision {
  // Every policy in these tests is one a server or repository could write.
  expect(PlanPolicySchema.safeParse(policy).error?.issues ?? []).toEqual([]);
  return evaluatePlanPolicy(policy, plan);
}

describe("fixture plans", () => {
  it("parse into the resources the rules read", () => {
    expect(PROTECTED.resources.map((r) => `${r.op} ${r.urn}`)).toEqual([
      `same ${urn("pulumi:pulumi:Stack", "web-infra-prod")}`,
      `replace ${ASSETS}`,
      `create ${WEB_1}`,
      `create ${WEB_2}`,
      `update ${urn("aws:s3/bucket:Bucket", "logs")}`,
      `delete ${SESSIONS}`,
      `delete ${ORDERS_DB}`,
    ]);
    expect(PROTECTED.summary).toMatchObject({ create: 2, update: 1, replace: 1, delete: 2, same: 2 });
    expect(CREATES.summary).toMatchObject({ create: 3, delete: 0 });
  });
});

// ---------------------------------------------------------------------------------------------
// protect
// ---------------------------------------------------------------------------------------------

describe("protect", () => {
  it("denies deleting a protected type, naming the URN", () => {
    const d = evaluate({ protect: [{ types: ["aws:rds/instance:Instance"] }] });
    expect(d.decision).toBe("DENY");
    expect(d.findings).toEqual([
      { rule: "protect[0]", decision: "DENY", message: expect.stringContaining(`deletes ${ORDERS_DB}`), resources: [ORDERS_DB] },
    ]);
    expect(d.findings[0]!.message).toBe(`protect[0] denies this deploy: the plan deletes ${ORDERS_DB}, a protected resource.`);
    expect(d.extraApprovals).toBe(0);
    expect(d.requiredApprovers).toEqual({ users: [], teams: [] });
    expect(d.costChangeUsd).toBeNull(); // no budget configured
  });

  it("asks the named approvers when a protected URN is replaced", () => {
    const d = evaluate({
      protect: [{ urns: ["urn:pulumi:prod::web-infra::*::assets"], decision: "needs_approval", approvers: { users: ["carol"], teams: ["platform"] } }],
    });
    expect(d.decision).toBe("NEEDS_APPROVAL");
    expect(d.extraApprovals).toBe(1);
    expect(d.requiredApprovers).toEqual({ users: ["carol"], teams: ["platform"] });
    expect(d.findings).toHaveLength(1);
    expect(d.findings[0]).toMatchObject({ rule: "protect[0]", decision: "NEEDS_APPROVAL", resources: [ASSETS], extraApprovals: 1, approvers: { users: ["carol"], teams: ["platform"] } });
    expect(d.findings[0]!.message).toBe(
      `protect[0] needs 1 more approval, including approval by @carol and a member of team platform: the plan replaces ${ASSETS}, a protected resource.`,
    );
  });

  it("`on: [delete]` ignores a replacement (and updates never fire)", () => {
    expect(evaluate({ protect: [{ types: ["aws:s3/bucket:Bucket"], on: ["delete"] }] })).toMatchObject({ decision: "ALLOW", findings: [] });
    const onReplace = evaluate({ protect: [{ types: ["aws:s3/bucket:Bucket"], on: ["replace"] }] });
    // logs is an update of the same type: not named.
    expect(onReplace).toMatchObject({ decision: "DENY", findings: [{ rule: "protect[0]", resources: [ASSETS] }] });
  });

  it("matches type globs and names every hit in one finding", () => {
    const d = evaluate({ protect: [{ types: ["aws:rds/*", "aws:elasticache/*"], decision: "needs_approval", extra_approvals: 2 }] });
    expect(d).toMatchObject({ decision: "NEEDS_APPROVAL", extraApprovals: 2, requiredApprovers: { users: [], teams: [] } });
    expect(d.findings[0]!.resources).toEqual([SESSIONS, ORDERS_DB]);
    expect(d.findings[0]!.message).toBe(`protect[0] needs 2 more approvals: the plan deletes ${SESSIONS} and ${ORDERS_DB}, protected resources.`);
  });

  it("needs both `types` and `urns` to match when an entry lists both", () => {
    const staging = { types: ["aws:rds/instance:Instance"], urns: ["urn:pulumi:staging::*"] };
    expect(evaluate({ protect: [staging] }).decision).toBe("ALLOW");
    expect(evaluate({ protect: [{ ...staging, urns: ["urn:pulumi:prod::*"] }] }).decision).toBe("DENY");
  });

  it("fires every matching entry; the most severe decides", () => {
    const d = evaluate({
      protect: [
        { types: ["aws:rds/*"], decision: "needs_approval", approvers: { teams: ["dba"] } },
        { urns: ["*::orders-db"] },
        { types: ["aws:sqs/*"] },
      ],
    });
    expect(d.decision).toBe("DENY");
    expect(d.findings.map((f) => `${f.rule} ${f.decision}`)).toEqual(["protect[0] NEEDS_APPROVAL", "protect[1] DENY"]);
    // The needs-approval part is still reported for the gate's display.
    expect(d.requiredApprovers).toEqual({ users: [], teams: ["dba"] });
  });

  it("uses an entry's name as the rule, and reads the real CLI output (component children included)", () => {
    const plan = cliPlan();
    const d = evaluate({ protect: [{ name: "no-bucket-loss", types: ["aws:s3/*"] }, { types: ["aws:rds/instance:Instance"], on: ["delete"] }] }, plan);
    expect(d.findings).toEqual([
      {
        rule: "no-bucket-loss",
        decision: "DENY",
        message: "no-bucket-loss denies this deploy: the plan deletes urn:pulumi:dev::shop::aws:s3/bucket:Bucket::legacy-logs, a protected resource.",
        resources: ["urn:pulumi:dev::shop::aws:s3/bucket:Bucket::legacy-logs"],
      },
    ]);
    const child = evaluate({ protect: [{ urns: ["*$aws:cloudwatch/logGroup:LogGroup::*"], on: ["delete", "replace"] }] }, plan);
    expect(child.decision).toBe("ALLOW"); // the log group is created, not deleted
  });
});

// ---------------------------------------------------------------------------------------------
// max_deletes / max_replaces
// ---------------------------------------------------------------------------------------------

describe("max_deletes and max_replaces", () => {
  it("allows exactly the maximum", () => {
    expect(evaluate({ max_deletes: 2, max_replaces: 1 })).toMatchObject({ decision: "ALLOW", findings: [], extraApprovals: 0 });
  });

  it("needs one more approval over max_deletes, naming the deletes", () => {
    const d = evaluate({ max_deletes: 1 });
    expect(d).toMatchObject({ decision: "NEEDS_APPROVAL", extraApprovals: 1 });
    expect(d.findings).toEqual([
      {
        rule: "max_deletes",
        decision: "NEEDS_APPROVAL",
        message: `max_deletes needs 1 more approval: the plan has 2 deletes (max_deletes is 1): ${SESSIONS}, ${ORDERS_DB}.`,
        resources: [SESSIONS, ORDERS_DB],
        extraApprovals: 1,
      },
    ]);
  });

  it("needs one more approval over max_replaces; replacements are not deletes", () => {
    const d = evaluate({ max_replaces: 0, max_deletes: 2 });
    expect(d.findings).toEqual([
      expect.objectContaining({ rule: "max_replaces", decision: "NEEDS_APPROVAL", resources: [ASSETS], message: expect.stringContaining("1 replacement (max_replaces is 0)") }),
    ]);
  });

  it("denies over a maximum with max_changes_decision: deny", () => {
    const d = evaluate({ max_deletes: 1, max_replaces: 0, max_changes_decision: "deny" });
    expect(d.decision).toBe("DENY");
    expect(d.findings.map((f) => `${f.rule} ${f.decision}`)).toEqual(["max_deletes DENY", "max_replaces DENY"]);
    expect(d.findings[0]!.message).toBe(`max_deletes denies this deploy: the plan has 2 deletes (max_deletes is 1): ${SESSIONS}, ${ORDERS_DB}.`);
    expect(d.extraApprovals).toBe(0);
  });

  it("counts the CLI's change summary when it reports more than the listed steps", () => {
    const plan: PulumiPreview = { ...PROTECTED, summary: { ...PROTECTED.summary, delete: 5 } };
    expect(evaluate({ max_deletes: 4 }, plan).findings[0]!.message).toContain("5 deletes (max_deletes is 4)");
    expect(evaluate({ max_deletes: 5 }, plan).decision).toBe("ALLOW");
  });
});

// ---------------------------------------------------------------------------------------------
// budget
// ---------------------------------------------------------------------------------------------

describe("budget", () => {
  // creates.json: bucket (aws:s3/*: 50) + role (exact: 0) + bucket policy (aws:s3/*: 50) = $100 a month.
  const HINTS = { "aws:s3/*": 50, "aws:iam/role:Role": 0, "*": 10 };
  const budget = (current: number, extra: Partial<NonNullable<PlanPolicyConfig["budget"]>> = {}): PlanPolicyConfig => ({
    budget: { monthly_usd: 1000, current_monthly_usd: current, cost_hints: HINTS, ...extra },
  });

  it("allows under 80% of the budget", () => {
    expect(evaluate(budget(600), CREATES)).toMatchObject({ decision: "ALLOW", findings: [], costChangeUsd: 100, notes: [] });
  });

  it("allows exactly at 80%", () => {
    expect(evaluate(budget(700), CREATES)).toMatchObject({ decision: "ALLOW", findings: [], costChangeUsd: 100 });
  });

  it("needs one more approval over 80%, with the figures", () => {
    const d = evaluate(budget(750), CREATES);
    expect(d).toMatchObject({ decision: "NEEDS_APPROVAL", extraApprovals: 1, costChangeUsd: 100 });
    expect(d.findings).toEqual([
      {
        rule: "budget",
        decision: "NEEDS_APPROVAL",
        message:
          "budget needs 1 more approval: the plan adds about $100 a month, taking the stack from $750 to $850, 85% of its $1,000 monthly budget (over the 80% threshold).",
        extraApprovals: 1,
        resources: [urn("aws:s3/bucket:Bucket", "logs", "dev"), urn("aws:s3/bucketPolicy:BucketPolicy", "logs-policy", "dev")],
      },
    ]);
  });

  it("over 100%: denies with deny_over_budget, else needs approval", () => {
    const denied = evaluate(budget(950, { deny_over_budget: true }), CREATES);
    expect(denied.decision).toBe("DENY");
    expect(denied.findings[0]!.message).toBe(
      "budget denies this deploy: the plan adds about $100 a month, taking the stack from $950 to $1,050, 105% of its $1,000 monthly budget (over budget).",
    );
    const held = evaluate(budget(950), CREATES);
    expect(held).toMatchObject({ decision: "NEEDS_APPROVAL", extraApprovals: 1 });
    expect(held.findings[0]!.message).toContain("(over budget)");
    // deny_over_budget only denies over 100%: between 80% and 100% it still asks for approval.
    expect(evaluate(budget(750, { deny_over_budget: true }), CREATES).decision).toBe("NEEDS_APPROVAL");
  });

  it("honours threshold and extra_approvals", () => {
    // $450 + $100 = 55% > 50%; $400 + $100 = 50% is at the threshold.
    expect(evaluate(budget(450, { threshold: 0.5 }), CREATES)).toMatchObject({ decision: "NEEDS_APPROVAL", extraApprovals: 1 });
    expect(evaluate(budget(450, { threshold: 0.5, extra_approvals: 2 }), CREATES)).toMatchObject({ decision: "NEEDS_APPROVAL", extraApprovals: 2 });
    expect(evaluate(budget(450, { threshold: 0.5 }), CREATES).findings[0]!.message).toContain("55% of its $1,000 monthly budget (over the 50% threshold)");
    expect(evaluate(budget(400, { threshold: 0.5 }), CREATES).decision).toBe("ALLOW");
  });

  it("prices by hint: exact type, then the most literal glob, then `*`; unpriced types are noted", () => {
    // Exact beats glob: the bucket costs 200 (exact), the bucket policy 50 (aws:s3/*), the role 10 (`*`).
    expect(evaluate({ budget: { monthly_usd: 1000, cost_hints: { "*": 10, "aws:s3/*": 50, "aws:s3/bucket:Bucket": 200 } } }, CREATES).costChangeUsd).toBe(260);
    // A longer glob beats a shorter one whatever the order.
    expect(evaluate({ budget: { monthly_usd: 1000, cost_hints: { "aws:*": 1, "aws:s3/bucketPolicy:*": 7 } } }, CREATES).costChangeUsd).toBe(9);
    const partial = evaluate({ budget: { monthly_usd: 1000, cost_hints: { "aws:s3/*": 50.25 } } }, CREATES);
    expect(partial.costChangeUsd).toBe(100.5);
    expect(partial.notes).toEqual(["No cost hint for type aws:iam/role:Role; counted as $0 a month."]);
  });

  it("subtracts deletes, ignores replacements and updates, and never holds up a saving", () => {
    // protected.json: +2 ec2 (70 each), −rds (250), −elasticache (40); the bucket replace and update cost nothing.
    const hints = { "aws:ec2/instance:Instance": 70, "aws:rds/instance:Instance": 250, "aws:elasticache/*": 40, "aws:s3/bucket:Bucket": 5000 };
    const d = evaluate({ budget: { monthly_usd: 1000, current_monthly_usd: 990, cost_hints: hints } });
    expect(d).toMatchObject({ decision: "ALLOW", findings: [], costChangeUsd: -150 });
    // Without the deletes' savings the same creates would cross the threshold.
    const creates = evaluate({ budget: { monthly_usd: 1000, current_monthly_usd: 700, cost_hints: { "aws:ec2/instance:Instance": 70 } } });
    expect(creates).toMatchObject({ decision: "NEEDS_APPROVAL", costChangeUsd: 140 });
    expect(creates.findings[0]!.resources).toEqual([WEB_1, WEB_2]);
  });
});

// ---------------------------------------------------------------------------------------------
// Several rules
// ---------------------------------------------------------------------------------------------

describe("several findings", () => {
  const policy: PlanPolicyConfig = {
    protect: [{ types: ["aws:rds/*"], decision: "needs_approval", approvers: { teams: ["dba"], users: ["@Dana"] } }],
    max_deletes: 1,
    budget: { monthly_usd: 1000, current_monthly_usd: 700, cost_hints: { "aws:ec2/*": 70 }, extra_approvals: 2 },
  };

  it("needs approval: the largest extra count, the union of the named approvers", () => {
    const d = evaluate(policy);
    expect(d.decision).toBe("NEEDS_APPROVAL");
    expect(d.findings.map((f) => f.rule)).toEqual(["protect[0]", "max_deletes", "budget"]);
    expect(d.extraApprovals).toBe(2);
    expect(d.requiredApprovers).toEqual({ users: ["Dana"], teams: ["dba"] });
  });

  it("is denied when any finding denies", () => {
    const d = evaluate({ ...policy, protect: [...policy.protect!, { types: ["aws:elasticache/*"] }] });
    expect(d.decision).toBe("DENY");
    expect(d.findings.map((f) => `${f.rule} ${f.decision}`)).toEqual(["protect[0] NEEDS_APPROVAL", "protect[1] DENY", "max_deletes NEEDS_APPROVAL", "budget NEEDS_APPROVAL"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Merge: a stack override can only make the server's policy stricter
// ---------------------------------------------------------------------------------------------

describe("mergePlanPolicy", () => {
  const server: PlanPolicyConfig = {
    protect: [{ types: ["aws:rds/instance:Instance"] }],
    max_deletes: 2,
    budget: { monthly_usd: 1000, current_monthly_usd: 700, cost_hints: { "aws:ec2/instance:Instance": 70 } },
  };

  it("keeps the server's policy without an override, and the override's without a server policy", () => {
    expect(mergePlanPolicy(server, undefined)).toEqual(server);
    expect(mergePlanPolicy(undefined, { max_deletes: 3 })).toEqual({ max_deletes: 3 });
    expect(mergePlanPolicy(undefined, { protect: [{ types: ["a:b:C"] }] })).toEqual({ protect: [{ types: ["a:b:C"], name: "stack protect[0]" }] });
    expect(mergePlanPolicy(undefined, undefined)).toEqual({});
  });

  it("lets the override add a protection (named after its source)", () => {
    const merged = mergePlanPolicy(server, { protect: [{ types: ["aws:elasticache/*"], decision: "needs_approval" }] });
    expect(merged.protect).toEqual([{ types: ["aws:rds/instance:Instance"] }, { types: ["aws:elasticache/*"], decision: "needs_approval", name: "stack protect[0]" }]);
    const d = evaluatePlanPolicy({ protect: merged.protect }, PROTECTED);
    expect(d.findings.map((f) => `${f.rule} ${f.decision}`)).toEqual(["protect[0] DENY", "stack protect[0] NEEDS_APPROVAL"]);
  });

  it("cannot remove or weaken a protection", () => {
    const removed = mergePlanPolicy(server, { protect: [] });
    expect(removed.protect).toEqual(server.protect);
    // Same resource, milder decision: both fire, the server's DENY stands.
    const weakened = mergePlanPolicy(server, { protect: [{ types: ["aws:rds/instance:Instance"], decision: "needs_approval" }] });
    expect(evaluatePlanPolicy(weakened, PROTECTED).decision).toBe("DENY");
  });

  it("lets the override lower max_deletes but not raise it", () => {
    expect(mergePlanPolicy(server, { max_deletes: 1 }).max_deletes).toBe(1);
    expect(mergePlanPolicy(server, { max_deletes: 5 }).max_deletes).toBe(2);
    expect(mergePlanPolicy({ max_replaces: 3 }, { max_replaces: 9 }).max_replaces).toBe(3);
    expect(mergePlanPolicy({ max_replaces: 3 }, { max_replaces: 0 }).max_replaces).toBe(0);
  });

  it("keeps the more severe max_changes_decision", () => {
    expect(mergePlanPolicy({ max_changes_decision: "deny" }, { max_changes_decision: "needs_approval" }).max_changes_decision).toBe("deny");
    expect(mergePlanPolicy({ max_deletes: 1 }, { max_changes_decision: "deny" })).toEqual({ max_deletes: 1, max_changes_decision: "deny" });
  });

  it("cannot raise the budget or the threshold, nor lower the current cost or the extra approvals", () => {
    const relaxed = mergePlanPolicy(
      { budget: { ...server.budget!, threshold: 0.7, extra_approvals: 2, deny_over_budget: true } },
      { budget: { monthly_usd: 5000, threshold: 0.95, current_monthly_usd: 0, extra_approvals: 1, deny_over_budget: false } },
    );
    expect(relaxed.budget).toEqual({ monthly_usd: 1000, current_monthly_usd: 700, threshold: 0.7, extra_approvals: 2, deny_over_budget: true, cost_hints: server.budget!.cost_hints });
    // An override threshold above the server's default does not replace the default.
    expect(mergePlanPolicy(server, { budget: { monthly_usd: 1000, threshold: 0.9 } }).budget!.threshold).toBe(0.8);
  });

  it("lets the override tighten the budget", () => {
    const tightened = mergePlanPolicy(server, { budget: { monthly_usd: 800, threshold: 0.5, current_monthly_usd: 750, extra_approvals: 3, deny_over_budget: true } });
    expect(tightened.budget).toEqual({ monthly_usd: 800, current_monthly_usd: 750, threshold: 0.5, extra_approvals: 3, deny_over_budget: true, cost_hints: server.budget!.cost_hints });
    // And add one where the server has none.
    expect(mergePlanPolicy({ max_deletes: 1 }, { budget: { monthly_usd: 10 } })).toEqual({ max_deletes: 1, budget: { monthly_usd: 10 } });
  });

  it("keeps the server's cost hints: a repository cannot price its deletes up to offset its creates", () => {
    const override: PlanPolicyConfig = { budget: { monthly_usd: 1000, cost_hints: { "aws:rds/instance:Instance": 100_000 } } };
    const merged = mergePlanPolicy(server, override);
    expect(merged.budget!.cost_hints).toEqual(server.budget!.cost_hints);
    expect(evaluatePlanPolicy(merged, PROTECTED)).toMatchObject({ costChangeUsd: 140 });
    // Hints from the override count when the server prices nothing.
    expect(mergePlanPolicy({ budget: { monthly_usd: 1000 } }, override).budget!.cost_hints).toEqual(override.budget!.cost_hints);
  });

  it("never yields a milder decision than the server's policy alone", () => {
    const servers: PlanPolicyConfig[] = [
      server,
      { max_deletes: 1, max_changes_decision: "deny" },
      { protect: [{ urns: ["*::assets"], decision: "needs_approval", approvers: { teams: ["web"] } }], budget: { monthly_usd: 200, cost_hints: { "aws:ec2/*": 70 } } },
    ];
    const overrides: PlanPolicyConfig[] = [
      {},
      { protect: [] },
      { max_deletes: 100, max_replaces: 100, max_changes_decision: "needs_approval" },
      { protect: [{ types: ["*"], on: ["delete"], decision: "needs_approval", extra_approvals: 0, approvers: { users: ["eve"] } }] },
      { budget: { monthly_usd: 1_000_000, threshold: 1, current_monthly_usd: 0, cost_hints: { "*": 0 }, extra_approvals: 1, deny_over_budget: false } },
    ];
    const rank = { ALLOW: 0, NEEDS_APPROVAL: 1, DENY: 2 } as const;
    for (const s of servers) {
      for (const plan of [PROTECTED, CREATES, cliPlan()]) {
        const alone = evaluatePlanPolicy(s, plan);
        for (const o of overrides) {
          const merged = evaluatePlanPolicy(mergePlanPolicy(s, o), plan);
          expect(rank[merged.decision]).toBeGreaterThanOrEqual(rank[alone.decision]);
          expect(merged.extraApprovals).toBeGreaterThanOrEqual(alone.extraApprovals);
          expect(merged.requiredApprovers.teams).toEqual(expect.arrayContaining(alone.requiredApprovers.teams));
        }
      }
    }
  });

  it("mutates neither input", () => {
    const s = structuredClone(server);
    const o: PlanPolicyConfig = { protect: [{ types: ["x:y:Z"], approvers: undefined }], budget: { monthly_usd: 1, cost_hints: { a: 1 } } };
    const oCopy = structuredClone(o);
    const merged = mergePlanPolicy(s, o);
    merged.protect![0]!.types!.push("changed");
    merged.budget!.cost_hints!["changed"] = 1;
    expect(s).toEqual(server);
    expect(o).toEqual(oCopy);
  });
});

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

describe("PlanPolicySchema", () => {
  it("accepts the documented block", () => {
    const yaml = `
protect:
  - types: ["aws:rds/instance:Instance", "aws:s3/bucket:Bucket"]
    urns: ["urn:pulumi:prod::shop::*::orders-db"]
    on: [delete, replace]
    decision: needs_approval
    approvers: { users: [alice], teams: [dba, "octo-org/platform"] }
    extra_approvals: 1
  - types: ["aws:kms/*"]
max_deletes: 5
max_replaces: 3
max_changes_decision: needs_approval
budget:
  monthly_usd: 1000
  current_monthly_usd: 700
  threshold: 0.8
  cost_hints: { "aws:ec2/instance:Instance": 70, "aws:rds/instance:Instance": 250, "*": 0 }
  extra_approvals: 1
  deny_over_budget: true
`;
    const parsed = parsePlanPolicy(parseYaml(yaml));
    expect(parsed.ok).toBe(true);
    expect(parsePlanPolicy(undefined)).toEqual({ ok: true, policy: {} });
  });

  it("rejects bad input, naming the path", () => {
    const issues = (raw: unknown) => {
      const r = parsePlanPolicy(raw);
      return r.ok ? [] : r.issues;
    };
    expect(issues({ protect: [{ types: ["a:b:C"], decision: "block" }] })).toEqual([{ path: "protect[0].decision", message: "must be `deny` or `needs_approval`" }]);
    expect(issues({ protect: [{ on: ["delete"] }] })).toEqual([{ path: "protect[0]", message: "must list `types`, `urns` or both" }]);
    expect(issues({ protect: [{ types: ["a:b:C"], approvers: { users: ["alice"] } }] })).toEqual([
      { path: "protect[0].approvers", message: "is only allowed with `decision: needs_approval`" },
    ]);
    expect(issues({ protect: [{ types: ["a:b:C"], decision: "needs_approval", extra_approvals: 0 }] })).toEqual([
      { path: "protect[0].extra_approvals", message: "0 extra approvals needs named `approvers` (otherwise the rule requires nothing)" },
    ]);
    expect(issues({ protect: [{ types: ["a:b:C"], decision: "needs_approval", approvers: {} }] })).toEqual([
      { path: "protect[0].approvers", message: "must name at least one user or team" },
    ]);
    expect(issues({ protect: [{ urns: [""], on: ["update"] }] })).toEqual([
      { path: "protect[0].urns[0]", message: "must not be empty" },
      { path: "protect[0].on[0]", message: "must be `delete` or `replace`" },
    ]);
    expect(issues({ max_deletes: -1, max_replaces: 1.5 })).toEqual([
      { path: "max_deletes", message: "must be a whole number ≥ 0" },
      { path: "max_replaces", message: "must be a whole number ≥ 0" },
    ]);
    expect(issues({ budget: { monthly_usd: 0, threshold: 1.5, cost_hints: { "aws:ec2/*": -3 } } })).toEqual([
      { path: "budget.monthly_usd", message: "must be a positive number of US dollars" },
      { path: "budget.threshold", message: "must be a fraction of the budget, greater than 0 and at most 1 (0.8 = 80%)" },
      { path: "budget.cost_hints.aws:ec2/*", message: "must be a monthly cost in US dollars ≥ 0" },
    ]);
    expect(issues({ budget: { monthly_usd: 100, tag: "cost-usd-month" } })).toEqual([
      { path: "budget.tag", message: "is not supported: the stored plan does not carry resource inputs or tags; price resource types with `cost_hints`" },
    ]);
    const unknown = issues({ max_delete: 5 });
    expect(unknown).toHaveLength(1);
    expect(unknown[0]!.message).toContain("max_delete");
    // The schema itself reports zod paths.
    expect(PlanPolicySchema.safeParse({ protect: [{ types: ["a:b:C"], decision: "block" }] }).error?.issues[0]?.path).toEqual(["protect", 0, "decision"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Untyped plans and odd input
// ---------------------------------------------------------------------------------------------

describe("untyped and odd plans", () => {
  const policy: PlanPolicyConfig = { protect: [{ types: ["*"] }], max_deletes: 0, budget: { monthly_usd: 1, cost_hints: { "*": 1000 } } };

  it("allows a command-engine plan, with a note that the rules need a typed plan", () => {
    expect(evaluate(policy, commandPlan)).toEqual({
      decision: "ALLOW",
      findings: [],
      extraApprovals: 0,
      requiredApprovers: { users: [], teams: [] },
      costChangeUsd: null,
      notes: ["Plan policy not evaluated: the plan is plain text (command engine); its rules need a typed plan (pulumi engine)."],
    });
    expect(evaluate(policy, null)).toMatchObject({ decision: "ALLOW", costChangeUsd: null, notes: ["Plan policy not evaluated: there is no preview to check."] });
  });

  it("allows anything without rules, and says nothing", () => {
    for (const plan of [PROTECTED, commandPlan, null]) {
      expect(evaluatePlanPolicy({}, plan)).toEqual({ decision: "ALLOW", findings: [], extraApprovals: 0, requiredApprovers: { users: [], teams: [] }, costChangeUsd: null, notes: [] });
    }
    expect(evaluatePlanPolicy(undefined, PROTECTED).decision).toBe("ALLOW");
  });

  it("asks for an approval when a typed plan cannot be read, and still checks what can be", () => {
    const broken = { engine: "pulumi", stack: "prod", resources: "nope" } as unknown as PulumiPreview;
    expect(evaluatePlanPolicy(policy, broken)).toMatchObject({ decision: "NEEDS_APPROVAL", extraApprovals: 1, findings: [{ rule: "plan" }] });
    const partial = { ...PROTECTED, resources: [null, { op: "frobnicate", urn: "x" }, ...PROTECTED.resources], summary: undefined } as unknown as PulumiPreview;
    const d = evaluatePlanPolicy({ protect: [{ types: ["aws:rds/*"] }] }, partial);
    expect(d.decision).toBe("DENY");
    expect(d.findings.map((f) => f.rule)).toEqual(["plan", "protect[0]"]);
    expect(d.findings[0]!.message).toBe("2 resource entries of the stored plan could not be read; the plan policy could only check what could be read, so one more approval is required.");
  });

  it("never throws on a policy that skipped the schema", () => {
    const odd = [
      null,
      "deny",
      { protect: "everything", max_deletes: "3", budget: { monthly_usd: "lots" } },
      { protect: [null, { types: [] }, { types: [42] }, { urns: ["*"], on: "delete", decision: "maybe" }], max_replaces: -1 },
      { budget: { monthly_usd: Number.NaN, cost_hints: { "*": Number.POSITIVE_INFINITY } } },
    ];
    for (const p of odd) {
      expect(() => evaluatePlanPolicy(p as unknown as PlanPolicyConfig, PROTECTED)).not.toThrow();
    }
    // `on` that is not a list falls back to delete and replace; an unknown decision to deny.
    expect(evaluatePlanPolicy(odd[3] as unknown as PlanPolicyConfig, PROTECTED)).toMatchObject({ decision: "DENY", findings: [{ rule: "protect[3]", resources: [ASSETS, SESSIONS, ORDERS_DB] }] });
  });
});

// ---------------------------------------------------------------------------------------------
// Folding the decision into the gate
// ---------------------------------------------------------------------------------------------

describe("applyPlanDecision", () => {
  const gate = { requiredApprovals: 1, approvers: { users: ["alice"], teams: ["platform"] } };

  it("leaves the gate as it is on ALLOW", () => {
    expect(applyPlanDecision(gate, evaluate({}))).toEqual({ denied: false, requiredApprovals: 1, requiredApprovers: { users: [], teams: [] }, approvers: gate.approvers });
  });

  it("adds the extra approvals and the named approvers on NEEDS_APPROVAL", () => {
    const d = evaluate({ protect: [{ types: ["aws:rds/*"], decision: "needs_approval", extra_approvals: 1, approvers: { users: ["Carol"], teams: ["dba"] } }] });
    expect(applyPlanDecision(gate, d)).toEqual({
      denied: false,
      requiredApprovals: 2,
      requiredApprovers: { users: ["Carol"], teams: ["dba"] },
      approvers: { users: ["alice", "Carol"], teams: ["platform", "dba"] },
    });
    // Anyone with write access stays anyone with write access.
    expect(applyPlanDecision({ requiredApprovals: 0, approvers: null }, d)).toMatchObject({ requiredApprovals: 1, approvers: null });
  });

  it("requires at least one approval per named user", () => {
    const d = evaluate({ protect: [{ types: ["aws:rds/*"], decision: "needs_approval", extra_approvals: 0, approvers: { users: ["carol", "dave", "erin"] } }] });
    expect(applyPlanDecision({ requiredApprovals: 1, approvers: null }, d).requiredApprovals).toBe(3);
  });

  it("reports DENY as denied whatever the approvals", () => {
    const d = evaluate({ protect: [{ types: ["aws:rds/*"] }] });
    expect(applyPlanDecision(gate, d)).toMatchObject({ denied: true, requiredApprovals: 1 });
    expect(applyPlanDecision({ requiredApprovals: Number.NaN, approvers: null }, d).requiredApprovals).toBe(0);
  });

  it("tells which named approvers are still missing", () => {
    const required = { users: ["Carol", "dave"], teams: ["octo-org/dba", "security"] };
    expect(missingRequiredApprovers(required, ["carol", "zed"], { dba: ["zed"], security: ["yan"] })).toEqual({ users: ["dave"], teams: ["security"] });
    expect(missingRequiredApprovers(required, [], {})).toEqual(required);
  });
});
