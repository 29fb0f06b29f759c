/**
 * Plan policy evaluation (src/approval/plan-policy.ts): each rule on fixture plans
 * (test/helpers/plan-fixtures.ts). The schema and the merge are config-plan-policy.test.ts; the
 * fold into the gate is gate-plan.test.ts.
 */
import { describe, expect, it } from "vitest";
import { evaluatePlanPolicy, type PlanPolicyConfig } from "../../src/approval/plan-policy.js";
import type { PulumiPreview } from "../../src/plan/types.js";
import { ASSETS, cliPlan, commandPlan, CREATES, evaluate, ORDERS_DB, PROTECTED, SESSIONS, urn, WEB_1, WEB_2 } from "../helpers/plan-fixtures.js";

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
