import { membershipIn } from "../connectors/github.js";
import { UnrecoverableError, WaitingError, type Job } from "bullmq";
import { HandBackError, TaskCancelledError, TaskUserError } from "./task-errors.js";
import type { TaskRun, AppDeps } from "../deps.js";
import { repoRef, targetOf, type TaskRunOptions } from "./task-run.js";
import { withSandboxSession, type SandboxSession } from "./sandbox-session.js";
import type { GitHub } from "../connectors/github.js";
import type { WriteTarget } from "../connectors/outbox/writes.js";
import { CredentialError } from "../connectors/vault/errors.js";
import { afterMainlinePreview } from "../deploys/mainline.js";
import { decideMergeGroupIfDone } from "../deploys/merge-queue.js";
import { afterDriftPreview } from "../deploys/drift.js";
import { deployReviewAfterPreview } from "../deploys/review.js";
import { tierOf } from "../connectors/store/tiers.js";
import { describeTier } from "../approval/tiers.js";
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
import { code, headTail } from "../render/markdown.js";
import { parseLintAnnotations } from "../render/annotations.js";
import { SandboxIntegrityError, type LimitEvents } from "../connectors/sandbox.js";
import { auditWorkflow } from "../connectors/store/audit.js";
import { claimTask, finishTask, getTask, isTaskCancelled, releaseTask, getTasks, saveTaskSteps, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import { cancelledOutput, checksCheckRunName, completedOutput, previewCheckRunName, progressOutput } from "../render/check-run.js";
import { taskLogUrl } from "../web/log-links.js";
import { observeStep, observeTaskEnd } from "../web/metrics.js";
import { refreshSticky } from "./sticky.js";
import type { StepResult } from "../domain/steps.js";
import type { TaskJobData } from "../connectors/queues.js";

/** Output kept with the task for rendering (head and tail); the full log is stored apart. */
const STORED_OUTPUT_CHARS = 60_000;
const LIVE_OUTPUT_CHARS = 16_000;

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
    // A job retried after its worker died between finishing and releasing its dependents: release now.
    await releaseDependents(deps, targetOf(found.workflow), found.task.id);
    // A retry after the task ended but before its report reached the outbox (a dead worker):
    // the check run is completed and the sticky comment rendered from the database. The
    // completion's key is the one the task's own report uses, so it is sent once either way.
    if (found.task.finished_at) {
      if (found.task.state === "SUCCEEDED" || found.task.state === "FAILED") {
        await deps.writes.checkRun(targetOf(found.workflow), found.task.id, completedOutput(found.task.stack, { succeeded: found.task.state === "SUCCEEDED", steps: found.task.steps, error: found.task.error, logUrl: taskLogUrl(deps.config, found.task.id) }), {
          idempotencyKey: completionKey(found.task.id),
        });
      }
      await refreshSticky(deps, targetOf(found.workflow), found.workflow.pr_number);
    }
    return;
  }
  const { workflow } = found;
  const r = repoRef(workflow);
  const target = targetOf(workflow);
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
    await runPreview({ deps, gh, repo: r, target, workflow, task, stack, log }, stop);
  } catch (err) {
    if (err instanceof TaskCancelledError) {
      log.info("task cancelled while running; sandbox stopped");
      observeTaskEnd(deps.metrics, task.kind, "cancelled", task.started_at);
      const current = await getTask(deps.db, task.id);
      const error = current?.task.error;
      const why = !error || error === "superseded by a newer commit" ? "Superseded by a newer commit" : `Cancelled (${error})`;
      await deps.writes.checkRun(target, task.id, cancelledOutput(task.stack, `${why}; the running steps were stopped.`)).catch(() => {});
      await refreshSticky(deps, target, workflow.pr_number).catch(() => {});
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
      // The report goes through the outbox, so it needs no GitHub client now (a refused token).
      await failTask(deps, gh, target, workflow, task, message).catch((e) => log.error({ err: e }, "could not record the failure"));
    } else {
      log.warn({ err, attempt: job.attemptsMade + 1 }, "preview task attempt failed; will retry");
    }
    throw err;
  } finally {
    cancel?.release();
  }
}

/** The key of a task's final check-run update: its own report and a retry's are one write. */
const completionKey = (taskId: string) => `task:${taskId}:completed`;

/** The task's check run, with what creates it when the command's queued one never was (autoplan of a dependent, a retry). */
function checkRunIdentity(workflow: WorkflowRow, task: TaskRow): { name: string; headSha: string } {
  return { name: task.kind === "checks" ? checksCheckRunName(task.stack) : previewCheckRunName(task.stack), headSha: workflow.head_sha };
}

