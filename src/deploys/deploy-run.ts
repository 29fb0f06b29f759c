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
import { createDeployRun } from "../connectors/store/workflows.js";
import { deployJobId } from "../connectors/queues.js";
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
  for (const { stack, gate } of gates) {
    await appendAudit(who.deps.db, {
      actor: who.actor,
      action: "gate.evaluated",
      repo: who.repoFullName,
      prNumber: who.threadNumber,
      deliveryId: who.deliveryId,
      detail: { stack, head_sha: headSha, plan_hash: gate.planHash, allowed: gate.allowed, run: true, requirements: gate.requirements.map((r) => ({ id: r.id, met: r.met, detail: r.detail })), counted: gate.counted.map((a) => a.login), ignored: gate.ignored },
    });
  }
  if (gates.some((g) => !g.gate.allowed || !g.gate.planHash) || stacks.some((s) => !s.gathered.previewTaskId)) return { status: "blocked", gates, headSha };
  for (const s of stacks) {
    const conflict = await findDeployConflict(who.deps.db, who.repoFullName, s.stack.name, s.gathered.previewTaskId!);
    if (conflict) return { status: "conflict", stack: s.stack.name, conflict };
  }
  const runId = randomUUID();
  const created = await createDeployRun(
    who.deps.db,
    runId,
    stacks.map((s, i) => ({
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
      kind: "deploy",
      after: s.after,
    })),
  );
  if (!created) {
    // Lost a race with another request for one of the stacks: say which.
    for (const s of stacks) {
      const conflict = await findDeployConflict(who.deps.db, who.repoFullName, s.stack.name, s.gathered.previewTaskId!);
      if (conflict) return { status: "conflict", stack: s.stack.name, conflict };
    }
    return { status: "conflict", stack: stacks[0]!.stack.name, conflict: null };
  }
  const target = { installationId: who.installationId, repo: who.repo };
  // createDeployRun keeps the order it was given: created[i] is stacks[i].
  for (const [i, c] of created.entries()) {
    // The queued check runs acknowledge the request, as for a single deploy.
    await who.deps.writes.checkRun(target, c.task.id, deployQueuedOutput(c.stack, headSha, who.actor), { cls: "ack", identity: { name: deployCheckRunName(c.stack), headSha } });
    await appendAudit(who.deps.db, {
      actor: who.actor,
      action: "deploy.queued",
      repo: who.repoFullName,
      prNumber: who.threadNumber,
      deliveryId: who.deliveryId,
      workflowId: c.workflow.id,
      taskId: c.task.id,
      detail: { stack: c.stack, head_sha: headSha, plan_hash: gates[i]!.gate.planHash, approved_by: gates[i]!.gate.counted.map((a) => a.login), run_id: runId, after: stacks[i]!.after },
    });
  }
  // The first layer (no upstream in the run) goes on the queue now.
  await advanceDeployRun(who.deps, target, runId);
  return {
    status: "queued",
    runId,
    headSha,
    stacks: created.map((c, i) => ({ stack: c.stack, planHash: gates[i]!.gate.planHash!, taskId: c.task.id, after: stacks[i]!.after, approvedBy: gates[i]!.gate.counted.map((a) => a.login) })),
  };
}
