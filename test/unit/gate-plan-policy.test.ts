/** The gate with a plan policy decision on the previewed plan: DENY blocks, NEEDS_APPROVAL asks for more. */
import { describe, expect, it } from "vitest";
import { DEFAULT_GATE_POLICY, evaluateGate, type ApprovalCommand, type GateFacts } from "../../src/approval/gate.js";
import type { PlanDecision } from "../../src/approval/plan-policy.js";
import { renderGateChecklist } from "../../src/render/gate.js";

const HEAD = "1234567" + "a".repeat(33);
const PLAN = "sha256:" + "1".repeat(64);
const NOW = new Date("2026-11-22T12:00:00Z");
const FINISHED = new Date("2026-11-22T11:00:00Z");
const approve = (actor: string): ApprovalCommand => ({ kind: "approve", actor, actorType: "User", headSha: HEAD, planHash: PLAN, at: new Date("2026-11-22T11:30:00Z") });

function facts(policy: PlanDecision | null, commands: ApprovalCommand[], over: Partial<GateFacts> = {}): GateFacts {
  return {
    now: NOW,
    stack: "prod",
    prNumber: 7,
    pr: { author: "alice", headSha: HEAD, draft: false, mergeable: true, behindBy: 0, fromFork: false },
    preview: { headSha: HEAD, planHash: PLAN, state: "SUCCEEDED", finishedAt: FINISHED, policy },
    reviews: [],
    commands,
    permissions: { alice: "write", bob: "write", carol: "write", dba: "write" },
    teamMembers: { dbas: ["dba"] },
    checks: [],
    requiredChecks: [],
    lock: { prNumber: 7 },
    ...over,
  };
}
const decision = (over: Partial<PlanDecision>): PlanDecision => ({ decision: "ALLOW", findings: [], extraApprovals: 0, requiredApprovers: { users: [], teams: [] }, costChangeUsd: null, notes: [], ...over });
const DENY = decision({ decision: "DENY", findings: [{ rule: "protect[0]", decision: "DENY", message: "delete of aws:rds/instance:Instance orders-db is not allowed", resources: ["urn:…orders-db"] }] });
const NEEDS = decision({
  decision: "NEEDS_APPROVAL",
  extraApprovals: 1,
  requiredApprovers: { users: [], teams: ["dbas"] },
  findings: [{ rule: "protect[1]", decision: "NEEDS_APPROVAL", message: "replace of aws:s3/bucket:Bucket assets needs a DBA", resources: [] }],
});
const gate = (d: PlanDecision | null, commands: ApprovalCommand[], over: Partial<GateFacts> = {}) => evaluateGate(DEFAULT_GATE_POLICY, facts(d, commands, over));
const req = (r: ReturnType<typeof gate>, id: string) => r.requirements.find((q) => q.id === id);

describe("the gate and the plan policy", () => {
  it("without a decision, nothing changes (no plan-policy requirement)", () => {
    const r = gate(null, [approve("bob")]);
    expect(r.allowed).toBe(true);
    expect(req(r, "plan-policy")).toBeUndefined();
  });

  it("ALLOW is shown as met and asks for nothing more", () => {
    const r = gate(decision({}), [approve("bob")]);
    expect(r.allowed).toBe(true);
    expect(req(r, "plan-policy")).toMatchObject({ met: true, detail: "ALLOW — no rule fired" });
  });

  it("DENY blocks the deploy whatever the approvals, naming the rule", () => {
    const r = gate(DENY, [approve("bob"), approve("carol"), approve("dba")]);
    expect(r.allowed).toBe(false);
    expect(req(r, "approvals")?.met).toBe(true);
    expect(req(r, "plan-policy")).toMatchObject({ met: false, detail: "DENY — protect[0]: delete of aws:rds/instance:Instance orders-db is not allowed" });
    expect(renderGateChecklist("prod", r, HEAD)).toMatch(/- \[ \] Plan policy — DENY — protect\\\[0\\\]: delete of aws:rds\/instance:Instance orders-db is not allowed\. A denied plan cannot be approved/);
  });

  it("NEEDS_APPROVAL raises the approvals needed and requires one of the named team", () => {
    const one = gate(NEEDS, [approve("bob")]);
    expect(one.allowed).toBe(false);
    expect(req(one, "approvals")).toMatchObject({ met: false });
    expect(req(one, "approvals")?.detail).toMatch(/^1 of 2 approvals/);
    expect(req(one, "plan-policy")).toMatchObject({ met: false, fix: "Needs an approval from a member of team dbas." });

    const twoWithoutDba = gate(NEEDS, [approve("bob"), approve("carol")]);
    expect(req(twoWithoutDba, "approvals")?.met).toBe(true);
    expect(twoWithoutDba.allowed).toBe(false);

    const withDba = gate(NEEDS, [approve("bob"), approve("dba")]);
    expect(withDba.allowed).toBe(true);
    expect(req(withDba, "plan-policy")?.met).toBe(true);
  });

  it("a decision on an older commit's preview does not apply (the preview requirement catches that)", () => {
    const r = gate(DENY, [approve("bob")], { preview: { headSha: "f".repeat(40), planHash: PLAN, state: "SUCCEEDED", finishedAt: FINISHED, policy: DENY } });
    expect(req(r, "plan-policy")).toBeUndefined();
    expect(req(r, "preview-succeeded")?.met).toBe(false);
  });
});

describe("what blocked, in data (no text parsing)", () => {
  it("a DENY blocks with plan-policy and no approval can lift it: not waiting only for approvals", () => {
    const r = gate(DENY, []);
    expect(r.blockedBy).toEqual(["plan-policy", "approvals"]);
    expect(req(r, "plan-policy")?.waitsForApproval).toBe(false);
    expect(req(r, "approvals")?.waitsForApproval).toBe(true);
    expect(r.waitsOnlyForApprovals).toBe(false);
  });

  it("NEEDS_APPROVAL with the named approver missing waits only for approvals", () => {
    const r = gate(NEEDS, [approve("bob")]);
    expect(r.blockedBy).toContain("plan-policy");
    expect(req(r, "plan-policy")?.waitsForApproval).toBe(true);
    expect(r.waitsOnlyForApprovals).toBe(true);
  });

  it("a missing approval and a failing check: not waiting only for approvals; with the check green it is", () => {
    const failing = evaluateGate(
      { ...DEFAULT_GATE_POLICY, requiredApprovals: 1 },
      facts(null, [], { checks: [{ name: "ci", status: "completed", conclusion: "failure" }], requiredChecks: ["ci"] }),
    );
    expect(failing.blockedBy).toEqual(["approvals", "status-checks"]);
    expect(failing.waitsOnlyForApprovals).toBe(false);
    const green = evaluateGate(
      { ...DEFAULT_GATE_POLICY, requiredApprovals: 1 },
      facts(null, [], { checks: [{ name: "ci", status: "completed", conclusion: "success" }], requiredChecks: ["ci"] }),
    );
    expect(green.blockedBy).toEqual(["approvals"]);
    expect(green.waitsOnlyForApprovals).toBe(true);
  });

  it("allowed: nothing blocks and nothing is waited for", () => {
    const r = gate(null, [approve("bob")]);
    expect(r.blockedBy).toEqual([]);
    expect(r.waitsOnlyForApprovals).toBe(false);
  });
});
