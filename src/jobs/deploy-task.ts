/**
 * A deploy: applies exactly the approved plan at exactly the approved SHA, then merges the PR
 * with `sha` set to that SHA. At most once: the `deploys` row moves PENDING → RUNNING once;
 * a job that finds it RUNNING (its worker died, or the worker was stopped mid-apply) does not
 * apply again — the deploy is handed to a human with what is known. That move is the claim:
 * the whole gate is asked again first, atomically with it (src/deploys/apply-gate.ts); a deploy the
 * gate no longer allows ends BLOCKED with nothing applied.
 */
import { membershipIn } from "../connectors/github.js";
import type { Job } from "bullmq";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { CheckRunUpdate, GitHub, RepoRef } from "../connectors/github.js";
import type { SendOnceOutcome } from "../connectors/outbox/sender.js";
import type { WriteTarget } from "../connectors/outbox/writes.js";
import { auditWorkflow } from "../connectors/store/audit.js";
import { endDeploy, getDeploy, setDeploymentId, setMerged, type DeployRow } from "../connectors/store/gate.js";
import { saveStepLog } from "../connectors/store/logs.js";
import { claimTask, finishTask, getTask, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import type { AppDeps, TaskRun } from "../deps.js";
import { completedOutput } from "../render/check-run.js";
import { code, fencedWithin, headTail, shortSha } from "../render/markdown.js";
import { taskLogUrl } from "../web/log-links.js";
import { observeDeployEnd, observeStep } from "../web/metrics.js";
import { claimApply, reportBlockedApply, reportObservedApply, reportUncheckedApply } from "../deploys/apply-gate.js";
import { repoPhase } from "../connectors/store/phases.js";
import { recordTaskTier, tierOf } from "../connectors/store/tiers.js";
import { mainlineTitle, startMainlinePreview } from "../deploys/mainline.js";
import { pullChangers } from "../deploys/gate-facts.js";
import { notifySlack } from "../deploys/slack.js";
import { afterReviewDeploy } from "../deploys/review.js";
import { errorSignature } from "../ops/error-budget.js";
import type { AuditAction } from "../domain/audit-actions.js";
import type { Notification } from "../render/slack.js";
import { apply, type ApplyResult } from "./apply.js";
import { mergePullOnce, type MergeOutcome } from "../deploys/merge.js";
import { advanceDeployRun } from "../deploys/run-progress.js";
import { repoRef, targetOf, type TaskRunOptions } from "./task-run.js";
import { commentThreads, threadsOf } from "../deploys/threads.js";
import { releaseDependents } from "./dependents.js";
import type { StepResult } from "../domain/steps.js";
import type { TaskJobData } from "../connectors/queues.js";
import { CredentialLifetimeError } from "./task-errors.js";
import { describeTier } from "../approval/tiers.js";

const NEEDS_ATTENTION =
  "the worker running this deploy stopped while it was applying. The stack may be partly updated, so it is not retried automatically: check the stack (e.g. `pulumi refresh`), then preview again and deploy the new plan";

const STOPPED_BY_BREAK_GLASS =
  "an operator stopped this deploy with break-glass while it was applying, and its credentials were revoked. The stack may be partly updated: check it (e.g. `pulumi refresh`), then preview again and deploy the new plan";

const stoppedAtLifetime = (why: string) =>
  `${why.replace(/; nothing after that ran$/, "")} while it was applying, and its credentials were released. The stack may be partly updated: check it (e.g. \`pulumi refresh\`), then preview again and deploy the new plan. An operator gives the tier a longer lifetime with TRUST_TTL_SECONDS, or the actor, repository or stack another tier`;

export async function processDeployTask(job: Job<TaskJobData>, deps: AppDeps, opts: TaskRunOptions = {}): Promise<void> {
  const found = await getTask(deps.db, job.data.taskId);
  const deploy = found ? await getDeploy(deps.db, found.task.id) : null;
  if (!found || !deploy) return;
  await processDeploy(job, deps, opts, found, deploy);
  // A deploy of a run: start the next layer, stop what is downstream of a failure, or finish.
  // (Also on a redelivered job: the worker may have died between its end and this.)
  if (deploy.run_id) await advanceDeployRun(deps, targetOf(found.workflow), deploy.run_id);
  // A merge group's re-check may wait for this deploy of its stack (src/deploys/merge-queue.ts).
  await releaseDependents(deps, targetOf(found.workflow), found.task.id);
}

async function processDeploy(job: Job<TaskJobData>, deps: AppDeps, opts: TaskRunOptions, found: { task: TaskRow; workflow: WorkflowRow }, deploy: DeployRow): Promise<void> {
  const { workflow } = found;
  const r = repoRef(workflow);
  const log = deps.log.child({ task_id: found.task.id, workflow_id: workflow.id, delivery_id: job.data.deliveryId, stack: deploy.stack });
  const gh = await deps.github(Number(workflow.installation_id));
  if (deploy.state !== "PENDING") {
    if (deploy.state === "RUNNING") await needsAttention({ deps, gh, repo: r, target: targetOf(workflow), workflow, task: found.task, deploy, log }, NEEDS_ATTENTION);
    return; // ended already: a redelivered job
  }
  // The whole gate again, now, atomically with PENDING → RUNNING (src/deploys/apply-gate.ts).
  const stackConfig = workflow.config.stacks.find((s) => s.name === deploy.stack);
  const branch = deploy.kind === "branch" ? workflow.config.branch : undefined;
  const how = { what: branch ? mainlineTitle(branch) : "Deploy", command: branch?.command ?? `/agent deploy ${deploy.stack}` };
  // Observe mode (the repository's rollout phase, now): read-only, whatever was queued.
  const phase = await repoPhase(deps.db, workflow.repo, deps.config.defaultPhase);
  if (phase.phase === "observe") {
    await reportObservedApply(deps, r, workflow, found.task, deploy, phase.scope, how.what, how.command);
    return;
  }
  let claim: Awaited<ReturnType<typeof claimApply>>;
  try {
    claim = stackConfig ? await claimApply(deps, gh, r, workflow, deploy, stackConfig) : { kind: "not-pending" };
  } catch (err) {
    // The gate could not be asked (GitHub or the database failed): nothing is applied unchecked,
    // and the deploy does not stay queued forever holding the stack.
    await reportUncheckedApply(deps, gh, r, workflow, found.task, deploy, err as Error, how.what, how.command);
    log.warn({ err }, "deploy not applied: the gate could not be checked");
    return;
  }
  if (claim.kind === "blocked") {
    await reportBlockedApply(deps, gh, r, workflow, found.task, deploy, claim, how.what, how.command);
    log.info({ why: claim.why }, "deploy blocked by the gate at the time of apply");
    return;
  }
  if (claim.kind === "not-pending") {
    const now = await getDeploy(deps.db, found.task.id);
    if (now?.state === "RUNNING") await needsAttention({ deps, gh, repo: r, target: targetOf(workflow), workflow, task: found.task, deploy: now, log }, NEEDS_ATTENTION);
    return;
  }
  const started = claim.deploy;
  const tier = await tierOf(deps.db, { actor: deploy.requested_by, repo: workflow.repo, stack: deploy.stack, teams: membershipIn(gh, workflow.repo, deploy.requested_by) }, deps.config.defaultTier);
  await recordTaskTier(deps.db, found.task.id, tier.tier.name);
  await auditWorkflow(deps.db, workflow, "deploy.claimed", { stack: deploy.stack, kind: deploy.kind, head_sha: deploy.head_sha, plan_hash: deploy.plan_hash, approvals_used: claim.result.used, approved_by: claim.result.counted.map((a) => a.login), tier: tier.tier.name }, found.task.id);
  // Watched from the moment the row reads RUNNING: break-glass (which lists RUNNING deploys)
  // can stop it from any process (Redis pub/sub), even before the apply has begun.
  const breakGlass = deps.cancellation?.watch(found.task.id);
  try {
    await runDeploy(deps, gh, r, workflow, found.task, deploy, started, opts, log, breakGlass?.signal, describeTier(tier));
  } finally {
    breakGlass?.release();
  }
}

async function runDeploy(
  deps: AppDeps,
  gh: GitHub,
  r: RepoRef,
  workflow: WorkflowRow,
  foundTask: TaskRow,
  deploy: DeployRow,
  started: DeployRow,
  opts: TaskRunOptions,
  log: AppDeps["log"],
  breakGlassSignal: AbortSignal | undefined,
  tierRule: string,
): Promise<void> {
  const found = { task: foundTask };
  const task = (await claimTask(deps.db, found.task.id)) ?? found.task;
  const stack = workflow.config.stacks.find((s) => s.name === deploy.stack)!;
  const target = targetOf(workflow);
  const logUrl = taskLogUrl(deps.config, task.id);
  const what = deploy.kind === "branch" && workflow.config.branch ? mainlineTitle(workflow.config.branch) : "Deploy";
  const ctx: StartedApply = { deps, gh, repo: r, target, workflow, task, deploy: started, stack, logUrl, what, log };
  const step: StepResult = { name: "deploy", status: "running", exitCode: null, durationMs: null, outputTail: "", truncated: false };
  await deps.writes.checkRun(target, task.id, { status: "in_progress", startedAt: new Date().toISOString(), output: { title: `${what} of ${stack.name} running`, summary: `Applying plan ${code(deploy.plan_hash.slice(7, 19))} at ${code(shortSha(deploy.head_sha))}.\n\nTrust tier: ${tierRule}.` } }, { cls: "progress" });

  // Merge first (per stack): the merge commit is what gets applied, once it plans the same.
  const mergeFirst = deploy.kind === "deploy" && stack.gate.mode === "merge-then-deploy";
  let applySha = deploy.head_sha;
  if (mergeFirst) {
    const merge = await mergeOnce(ctx, "merge-first");
    await setMerged(deps.db, task.id, merge.merged, merge.merged ? merge.sha : null);
    await auditWorkflow(deps.db, workflow, merge.merged ? "merge.succeeded" : "merge.refused", merge.merged ? { sha: merge.sha, method: stack.gate.mergeMethod, mode: "merge-then-deploy" } : { status: merge.status, message: merge.message }, task.id);
    if (!merge.merged) {
      const why = `GitHub refused the merge (${merge.status}: ${merge.message.slice(0, 200)}); nothing was applied`;
      await endFailed(ctx, step, why, null, `❌ ${code(stack.name)} was not deployed: ${why}. If the branch moved after the approval, preview the new head and get it approved.`);
      return;
    }
    applySha = merge.sha;
  }

  const deploymentId = await createDeploymentOnce(deps.writes, target, `task:${task.id}:deployment`, {
    sha: applySha,
    environment: stack.name,
    description: `pr-infra-agent: ${deploy.kind === "branch" ? `${what.toLowerCase()} ` : ""}${threadsOf(workflow).map((n) => `#${n}`).join(" ")}, plan ${deploy.plan_hash.slice(7, 19)}`,
    payload: { plan_hash: deploy.plan_hash, pr: deploy.pr_number, task_id: task.id, kind: deploy.kind, ...(workflow.config.branch?.prs ? { prs: workflow.config.branch.prs } : {}) },
  });
  await setDeploymentId(deps.db, task.id, deploymentId);
  await deps.writes.deploymentStatus(target, deploymentId, "in_progress", { description: "applying the approved plan", logUrl }, { cls: "progress" });
  await auditWorkflow(deps.db, workflow, "deploy.started", { stack: stack.name, kind: deploy.kind, head_sha: applySha, plan_hash: deploy.plan_hash, deployment_id: deploymentId, ...slaSoFar(started) }, task.id);

  // Break-glass kills the sandbox of a running apply.
  const stop = AbortSignal.any([opts.shutdown, breakGlassSignal].filter((x): x is AbortSignal => Boolean(x)));
  await notifySlack(deps, { event: "deploy.started", repo: workflow.repo, prNumber: deploy.pr_number, stack: stack.name, sha: applySha, detail: `${what} by @${deploy.requested_by}`, ...(logUrl ? { url: logUrl } : {}) });
  // In a run, a stack whose upstream stacks were just applied is previewed again first (its
  // program may read their outputs) and applied only if it still plans the approved plan.
  const afterUpstream = deploy.after_tasks.length > 0;
  let result: ApplyResult;
  // Killed at its tier's credential lifetime: like break-glass, the apply may have begun.
  let lifetimeStop: string | null = null;
  try {
    result = await apply({ deps, gh, repo: r, target, workflow: { ...workflow, head_sha: applySha }, task, stack, log }, deploy, stop, mergeFirst || afterUpstream);
  } catch (err) {
    if (err instanceof CredentialLifetimeError) lifetimeStop = err.message;
    result = { output: "", exitCode: null, durationMs: null, failure: (err as Error).message, mismatch: null };
  }
  step.exitCode = result.exitCode;
  step.durationMs = result.durationMs;
  step.outputTail = headTail(result.output, 60_000);
  await saveStepLog(deps.db, task.id, { step: "deploy", content: result.output, truncated: false });
  // The Deployment exists by now: needs-attention marks it too.
  const applying = { ...deploy, deployment_id: String(deploymentId), started_at: started.started_at };
  if (breakGlassSignal?.aborted) {
    await needsAttention({ deps, gh, repo: r, target, workflow, task, deploy: applying, log }, STOPPED_BY_BREAK_GLASS);
    return;
  }
  if (lifetimeStop) {
    await needsAttention({ deps, gh, repo: r, target, workflow, task, deploy: applying, log }, stoppedAtLifetime(lifetimeStop));
    return;
  }
  if (opts.shutdown?.aborted) {
    // Killed mid-apply by a shutdown past its grace period: same as a crash, never re-run.
    await needsAttention({ deps, gh, repo: r, target, workflow, task, deploy: applying, log }, NEEDS_ATTENTION);
    return;
  }
  if (result.mismatch) {
    if (mergeFirst) await planMismatch(ctx, step, deploymentId, applySha, result.mismatch);
    else await upstreamChangedPlan(ctx, step, deploymentId, result.mismatch);
    return;
  }
  if (result.failure) {
    const failure = result.failure;
    const next =
      workflow.config.branch?.purpose === "merge-queue"
        ? `The merge group is merged; the stack may be partly updated. Fix forward with a new pull request, or go back to the last good deploy with \`/agent rollback ${stack.name}\`.`
        : deploy.kind === "branch"
        ? `Nothing else was changed. Check the stack, then \`/agent rollback ${stack.name}\` again (it previews afresh).`
        : mergeFirst
          ? `The pull request was merged before the apply. To go back to the last good state, comment \`/agent rollback ${stack.name}\`.`
          : stack.review
            ? `The review stack may be partly created; it is still destroyed when the pull request closes or its TTL passes (or now: \`/agent destroy --review ${stack.review.base}\`). Fix it and \`/agent preview --review ${stack.review.base}\` again.`
            : `The pull request stays open and keeps the stack lock. Fix it and \`/agent preview ${stack.name}\` again, or go back to the default branch's last good deploy with \`/agent rollback ${stack.name}\`.`;
    await endFailed(ctx, step, failure, deploymentId, [`❌ ${what} of ${code(stack.name)} at ${code(shortSha(applySha))} failed: ${failure}`, "", next, logUrl ? `\n[Full log](${logUrl})` : ""].join("\n"));
    return;
  }
  step.status = "succeeded";
  await endDeployment(ctx, {
    state: "SUCCEEDED",
    error: null,
    step,
    applyEnded: true,
    deployment: { id: deploymentId, state: "success", description: "the approved plan was applied" },
    checkRun: { status: "completed", conclusion: "success", completedAt: new Date().toISOString(), output: { title: `${what} of ${stack.name} succeeded`, summary: `Applied plan ${code(deploy.plan_hash.slice(7, 19))} at ${code(shortSha(applySha))}.${logUrl ? `\n\n[Full log](${logUrl})` : ""}`, text: fencedWithin(step.outputTail || "(no output)", 60_000) } },
    audit: { action: "deploy.succeeded", detail: { stack: stack.name, kind: deploy.kind, plan_hash: deploy.plan_hash, deployment_id: deploymentId } },
    slack: { event: "deploy.succeeded", repo: workflow.repo, prNumber: deploy.pr_number, stack: stack.name, sha: applySha, detail: what, ...(logUrl ? { url: logUrl } : {}) },
    comment: null,
  });

  // A run merges once all its stacks are applied, and tells it in one comment (src/deploys/run-progress.ts).
  if (deploy.run_id) return;
  // A review stack is never merged: its outputs are what the pull request hears (src/deploys/review.ts).
  if (stack.review) {
    await afterReviewDeploy(deps, { workflow, task, stack, sha: applySha, planHash: deploy.plan_hash }, result.outputs ?? null);
    return;
  }
  if (deploy.kind === "branch") {
    await commentThreads(deps.writes, workflow, `${workflow.config.branch?.purpose === "merge-queue" ? "🚀" : "⏪"} ${what} of ${code(stack.name)} to ${code(shortSha(applySha))} succeeded (plan ${code(deploy.plan_hash.slice(7, 19))}).${slaLine(started)}`, `task:${task.id}:succeeded`);
    return;
  }
  if (mergeFirst) {
    await deps.writes.comment(target, deploy.pr_number, `🚀 Merged the pull request and deployed ${code(stack.name)} at the merge commit ${code(shortSha(applySha))}: it planned exactly the approved plan ${code(deploy.plan_hash.slice(7, 19))}.`);
    return;
  }
  // Merge exactly the deployed commit: a push after the approval makes GitHub refuse.
  const merge = await mergeOnce(ctx, "after-apply");
  await setMerged(deps.db, task.id, merge.merged, merge.merged ? merge.sha : null);
  await auditWorkflow(deps.db, workflow, merge.merged ? "merge.succeeded" : "merge.refused", merge.merged ? { sha: merge.sha, method: stack.gate.mergeMethod } : { status: merge.status, message: merge.message }, task.id);
  await deps.writes.comment(
    target,
    deploy.pr_number,
    merge.merged
      ? `🚀 Deployed ${code(stack.name)} at ${code(shortSha(deploy.head_sha))} (plan ${code(deploy.plan_hash.slice(7, 19))}) and merged the pull request.`
      : `🚀 Deployed ${code(stack.name)} at ${code(shortSha(deploy.head_sha))}, but GitHub refused the merge (${merge.status}: ${merge.message.slice(0, 200)}). If the branch moved after the approval, the new commits were not deployed: preview them and get them approved.`,
  );
}

/** What a finished deploy reports through: the task's run, its deploy row and its check run. */
interface StartedApply extends DeployRun {
  stack: ResolvedStack;
  logUrl: string | null;
  what: string;
}

/** A deploy task with its deploys row (the stack may be unknown when it never started). */
interface DeployRun extends Omit<TaskRun, "stack"> {
  /** The row as it was when the apply started (started_at set). */
  deploy: DeployRow;
}

/** How a deploy ended, in the order it is recorded and told. */
interface DeployEnd {
  state: "SUCCEEDED" | "FAILED" | "NEEDS_ATTENTION";
  error: string | null;
  /** The deploy step's result; null keeps the task's steps (it was interrupted, not finished). */
  step: StepResult | null;
  /** The apply itself ran to an end (succeeded or failed): its step is timed and a rollback's timing audited. */
  applyEnded: boolean;
  /** The GitHub Deployment's final status, when one was created. */
  deployment: { id: number; state: "success" | "failure" | "error"; description: string } | null;
  checkRun: CheckRunUpdate | null;
  audit: { action: AuditAction; detail: Record<string, unknown> };
  slack: Notification | null;
  comment: string | null;
}

const DEPLOY_END_METRIC = { SUCCEEDED: "succeeded", FAILED: "failed", NEEDS_ATTENTION: "needs_attention" } as const;
const TASK_END_STATE = { SUCCEEDED: "SUCCEEDED", FAILED: "FAILED", NEEDS_ATTENTION: "BLOCKED" } as const;

/**
 * The one way a claimed deploy ends: the deploys row and the task first (the record is final
 * before anyone is told), then the Deployment, the check run, the audit log (with a rollback's
 * timing), Slack and the thread.
 */
async function endDeployment(c: DeployRun & Partial<Pick<StartedApply, "logUrl">>, end: DeployEnd): Promise<void> {
  const { deps, target, workflow, task, deploy } = c;
  await endDeploy(deps.db, task.id, end.state === "SUCCEEDED" ? { state: "SUCCEEDED" } : { state: end.state, error: end.error ?? "" });
  observeDeployEnd(deps.metrics, deploy.kind, DEPLOY_END_METRIC[end.state], deploy.started_at);
  if (end.step && end.applyEnded) observeStep(deps.metrics, "deploy", end.step.status, end.step.durationMs);
  await finishTask(deps.db, task.id, { state: TASK_END_STATE[end.state], steps: end.step ? [end.step] : task.steps, error: end.error });
  // Through the outbox: recorded now, sent (and sent again after a crash) until GitHub has it.
  if (end.deployment) await deps.writes.deploymentStatus(target, end.deployment.id, end.deployment.state, { description: end.deployment.description, logUrl: c.logUrl ?? null });
  if (end.checkRun) await deps.writes.checkRun(target, task.id, end.checkRun, { idempotencyKey: `task:${task.id}:completed` });
  await auditWorkflow(deps.db, workflow, end.audit.action, end.audit.detail, task.id);
  if (end.applyEnded && end.state !== "NEEDS_ATTENTION") await auditRollbackSla(c, end.state);
  if (end.slack) await notifySlack(deps, end.slack);
  if (end.comment) await commentThreads(deps.writes, workflow, end.comment, `task:${task.id}:end-comment`);
}

/** The failure's signature and line, by which the stack's error budget knows the same error again (src/ops/error-budget.ts). */
function budgetSignature(failure: string, output: string): { error_signature: string; error_line: string } {
  const s = errorSignature(failure, output);
  return { error_signature: s.signature, error_line: s.label };
}

async function endFailed(c: StartedApply, step: StepResult, failure: string, deploymentId: number | null, comment: string): Promise<void> {
  step.status = "failed";
  await endDeployment(c, {
    state: "FAILED",
    error: failure,
    step,
    applyEnded: true,
    deployment: deploymentId !== null ? { id: deploymentId, state: "failure", description: failure } : null,
    checkRun: { ...completedOutput(c.stack.name, { succeeded: false, steps: [step], error: failure, logUrl: c.logUrl }), output: { title: `${c.what} of ${c.stack.name} failed`, summary: `**${failure}**`, text: fencedWithin(step.outputTail || "(no output)", 60_000) } },
    audit: { action: "deploy.failed", detail: { stack: c.stack.name, kind: c.deploy.kind, plan_hash: c.deploy.plan_hash, error: failure, ...budgetSignature(failure, step.outputTail) } },
    slack: { event: "deploy.failed", repo: c.workflow.repo, prNumber: c.deploy.pr_number, stack: c.stack.name, sha: c.deploy.head_sha, detail: failure, ...(c.logUrl ? { url: c.logUrl } : {}) },
    comment,
  });
  c.log.warn({ failure }, "deploy failed");
}

/**
 * Merge-first: the merge commit planned differently from the approved plan. Nothing was
 * applied; the merge commit is previewed in the PR and needs its own approval — never from the
 * people who changed the code: the deploy's requester (as for a rollback), and, carried in the
 * branch workflow's config, the PR's author and everyone who pushed to it or wrote its commits.
 */
async function planMismatch(c: StartedApply, step: StepResult, deploymentId: number, mergeSha: string, mismatch: { planHash: string | null }): Promise<void> {
  const { deps, gh, repo: r, workflow, stack, deploy } = c;
  const why = `the merge commit ${shortSha(mergeSha)} plans differently (plan ${mismatch.planHash?.slice(7, 19) ?? "none"}) from the approved plan ${deploy.plan_hash.slice(7, 19)}; nothing was applied`;
  await endNeedsNewApproval(c, step, deploymentId, why, { summary: why }, { action: "deploy.plan_mismatch", detail: { stack: stack.name, merge_sha: mergeSha, approved_plan_hash: deploy.plan_hash, merge_plan_hash: mismatch.planHash } });
  const approvals = Math.max(stack.gate.approvals, deps.config.gate.minApprovals);
  const exclude = await pullChangers({ deps, gh, repo: r, repoFullName: workflow.repo, threadNumber: deploy.pr_number }, deploy.requested_by);
  await startMainlinePreview(deps, {
    repo: r,
    repoFullName: workflow.repo,
    installationId: Number(workflow.installation_id),
    threadNumber: deploy.pr_number,
    sha: mergeSha,
    stack,
    requestedBy: deploy.requested_by,
    deliveryId: null,
    config: { image: workflow.config.image, cloneUrl: workflow.config.cloneUrl, defaultBranch: workflow.config.defaultBranch },
    branch: { purpose: "merge-commit", approvals, command: `/agent deploy ${stack.name}`, exclude },
  });
  await deps.writes.comment(c.target, deploy.pr_number, `⚠️ Merged the pull request, but ${why}. The merge commit is being previewed here; once its plan is approved, comment \`/agent deploy ${stack.name}\` to apply it.`);
}

/**
 * In a deploy run: after its upstream stacks were applied, this stack's fresh preview no longer
 * hashes to the approved plan (it reads their outputs). Nothing was applied; the new plan is in
 * this check run's text, and the stack needs a new preview and approval — never applied unseen.
 */
async function upstreamChangedPlan(c: StartedApply, step: StepResult, deploymentId: number, mismatch: { planHash: string | null }): Promise<void> {
  const { stack, deploy } = c;
  const why = `after the stacks it depends on were applied, ${stack.name} plans differently (plan ${mismatch.planHash?.slice(7, 19) ?? "none"}) from the approved plan ${deploy.plan_hash.slice(7, 19)}; nothing was applied`;
  await endNeedsNewApproval(
    c,
    step,
    deploymentId,
    why,
    { summary: `${why}. Preview it again (\`/agent preview ${stack.name}\`), get the new plan approved, then deploy it.`, text: fencedWithin(step.outputTail || "(no output)", 60_000) },
    { action: "deploy.upstream_changed_plan", detail: { stack: stack.name, approved_plan_hash: deploy.plan_hash, fresh_plan_hash: mismatch.planHash, run_id: deploy.run_id } },
  );
}

/** A fresh plan did not hash to the approved one: nothing was applied, the deploy ends FAILED and its check run asks for a new approval. */
async function endNeedsNewApproval(c: StartedApply, step: StepResult, deploymentId: number, why: string, output: { summary: string; text?: string }, audit: DeployEnd["audit"]): Promise<void> {
  step.status = "failed";
  await endDeployment(c, {
    state: "FAILED",
    error: why,
    step,
    applyEnded: false,
    deployment: { id: deploymentId, state: "failure", description: why },
    checkRun: { status: "completed", conclusion: "action_required", completedAt: new Date().toISOString(), output: { title: `Deploy of ${c.stack.name} needs a new approval`, ...output } },
    audit,
    slack: null,
    comment: null,
  });
}

/** Seconds from the request to the apply's start and end, for a rollback (the rollback targets: begun within 5 min, finished within 15 min). */
const SLA_BEGIN_SECONDS = 300;
const SLA_FINISH_SECONDS = 900;

function slaSoFar(d: DeployRow): Record<string, unknown> {
  if (d.kind !== "branch" || !d.requested_at || !d.started_at) return {};
  return { requested_at: d.requested_at, begin_seconds: Math.round((d.started_at.getTime() - d.requested_at.getTime()) / 1000) };
}

function slaLine(d: DeployRow): string {
  if (!d.requested_at || !d.started_at) return "";
  const begin = Math.round((d.started_at.getTime() - d.requested_at.getTime()) / 1000);
  const finish = Math.round((Date.now() - d.requested_at.getTime()) / 1000);
  return ` It began ${begin} s and finished ${finish} s after it was asked for.`;
}

async function auditRollbackSla(c: DeployRun, outcome: "SUCCEEDED" | "FAILED"): Promise<void> {
  const d = c.deploy;
  if (d.kind !== "branch" || c.workflow.config.branch?.purpose !== "rollback" || !d.requested_at || !d.started_at) return;
  const finishedAt = new Date();
  const begin = (d.started_at.getTime() - d.requested_at.getTime()) / 1000;
  const finish = (finishedAt.getTime() - d.requested_at.getTime()) / 1000;
  await auditWorkflow(c.deps.db, c.workflow, "rollback.finished", {
    stack: d.stack,
    sha: d.head_sha,
    outcome,
    requested_at: d.requested_at.toISOString(),
    started_at: d.started_at.toISOString(),
    finished_at: finishedAt.toISOString(),
    begin_seconds: Math.round(begin),
    finish_seconds: Math.round(finish),
    sla: { begin_target_seconds: SLA_BEGIN_SECONDS, finish_target_seconds: SLA_FINISH_SECONDS, begin_met: begin < SLA_BEGIN_SECONDS, finish_met: finish < SLA_FINISH_SECONDS },
  }, c.task.id);
}

async function needsAttention(c: DeployRun, why: string): Promise<void> {
  const { workflow, deploy } = c;
  await endDeployment(c, {
    state: "NEEDS_ATTENTION",
    error: why,
    step: null,
    applyEnded: false,
    deployment: deploy.deployment_id ? { id: Number(deploy.deployment_id), state: "error", description: "interrupted: needs a human" } : null,
    checkRun: { status: "completed", conclusion: "action_required", completedAt: new Date().toISOString(), output: { title: `Deploy of ${deploy.stack} needs attention`, summary: why } },
    audit: { action: "deploy.needs_attention", detail: { stack: deploy.stack, plan_hash: deploy.plan_hash, deployment_id: deploy.deployment_id } },
    slack: { event: "deploy.failed", repo: workflow.repo, prNumber: deploy.pr_number, stack: deploy.stack, sha: deploy.head_sha, detail: `needs attention: ${why}` },
    comment: `⚠️ Deploy of ${code(deploy.stack)} at ${code(shortSha(deploy.head_sha))} needs attention: ${why}.`,
  });
  c.log.error({ stack: deploy.stack }, "deploy interrupted; handed to a human");
}

/** Merges the deployed PR exactly once, keyed by task and step (src/deploys/merge.ts). */
function mergeOnce(c: StartedApply, step: "merge-first" | "after-apply"): Promise<MergeOutcome> {
  const { deps, gh, repo: r, target, task, deploy, stack } = c;
  return mergePullOnce(deps, gh, r, target, `task:${task.id}:${step}`, { number: deploy.pr_number, sha: deploy.head_sha, method: stack.gate.mergeMethod });
}

/** A GitHub Deployment, created at most once per key; no id (refused, or the answer lost) stops the deploy before anything is applied. */
async function createDeploymentOnce(writes: AppDeps["writes"], target: WriteTarget, key: string, d: { sha: string; environment: string; description: string; payload: Record<string, unknown> }): Promise<number> {
  const sent: SendOnceOutcome = await writes.createDeployment(target, key, d);
  if (sent.state === "sent") return Number(sent.result.id);
  throw new Error(sent.state === "failed" ? `GitHub did not create the deployment: ${sent.error}` : "GitHub's answer to creating the deployment was lost");
}
