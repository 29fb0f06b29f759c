import type { WriteTarget } from "../connectors/outbox/writes.js";
import { auditWorkflow } from "../connectors/store/audit.js";
import { finishTask, getTasks, getTask, pendingDependents, type TaskRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { cancelledOutput, completedOutput } from "../render/check-run.js";
import { TASK_JOB_OPTIONS } from "../connectors/queues.js";
import { traceField } from "../ops/tracing.js";
import { refreshSticky } from "./sticky.js";
import { isWaitingForLock } from "../connectors/store/locks.js";
import type { StepResult } from "../domain/steps.js";
import { decideMergeGroupIfDone } from "../deploys/merge-queue.js";

/**
 * The preview DAG's edges: once a task has ended — shared `checks`, or the preview of a stack
 * others depend on (`depends_on`) — the previews waiting for it move on. After success, each
 * waiting preview whose dependencies have all succeeded is enqueued (its job id makes this
 * idempotent, so a retried or recovered job may call it again). After a failure or a
 * cancellation the waiting previews end too, without running, saying which dependency stopped
 * them; their own dependents follow (a failure stops everything downstream).
 */
export async function releaseDependents(deps: AppDeps, wt: WriteTarget, taskId: string): Promise<void> {
  const prs = new Set<number>();
  await release(deps, wt, taskId, prs);
  for (const pr of prs) await refreshSticky(deps, wt, pr);
}

async function release(deps: AppDeps, wt: WriteTarget, taskId: string, prs: Set<number>): Promise<void> {
  const found = await getTask(deps.db, taskId);
  if (!found) return;
  const upstream = found.task;
  if (upstream.state === "PENDING" || upstream.state === "RUNNING") return;
  const waiting = await pendingDependents(deps.db, upstream.id);
  if (waiting.length === 0) return;
  if (upstream.state === "SUCCEEDED") {
    for (const t of waiting) {
      const all = await getTasks(deps.db, t.depends_on);
      if (!all.every((d) => d.state === "SUCCEEDED")) continue;
      // Still waiting for its stack's lock: the lock queue starts it (src/jobs/lock-queue.ts).
      if (await isWaitingForLock(deps.db, t.id)) continue;
      const owner = await getTask(deps.db, t.id);
      await deps.queues.tasks.add("preview", { taskId: t.id, workflowId: t.workflow_id, deliveryId: owner?.workflow.delivery_id ?? null, ...traceField() }, { ...TASK_JOB_OPTIONS, jobId: t.job_id });
    }
    return;
  }
  const cancelled = upstream.state === "CANCELLED";
  const why = notRunBecause(upstream);
  for (const t of waiting) {
    const steps = upstream.kind === "checks" ? skippedSteps(upstream.steps, t) : skippedSteps([], t);
    const ended = await finishTask(deps.db, t.id, { state: cancelled ? "CANCELLED" : "FAILED", steps, error: why });
    if (ended === null) continue; // it moved on meanwhile
    const owner = await getTask(deps.db, t.id);
    if (!owner) continue;
    prs.add(owner.workflow.pr_number);
    await deps.writes.checkRun(wt, t.id, cancelled ? cancelledOutput(t.stack, why) : completedOutput(t.stack, { succeeded: false, steps, error: why }));
    await auditWorkflow(deps.db, owner.workflow, cancelled ? "preview.cancelled" : "preview.failed", { stack: t.stack, head_sha: owner.workflow.head_sha, error: why, [upstream.kind === "checks" ? "checks_task" : "upstream_task"]: upstream.id }, t.id);
    await deps.queues.tasks.remove(t.job_id).catch(() => 0);
    // A merge group's preview that did not run still ends the group's wait for a verdict.
    const group = owner.workflow.config.branch?.purpose === "merge-queue" ? owner.workflow.config.branch.group : undefined;
    if (group) await decideMergeGroupIfDone(deps, group);
    await release(deps, wt, t.id, prs);
  }
}

/** Why a preview waiting for `upstream` did not run. */
function notRunBecause(upstream: TaskRow): string {
  if (upstream.kind === "checks") {
    if (upstream.state === "CANCELLED") return `not run: its checks were cancelled (${upstream.stack})`;
    const failedStep = upstream.steps.find((s) => s.status !== "succeeded" && s.status !== "skipped");
    return `not run: ${failedStep ? `${failedStep.name} failed` : "the checks failed"} in the shared ${upstream.stack}`;
  }
  // The upstream may itself not have run: name it as the one this stack depends on.
  if (upstream.error?.startsWith("not run: ")) return `not run: ${upstream.stack} did not run either (${upstream.error.slice("not run: ".length)})`;
  return upstream.state === "CANCELLED" ? `not run: ${upstream.stack} was cancelled` : `not run: ${upstream.stack} failed`;
}

/** The checks' own results (none for an upstream preview), then the preview's remaining steps as skipped. */
function skippedSteps(checkSteps: StepResult[], preview: TaskRow): StepResult[] {
  const names = new Set(checkSteps.map((s) => s.name));
  const rest = (preview.steps.length ? preview.steps : [{ name: "preview" as const }])
    .filter((s) => !names.has(s.name))
    .map((s): StepResult => ({ name: s.name, status: "skipped", exitCode: null, durationMs: null, outputTail: "", truncated: false }));
  return [...checkSteps, ...rest];
}
