/**
 * Rollout phases, pure: which phase a repository is in (its own, its organisation's, the
 * default) and when `act` may apply a merged plan without a human.
 */
import { describe, expect, it } from "vitest";
import { decideAutoApply, phaseOf, PHASE_SCOPE_RE, type Phase } from "../../src/approval/phase.js";
import type { PlanDecision } from "../../src/approval/plan-policy.js";
import { countChanges, type PulumiPreview, type ResourceChange } from "../../src/plan/types.js";

const rows = (o: Record<string, Phase>) => new Map(Object.entries(o));
const resource = (op: ResourceChange["op"], name: string): ResourceChange => ({ op, urn: `urn:pulumi:prod::shop::aws:s3/bucket:Bucket::${name}`, type: "aws:s3/bucket:Bucket", name } as ResourceChange);
const plan = (...resources: ResourceChange[]): PulumiPreview => ({ engine: "pulumi", stack: "prod", resources, diagnostics: [], summary: countChanges(resources) });
const decision = (d: PlanDecision["decision"]): PlanDecision => ({ decision: d, findings: [], extraApprovals: 0, requiredApprovers: { users: [], teams: [] }, costChangeUsd: null, notes: [] });

describe("phaseOf", () => {
  it("the repository's own row, else its organisation's, else the default", () => {
    expect(phaseOf("acme/web", rows({ "acme/web": "act", "acme/*": "observe" }), "suggest")).toEqual({ phase: "act", scope: "acme/web" });
    expect(phaseOf("acme/api", rows({ "acme/web": "act", "acme/*": "observe" }), "suggest")).toEqual({ phase: "observe", scope: "acme/*" });
    expect(phaseOf("other/api", rows({ "acme/*": "observe" }), "suggest")).toEqual({ phase: "suggest", scope: "default" });
  });

  it("scopes are owner/name or owner/*", () => {
    for (const ok of ["acme/web", "acme/*", "a-b/c.d_e"]) expect(PHASE_SCOPE_RE.test(ok)).toBe(true);
    for (const bad of ["acme", "*/web", "acme/web/x", "acme/", "-acme/web", "acme/**"]) expect(PHASE_SCOPE_RE.test(bad)).toBe(false);
  });
});

describe("decideAutoApply (act)", () => {
  it("applies an ALLOW plan with nothing destructive while the budget holds", () => {
    expect(decideAutoApply({ plan: plan(resource("create", "a"), resource("update", "b"), resource("same", "c")), decision: decision("ALLOW"), budgetExhausted: false })).toEqual({ apply: true });
  });

  it("holds every plan that deletes or replaces, whatever the policy says", () => {
    const held = decideAutoApply({ plan: plan(resource("create", "a"), resource("delete", "old"), resource("replace", "db")), decision: decision("ALLOW"), budgetExhausted: false });
    expect(held).toEqual({ apply: false, why: "the plan deletes or replaces 2 resources (old, db)" });
  });

  it("holds what the policy does not allow, a plan no policy judged, a command engine's output, and everything once the budget is exhausted", () => {
    const safe = plan(resource("create", "a"));
    expect(decideAutoApply({ plan: safe, decision: decision("NEEDS_APPROVAL"), budgetExhausted: false })).toEqual({ apply: false, why: "the plan policy says NEEDS_APPROVAL" });
    expect(decideAutoApply({ plan: safe, decision: decision("DENY"), budgetExhausted: false }).apply).toBe(false);
    expect(decideAutoApply({ plan: safe, decision: null, budgetExhausted: false })).toMatchObject({ apply: false, why: expect.stringContaining("no plan policy classified the plan") });
    expect(decideAutoApply({ plan: { engine: "command", output: "ok", truncated: false }, decision: decision("ALLOW"), budgetExhausted: false })).toMatchObject({ apply: false, why: expect.stringContaining("only a Pulumi plan") });
    expect(decideAutoApply({ plan: null, decision: decision("ALLOW"), budgetExhausted: false }).apply).toBe(false);
    expect(decideAutoApply({ plan: safe, decision: decision("ALLOW"), budgetExhausted: true })).toMatchObject({ apply: false, why: expect.stringContaining("error budget is exhausted") });
  });
});
