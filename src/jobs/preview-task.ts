import { UnrecoverableError, WaitingError, type Job } from "bullmq";
import type { ResolvedStack } from "../config/repo/resolve.js";
import { rm } from "node:fs/promises";
import { CheckoutError, checkoutAtSha } from "../connectors/git.js";
import { createCheckRun, installationToken, updateCheckRun, type GitHub, type RepoRef } from "../connectors/github.js";
import { egressRulesFor, type EgressRule } from "../approval/egress.js";
import type { CredentialRequest, IssuedCredentials } from "../connectors/credentials.js";
import { Redactor } from "../connectors/redact.js";
import { CredentialError, VaultUnavailableError } from "../connectors/vault/errors.js";
import { afterBranchPreview } from "../deploys/mainline.js";
import { evaluatePlanPolicy, type PlanDecision } from "../approval/plan-policy.js";
import { mergePlanPolicy } from "../config/plan-policy.js";
import { serverPlanPolicyFor } from "../config/plan-policy-config.js";
import { savePlanDecision, savePreviewPlan } from "../connectors/store/plans.js";
import { runStep, type StepRun } from "./engine-steps.js";
import { checksAsStack } from "../config/checks.js";
import { releaseDependents } from "./dependents.js";
import type { PreviewOutcome } from "../plan/types.js";
import { acquireStackLock } from "../connectors/store/locks.js";
import { saveStepLog } from "../connectors/store/logs.js";
import { headTail } from "../render/markdown.js";
import { parseLintAnnotations } from "../render/annotations.js";
import { SandboxIntegrityError, WorkspaceFullError, type LimitEvents, type Sandbox } from "../connectors/sandbox.js";
import { decideRuntime } from "../approval/runtimes.js";
import { appendAudit } from "../connectors/store/audit.js";
import { claimTask, finishTask, getTask, isTaskCancelled, releaseTask, getTasks, saveTaskSteps, setTaskCheckRun, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { cancelledOutput, checksCheckRunName, completedOutput, previewCheckRunName, progressOutput } from "../render/check-run.js";
import { taskLogUrl } from "../web/log-links.js";
import { observeStep, observeTaskEnd } from "../web/metrics.js";
import { refreshSticky } from "./sticky.js";
import type { StepResult } from "../domain/steps.js";
import type { TaskJobData } from "../connectors/queues.js";

const CHECKOUT_TIMEOUT_MS = 5 * 60_000;
/** Output kept with the task for rendering (head and tail); the full log is stored apart. */
const STORED_OUTPUT_CHARS = 60_000;
const LIVE_OUTPUT_CHARS = 16_000;

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

/** The task was cancelled (a newer commit) while it ran: its sandbox was stopped. */
export class TaskCancelledError extends Error {
  override name = "TaskCancelledError";
}

/** The task cannot succeed by retrying (bad SHA, missing stack): fail it once, clearly. */
export class TaskUserError extends UnrecoverableError {
  override name = "TaskUserError";
}

export function repoRef(workflow: WorkflowRow): RepoRef {
  const [owner, repo] = workflow.repo.split("/") as [string, string];
  return { owner, repo };
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
    // A checks job retried after its worker died between finishing and releasing: release now.
    if (found.task.kind === "checks") {
      const gh = await deps.github(Number(found.workflow.installation_id));
      await releaseDependents(deps, gh, repoRef(found.workflow), found.task.id);
    }
    // A retry after the task ended but before its report reached GitHub (a failed update, a
    // dead worker): the sticky comment is rendered from the database again, so it does not stay
    // "running". Idempotent: it edits the same comment.
    if (found.task.finished_at) {
      const gh = await deps.github(Number(found.workflow.installation_id));
      await refreshSticky(deps, gh, repoRef(found.workflow), found.workflow.pr_number);
    }
    return;
  }
  const { workflow } = found;
  const r = repoRef(workflow);
  const group = task.kind === "checks" ? workflow.config.checks?.find((g) => g.label === task.stack) : undefined;
  const stack = task.kind === "checks" ? (group ? checksAsStack(group) : undefined) : workflow.config.stacks.find((s) => s.name === task.stack);

  const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  let gh: GitHub | null = null;
  // Stop the steps on shutdown (hand back) or on cancellation from any worker (give up).
  const cancel = deps.cancellation?.watch(task.id);
  const stop = AbortSignal.any([opts.shutdown, cancel?.signal].filter((s): s is AbortSignal => Boolean(s)));
  try {
    gh = await deps.github(Number(workflow.installation_id));
    if (!stack) throw new TaskUserError(`stack ${task.stack} is not in the workflow's configuration`);
    const checkRunId = await ensureCheckRun(deps, gh, r, workflow, task);
    await runPreview(deps, gh, r, workflow, task, stack, checkRunId, log, stop);
  } catch (err) {
    if (err instanceof TaskCancelledError) {
      log.info("task cancelled while running; sandbox stopped");
      observeTaskEnd(deps.metrics, task.kind, "cancelled", task.started_at);
      if (gh) {
        const current = await getTask(deps.db, task.id);
        const id = current?.task.check_run_id;
        const error = current?.task.error;
        const why = !error || error === "superseded by a newer commit" ? "Superseded by a newer commit" : `Cancelled (${error})`;
        if (id) await updateCheckRun(gh, r, Number(id), cancelledOutput(task.stack, `${why}; the running steps were stopped.`)).catch(() => {});
        await refreshSticky(deps, gh, r, workflow.pr_number).catch(() => {});
      }
      return;
    }
    if (err instanceof HandBackError) {
      log.warn("worker stopping: handing the task back to the queue");
      await releaseTask(deps.db, task.id);
      await job.moveToWait(opts.token);
      throw new WaitingError();
    }
    const unrecoverable = err instanceof UnrecoverableError;
    if (unrecoverable || finalAttempt) {
      const message = unrecoverable
        ? (err as Error).message
        : err instanceof CredentialError
          ? `this task's credentials could not be issued after ${job.attemptsMade + 1} attempts (${err.message}); nothing was run`
          : `internal error after ${job.attemptsMade + 1} attempts: ${(err as Error).message}`;
      log.warn({ err }, "preview task failed");
      if (gh) await failTask(deps, gh, r, workflow, task, message).catch((e) => log.error({ err: e }, "could not record the failure"));
      // Without a GitHub client (installation token refused) at least the record is final.
      else if ((await finishTask(deps.db, task.id, { state: "FAILED", steps: [], error: message })) !== null) observeTaskEnd(deps.metrics, task.kind, "failed", task.started_at);
    } else {
      log.warn({ err, attempt: job.attemptsMade + 1 }, "preview task attempt failed; will retry");
    }
    throw err;
  } finally {
    cancel?.release();
  }
}

