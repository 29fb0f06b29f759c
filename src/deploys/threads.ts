/** Where a workflow's outcome is told: its own thread, or each pull request of a merge group (which has no thread). */
import type { WriteTarget } from "../connectors/outbox/writes.js";
import type { WorkflowRow } from "../connectors/store/workflows.js";

export function threadsOf(workflow: WorkflowRow): number[] {
  const branch = workflow.config.branch;
  return branch?.purpose === "merge-queue" ? (branch.prs ?? []) : [workflow.pr_number];
}

/** A comment in every thread of the workflow; with a key, each thread's is sent once. */
export async function commentThreads(
  writes: { comment(t: WriteTarget, issue: number, body: string, o?: { idempotencyKey?: string }): Promise<unknown> },
  workflow: WorkflowRow,
  body: string,
  key?: string,
): Promise<void> {
  const [owner, repo] = workflow.repo.split("/") as [string, string];
  const target: WriteTarget = { installationId: Number(workflow.installation_id), repo: { owner, repo } };
  const threads = threadsOf(workflow);
  for (const n of threads) await writes.comment(target, n, body, key ? { idempotencyKey: threads.length === 1 && n === workflow.pr_number ? key : `${key}:${n}` } : {});
}
