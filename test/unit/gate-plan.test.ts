/** What a plan policy decision changes in the gate's approval requirement (src/approval/gate-plan.ts). */
import { describe, expect, it } from "vitest";
import { applyPlanDecision, missingRequiredApprovers } from "../../src/approval/gate-plan.js";
import { evaluate } from "../helpers/plan-fixtures.js";

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