async function ensureCheckRun(deps: AppDeps, gh: GitHub, r: RepoRef, workflow: WorkflowRow, task: TaskRow): Promise<number> {
  if (task.check_run_id) return Number(task.check_run_id);
  const name = task.kind === "checks" ? checksCheckRunName(task.stack) : previewCheckRunName(task.stack);
  const id = await createCheckRun(gh, r, name, workflow.head_sha, task.id, {
    status: "in_progress",
    detailsUrl: taskLogUrl(deps.config, task.id),
  });
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
  const steps: StepResult[] = stack.steps
    .filter((s) => s.name !== "deploy")
    .map((s) => ({ name: s.name, status: "pending", exitCode: null, durationMs: null, outputTail: "", truncated: false }));
  // Steps the shared checks already ran for this commit are shown with their results, not rerun.
  if (task.depends_on.length > 0) {
    const done = (await getTasks(deps.db, task.depends_on)).filter((t) => t.state === "SUCCEEDED").flatMap((t) => t.steps);
    for (const step of steps) {
      const ran = done.find((d) => d.name === step.name && d.status === "succeeded");
      if (ran) Object.assign(step, ran);
    }
  }
  await updateCheckRun(gh, r, checkRunId, { ...progressOutput(stack.name, steps), startedAt: new Date().toISOString() });

  const progress = throttled(deps.config.worker.checkRunUpdateIntervalMs, async () => {
    await updateCheckRun(gh, r, checkRunId, progressOutput(stack.name, steps));
  });
  // A fork's code is untrusted: no egress, no credentials, the untrusted runtime (invariant 3).
  const fork = workflow.config.fork === true;
  const egressRules = fork ? [] : egressRulesFor(deps.config.sandbox.egress.allowlist, workflow.repo, stack.name);
  const network = egressRules.length > 0 ? deps.config.sandbox.egress.network : undefined;
  const runtime = sandboxRuntime(deps, stack, fork, egressRules.length > 0);
  const { sandbox, warm } = await deps.sandboxes.acquire(workflow.config.image, network, runtime);
  log.info({ warm, container: sandbox.container.id.slice(0, 12), runtime: runtime ?? "default", fork }, "sandbox acquired");
  let outcome: StepsOutcome = { lintOutput: null, plan: null, planHash: null, integrity: false };
  try {
    await checkout(gh, workflow, sandbox);
    outcome = await runSteps(deps, sandbox, stack, workflow, task, steps, progress, log, shutdown, egressRules);
  } finally {
    deps.egress?.revoke(task.id);
    // Container and workspace go before anything is reported: nothing outlives the task.
    await sandbox.destroy().catch((err) => log.error({ err }, "could not remove the sandbox"));
  }
  await progress.flush();
  // The database says whether this was a cancellation (a push) or a shutdown (hand back).
  if (await isTaskCancelled(deps.db, task.id)) throw new TaskCancelledError("cancelled");
  if (shutdown?.aborted) throw new HandBackError("worker shutting down");
  const succeeded = steps.every((s) => s.status === "succeeded");
  const error = steps.find((s) => s.reason)?.reason ?? null;
  // The policy's decision is stored before the task reads as SUCCEEDED: the gate never sees a
  // finished preview without it.
  let decision: PlanDecision | null = null;
  if (succeeded && task.kind === "preview" && outcome.plan) {
    const serverPolicy = serverPlanPolicyFor(deps.config.planPolicy, workflow.repo, stack.name);
    if (serverPolicy || stack.policy) {
      decision = evaluatePlanPolicy(mergePlanPolicy(serverPolicy, stack.policy ?? undefined), outcome.plan);
      await savePlanDecision(deps.db, task.id, decision);
    }
  }
  if ((await finishTask(deps.db, task.id, { state: succeeded ? "SUCCEEDED" : "FAILED", steps, error })) !== null) {
    observeTaskEnd(deps.metrics, task.kind, succeeded ? "succeeded" : "failed", task.started_at);
  }
  // A branch preview (rollback) is of the default branch: it takes no PR's lock and offers no buttons.
  const branch = workflow.kind === "branch";
  if (succeeded && task.kind === "preview" && !branch) await takeLock(deps, workflow, stack.name, log);
  // Lint findings become file/line annotations on the check run (at most 50 per request).
  const lint = outcome.lintOutput === null ? null : parseLintAnnotations(outcome.lintOutput, stack.dir);
  const completed = completedOutput(stack.name, {
    succeeded,
    steps,
    error,
    logUrl: taskLogUrl(deps.config, task.id),
    plan: outcome.plan,
    planHash: outcome.planHash,
    policy: decision,
    ...(lint ? { annotations: lint.annotations, annotationsTotal: lint.total } : {}),
  });
  // A successful preview with a plan offers the gate as buttons; a click goes through the same checks as a comment.
  await updateCheckRun(gh, r, checkRunId, succeeded && task.kind === "preview" && outcome.planHash && !branch ? { ...completed, actions: PREVIEW_ACTIONS } : completed);
  await appendAudit(deps.db, {
    actor: "agent",
    action: `${task.kind === "checks" ? "checks" : "preview"}.${succeeded ? "succeeded" : "failed"}`,
    repo: workflow.repo,
    prNumber: workflow.pr_number,
    workflowId: workflow.id,
    taskId: task.id,
    detail: {
      stack: stack.name,
      head_sha: workflow.head_sha,
      plan_hash: outcome.planHash,
      ...(outcome.plan?.engine === "pulumi" ? { changes: outcome.plan.summary } : {}),
      ...(decision ? { policy: { decision: decision.decision, rules: decision.findings.map((f) => f.rule), cost_change_usd: decision.costChangeUsd } } : {}),
      steps: steps.map((s) => ({ name: s.name, status: s.status, exit_code: s.exitCode, reason: s.reason ?? null })),
      ...(outcome.integrity ? { integrity_failed: true } : {}),
      ...(fork ? { fork: true, runtime: runtime ?? "default" } : {}),
    },
  });
  if (branch) {
    const ended = await getTask(deps.db, task.id);
    if (ended) await afterBranchPreview(deps, gh, r, workflow, ended.task, stack, { succeeded, error, plan: outcome.plan });
    return;
  }
  await refreshSticky(deps, gh, r, workflow.pr_number);
  if (task.kind === "checks") await releaseDependents(deps, gh, r, task.id);
}

