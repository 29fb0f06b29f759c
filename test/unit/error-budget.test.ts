/**
 * Error budgets, pure: the arithmetic (window, same error, procedure violations, remaining, when
 * it frees itself) and the gate requirement an exhausted budget adds (one more approval, from a
 * maintainer; or frozen), absent for applies that carry no budget (rollbacks).
 */
import { describe, expect, it } from "vitest";
import { bindingBudget, describeBudget, evaluateBudget, SEED_BUDGET, type BudgetEvent, type BudgetLimits } from "../../src/approval/error-budget.js";
import { DEFAULT_GATE_POLICY, evaluateGate, type ApprovalCommand, type GateFacts } from "../../src/approval/gate.js";
import { renderGateChecklist } from "../../src/render/gate.js";

const NOW = new Date("2026-12-06T12:00:00Z");
const HEAD = "1234567" + "a".repeat(33);
const PLAN = "sha256:plan-1";
const DAY = 86_400_000;
const daysAgo = (d: number) => new Date(NOW.getTime() - d * DAY);
const failed = (d: number, signature = "rds", label = "RDS timeout"): BudgetEvent => ({ at: daysAgo(d), kind: "deploy-failed", signature, label });

describe("evaluateBudget", () => {
  it("counts the errors inside the window only, and what is left", () => {
    const s = evaluateBudget([failed(1, "a"), failed(3, "b"), failed(8, "c"), failed(30, "d")], SEED_BUDGET, NOW);
    expect(s).toMatchObject({ total: 2, violations: 0, repeated: null, exhausted: false, why: [], remaining: 6 });
    // The oldest error inside the window leaves it 7 days after it happened.
    expect(s.frees).toEqual(new Date(daysAgo(3).getTime() + 7 * DAY));
  });

  it("is exhausted by the same error twice (seed: max_same_error_repeats 2), not by two different ones", () => {
    expect(evaluateBudget([failed(1, "x", "disk full"), failed(2, "y", "RDS timeout")], SEED_BUDGET, NOW).exhausted).toBe(false);
    const same = evaluateBudget([failed(1), failed(2), failed(3, "x", "disk full")], SEED_BUDGET, NOW);
    expect(same).toMatchObject({ exhausted: true, repeated: { label: "RDS timeout", count: 2 }, remaining: 0, why: ["the same error 2 times (limit 2)"] });
  });

  it("is exhausted by the total (seed 8) and by one procedure violation (seed 1)", () => {
    const eight = Array.from({ length: 8 }, (_, i) => failed(i * 0.5, `e${i}`));
    expect(evaluateBudget(eight, SEED_BUDGET, NOW)).toMatchObject({ exhausted: true, total: 8, why: ["8 errors (limit 8)"] });
    expect(evaluateBudget(eight.slice(1), SEED_BUDGET, NOW)).toMatchObject({ exhausted: false, total: 7, remaining: 1 });
    const integrity: BudgetEvent = { at: daysAgo(1), kind: "integrity", signature: "integrity", label: "plan integrity check failed" };
    expect(evaluateBudget([integrity], SEED_BUDGET, NOW)).toMatchObject({ exhausted: true, violations: 1, why: ["1 procedure violation (limit 1)"] });
    const stopped: BudgetEvent = { at: daysAgo(1), kind: "break-glass", signature: null, label: "deploy stopped by break-glass" };
    expect(evaluateBudget([stopped], SEED_BUDGET, NOW).violations).toBe(1);
  });

  it("counts a denied plan and a rollback as errors, not as violations; events without a signature never repeat", () => {
    const events: BudgetEvent[] = [
      { at: daysAgo(1), kind: "policy-denied", signature: null, label: "plan denied by the plan policy" },
      { at: daysAgo(2), kind: "policy-denied", signature: null, label: "plan denied by the plan policy" },
      { at: daysAgo(2), kind: "rollback", signature: null, label: "rolled back" },
    ];
    expect(evaluateBudget(events, SEED_BUDGET, NOW)).toMatchObject({ total: 3, violations: 0, repeated: null, exhausted: false });
  });

  it("reads as the checklist says it", () => {
    const s = evaluateBudget([failed(1), failed(2), { at: daysAgo(1), kind: "integrity", signature: "i", label: "x" }], SEED_BUDGET, NOW);
    expect(describeBudget(s)).toBe("3 of 8 errors in 7 days; 2 × 'RDS timeout'; 1 procedure violation");
    expect(describeBudget(evaluateBudget([], { ...SEED_BUDGET, maxTotalErrors: Infinity }, NOW))).toBe("0 errors in 7 days");
  });
});

