import type { Job } from "bullmq";
import type { Db } from "../connectors/store/db.js";
import { withSpan } from "../ops/tracing.js";
import type { TaskJobData } from "../connectors/queues.js";

/**
 * Runs a task job in a `task.run` span, the child of the span that enqueued it (the carrier
 * in the job data). The task's kind, stack and final state are read back from its row once
 * the job returns, and only when the span is recorded (tracing on): no query otherwise.
 */
export function runTaskInSpan<T>(db: Db, job: Job<TaskJobData>, run: () => Promise<T>): Promise<T> {
  const attrs = { "task.id": job.data.taskId, "task.kind": job.name, "workflow.id": job.data.workflowId, "job.attempt": job.attemptsMade + 1 };
  return withSpan(
    "task.run",
    attrs,
    async (span) => {
      let outcome = "error";
      try {
        const result = await run();
        outcome = "done";
        return result;
      } finally {
        if (span.isRecording()) {
          try {
            const { rows } = await db.query<{ kind: string; stack: string; state: string }>("SELECT kind, stack, state FROM tasks WHERE id = $1", [job.data.taskId]);
            const row = rows[0];
            if (row) {
              span.setAttributes({ "task.kind": row.kind, "task.stack": row.stack, "task.state": row.state });
              if (outcome === "done") outcome = row.state.toLowerCase();
            }
          } catch {
            // best effort: the span still ends with what is known
          }
          span.setAttribute("task.outcome", outcome);
        }
      }
    },
    { parent: job.data.trace },
  );
}