async function runPreview(run: TaskRun, shutdown?: AbortSignal): Promise<void> {
  const { deps, target, workflow, task, stack, log } = run;
  const identity = checkRunIdentity(workflow, task);
  const steps: StepResult[] = stack.steps
    .filter((s) => s.name !== "deploy")
    .map((s) => ({ name: s.name, status: "pending", exitCode: null, durationMs: null, outputTail: "", truncated: false }));
  // Steps the shared checks already ran for this commit are shown with their results, not rerun.
  if (task.depends_on.length > 0) {
    const done = (await getTasks(deps.db, task.depends_on)).filter((t) => t.kind === "checks" && t.state === "SUCCEEDED").flatMap((t) => t.steps);
    for (const step of steps) {
      const ran = done.find((d) => d.name === step.name && d.status === "succeeded");
      if (ran) Object.assign(step, ran);
    }
  }
  // Progress is the least urgent write: it waits in the outbox for a newer one (the result).
  await deps.writes.checkRun(target, task.id, { ...progressOutput(stack.name, steps), startedAt: new Date().toISOString(), detailsUrl: taskLogUrl(deps.config, task.id) }, { cls: "progress", identity });

  const progress = throttled(deps.config.worker.checkRunUpdateIntervalMs, async () => {
    await deps.writes.checkRun(target, task.id, progressOutput(stack.name, steps), { cls: "progress" });
  });
  // A fork's code is untrusted: no egress, no credentials, the untrusted runtime (invariant 3).
  const fork = workflow.config.fork === true;
  let runtime: string | undefined;
  const outcome: StepsOutcome = (await withSandboxSession(run, "preview", shutdown, (session) => {
    runtime = session.runtime;
    return runSteps(run, session, steps, progress, shutdown);
  })) ?? { lintOutput: null, plan: null, planHash: null, integrity: false };
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
  if (succeeded && task.kind === "preview" && !branch && stack.gate.mode !== "merge-queue") await takeLock(deps, workflow, stack.name, log);
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
  // The trust tier the task ran under (its credentials and runtime): on the check run, in its audit row.
  const tier = await tierOf(deps.db, { actor: workflow.requested_by, repo: workflow.repo, stack: stack.name, fork, teams: membershipIn(run.gh, workflow.repo, workflow.requested_by) }, deps.config.defaultTier);
  if (completed.output) completed.output = { ...completed.output, summary: `${completed.output.summary}\n\nTrust tier: ${describeTier(tier)}.` };
  // A successful preview with a plan offers the gate as buttons; a click goes through the same checks as a comment.
  await deps.writes.checkRun(target, task.id, succeeded && task.kind === "preview" && outcome.planHash && !branch ? { ...completed, actions: PREVIEW_ACTIONS } : completed, {
    identity,
    idempotencyKey: completionKey(task.id),
  });
  await auditWorkflow(deps.db, workflow, `${task.kind === "checks" ? "checks" : "preview"}.${succeeded ? "succeeded" : "failed"}`, {
    stack: stack.name,
    head_sha: workflow.head_sha,
    plan_hash: outcome.planHash,
    ...(outcome.plan?.engine === "pulumi" ? { changes: outcome.plan.summary } : {}),
    ...(decision ? { policy: { decision: decision.decision, rules: decision.findings.map((f) => f.rule), cost_change_usd: decision.costChangeUsd } } : {}),
    steps: steps.map((s) => ({ name: s.name, status: s.status, exit_code: s.exitCode, reason: s.reason ?? null })),
    ...(outcome.integrity ? { integrity_failed: true } : {}),
    ...(fork ? { fork: true, runtime: runtime ?? "default" } : {}),
    tier: tier.tier.name,
  }, task.id);
  if (branch) {
    const ended = await getTask(deps.db, task.id);
    if (ended) await afterBranchPreview({ ...run, task: ended.task }, { succeeded, error, plan: outcome.plan });
    return;
  }
  await refreshSticky(deps, target, workflow.pr_number);
  await releaseDependents(deps, target, task.id);
  // A review stack exists to be looked at: once previewed, it deploys through its gate.
  if (succeeded && task.kind === "preview" && stack.review && outcome.planHash) {
    const ended = await getTask(deps.db, task.id);
    // The preview has ended and is reported: a failure here must not run it again.
    if (ended) await deployReviewAfterPreview({ ...run, task: ended.task }).catch(async (err: Error) => {
      log.error({ err }, "review stack not deployed after its preview");
      await deps.writes.comment(target, workflow.pr_number, `⚠️ Review stack ${code(stack.name)} was previewed but not deployed: ${err.message.slice(0, 200)}. Comment \`/agent deploy --review ${stack.review!.base}\` to try again.`, { idempotencyKey: `task:${task.id}:review-auto-failed` });
    });
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
  await auditWorkflow(deps.db, workflow, res.ok ? "lock.acquired" : "lock.contended", res.ok ? { stack, expires_at: res.lock.expiresAt } : { stack, holder_pr: res.holder.prNumber });
  if (!res.ok) log.warn({ stack, holder_pr: res.holder.prNumber }, "stack lock taken by another PR meanwhile");
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
async function runSteps(run: TaskRun, session: SandboxSession, steps: StepResult[], progress: { poke(): void }, shutdown: AbortSignal | undefined): Promise<StepsOutcome> {
  const { deps, task, stack, log } = run;
  const { sandbox, env, redactor } = session;
  const outcome: StepsOutcome = { lintOutput: null, plan: null, planHash: null, integrity: false };
  const limits = deps.config.sandbox;
  const seen: LimitEvents = { oomKills: 0, pidsLimitHits: 0 };
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
    let ran: StepRun;
    try {
      ran = await runStep(spec, {
        sandbox,
        stack,
        env,
        timeoutMs,
        redactor,
        ...(run.workflow.config.branch?.purpose === "drift" && run.workflow.config.branch.refresh ? { refresh: true } : {}),
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
    const { res, output: full } = ran;
    step.outputTail = headTail(full, STORED_OUTPUT_CHARS);
    await saveStepLog(deps.db, task.id, { step: step.name, content: full, truncated: res.outputLimitExceeded });
    step.truncated = res.outputLimitExceeded;
    step.durationMs = res.durationMs;
    step.exitCode = res.exitCode;
    step.status = res.timedOut ? "timed_out" : res.exitCode === 0 && !res.outputLimitExceeded && !ran.failure ? "succeeded" : "failed";
    if (ran.integrity) outcome.integrity = true;
    if (spec.name === "preview" && ran.plan) {
      const ok = step.status === "succeeded";
      outcome.plan = ran.plan;
      outcome.planHash = ok ? ran.planHash : null;
      await savePreviewPlan(deps.db, task.id, { plan: ran.plan, planHash: outcome.planHash, savedPlan: ok ? ran.savedPlan : null });
    }
    if (spec.name === "lint" && step.status === "failed") outcome.lintOutput = full;
    failed = step.status !== "succeeded";
    if (failed && !shutdown?.aborted) {
      // Counters are cumulative per container: only what this step added counts.
      const now = res.timedOut || res.outputLimitExceeded || res.sandboxDied ? seen : await sandbox.limitEvents();
      step.reason =
        stopReason(res, { oomKills: now.oomKills - seen.oomKills, pidsLimitHits: now.pidsLimitHits - seen.pidsLimitHits, workspaceFull: now.workspaceFull === true }, limits, timeoutMs) ??
        ran.failure;
      Object.assign(seen, now);
    }
    await saveTaskSteps(deps.db, task.id, steps);
    log.info({ step: step.name, status: step.status, exit_code: step.exitCode, duration_ms: step.durationMs, reason: step.reason ?? undefined }, "step finished");
    observeStep(deps.metrics, step.name, step.status, step.durationMs);
  }
  return outcome;
}

async function failTask(deps: AppDeps, gh: GitHub | null, target: WriteTarget, workflow: WorkflowRow, task: TaskRow, message: string): Promise<void> {
  const current = await getTask(deps.db, task.id);
  const steps = current?.task.steps ?? [];
  // Timed only when this ended the task (not when it failed after it had ended).
  if ((await finishTask(deps.db, task.id, { state: "FAILED", steps, error: message })) !== null) observeTaskEnd(deps.metrics, task.kind, "failed", task.started_at);
  await deps.writes.checkRun(target, task.id, completedOutput(task.stack, { succeeded: false, steps, error: message }), { identity: checkRunIdentity(workflow, task), idempotencyKey: completionKey(task.id) });
  await auditWorkflow(deps.db, workflow, "preview.failed", { stack: task.stack, head_sha: workflow.head_sha, error: message }, task.id);
  if (workflow.kind === "branch") {
    const stack = workflow.config.stacks.find((s) => s.name === task.stack);
    const ended = await getTask(deps.db, task.id);
    const gh_ = gh ?? (await deps.github(target.installationId));
    if (stack && ended) await afterBranchPreview({ deps, gh: gh_, repo: target.repo, target, workflow, task: ended.task, stack, log: deps.log }, { succeeded: false, error: message, plan: null });
    return;
  }
  await refreshSticky(deps, target, workflow.pr_number);
  await releaseDependents(deps, target, task.id);
}

/** A default-branch preview ended: a merge group's is judged with the group's others; a rollback's or merge commit's is reported in its thread. */
async function afterBranchPreview(run: TaskRun, outcome: Parameters<typeof afterMainlinePreview>[1]): Promise<void> {
  const branch = run.workflow.config.branch;
  if (branch?.purpose === "merge-queue" && branch.group) return decideMergeGroupIfDone(run.deps, branch.group);
  if (branch?.purpose === "drift") return afterDriftPreview(run, outcome);
  return afterMainlinePreview(run, outcome);
}