describe("the gate with an error budget", () => {
  const approve = (actor: string): ApprovalCommand => ({ kind: "approve", actor, actorType: "User", headSha: HEAD, planHash: PLAN, at: new Date(NOW.getTime() - 30 * 60_000) });
  const facts = (budget: GateFacts["budget"], approvers: string[]): GateFacts => ({
    now: NOW,
    stack: "prod",
    prNumber: 7,
    pr: { author: "alice", headSha: HEAD, draft: false, mergeable: true, behindBy: 0, fromFork: false },
    preview: { headSha: HEAD, planHash: PLAN, state: "SUCCEEDED", finishedAt: new Date(NOW.getTime() - 60 * 60_000) },
    reviews: [],
    commands: approvers.map(approve),
    permissions: { alice: "write", bob: "write", dan: "write", carol: "maintain", root: "admin" },
    teamMembers: {},
    checks: [],
    requiredChecks: [],
    lock: { prNumber: 7 },
    ...(budget !== undefined ? { budget } : {}),
  });
  const exhausted = (limits: BudgetLimits = SEED_BUDGET) => evaluateBudget([failed(1), failed(2)], limits, NOW);
  const budgetReq = (f: GateFacts) => evaluateGate(DEFAULT_GATE_POLICY, f).requirements.find((r) => r.id === "error-budget");

  it("within budget: met, and says how much is used", () => {
    const r = evaluateGate(DEFAULT_GATE_POLICY, facts(evaluateBudget([failed(1)], SEED_BUDGET, NOW), ["bob"]));
    expect(r.allowed).toBe(true);
    expect(r.requirements.find((x) => x.id === "error-budget")).toMatchObject({ met: true, detail: "1 of 8 errors in 7 days" });
  });

  it("a frozen repository's budget names the repository, not the stack", () => {
    const repo = evaluateBudget([failed(1), failed(2), failed(3)], { ...SEED_BUDGET, maxSameErrorRepeats: 3, onExhausted: "freeze" }, NOW, "repository");
    expect(budgetReq(facts(repo, ["bob", "carol"]))).toMatchObject({ met: false, fix: expect.stringContaining("Deploys in this repository are frozen") });
    expect(budgetReq(facts(repo, ["bob", "carol"]))?.detail).toMatch(/^exhausted — the repository's: 3 of 8 errors/);
  });

  it("exhausted: one approval more than the stack needs, one of them a maintainer's", () => {
    // The usual single approval is not enough any more.
    const one = evaluateGate(DEFAULT_GATE_POLICY, facts(exhausted(), ["bob"]));
    expect(one.allowed).toBe(false);
    expect(one.blockedBy).toEqual(["error-budget"]);
    expect(one.waitsOnlyForApprovals).toBe(true);
    expect(budgetReq(facts(exhausted(), ["bob"]))?.fix).toContain("a deploy needs 2 approvals in all (1 now) and one of them from a maintainer");
    // Two writers: still no maintainer.
    expect(budgetReq(facts(exhausted(), ["bob", "dan"]))).toMatchObject({ met: false });
    expect(budgetReq(facts(exhausted(), ["bob", "dan"]))?.fix).toContain("one of them from a maintainer");
    // A maintainer alone: one approval short.
    expect(budgetReq(facts(exhausted(), ["carol"]))?.fix).toContain("2 approvals in all (1 now)");
    // Positive control: a writer and a maintainer (or an admin).
    expect(evaluateGate(DEFAULT_GATE_POLICY, facts(exhausted(), ["bob", "carol"])).allowed).toBe(true);
    expect(evaluateGate(DEFAULT_GATE_POLICY, facts(exhausted(), ["root", "dan"])).allowed).toBe(true);
  });

  it("frozen: no approval opens it, and the checklist says rollbacks still work", () => {
    const frozen = exhausted({ ...SEED_BUDGET, onExhausted: "freeze" });
    const r = evaluateGate(DEFAULT_GATE_POLICY, facts(frozen, ["bob", "carol", "root"]));
    expect(r.allowed).toBe(false);
    expect(r.waitsOnlyForApprovals).toBe(false);
    const text = renderGateChecklist("prod", r, HEAD);
    expect(text).toMatch(/- \[ \] Error budget — exhausted — 2 of 8 errors in 7 days; 2 × 'RDS timeout' \(the same error 2 times \(limit 2\)\)/);
    expect(text).toContain("Rollbacks still work: /agent rollback prod.");
  });

  it("no budget in the facts (budgets off, or a rollback): no requirement", () => {
    expect(budgetReq(facts(undefined, ["bob"]))).toBeUndefined();
    expect(evaluateGate(DEFAULT_GATE_POLICY, facts(null, ["bob"])).allowed).toBe(true);
  });
});

describe("bindingBudget: the stack's own, unless only its repository's is exhausted", () => {
  const now = new Date("2026-12-06T00:00:00Z");
  const err = (sig: string, hoursAgo: number): BudgetEvent => ({ at: new Date(now.getTime() - hoursAgo * 3_600_000), kind: "deploy-failed", signature: sig, label: `Error ${sig}` });
  const repoLimits: BudgetLimits = { ...SEED_BUDGET, maxTotalErrors: 20, maxSameErrorRepeats: 3, maxProcedureViolations: 2 };
  const stackOk = evaluateBudget([err("x", 1)], SEED_BUDGET, now);
  const stackOut = evaluateBudget([err("x", 1), err("x", 2)], SEED_BUDGET, now);
  const repoOk = evaluateBudget([err("x", 1), err("x", 2)], repoLimits, now, "repository");
  const repoOut = evaluateBudget([err("x", 1), err("x", 2), err("x", 3)], repoLimits, now, "repository");

  it("picks the exhausted repository's over a stack within its own", () => {
    expect(bindingBudget(stackOk, repoOut)).toBe(repoOut);
    expect(describeBudget(repoOut)).toBe("the repository's: 3 of 20 errors in 7 days; 3 × 'Error x'");
  });
  it("otherwise the stack's (exhausted or not), or whichever exists", () => {
    expect(bindingBudget(stackOk, repoOk)).toBe(stackOk);
    expect(bindingBudget(stackOut, repoOut)).toBe(stackOut);
    expect(bindingBudget(null, repoOk)).toBe(repoOk);
    expect(bindingBudget(stackOk, null)).toBe(stackOk);
    expect(bindingBudget(null, null)).toBeNull();
  });
});
