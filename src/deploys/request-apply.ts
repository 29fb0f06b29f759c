/**
 * Requesting an apply: the one path from "someone asked to deploy" to "a deploy is queued", for
 * both subjects — a pull request's previewed head (`pull`) and a previewed mainline commit
 * (`mainline`: a rollback, or a merge commit that planned differently). It evaluates the gate,
 * audits `gate.evaluated` once, enqueues once (at most one live deploy per stack, one apply per
 * preview) and says in data what happened; the caller turns the outcome into words. The deploy
 * job asks the same gate again just before it applies (src/deploys/apply-gate.ts).
 */
import { recordTaskTier } from "../connectors/store/tiers.js";
import type { TierName } from "../approval/tiers.js";
import type { AuditAction } from "../domain/audit-actions.js";
import { evaluateGate, type GatePolicy, type GateResult } from "../approval/gate.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { WorkflowConfig } from "../config/workflow.js";
import type { GitHub, RepoRef } from "../connectors/github.js";
import { appendAudit, type AuditEntry } from "../connectors/store/audit.js";
import type { DeployConflict } from "../connectors/store/gate.js";
import type { TaskRow, WorkflowRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { enqueueDeploy, type EnqueuedDeploy } from "./enqueue.js";
import { evaluateMainlineGate, type GatheredFacts } from "./gate-facts.js";
import { applyMainlinePreview } from "./mainline.js";
import { requestSlackApproval } from "./slack.js";

/** Who asks, and in which thread (the PR, or for a rollback the PR or issue) the answer goes. */
export interface ApplyRequester {
  deps: AppDeps;
  gh: GitHub;
  repo: RepoRef;
  repoFullName: string;
  installationId: number;
  threadNumber: number;
  actor: string;
  /** The webhook delivery that asked; null when the app asks itself (a review stack's preview ended). */
  deliveryId: string | null;
}

export type ApplySubject =
  | {
      kind: "pull";
      stack: ResolvedStack;
      policy: GatePolicy;
      /** The gate's facts, gathered by the caller (it may judge a clicked button against them first). */
      gathered: GatheredFacts;
      /** What the deploy workflow runs, besides the stack. */
      config: Omit<WorkflowConfig, "stacks">;
    }
  | { kind: "mainline"; stack: ResolvedStack; workflow: WorkflowRow; task: TaskRow };

export type ApplyRequest =
  /** The gate said no (`gate.blockedBy` says which requirements); nothing was queued. */
  | { status: "blocked"; gate: GateResult; headSha: string }
  /** The gate said yes but another deploy holds the stack, or this preview was applied before. */
  | { status: "conflict"; gate: GateResult; headSha: string; conflict: DeployConflict | null }
  | { status: "queued"; gate: GateResult; headSha: string; planHash: string; taskId: string; workflowId: string };

type PullSubject = Extract<ApplySubject, { kind: "pull" }>;

export async function requestApply(who: ApplyRequester, subject: ApplySubject): Promise<ApplyRequest> {
  const audit = (action: AuditAction, detail: Record<string, unknown>, extra: Partial<AuditEntry> = {}) =>
    appendAudit(who.deps.db, { actor: who.actor, action, repo: who.repoFullName, prNumber: who.threadNumber, deliveryId: who.deliveryId, detail, ...extra });
  const { stack } = subject;
  const mainline = subject.kind === "mainline";
  const headSha = mainline ? subject.workflow.head_sha : subject.gathered.facts.pr.headSha;
  const gate = mainline
    ? await evaluateMainlineGate(who.deps, who.gh, who.repo, subject.workflow, subject.task, stack)
    : evaluateGate(subject.policy, subject.gathered.facts);
  const planHash = mainline ? subject.task.plan_hash : gate.planHash;
  await audit("gate.evaluated", {
    stack: stack.name,
    ...(mainline ? { kind: subject.workflow.config.branch!.purpose } : {}),
    head_sha: headSha,
    plan_hash: planHash,
    allowed: gate.allowed,
    requirements: gate.requirements.map((r) => ({ id: r.id, met: r.met, detail: r.detail })),
    counted: gate.counted.map((a) => a.login),
    ignored: gate.ignored,
    ...(!mainline && subject.gathered.facts.tier ? { tier: subject.gathered.facts.tier.name, tier_rule: subject.gathered.facts.tier.rule } : {}),
  });

  const enqueued = mainline
    ? gate.allowed
      ? await applyMainlinePreview({ deps: who.deps, gh: who.gh, repo: who.repo, target: { installationId: who.installationId, repo: who.repo }, workflow: subject.workflow, task: subject.task, stack, log: who.deps.log }, { actor: who.actor, deliveryId: who.deliveryId })
      : null
    : await enqueuePull(who, subject, gate, headSha);
  if (!enqueued) return { status: "blocked", gate, headSha };
  if (!enqueued.ok) {
    const other = enqueued.conflict;
    await audit(
      "deploy.duplicate",
      mainline
        ? { stack: stack.name, kind: "branch", plan_hash: planHash }
        : { stack: stack.name, plan_hash: planHash, other: other ? { state: other.other.state, pr: other.other.pr_number } : null },
    );
    return { status: "conflict", gate, headSha, conflict: other };
  }
  const finishedAt = mainline ? null : subject.gathered.facts.preview?.finishedAt;
  // agent_approval_wait_seconds: from the preview's finish to this deploy being queued.
  if (finishedAt) who.deps.metrics?.approvalWait.observe(Math.max(0, (Date.now() - finishedAt.getTime()) / 1000));
  // The tier the gate judged with is the task's until its claim resolves it again: its rows carry it from here.
  const tier = !mainline ? subject.gathered.facts.tier?.name : undefined;
  if (tier) await recordTaskTier(who.deps.db, enqueued.taskId, tier as TierName);
  await audit(
    "deploy.queued",
    { stack: stack.name, ...(mainline ? { kind: "branch" } : {}), head_sha: headSha, plan_hash: planHash, approved_by: gate.counted.map((a) => a.login) },
    { workflowId: enqueued.workflowId, taskId: enqueued.taskId },
  );
  return { status: "queued", gate, headSha, planHash: planHash!, taskId: enqueued.taskId, workflowId: enqueued.workflowId };
}

/** A pull request's deploy on the queue; null when the gate blocks it (then, if only people are missing, they are asked in Slack). */
async function enqueuePull(who: ApplyRequester, subject: PullSubject, gate: GateResult, headSha: string): Promise<EnqueuedDeploy | null> {
  const { previewTaskId, previewPlan } = subject.gathered;
  if (!gate.allowed || !gate.planHash || !previewTaskId) {
    // Waiting only for people: ask in the stack's Slack channel too (once per plan).
    if (gate.waitsOnlyForApprovals && gate.planHash) {
      await requestSlackApproval(who.deps, {
        kind: "deploy",
        repo: who.repoFullName,
        prNumber: who.threadNumber,
        thread: "pull",
        stack: subject.stack.name,
        sha: headSha,
        planHash: gate.planHash,
        plan: previewPlan,
        requestedBy: who.actor,
        installationId: who.installationId,
      });
    }
    return null;
  }
  return enqueueDeploy(who.deps, {
    repo: who.repo,
    repoFullName: who.repoFullName,
    installationId: who.installationId,
    threadNumber: who.threadNumber,
    sha: headSha,
    planHash: gate.planHash,
    previewTaskId,
    requestedBy: who.actor,
    deliveryId: who.deliveryId,
    config: { ...subject.config, stacks: [subject.stack] },
    stack: subject.stack,
    kind: "deploy",
  });
}
