import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { UnrecoverableError, WaitingError, type Job } from "bullmq";
import type { ResolvedStack, StepSpec } from "../config/repo-config.js";
import { CheckoutError, checkoutAtSha } from "../connectors/git.js";
import { createCheckRun, installationToken, updateCheckRun, type GitHub, type RepoRef } from "../connectors/github.js";
import { Sandbox } from "../connectors/sandbox.js";
import { appendAudit } from "../connectors/store/audit.js";
import { claimTask, finishTask, getTask, releaseTask, saveTaskSteps, setTaskCheckRun, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { completedOutput, previewCheckRunName, progressOutput } from "../render/check-run.js";
import { refreshStickyComment } from "./sticky.js";
import type { StepResult, TaskJobData } from "./types.js";

const CHECKOUT_TIMEOUT_MS = 5 * 60_000;

/** The worker is shutting down past its grace period: the task goes back to the queue. */
export class HandBackError extends Error {
  override name = "HandBackError";
}

export interface TaskRunOptions {
  /** BullMQ's lock token for this job, needed to move it back to waiting. */
  token?: string | undefined;
  /** Aborted when the worker must stop now: running steps are killed and the job handed back. */
  shutdown?: AbortSignal | undefined;
}

/** The task cannot succeed by retrying (bad SHA, missing stack): fail it once, clearly. */
export class TaskUserError extends UnrecoverableError {
  override name = "TaskUserError";
}

function repoRef(workflow: WorkflowRow): RepoRef {
  const [owner, repo] = workflow.repo.split("/") as [string, string];
  return { owner, repo };
}

function stepArgv(step: StepSpec): string[] {
  // A script comes from the default branch's config; user text never reaches it (invariant 4).
  return step.argv ?? ["sh", "-c", step.script ?? "true"];
}

/** Throttles check-run writes while output streams in (GitHub's secondary rate limits). */
function throttled(intervalMs: number, fn: () => Promise<void>): { poke(): void; flush(): Promise<void> } {
  let last = 0;
  let pending: Promise<void> = Promise.resolve();
  let scheduled = false;
  return {
    poke() {
      if (scheduled || Date.now() - last < intervalMs) return;
      scheduled = true;
      pending = pending
        .then(fn)
        .catch(() => {}) // progress updates are best effort; the final update is not
        .finally(() => {
          last = Date.now();
          scheduled = false;
        });
    },
    flush: () => pending,
  };
}

export async function processPreviewTask(job: Job<TaskJobData>, deps: AppDeps, opts: TaskRunOptions = {}): Promise<void> {
  const found = await getTask(deps.db, job.data.taskId);
  if (!found) throw new TaskUserError(`task ${job.data.taskId} does not exist`);
  const log = deps.log.child({ task_id: found.task.id, workflow_id: found.workflow.id, delivery_id: job.data.deliveryId });
  const task = await claimTask(deps.db, found.task.id);
  if (!task) {
    log.info({ state: found.task.state }, "task no longer runnable; skipping");
    return;
  }
  const { workflow } = found;
  const gh = await deps.github(Number(workflow.installation_id));
  const r = repoRef(workflow);
  const stack = workflow.config.stacks.find((s) => s.name === task.stack);

  const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  try {
    if (!stack) throw new TaskUserError(`stack ${task.stack} is not in the workflow's configuration`);
    const checkRunId = await ensureCheckRun(deps, gh, r, workflow, task);
    await runPreview(deps, gh, r, workflow, task, stack, checkRunId, log, opts.shutdown);
  } catch (err) {
    if (err instanceof HandBackError) {
      log.warn("worker stopping: handing the task back to the queue");
      await releaseTask(deps.db, task.id);
      await job.moveToWait(opts.token);
      throw new WaitingError();
    }
    const unrecoverable = err instanceof UnrecoverableError;
    if (unrecoverable || finalAttempt) {
      const message = unrecoverable ? (err as Error).message : `internal error after ${job.attemptsMade + 1} attempts: ${(err as Error).message}`;
      log.warn({ err }, "preview task failed");
      await failTask(deps, gh, r, workflow, task, message).catch((e) => log.error({ err: e }, "could not record the failure"));
    } else {
      log.warn({ err, attempt: job.attemptsMade + 1 }, "preview task attempt failed; will retry");
    }
    throw err;
  }
}

async function ensureCheckRun(deps: AppDeps, gh: GitHub, r: RepoRef, workflow: WorkflowRow, task: TaskRow): Promise<number> {
  if (task.check_run_id) return Number(task.check_run_id);
  const id = await createCheckRun(gh, r, previewCheckRunName(task.stack), workflow.head_sha, task.id, { status: "in_progress" });
  await setTaskCheckRun(deps.db, task.id, id);
  task.check_run_id = String(id);
  return id;
}

async function runPreview(
  deps: AppDeps,
  gh: GitHub,
  r: RepoRef,
  workflow: WorkflowRow,
  task: TaskRow,
  stack: ResolvedStack,
  checkRunId: number,
  log: AppDeps["log"],
  shutdown?: AbortSignal,
): Promise<void> {
  const limits = deps.config.sandbox;
  const steps: StepResult[] = stack.steps
    .filter((s) => s.name !== "deploy")
    .map((s) => ({ name: s.name, status: "pending", exitCode: null, durationMs: null, outputTail: "", truncated: false }));
  await updateCheckRun(gh, r, checkRunId, { ...progressOutput(stack.name, steps), startedAt: new Date().toISOString() });

  const workspace = join(limits.workspaceRoot, `${task.id}-${task.attempts}`);
  await mkdir(limits.workspaceRoot, { recursive: true, mode: 0o700 });
  const progress = throttled(deps.config.worker.checkRunUpdateIntervalMs, async () => {
    await updateCheckRun(gh, r, checkRunId, progressOutput(stack.name, steps));
  });
  try {
    await checkout(gh, workflow, workspace);
    await runSteps(deps, task, stack, workflow, workspace, steps, progress, log, shutdown);
  } finally {
    // Container and workspace go before anything is reported: nothing outlives the task.
    await rm(workspace, { recursive: true, force: true }).catch(() => {});
  }
  await progress.flush();
  if (shutdown?.aborted) throw new HandBackError("worker shutting down");
  const succeeded = steps.every((s) => s.status === "succeeded");
  const error = steps.some((s) => s.status === "timed_out")
    ? "a step ran past its time limit and was stopped"
    : steps.some((s) => s.truncated)
      ? "a step printed more than the sandbox output limit and was stopped"
      : null;
  await finishTask(deps.db, task.id, { state: succeeded ? "SUCCEEDED" : "FAILED", steps, error });
  await updateCheckRun(gh, r, checkRunId, completedOutput(stack.name, { succeeded, steps, error }));
  await appendAudit(deps.db, {
    actor: "agent",
    action: succeeded ? "preview.succeeded" : "preview.failed",
    repo: workflow.repo,
    prNumber: workflow.pr_number,
    workflowId: workflow.id,
    taskId: task.id,
    detail: { stack: stack.name, head_sha: workflow.head_sha, steps: steps.map((s) => ({ name: s.name, status: s.status, exit_code: s.exitCode })) },
  });
  await refreshStickyComment(deps.db, gh, r, workflow.pr_number, deps.config.github.webBaseUrl);
}

async function checkout(gh: GitHub, workflow: WorkflowRow, workspace: string): Promise<void> {
  try {
    await checkoutAtSha({
      cloneUrl: workflow.config.cloneUrl,
      sha: workflow.head_sha,
      token: await installationToken(gh),
      dest: workspace,
      timeoutMs: CHECKOUT_TIMEOUT_MS,
    });
  } catch (err) {
    if (err instanceof CheckoutError && !err.transient) throw new TaskUserError(err.message);
    throw err;
  }
}

/** Runs the steps in order in one fresh container; a failed step skips the rest. Mutates `steps`. */
async function runSteps(
  deps: AppDeps,
  task: TaskRow,
  stack: ResolvedStack,
  workflow: WorkflowRow,
  workspace: string,
  steps: StepResult[],
  progress: { poke(): void },
  log: AppDeps["log"],
  shutdown?: AbortSignal,
): Promise<void> {
  const limits = deps.config.sandbox;
  const sandbox = await Sandbox.start(deps.docker, {
    image: workflow.config.image,
    workspaceDir: workspace,
    workdir: stack.dir,
    taskId: task.id,
    env: {
      CI: "true",
      HOME: "/tmp",
      AGENT_STACK: stack.name,
      AGENT_HEAD_SHA: workflow.head_sha,
      AGENT_PR_NUMBER: String(workflow.pr_number),
      AGENT_REPOSITORY: workflow.repo,
    },
    limits: { memoryMb: limits.memoryMb, cpus: limits.cpus, pids: limits.pids, outputLimitBytes: limits.outputLimitBytes },
  });
  const stopNow = () => void sandbox.kill();
  shutdown?.addEventListener("abort", stopNow);
  try {
    const deadline = Date.now() + limits.timeoutSeconds * 1000;
    const specs = stack.steps.filter((s) => s.name !== "deploy");
    let failed = false;
    for (const [i, spec] of specs.entries()) {
      const step = steps[i]!;
      if (shutdown?.aborted) return;
      if (failed) {
        // Once a step fails (or the container was killed) the rest would not mean anything.
        step.status = "skipped";
        continue;
      }
      step.status = "running";
      progress.poke();
      const timeoutMs = Math.max(1000, Math.min(deadline - Date.now(), (spec.timeoutSeconds ?? Infinity) * 1000));
      let live = "";
      const res = await sandbox.exec(stepArgv(spec), {
        timeoutMs,
        onOutput: (chunk) => {
          live = (live + chunk).slice(-8192);
          step.outputTail = live;
          progress.poke();
        },
      });
      step.outputTail = res.tail;
      step.truncated = res.outputLimitExceeded;
      step.durationMs = res.durationMs;
      step.exitCode = res.exitCode;
      step.status = res.timedOut ? "timed_out" : res.exitCode === 0 && !res.outputLimitExceeded ? "succeeded" : "failed";
      failed = step.status !== "succeeded";
      await saveTaskSteps(deps.db, task.id, steps);
      log.info({ step: step.name, status: step.status, exit_code: step.exitCode, duration_ms: step.durationMs }, "step finished");
    }
  } finally {
    shutdown?.removeEventListener("abort", stopNow);
    await sandbox.remove().catch((err) => log.error({ err }, "could not remove sandbox container"));
  }
}

async function failTask(deps: AppDeps, gh: GitHub, r: RepoRef, workflow: WorkflowRow, task: TaskRow, message: string): Promise<void> {
  const current = await getTask(deps.db, task.id);
  const steps = current?.task.steps ?? [];
  await finishTask(deps.db, task.id, { state: "FAILED", steps, error: message });
  const checkRunId = current?.task.check_run_id ? Number(current.task.check_run_id) : await ensureCheckRun(deps, gh, r, workflow, task);
  await updateCheckRun(gh, r, checkRunId, completedOutput(task.stack, { succeeded: false, steps, error: message }));
  await appendAudit(deps.db, {
    actor: "agent",
    action: "preview.failed",
    repo: workflow.repo,
    prNumber: workflow.pr_number,
    workflowId: workflow.id,
    taskId: task.id,
    detail: { stack: task.stack, head_sha: workflow.head_sha, error: message },
  });
  await refreshStickyComment(deps.db, gh, r, workflow.pr_number, deps.config.github.webBaseUrl);
}