/**
 * Credentials for a task. Vault being unreachable is retried with the job; a refusal (no
 * permission, no such secret or key) will not change by retrying and fails the task at once.
 */
export async function issueCredentials(deps: AppDeps, req: CredentialRequest): Promise<IssuedCredentials> {
  try {
    return await deps.credentials.forTask(req);
  } catch (err) {
    if (err instanceof CredentialError && !(err.cause instanceof VaultUnavailableError)) {
      throw new TaskUserError(`this task's credentials could not be issued: ${err.message}; nothing was run`);
    }
    throw err;
  }
}

/** A successful preview takes (or renews) this PR's lock on the stack. */
async function takeLock(deps: AppDeps, workflow: WorkflowRow, stack: string, log: AppDeps["log"]): Promise<void> {
  const res = await acquireStackLock(deps.db, {
    repo: workflow.repo,
    stack,
    prNumber: workflow.pr_number,
    lockedBy: workflow.requested_by,
    ttlSeconds: deps.config.locks.ttlSeconds,
  });
  await appendAudit(deps.db, {
    actor: "agent",
    action: res.ok ? "lock.acquired" : "lock.contended",
    repo: workflow.repo,
    prNumber: workflow.pr_number,
    workflowId: workflow.id,
    detail: res.ok ? { stack, expires_at: res.lock.expiresAt } : { stack, holder_pr: res.holder.prNumber },
  });
  if (!res.ok) log.warn({ stack, holder_pr: res.holder.prNumber }, "stack lock taken by another PR meanwhile");
}

