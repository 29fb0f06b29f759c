/**
 * Queued locks: a preview command whose stacks are not all free for its pull request waits,
 * for all of them, in each stack's FIFO queue (lock_waits) instead of being refused. When a
 * lock is released (merge, close, `/agent unlock`, expiry), the request at the head of that
 * stack's queue gets all its locks in one transaction if they are all free for it, and its
 * previews start — each once the previews it depends on have succeeded — and the others hear
 * their new positions. Calling this when nothing was released is harmless: the promotion only
 * takes a free lock (src/connectors/store/locks.ts).
 */
import { auditWorkflow } from "../connectors/store/audit.js";
import { getStackLock, lockQueue, promoteLockWaiter } from "../connectors/store/locks.js";
import { getTask, getTasks } from "../connectors/store/workflows.js";
import { TASK_JOB_OPTIONS } from "../connectors/queues.js";
import type { AppDeps } from "../deps.js";
import { traceField } from "../ops/tracing.js";
import { lockWaitOutput, queuedOutput } from "../render/check-run.js";
import { targetOf } from "./task-run.js";

export async function startLockQueue(deps: AppDeps, repo: string, stacks: readonly string[]): Promise<void> {
  for (const stack of stacks) {
    const promoted = await promoteLockWaiter(deps.db, repo, stack, deps.config.locks.ttlSeconds);
    // The request's other stacks' queues moved too.
    const moved = new Set([stack, ...(promoted?.stacks ?? [])]);
    if (promoted) {
      for (const taskId of promoted.taskIds) {
        const found = await getTask(deps.db, taskId);
        if (!found || found.task.state !== "PENDING") continue;
        const { task, workflow } = found;
        await auditWorkflow(deps.db, workflow, "lock.acquired", { stack: task.stack, from_queue: true, with: promoted.stacks }, task.id);
        await deps.writes.checkRun(targetOf(workflow), task.id, queuedOutput(task.stack, workflow.head_sha, workflow.requested_by), { cls: "ack" });
        // Its dependencies (shared checks, upstream stacks) still come first; when they
        // succeed they enqueue it (src/jobs/dependents.ts), no longer held by the queue.
        const deps_ = await getTasks(deps.db, task.depends_on);
        if (!deps_.every((d) => d.state === "SUCCEEDED")) continue;
        await deps.queues.tasks.add("preview", { taskId: task.id, workflowId: task.workflow_id, deliveryId: workflow.delivery_id, ...traceField() }, { ...TASK_JOB_OPTIONS, jobId: task.job_id });
      }
    }
    for (const s of moved) await tellPositions(deps, repo, s);
  }
}

/** Every live waiter's check run shows its current place in the queue (a progress write: the newest wins). */
export async function tellPositions(deps: AppDeps, repo: string, stack: string): Promise<void> {
  const queue = await lockQueue(deps.db, repo, stack);
  if (queue.length === 0) return;
  const holder = await getStackLock(deps.db, repo, stack);
  for (const w of queue) {
    const found = await getTask(deps.db, w.taskId);
    if (!found) continue;
    const { workflow } = found;
    await deps.writes.checkRun(targetOf(workflow), w.taskId, lockWaitOutput(stack, workflow.head_sha, workflow.requested_by, { holderPr: holder?.prNumber ?? null, position: w.position }), { cls: "progress" });
  }
}
