import type { WriteTarget } from "../connectors/outbox/writes.js";
import { auditWorkflow } from "../connectors/store/audit.js";
import { finishTask, getTasks, getTask, pendingDependents, type TaskRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { cancelledOutput, completedOutput } from "../render/check-run.js";
import { TASK_JOB_OPTIONS } from "../connectors/queues.js";
import { traceField } from "../ops/tracing.js";
import { refreshSticky } from "./sticky.js";
import type { StepResult } from "../domain/steps.js";

/**
 * The DAG's edge: once a `checks` task has ended, the previews waiting for it move on. After
 * success, each preview whose checks have all succeeded is enqueued (its job id makes this
 * idempotent, so a retried or recovered checks job may call it again). After a failure or a
 * cancellation, the waiting previews end too, without running, showing the checks' steps.
 */
export async function releaseDependents(deps: AppDeps, wt: WriteTarget, checksTaskId: string): Promise<void> {
  const found = await getTask(deps.db, checksTaskId);
  if (!found) return;
  const checks = found.task;
  if (checks.state === "PENDING" || checks.state === "RUNNING") return;
  const waiting = await pendingDependents(deps.db, checks.id);
  if (waiting.length === 0) return;
  if (checks.state === "SUCCEEDED") {
    for (const t of waiting) {
      const all = await getTasks(deps.db, t.depends_on);
      if (!all.every((d) => d.state === "SUCCEEDED")) continue;
      const owner = await getTask(deps.db, t.id);
      await deps.queues.tasks.add("preview", { taskId: t.id, workflowId: t.workflow_id, deliveryId: owner?.workflow.delivery_id ?? null, ...traceField() }, { ...TASK_JOB_OPTIONS, jobId: t.job_id });
    }
    return;
  }
  const cancelled = checks.state === "CANCELLED";
  const failedStep = checks.steps.find((s) => s.status !== "succeeded" && s.status !== "skipped");
  const why = cancelled
    ? `not run: its checks were cancelled (${checks.stack})`
    : `not run: ${failedStep ? `${failedStep.name} failed` : "the checks failed"} in the shared ${checks.stack}`;
  const prs = new Set<number>();
  for (const t of waiting) {
    const steps = skippedSteps(checks.steps, t);
    const ended = await finishTask(deps.db, t.id, { state: cancelled ? "CANCELLED" : "FAILED", steps, error: why });
    if (ended === null) continue; // it moved on meanwhile
    const owner = await getTask(deps.db, t.id);
    if (!owner) continue;
    prs.add(owner.workflow.pr_number);
    await deps.writes.checkRun(wt, t.id, cancelled ? cancelledOutput(t.stack, why) : completedOutput(t.stack, { succeeded: false, steps, error: why }));
    await auditWorkflow(deps.db, owner.workflow, cancelled ? "preview.cancelled" : "preview.failed", { stack: t.stack, head_sha: owner.workflow.head_sha, error: why, checks_task: checks.id }, t.id);
  }
  for (const pr of prs) await refreshSticky(deps, wt, pr);
}

/** The checks' own results, then the preview's remaining steps as skipped. */
function skippedSteps(checkSteps: StepResult[], preview: TaskRow): StepResult[] {
  const names = new Set(checkSteps.map((s) => s.name));
  const rest = (preview.steps.length ? preview.steps : [{ name: "preview" as const }])
    .filter((s) => !names.has(s.name))
    .map((s): StepResult => ({ name: s.name, status: "skipped", exitCode: null, durationMs: null, outputTail: "", truncated: false }));
  return [...checkSteps, ...rest];
}