/**
 * Fetches exactly the workflow's commit into a short-lived directory on the worker and copies
 * it into the sandbox's workspace (an in-memory filesystem with a size limit); the worker's
 * copy is removed at once.
 */
export async function checkout(gh: GitHub, workflow: WorkflowRow, sandbox: Sandbox): Promise<void> {
  const dir = await sandbox.makeHostDir();
  try {
    await checkoutAtSha({
      cloneUrl: workflow.config.cloneUrl,
      sha: workflow.head_sha,
      token: await installationToken(gh),
      dest: dir,
      timeoutMs: CHECKOUT_TIMEOUT_MS,
    });
    await sandbox.copyIn(dir);
  } catch (err) {
    if (err instanceof CheckoutError && !err.transient) throw new TaskUserError(err.message);
    if (err instanceof WorkspaceFullError) throw new TaskUserError(`${err.message}; nothing was run`);
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The sandbox runtime of a task: the untrusted one for a fork's code, else the stack's (from
 * the default branch) when the server allows it. A refusal fails the task once, clearly.
 */
export function sandboxRuntime(deps: AppDeps, stack: ResolvedStack, untrusted: boolean, egress: boolean): string | undefined {
  const decision = decideRuntime({ untrusted, requested: stack.runtime }, deps.config.sandbox);
  if (!decision.ok) throw new TaskUserError(`this task cannot run: ${decision.message}`);
  // gVisor is registered with `--network=none`: it cannot reach the egress proxy.
  if (egress && decision.runtime === "runsc") {
    throw new TaskUserError(`stack ${stack.name} has an egress allowlist but runs under \`runsc\` (gVisor), which this server runs without any network; drop one of the two`);
  }
  return decision.runtime;
}

/** Why the sandbox stopped a step, in words a PR author can act on; null when it just failed. */
export function stopReason(
  res: { timedOut: boolean; outputLimitExceeded: boolean; exitCode: number | null; sandboxDied?: boolean },
  events: LimitEvents,
  limits: { memoryMb: number; pids: number; outputLimitBytes: number; workspaceMb?: number },
  timeoutMs: number,
): string | null {
  if (res.timedOut) return `stopped after ${Math.round(timeoutMs / 1000)} s: the step ran past its time limit`;
  if (res.outputLimitExceeded) return `stopped: the step printed more than ${limits.outputLimitBytes} bytes (the sandbox output limit)`;
  if (events.oomKills > 0) return `killed: out of memory (the sandbox limit is ${limits.memoryMb} MB)`;
  if (events.pidsLimitHits > 0) return `the step hit the sandbox's process limit (${limits.pids} processes)`;
  if (res.sandboxDied) return `the sandbox stopped while the step ran (under gVisor this happens when a step goes past the memory limit of ${limits.memoryMb} MB or the process limit)`;
  if (events.workspaceFull) return `the step filled the workspace (the sandbox's disk limit is ${limits.workspaceMb ?? "?"} MB)`;
  return null;
}

/** Only what the task is entitled to; passed per exec, so it is not in the container's config. */
export function stepEnv(workflow: WorkflowRow, stack: ResolvedStack, extra: Record<string, string>): Record<string, string> {
  return {
    CI: "true",
    HOME: "/tmp",
    AGENT_STACK: stack.name,
    AGENT_HEAD_SHA: workflow.head_sha,
    AGENT_PR_NUMBER: String(workflow.pr_number),
    AGENT_REPOSITORY: workflow.repo,
    ...(stack.engine === "pulumi" ? { PULUMI_SKIP_UPDATE_CHECK: "true" } : {}),
    ...extra,
  };
}

/** Check-run buttons on a successful preview (src/handlers/check-run.ts answers them). */
export const PREVIEW_ACTIONS = [
  { label: "Deploy", description: "Deploy this plan (/agent deploy)", identifier: "deploy" },
  { label: "Approve", description: "Approve this plan (/approve)", identifier: "approve" },
];

interface StepsOutcome {
  /** Output of a failed lint step, for check-run annotations. */
  lintOutput: string | null;
  /** The preview step's typed result and, when it succeeded, its hash. */
  plan: PreviewOutcome | null;
  planHash: string | null;
  /** The preview contradicted itself (digest vs saved plan) or a process survived being killed. */
  integrity: boolean;
}

/** Runs the steps in order in the task's container; a failed step skips the rest. Mutates `steps`. */
async function runSteps(
  deps: AppDeps,
  sandbox: Sandbox,
  stack: ResolvedStack,
  workflow: WorkflowRow,
  task: TaskRow,
  steps: StepResult[],
  progress: { poke(): void },
  log: AppDeps["log"],
  shutdown: AbortSignal | undefined,
  egressRules: EgressRule[],
): Promise<StepsOutcome> {
  const outcome: StepsOutcome = { lintOutput: null, plan: null, planHash: null, integrity: false };
  const limits = deps.config.sandbox;
  const fork = workflow.config.fork === true;
  // Secrets are registered for redaction before any step runs; nothing a step prints leaves
  // the worker unredacted (check runs, comments, database, logs).
  const redactor = new Redactor();
  let proxyEnv: Record<string, string> = {};
  if (egressRules.length > 0) {
    if (!deps.egress) throw new TaskUserError("this stack has an egress allowlist but the egress proxy is not running");
    const url = deps.egress.grant(task.id, egressRules);
    redactor.register(url);
    proxyEnv = { HTTPS_PROXY: url, HTTP_PROXY: url, https_proxy: url, http_proxy: url };
  }
  // Fetched last before the first exec, so nothing between can leak a lease. A fork's code
  // gets none at all (the sources would refuse it too).
  const issued: IssuedCredentials = fork
    ? { env: {}, release: async () => {} }
    : await issueCredentials(deps, { repo: workflow.repo, stack: stack.name, kind: "preview", taskId: task.id, fork });
  const secrets = issued.env;
  for (const value of Object.values(secrets)) redactor.register(value);
  const env = stepEnv(workflow, stack, { ...proxyEnv, ...secrets });
  const stopNow = () => void sandbox.kill();
  shutdown?.addEventListener("abort", stopNow);
  const seen: LimitEvents = { oomKills: 0, pidsLimitHits: 0 };
  try {
    const deadline = Date.now() + limits.timeoutSeconds * 1000;
    const specs = stack.steps.filter((s) => s.name !== "deploy");
    let failed = false;
    for (const [i, spec] of specs.entries()) {
      const step = steps[i]!;
      if (shutdown?.aborted) return outcome;
      if (failed || step.status === "succeeded") {
        if (!failed) continue; // already run by the shared checks
        // Once a step fails (or the container was killed) the rest would not mean anything.
        step.status = "skipped";
        continue;
      }
      step.status = "running";
      progress.poke();
      const timeoutMs = Math.max(1000, Math.min(deadline - Date.now(), (spec.timeoutSeconds ?? Infinity) * 1000));
      // The whole output, redacted as it streams; bounded by the sandbox's output limit (the
      // step is stopped beyond it), so it is kept in memory and stored once the step ends.
      let rendered = 0;
      let run: StepRun;
      try {
        run = await runStep(spec, {
          sandbox,
          stack,
          env,
          timeoutMs,
          redactor,
          onProgress: (soFar) => {
            // Re-render the live view at most a few times a second, not per chunk.
            if (Date.now() - rendered > 250) {
              rendered = Date.now();
              step.outputTail = headTail(soFar, LIVE_OUTPUT_CHARS);
              progress.poke();
            }
          },
        });
      } catch (err) {
        if (!(err instanceof SandboxIntegrityError)) throw err;
        // A process of the pull request's code survived being killed: nothing read now is trusted.
        Object.assign(step, { status: "failed", reason: `integrity check failed: ${err.message}` });
        outcome.integrity = true;
        failed = true;
        await saveTaskSteps(deps.db, task.id, steps);
        log.warn({ step: step.name }, "sandbox integrity check failed");
        continue;
      }
      const { res, output: full } = run;
      step.outputTail = headTail(full, STORED_OUTPUT_CHARS);
      await saveStepLog(deps.db, task.id, { step: step.name, content: full, truncated: res.outputLimitExceeded });
      step.truncated = res.outputLimitExceeded;
      step.durationMs = res.durationMs;
      step.exitCode = res.exitCode;
      step.status = res.timedOut ? "timed_out" : res.exitCode === 0 && !res.outputLimitExceeded && !run.failure ? "succeeded" : "failed";
      if (run.integrity) outcome.integrity = true;
      if (spec.name === "preview" && run.plan) {
        const ok = step.status === "succeeded";
        outcome.plan = run.plan;
        outcome.planHash = ok ? run.planHash : null;
        await savePreviewPlan(deps.db, task.id, { plan: run.plan, planHash: outcome.planHash, savedPlan: ok ? run.savedPlan : null });
      }
      if (spec.name === "lint" && step.status === "failed") outcome.lintOutput = full;
      failed = step.status !== "succeeded";
      if (failed && !shutdown?.aborted) {
        // Counters are cumulative per container: only what this step added counts.
        const now = res.timedOut || res.outputLimitExceeded || res.sandboxDied ? seen : await sandbox.limitEvents();
        step.reason =
          stopReason(res, { oomKills: now.oomKills - seen.oomKills, pidsLimitHits: now.pidsLimitHits - seen.pidsLimitHits, workspaceFull: now.workspaceFull === true }, limits, timeoutMs) ??
          run.failure;
        Object.assign(seen, now);
      }
      await saveTaskSteps(deps.db, task.id, steps);
      log.info({ step: step.name, status: step.status, exit_code: step.exitCode, duration_ms: step.durationMs, reason: step.reason ?? undefined }, "step finished");
      observeStep(deps.metrics, step.name, step.status, step.durationMs);
    }
  } finally {
    shutdown?.removeEventListener("abort", stopNow);
    // Dynamic leases end with the task, whatever its outcome.
    await issued.release();
  }
  return outcome;
}

async function failTask(deps: AppDeps, gh: GitHub, r: RepoRef, workflow: WorkflowRow, task: TaskRow, message: string): Promise<void> {
  const current = await getTask(deps.db, task.id);
  const steps = current?.task.steps ?? [];
  // Timed only when this ended the task (not when it failed after it had ended).
  if ((await finishTask(deps.db, task.id, { state: "FAILED", steps, error: message })) !== null) observeTaskEnd(deps.metrics, task.kind, "failed", task.started_at);
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
  if (workflow.kind === "branch") {
    const stack = workflow.config.stacks.find((s) => s.name === task.stack);
    const ended = await getTask(deps.db, task.id);
    if (stack && ended) await afterBranchPreview(deps, gh, r, workflow, ended.task, stack, { succeeded: false, error: message, plan: null });
    return;
  }
  await refreshSticky(deps, gh, r, workflow.pr_number);
  if (task.kind === "checks") await releaseDependents(deps, gh, r, task.id);
}
