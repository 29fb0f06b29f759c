/**
 * Requesting a deploy run: `/agent deploy a b c` (or `--all`) applies several stacks of one pull
 * request in dependency order (`depends_on`), one layer at a time. Every stack passes its own
 * gate with its own approved plan now, or nothing is queued (all or none); the deploys are
 * recorded in one transaction and only the first layer is put on the queue. Each deploy job
 * asks its gate again before it applies (src/deploys/apply-gate.ts); src/deploys/run-progress.ts
 * starts the next layer, stops what is downstream of a failure, merges and reports.
 */
import { randomUUID } from "node:crypto";
import { evaluateGate, type GatePolicy, type GateResult } from "../approval/gate.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { WorkflowConfig } from "../config/workflow.js";
import { appendAudit } from "../connectors/store/audit.js";
import { findDeployConflict, type DeployConflict } from "../connectors/store/gate.js";
import { createDeployRun, type NewRunDeploy, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import { deployJobId, mainlineDeployJobId } from "../connectors/queues.js";
import { evaluateMainlineGate } from "./gate-facts.js";
import { deployCheckRunName, deployQueuedOutput } from "../render/check-run.js";
import { advanceDeployRun } from "./run-progress.js";
import type { GatheredFacts } from "./gate-facts.js";
import type { ApplyRequester } from "./request-apply.js";

/** One stack of the run, in dependency order; `after`: the stacks of the run it waits for. */
export interface RunStack {
  stack: ResolvedStack;
  policy: GatePolicy;
  gathered: GatheredFacts;
  after: string[];
}

export type DeployRunRequest =
  /** Some stack's gate said no: nothing was queued. `gates` holds every stack's answer. */
  | { status: "blocked"; gates: Array<{ stack: string; gate: GateResult }>; headSha: string }
  /** The head moved between two stacks' reads: nothing was queued. */
  | { status: "moved"; headSha: string }
  /** A stack has a live deploy, or its preview was applied before: nothing was queued. */
  | { status: "conflict"; stack: string; conflict: DeployConflict | null }
  | { status: "queued"; runId: string; headSha: string; stacks: Array<{ stack: string; planHash: string; taskId: string; after: string[]; approvedBy: string[] }> };

export async function requestDeployRun(who: ApplyRequester, stacks: RunStack[], config: Omit<WorkflowConfig, "stacks">): Promise<DeployRunRequest> {
  const headSha = stacks[0]!.gathered.facts.pr.headSha;
  if (stacks.some((s) => s.gathered.facts.pr.headSha !== headSha)) return { status: "moved", headSha };
  const gates = stacks.map((s) => ({ stack: s.stack.name, gate: evaluateGate(s.policy, s.gathered.facts) }));
  for (const { stack, gate } of gates) await auditRunGate(who, stack, gate, { head_sha: headSha, plan_hash: gate.planHash });
  if (gates.some((g) => !g.gate.allowed || !g.gate.planHash) || stacks.some((s) => !s.gathered.previewTaskId)) return { status: "blocked", gates, headSha };
  for (const s of stacks) {
    const conflict = await findDeployConflict(who.deps.db, who.repoFullName, s.stack.name, s.gathered.previewTaskId!);
    if (conflict) return { status: "conflict", stack: s.stack.name, conflict };
  }
  const runId = randomUUID();
  const items = stacks.map((s, i) => ({
    repo: who.repoFullName,
    installationId: who.installationId,
    prNumber: who.threadNumber,
    headSha,
    planHash: gates[i]!.gate.planHash!,
    requestedBy: who.actor,
    deliveryId: who.deliveryId,
    config: { ...config, stacks: [s.stack], runOrder: stacks.map((x) => x.stack.name) },
    stack: s.stack.name,
    jobId: deployJobId(who.repoFullName, s.stack.name, headSha, gates[i]!.gate.planHash!),
    previewTaskId: s.gathered.previewTaskId!,
    kind: "deploy" as const,
    after: s.after,
  }));
  const created = await recordRun(who, runId, items, gates.map((g) => g.gate));
  if ("conflict" in created) return { status: "conflict", ...created.conflict };
  return {
    status: "queued",
    runId,
    headSha,
    stacks: created.rows.map((c, i) => ({ stack: c.stack, planHash: gates[i]!.gate.planHash!, taskId: c.task.id, after: stacks[i]!.after, approvedBy: gates[i]!.gate.counted.map((a) => a.login) })),
  };
}

/** The gate's answer for one stack of a run, in the audit log (whether or not the run is queued). */
function auditRunGate(who: ApplyRequester, stack: string, gate: GateResult, what: Record<string, unknown>): Promise<void> {
  return appendAudit(who.deps.db, {
    actor: who.actor,
    action: "gate.evaluated",
    repo: who.repoFullName,
    prNumber: who.threadNumber,
    deliveryId: who.deliveryId,
    detail: { stack, ...what, allowed: gate.allowed, run: true, requirements: gate.requirements.map((r) => ({ id: r.id, met: r.met, detail: r.detail })), counted: gate.counted.map((a) => a.login), ignored: gate.ignored },
  });
}

/**
 * Records a run's deploys in one transaction (all or none), acknowledges each with a queued
 * check run and an audit row, and puts the first layer on the queue. Shared by deploy runs
 * and multi-stack rollbacks.
 */
async function recordRun(who: ApplyRequester, runId: string, items: NewRunDeploy[], gates: GateResult[]): Promise<{ rows: Array<{ workflow: WorkflowRow; task: TaskRow; stack: string }> } | { conflict: { stack: string; conflict: DeployConflict | null } }> {
  const created = await createDeployRun(who.deps.db, runId, items);
  if (!created) {
    // Lost a race with another request for one of the stacks: say which.
    for (const item of items) {
      const conflict = await findDeployConflict(who.deps.db, who.repoFullName, item.stack, item.previewTaskId);
      if (conflict) return { conflict: { stack: item.stack, conflict } };
    }
    return { conflict: { stack: items[0]!.stack, conflict: null } };
  }
  const target = { installationId: who.installationId, repo: who.repo };
  // createDeployRun keeps the order it was given: created[i] is items[i].
  for (const [i, c] of created.entries()) {
    const item = items[i]!;
    // The queued check runs acknowledge the request, as for a single deploy.
    await who.deps.writes.checkRun(target, c.task.id, deployQueuedOutput(c.stack, item.headSha, who.actor), { cls: "ack", identity: { name: deployCheckRunName(c.stack), headSha: item.headSha } });
    await appendAudit(who.deps.db, {
      actor: who.actor,
      action: "deploy.queued",
      repo: who.repoFullName,
      prNumber: who.threadNumber,
      deliveryId: who.deliveryId,
      workflowId: c.workflow.id,
      taskId: c.task.id,
      detail: { stack: c.stack, kind: item.kind, head_sha: item.headSha, plan_hash: item.planHash, approved_by: gates[i]!.counted.map((a) => a.login), run_id: runId, after: item.after },
    });
  }
  // The first layer (no upstream in the run) goes on the queue now.
  await advanceDeployRun(who.deps, target, runId);
  return { rows: created };
}

/** One stack of a multi-stack rollback: its succeeded branch preview, and the stacks of the run it waits for (its dependents). */
export interface RollbackRunStack {
  stack: ResolvedStack;
  workflow: WorkflowRow;
  task: TaskRow;
  after: string[];
}

export type RollbackRunRequest =
  | { status: "blocked"; gates: Array<{ stack: string; gate: GateResult; sha: string }> }
  | { status: "conflict"; stack: string; conflict: DeployConflict | null }
  | { status: "queued"; runId: string; stacks: Array<{ stack: string; sha: string; planHash: string; after: string[]; approvedBy: string[] }> };

/**
 * `/agent rollback a b c` once every stack's rollback preview succeeded: each passes its own
 * gate (approvals bound to its commit and plan) now, or nothing is queued; then the run
 * applies them in reverse dependency order (what depends on a stack goes back first), a
 * failure stopping the stacks it depends on. Never merges anything.
 */
export async function requestRollbackRun(who: ApplyRequester, stacks: RollbackRunStack[], config: { runParallelism: number }): Promise<RollbackRunRequest> {
  const gates: Array<{ stack: string; gate: GateResult; sha: string }> = [];
  for (const s of stacks) {
    const gate = await evaluateMainlineGate(who.deps, who.gh, who.repo, s.workflow, s.task, s.stack);
    gates.push({ stack: s.stack.name, gate, sha: s.workflow.head_sha });
    await auditRunGate(who, s.stack.name, gate, { kind: "rollback", head_sha: s.workflow.head_sha, plan_hash: s.task.plan_hash });
  }
  if (gates.some((g) => !g.gate.allowed) || stacks.some((s) => !s.task.plan_hash)) return { status: "blocked", gates };
  for (const s of stacks) {
    const conflict = await findDeployConflict(who.deps.db, who.repoFullName, s.stack.name, s.task.id);
    if (conflict) return { status: "conflict", stack: s.stack.name, conflict };
  }
  const runId = randomUUID();
  const items: NewRunDeploy[] = stacks.map((s) => ({
    repo: who.repoFullName,
    installationId: who.installationId,
    prNumber: who.threadNumber,
    headSha: s.workflow.head_sha,
    planHash: s.task.plan_hash!,
    requestedBy: who.actor,
    deliveryId: who.deliveryId,
    config: { ...s.workflow.config, stacks: [s.stack], runOrder: stacks.map((x) => x.stack.name), runParallelism: config.runParallelism },
    stack: s.stack.name,
    jobId: mainlineDeployJobId(who.repoFullName, s.stack.name, s.task.id),
    previewTaskId: s.task.id,
    kind: "branch",
    // The rollback SLA counts from the first request, approvals included.
    requestedAt: s.workflow.created_at,
    after: s.after,
  }));
  const created = await recordRun(who, runId, items, gates.map((g) => g.gate));
  if ("conflict" in created) return { status: "conflict", ...created.conflict };
  return { status: "queued", runId, stacks: stacks.map((s, i) => ({ stack: s.stack.name, sha: s.workflow.head_sha, planHash: s.task.plan_hash!, after: s.after, approvedBy: gates[i]!.gate.counted.map((a) => a.login) })) };
}
