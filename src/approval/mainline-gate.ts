/**
 * The gate for applying a default-branch commit (`/agent rollback`, or a merge commit whose
 * plan differed from the approved one). Pure policy, no I/O: the same approval rules as a PR
 * deploy (src/approval/gate.ts), bound to the branch preview's commit and plan, with the
 * PR-only requirements (status checks, mergeable, undiverged, draft, lock) switched off.
 */
import type { TaskState } from "../domain/states.js";
import type { ApprovalCommand, ChangedBy, ConsumedApproval, GateFacts, GatePolicy, PreviewSeen } from "./gate.js";
import type { RepoPermission } from "./permissions.js";
import type { PlanDecision } from "./plan-policy.js";

/** Only `/approve` comments can bind to a branch preview: reviews approve PR heads. */
export function mainlineGatePolicy(base: GatePolicy, approvals: number): GatePolicy {
  return {
    ...base,
    requiredApprovals: approvals,
    sources: "comments",
    require: { previewSucceeded: true, statusChecks: false, mergeable: false, undiverged: false, notDraft: false, lockHeld: false },
  };
}

export interface MainlineGateInput {
  now: Date;
  stack: string;
  threadNumber: number;
  /** Who asked for the rollback: like a PR author, they never approve it themselves. */
  requestedBy: string;
  /**
   * Everyone else who may not approve it, with why: for a merge commit, the pull request's
   * author, pushers and committers (MainlineApply.exclude, fixed when the preview was asked for).
   */
  exclude?: ChangedBy[];
  sha: string;
  preview: { planHash: string | null; state: TaskState; finishedAt: Date | null; policy?: PlanDecision | null };
  commands: ApprovalCommand[];
  permissions: Record<string, RepoPermission>;
  teamMembers: Record<string, string[]>;
  /** Successful previews of this commit in this thread (default: `preview` alone). */
  previews?: PreviewSeen[];
  /** Approvals an earlier apply already used. */
  consumed?: ConsumedApproval[];
}

export function mainlineGateFacts(i: MainlineGateInput): GateFacts {
  return {
    now: i.now,
    stack: i.stack,
    prNumber: i.threadNumber,
    // A mainline commit has no pull request: no draft, mergeability or divergence to state (mainlineGatePolicy asks none of them).
    pr: { author: i.requestedBy, headSha: i.sha, fromFork: false, authorLabel: "the person who asked for it", changedBy: i.exclude ?? [] },
    preview: { headSha: i.sha, ...i.preview },
    ...(i.previews ? { previews: i.previews } : {}),
    ...(i.consumed ? { consumed: i.consumed } : {}),
    reviews: [],
    commands: i.commands,
    permissions: i.permissions,
    teamMembers: i.teamMembers,
    checks: [],
    requiredChecks: [],
    lock: null,
  };
}

export type RollbackStep =
  | { kind: "nothing-deployed" }
  | { kind: "preview" }
  | { kind: "wait"; state: TaskState }
  | { kind: "gate" }
  | { kind: "applying" };

/**
 * What `/agent rollback` does now: preview the target (first time, a new target, the last
 * preview failed, was applied already, or is older than an approval lives), wait for a
 * running preview, or ask the gate to apply the previewed plan.
 */
export function nextRollbackStep(input: {
  now: Date;
  ttlSeconds: number;
  target: string | null;
  current: { sha: string; state: TaskState; createdAt: Date; deploy: "live" | "ended" | null } | null;
}): RollbackStep {
  const { target, current } = input;
  if (!target) return { kind: "nothing-deployed" };
  if (!current || current.sha !== target) return { kind: "preview" };
  if (current.deploy === "live") return { kind: "applying" };
  if (current.deploy === "ended") return { kind: "preview" };
  if (current.state === "PENDING" || current.state === "RUNNING") return { kind: "wait", state: current.state };
  if (current.state !== "SUCCEEDED") return { kind: "preview" };
  if (input.now.getTime() - current.createdAt.getTime() >= input.ttlSeconds * 1000) return { kind: "preview" };
  return { kind: "gate" };
}
