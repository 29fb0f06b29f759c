import type { WriteTarget } from "../connectors/outbox/writes.js";
import { appendAudit } from "../connectors/store/audit.js";
import type { TaskRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { cancelledOutput } from "../render/check-run.js";
import { refreshSticky } from "./sticky.js";
import { releaseDependents } from "./dependents.js";
import { startLockQueue } from "./lock-queue.js";

/**
 * After tasks were marked CANCELLED in the database: drop their queued jobs, stop the running
 * ones wherever they run, close their check runs as cancelled, and refresh the PR comment.
 */
export async function announceCancelledPreviews(
  deps: AppDeps,
  t: WriteTarget,
  prNumber: number,
  tasks: TaskRow[],
  reason: string,
  actor: string,
): Promise<void> {
  if (tasks.length === 0) return;
  for (const t of tasks) {
    // A running job is locked by its worker and cannot be removed; the signal below stops it.
    await deps.queues.tasks.remove(t.job_id).catch(() => 0);
  }
  // Running ones stop wherever they run; for queued ones the message is simply not heard.
  await deps.cancellation?.cancel(tasks.map((t) => t.id));
  // Keyed by task: a check run still waiting in the outbox to be created is created cancelled.
  for (const task of tasks) await deps.writes.checkRun(t, task.id, cancelledOutput(task.stack, reason));
  // Previews of other stacks waiting for these (depends_on) end too, saying why.
  for (const task of tasks) await releaseDependents(deps, t, task.id);
  await appendAudit(deps.db, {
    actor,
    action: "preview.cancelled",
    repo: `${t.repo.owner}/${t.repo.repo}`,
    prNumber,
    detail: { reason, tasks: tasks.map((t) => ({ id: t.id, stack: t.stack })) },
  });
  // Cancelled waiters left their lock queues: the others move up.
  const repo = `${t.repo.owner}/${t.repo.repo}`;
  await startLockQueue(deps, repo, [...new Set(tasks.filter((x) => x.kind === "preview").map((x) => x.stack))]);
  await refreshSticky(deps, t, prNumber);
}
