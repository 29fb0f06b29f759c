import { describe, expect, it } from "vitest";
import { mainlineGateFacts, mainlineGatePolicy, nextRollbackStep } from "../../src/approval/mainline-gate.js";
import { DEFAULT_GATE_POLICY, evaluateGate, type ApprovalCommand } from "../../src/approval/gate.js";

const M = "a".repeat(40);
const OTHER = "b".repeat(40);
const PLAN = "sha256:" + "1".repeat(64);
const now = new Date("2026-11-22T12:00:00Z");
const finished = new Date("2026-11-22T11:50:00Z");
const approve = (actor: string, over: Partial<ApprovalCommand> = {}): ApprovalCommand => ({ kind: "approve", actor, actorType: "User", headSha: M, planHash: PLAN, at: new Date("2026-11-22T11:55:00Z"), ...over });

function gate(commands: ApprovalCommand[], approvals = 1, extra: Partial<Parameters<typeof mainlineGateFacts>[0]> = {}) {
  const policy = mainlineGatePolicy(DEFAULT_GATE_POLICY, approvals);
  const facts = mainlineGateFacts({
    now,
    stack: "prod",
    threadNumber: 7,
    requestedBy: "alice",
    sha: M,
    preview: { planHash: PLAN, state: "SUCCEEDED", finishedAt: finished },
    commands,
    permissions: { alice: "write", bob: "write", carol: "maintain", rita: "read" },
    teamMembers: {},
    ...extra,
  });
  return evaluateGate(policy, facts);
}

describe("the rollback gate", () => {
  it("states no pull-request facts for a mainline commit; a policy that asked for them anyway would be refused, not waved through", () => {
    const facts = mainlineGateFacts({ now, stack: "prod", threadNumber: 7, requestedBy: "alice", sha: M, preview: { planHash: PLAN, state: "SUCCEEDED", finishedAt: finished }, commands: [approve("bob")], permissions: { bob: "write" }, teamMembers: {} });
    expect(facts.pr).not.toHaveProperty("draft");
    expect(facts.pr).not.toHaveProperty("mergeable");
    expect(facts.pr).not.toHaveProperty("behindBy");
    const asked = { ...mainlineGatePolicy(DEFAULT_GATE_POLICY, 1), require: { ...DEFAULT_GATE_POLICY.require, mergeable: true, undiverged: true, notDraft: true, statusChecks: false, lockHeld: false } };
    const result = evaluateGate(asked, facts);
    expect(result.allowed).toBe(false);
    expect(result.blockedBy).toEqual(["mergeable", "undiverged", "not-draft"]);
    // Control: the mainline policy asks none of them, and the same facts pass.
    expect(evaluateGate(mainlineGatePolicy(DEFAULT_GATE_POLICY, 1), facts).allowed).toBe(true);
  });

  it("checks only what applies to a default-branch commit: preview, approvals, /deny", () => {
    const result = gate([approve("bob")]);
    expect(result.requirements.map((r) => r.id)).toEqual(["not-fork", "preview-succeeded", "approvals", "not-denied"]);
    expect(result.allowed).toBe(true);
    expect(result.planHash).toBe(PLAN);
  });

  it("the person who asked for the rollback never approves it", () => {
    const result = gate([approve("alice")]);
    expect(result.allowed).toBe(false);
    expect(result.ignored).toEqual([{ login: "alice", via: "comment", why: "the person who asked for it cannot approve their own change" }]);
  });

  it("an approval of another commit, another plan, before the preview finished, or by a reader does not count", () => {
    const result = gate([
      approve("bob", { headSha: OTHER }),
      approve("carol", { planHash: "sha256:" + "2".repeat(64) }),
      approve("rita"),
      approve("bob", { at: new Date("2026-11-22T11:40:00Z") }),
    ]);
    expect(result.allowed).toBe(false);
    expect(result.counted).toEqual([]);
    expect(result.ignored.map((i) => i.why).sort()).toEqual(
      ["approved a different plan", `approved an older commit ${OTHER.slice(0, 7)}`, `approved before any preview of ${M.slice(0, 7)} finished`, "not an allowed approver"].sort(),
    );
  });

  it("`rollback_approvals: 0` needs nobody, but an allowed approver's /deny still stops it", () => {
    expect(gate([], 0).allowed).toBe(true);
    const denied = gate([{ ...approve("carol"), kind: "deny", planHash: null }], 0);
    expect(denied.allowed).toBe(false);
    expect(denied.deniedBy).toBe("carol");
  });

  it("reviews never count (they approve PR heads, not a default-branch commit)", () => {
    const policy = mainlineGatePolicy({ ...DEFAULT_GATE_POLICY, sources: "reviews" }, 1);
    expect(policy.sources).toBe("comments");
  });

  it("a failed rollback preview blocks with a way out", () => {
    const result = gate([approve("bob")], 1, { preview: { planHash: null, state: "FAILED", finishedAt: finished } });
    expect(result.allowed).toBe(false);
    expect(result.requirements.find((r) => r.id === "preview-succeeded")?.met).toBe(false);
  });
});

describe("what /agent rollback does next", () => {
  const base = { now, ttlSeconds: 3600 };
  const current = (over: Partial<NonNullable<Parameters<typeof nextRollbackStep>[0]["current"]>> = {}) => ({ sha: M, state: "SUCCEEDED" as const, createdAt: finished, deploy: null, ...over });

  it("nothing recorded → nothing to roll back to", () => {
    expect(nextRollbackStep({ ...base, target: null, current: null })).toEqual({ kind: "nothing-deployed" });
  });
  it("previews first, and again for a new target, a failed preview, an applied one, or one older than an approval lives", () => {
    expect(nextRollbackStep({ ...base, target: M, current: null }).kind).toBe("preview");
    expect(nextRollbackStep({ ...base, target: OTHER, current: current() }).kind).toBe("preview");
    expect(nextRollbackStep({ ...base, target: M, current: current({ state: "FAILED" }) }).kind).toBe("preview");
    expect(nextRollbackStep({ ...base, target: M, current: current({ deploy: "ended" }) }).kind).toBe("preview");
    expect(nextRollbackStep({ ...base, target: M, current: current({ createdAt: new Date(now.getTime() - 3600_000) }) }).kind).toBe("preview");
  });
  it("waits for a running preview, refuses a second apply, and otherwise asks the gate", () => {
    expect(nextRollbackStep({ ...base, target: M, current: current({ state: "RUNNING" }) })).toEqual({ kind: "wait", state: "RUNNING" });
    expect(nextRollbackStep({ ...base, target: M, current: current({ deploy: "live" }) }).kind).toBe("applying");
    expect(nextRollbackStep({ ...base, target: M, current: current() }).kind).toBe("gate");
  });
});
