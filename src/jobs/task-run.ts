/** How a task processor is run (its options) and where its repository is. The run itself: TaskRun in src/deps.ts. */
import type { WriteTarget } from "../connectors/outbox/writes.js";
import type { RepoRef } from "../connectors/github.js";
import type { WorkflowRow } from "../connectors/store/workflows.js";

export interface TaskRunOptions {
  /** BullMQ's lock token for this job, needed to move it back to waiting. */
  token?: string | undefined;
  /** Aborted when the worker must stop now: running steps are killed and the job handed back. */
  shutdown?: AbortSignal | undefined;
}

export function repoRef(workflow: WorkflowRow): RepoRef {
  const [owner, repo] = workflow.repo.split("/") as [string, string];
  return { owner, repo };
}

/** Where a workflow's GitHub writes go (its installation and repository). */
export function targetOf(workflow: WorkflowRow): WriteTarget {
  return { installationId: Number(workflow.installation_id), repo: repoRef(workflow) };
}

