/**
 * Records a deploy that passed its gate and puts it on the queue: the deploys row (at most
 * one live per stack, one apply per preview), a queued check run on the commit, and the job.
 * The job asks the gate again right before it applies (src/deploys/apply-gate.ts).
 * Shared by `/agent deploy`, `/agent rollback` and a rollback that needs no approval.
 */
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { RepoRef } from "../connectors/github.js";
import { findDeployConflict, type DeployConflict } from "../connectors/store/gate.js";
import { createDeployWorkflow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { deployCheckRunName, deployQueuedOutput } from "../render/check-run.js";
import { mainlineDeployJobId, DEPLOY_JOB_OPTIONS, deployJobId } from "../connectors/queues.js";
import { traceField } from "../ops/tracing.js";
import type { WorkflowConfig } from "../config/workflow.js";

export interface DeployRequest {
  repo: RepoRef;
  repoFullName: string;
  installationId: number;
  /** The PR (or, for a rollback, the PR or issue) the deploy reports to. */
  threadNumber: number;
  /** The commit applied: the PR head, or the default-branch commit of a branch apply. */
  sha: string;
  planHash: string;
  previewTaskId: string;
  requestedBy: string;
  deliveryId: string | null;
  config: WorkflowConfig;
  stack: ResolvedStack;
  kind: "deploy" | "branch";
  requestedAt?: Date;
}

export type EnqueuedDeploy = { ok: true; taskId: string; workflowId: string } | { ok: false; conflict: DeployConflict | null };

export async function enqueueDeploy(deps: AppDeps, d: DeployRequest): Promise<EnqueuedDeploy> {
  const conflict = await findDeployConflict(deps.db, d.repoFullName, d.stack.name, d.previewTaskId);
  if (conflict) return { ok: false, conflict };
  const jobId = d.kind === "branch" ? mainlineDeployJobId(d.repoFullName, d.stack.name, d.previewTaskId) : deployJobId(d.repoFullName, d.stack.name, d.sha, d.planHash);
  const created = await createDeployWorkflow(deps.db, {
    repo: d.repoFullName,
    installationId: d.installationId,
    prNumber: d.threadNumber,
    headSha: d.sha,
    planHash: d.planHash,
    requestedBy: d.requestedBy,
    deliveryId: d.deliveryId,
    config: { ...d.config, stacks: [d.stack] },
    stack: d.stack.name,
    jobId,
    previewTaskId: d.previewTaskId,
    kind: d.kind,
    ...(d.requestedAt ? { requestedAt: d.requestedAt } : {}),
  });
  // Lost a race with another request: say which one won.
  if (!created) return { ok: false, conflict: await findDeployConflict(deps.db, d.repoFullName, d.stack.name, d.previewTaskId) };
  // The queued check run acknowledges the request: first in the outbox.
  await deps.writes.checkRun({ installationId: d.installationId, repo: d.repo }, created.task.id, deployQueuedOutput(d.stack.name, d.sha, d.requestedBy), {
    cls: "ack",
    identity: { name: deployCheckRunName(d.stack.name), headSha: d.sha },
  });
  await deps.queues.tasks.add("deploy", { taskId: created.task.id, workflowId: created.workflow.id, deliveryId: d.deliveryId, ...traceField() }, { ...DEPLOY_JOB_OPTIONS, jobId: created.task.job_id });
  return { ok: true, taskId: created.task.id, workflowId: created.workflow.id };
}
