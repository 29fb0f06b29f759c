/**
 * The plan policy as written (src/config/plan-policy.ts): the schema of a policy block, and the
 * merge of the server's block with a stack's override, which can only make it stricter, and the
 * server's file of blocks by selector (src/config/plan-policy-config.ts).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { evaluatePlanPolicy, type PlanPolicyConfig } from "../../src/approval/plan-policy.js";
import { mergePlanPolicy, parsePlanPolicy, PlanPolicySchema } from "../../src/config/plan-policy.js";
import { loadServerPlanPolicy, serverPlanPolicyFor } from "../../src/config/plan-policy-config.js";
import { cliPlan, CREATES, PROTECTED } from "../helpers/plan-fixtures.js";

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
    // Worded like every config's issues (src/config/issues.ts); no lines without a YAML source.
    const issues = (raw: unknown) => {
      const r = parsePlanPolicy(raw);
      return r.ok ? [] : r.issues.map(({ path, line, message }) => (expect(line).toBeNull(), { path, message }));
    };
    expect(issues({ protect: [{ types: ["a:b:C"], decision: "block" }] })).toEqual([{ path: "protect[0].decision", message: "must be `deny` or `needs_approval`, got `\"block\"`" }]);
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
      { path: "protect[0].on[0]", message: "must be `delete` or `replace`, got `\"update\"`" },
    ]);
    expect(issues({ max_deletes: -1, max_replaces: 1.5 })).toEqual([
      { path: "max_deletes", message: "must be a whole number ≥ 0" },
      { path: "max_replaces", message: "must be a whole number ≥ 0" },
    ]);
    expect(issues({ budget: { monthly_usd: 0, threshold: 1.5, cost_hints: { "aws:ec2/*": -3 } } })).toEqual([
      { path: "budget.monthly_usd", message: "must be a positive number of US dollars" },
      { path: "budget.threshold", message: "must be a fraction of the budget, greater than 0 and at most 1 (0.8 = 80%)" },
      { path: 'budget.cost_hints["aws:ec2/*"]', message: "must be a monthly cost in US dollars ≥ 0" },
    ]);
    expect(issues({ budget: { monthly_usd: 100, tag: "cost-usd-month" } })).toEqual([
      { path: "budget.tag", message: "is not supported: the stored plan does not carry resource inputs or tags; price resource types with `cost_hints`" },
    ]);
    expect(issues({ max_delete: 5 })).toEqual([{ path: "max_delete", message: "unknown key `max_delete` — did you mean `max_deletes`?" }]);
    // The schema itself reports zod paths.
    expect(PlanPolicySchema.safeParse({ protect: [{ types: ["a:b:C"], decision: "block" }] }).error?.issues[0]?.path).toEqual(["protect", 0, "decision"]);
  });
});

// ---------------------------------------------------------------------------------------------
// The server's file (PLAN_POLICY_CONFIG)
// ---------------------------------------------------------------------------------------------

describe("loadServerPlanPolicy", () => {
  const file = (text: string): string => {
    const path = join(mkdtempSync(join(tmpdir(), "plan-policy-")), "policy.yml");
    writeFileSync(path, text);
    return path;
  };

  it("reads blocks by selector and picks the most specific one", () => {
    const policy = loadServerPlanPolicy(file(['"*": { max_deletes: 10 }', 'prod: { max_deletes: 1 }', '"acme/infra:*": { max_replaces: 0 }', ""].join("\n")));
    expect(serverPlanPolicyFor(policy, "acme/infra", "prod")).toEqual({ max_replaces: 0 });
    expect(serverPlanPolicyFor(policy, "acme/web", "prod")).toEqual({ max_deletes: 1 });
    expect(serverPlanPolicyFor(policy, "acme/web", "dev")).toEqual({ max_deletes: 10 });
  });

  it("names every problem with its selector, path and line", () => {
    const path = file(["prod:", "  max_deletes: -1", "not a selector!: {}", '"acme/infra:*":', "  protect:", "    - types: [aws:rds/*]", "      decison: needs_approval", ""].join("\n"));
    expect(() => loadServerPlanPolicy(path)).toThrow(
      [
        `${path} is not a valid plan policy:`,
        "  prod.max_deletes: must be a whole number ≥ 0 (line 2)",
        '  not a selector!: not a selector (use *, <stack>, <owner/repo>:* or <owner/repo>:<stack>) (line 3)',
        '  ["acme/infra:*"].protect[0].decison: unknown key `decison` — did you mean `decision`? (line 7)',
      ].join("\n"),
    );
    expect(() => loadServerPlanPolicy(file("- a list\n"))).toThrow(/must be a mapping of selector → policy/);
    expect(() => loadServerPlanPolicy(file("prod: [unclosed\n"))).toThrow(/^plan policy \(PLAN_POLICY_CONFIG\) .* is not valid YAML\/JSON:\n {2}\(top level\): YAML syntax error: .* \(line \d\)$/);
    expect(() => loadServerPlanPolicy(join(tmpdir(), "no-such-dir-xyz", "policy.yml"))).toThrow(/^cannot read plan policy \(PLAN_POLICY_CONFIG\) .*: ENOENT/);
  });
});
