/** What every task processor passes around: one context object instead of positional parameters. */
import type { Logger } from "pino";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { GitHub, RepoRef } from "../connectors/github.js";
import type { TaskRow, WorkflowRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";

/** One task being run: where it reports (GitHub, the repository), what it runs and its log. */
export interface TaskRun {
  deps: AppDeps;
  gh: GitHub;
  repo: RepoRef;
  workflow: WorkflowRow;
  task: TaskRow;
  stack: ResolvedStack;
  log: Logger;
}

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
