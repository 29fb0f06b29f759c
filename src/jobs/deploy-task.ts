/**
 * A deploy: applies exactly the approved plan at exactly the approved SHA, then merges the PR
 * with `sha` set to that SHA. At most once: the `deploys` row moves PENDING → RUNNING once;
 * a job that finds it RUNNING (its worker died, or the worker was stopped mid-apply) does not
 * apply again — the deploy is handed to a human with what is known.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Job } from "bullmq";
import type { ResolvedStack } from "../config/repo-config.js";
import { createComment, createDeployment, mergePull, setDeploymentStatus, updateCheckRun, type GitHub, type RepoRef } from "../connectors/github.js";
import { runPulumiUp } from "../connectors/pulumi/cli.js";
import { Redactor } from "../connectors/redact.js";
import { WORKSPACE_MOUNT } from "../connectors/sandbox.js";
import { appendAudit } from "../connectors/store/audit.js";
import { endDeploy, getDeploy, setDeploymentId, setMerged, startDeploy, type DeployRow } from "../connectors/store/gate.js";
import { saveStepLog } from "../connectors/store/logs.js";
import { getSavedPlan } from "../connectors/store/plans.js";
import { claimTask, finishTask, getTask, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { pulumiPlanHash } from "../plan/hash.js";
import { completedOutput } from "../render/check-run.js";
import { code, fencedWithin, headTail, shortSha } from "../render/markdown.js";
import { taskLogUrl } from "../web/log-links.js";
import { runStep } from "./engine-steps.js";
import { checkout, repoRef, stepEnv, type TaskRunOptions } from "./preview-task.js";
import type { StepResult, TaskJobData } from "./types.js";

const NEEDS_ATTENTION =
  "the worker running this deploy stopped while it was applying. The stack may be partly updated, so it is not retried automatically: check the stack (e.g. `pulumi refresh`), then preview again and deploy the new plan";

export async function processDeployTask(job: Job<TaskJobData>, deps: AppDeps, opts: TaskRunOptions = {}): Promise<void> {
  const found = await getTask(deps.db, job.data.taskId);
  const deploy = found ? await getDeploy(deps.db, found.task.id) : null;
  if (!found || !deploy) return;
  const { workflow } = found;
  const r = repoRef(workflow);
  const log = deps.log.child({ task_id: found.task.id, workflow_id: workflow.id, delivery_id: job.data.deliveryId, stack: deploy.stack });
  const gh = await deps.github(Number(workflow.installation_id));
  const started = await startDeploy(deps.db, found.task.id);
  if (!started) {
    if (deploy.state === "RUNNING") await needsAttention(deps, gh, r, workflow, found.task, deploy, NEEDS_ATTENTION, log);
    return; // ended already: a redelivered job
  }
  const task = (await claimTask(deps.db, found.task.id)) ?? found.task;
  const stack = workflow.config.stacks.find((s) => s.name === deploy.stack)!;
  const checkRunId = Number(task.check_run_id);
  const logUrl = taskLogUrl(deps.config, task.id);
  const step: StepResult = { name: "deploy", status: "running", exitCode: null, durationMs: null, outputTail: "", truncated: false };
  await updateCheckRun(gh, r, checkRunId, { status: "in_progress", startedAt: new Date().toISOString(), output: { title: `Deploy of ${stack.name} running`, summary: `Applying plan ${code(deploy.plan_hash.slice(7, 19))} at ${code(shortSha(deploy.head_sha))}.` } });
  const deploymentId = await createDeployment(gh, r, {
    sha: deploy.head_sha,
    environment: stack.name,
    description: `pr-infra-agent: #${deploy.pr_number}, plan ${deploy.plan_hash.slice(7, 19)}`,
    payload: { plan_hash: deploy.plan_hash, pr: deploy.pr_number, task_id: task.id },
  });
  await setDeploymentId(deps.db, task.id, deploymentId);
  await setDeploymentStatus(gh, r, deploymentId, "in_progress", { description: "applying the approved plan", logUrl });
  await appendAudit(deps.db, { actor: "agent", action: "deploy.started", repo: workflow.repo, prNumber: deploy.pr_number, workflowId: workflow.id, taskId: task.id, detail: { stack: stack.name, head_sha: deploy.head_sha, plan_hash: deploy.plan_hash, deployment_id: deploymentId } });

  let failure: string | null = null;
  let output = "";
  try {
    const res = await apply(deps, gh, workflow, task, stack, deploy, opts.shutdown);
    output = res.output;
    step.exitCode = res.exitCode;
    step.durationMs = res.durationMs;
    failure = res.failure;
  } catch (err) {
    failure = (err as Error).message;
  }
  step.outputTail = headTail(output, 60_000);
  await saveStepLog(deps.db, task.id, { step: "deploy", content: output, truncated: false });
  if (opts.shutdown?.aborted) {
    // Killed mid-apply by a shutdown past its grace period: same as a crash, never re-run.
    await needsAttention(deps, gh, r, workflow, task, deploy, NEEDS_ATTENTION, log);
    return;
  }
  step.status = failure ? "failed" : "succeeded";
  if (failure) {
    await endDeploy(deps.db, task.id, { state: "FAILED", error: failure });
    await finishTask(deps.db, task.id, { state: "FAILED", steps: [step], error: failure });
    await setDeploymentStatus(gh, r, deploymentId, "failure", { description: failure, logUrl });
    await updateCheckRun(gh, r, checkRunId, { ...completedOutput(stack.name, { succeeded: false, steps: [step], error: failure, logUrl }), output: { title: `Deploy of ${stack.name} failed`, summary: `**${failure}**`, text: fencedWithin(step.outputTail || "(no output)", 60_000) } });
    await appendAudit(deps.db, { actor: "agent", action: "deploy.failed", repo: workflow.repo, prNumber: deploy.pr_number, workflowId: workflow.id, taskId: task.id, detail: { stack: stack.name, plan_hash: deploy.plan_hash, error: failure } });
    await createComment(
      gh,
      r,
      deploy.pr_number,
      [
        `❌ Deploy of ${code(stack.name)} at ${code(shortSha(deploy.head_sha))} failed: ${failure}`,
        "",
        `The pull request stays open and keeps the stack lock. Fix it and \`/agent preview ${stack.name}\` again; to go back to what is deployed on the default branch, deploy its last good commit (\`/agent rollback ${stack.name}\` is not available in this version yet).`,
        logUrl ? `\n[Full log](${logUrl})` : "",
      ].join("\n"),
    );
    log.warn({ failure }, "deploy failed");
    return;
  }
  await endDeploy(deps.db, task.id, { state: "SUCCEEDED" });
  await finishTask(deps.db, task.id, { state: "SUCCEEDED", steps: [step], error: null });
  await setDeploymentStatus(gh, r, deploymentId, "success", { description: "the approved plan was applied", logUrl });
  await updateCheckRun(gh, r, checkRunId, { status: "completed", conclusion: "success", completedAt: new Date().toISOString(), output: { title: `Deploy of ${stack.name} succeeded`, summary: `Applied plan ${code(deploy.plan_hash.slice(7, 19))} at ${code(shortSha(deploy.head_sha))}.${logUrl ? `\n\n[Full log](${logUrl})` : ""}`, text: fencedWithin(step.outputTail || "(no output)", 60_000) } });
  await appendAudit(deps.db, { actor: "agent", action: "deploy.succeeded", repo: workflow.repo, prNumber: deploy.pr_number, workflowId: workflow.id, taskId: task.id, detail: { stack: stack.name, plan_hash: deploy.plan_hash, deployment_id: deploymentId } });

  // Merge exactly the deployed commit: a push after the approval makes GitHub refuse.
  const merge = await mergePull(gh, r, deploy.pr_number, deploy.head_sha, stack.gate.mergeMethod);
  await setMerged(deps.db, task.id, merge.merged);
  await appendAudit(deps.db, { actor: "agent", action: merge.merged ? "merge.succeeded" : "merge.refused", repo: workflow.repo, prNumber: deploy.pr_number, workflowId: workflow.id, taskId: task.id, detail: merge.merged ? { sha: merge.sha, method: stack.gate.mergeMethod } : { status: merge.status, message: merge.message } });
  await createComment(
    gh,
    r,
    deploy.pr_number,
    merge.merged
      ? `🚀 Deployed ${code(stack.name)} at ${code(shortSha(deploy.head_sha))} (plan ${code(deploy.plan_hash.slice(7, 19))}) and merged the pull request.`
      : `🚀 Deployed ${code(stack.name)} at ${code(shortSha(deploy.head_sha))}, but GitHub refused the merge (${merge.status}: ${merge.message.slice(0, 200)}). If the branch moved after the approval, the new commits were not deployed: preview them and get them approved.`,
  );
}

/** Runs the deploy in a fresh sandbox at the approved SHA with the stack's deploy credentials. */
async function apply(
  deps: AppDeps,
  gh: GitHub,
  workflow: WorkflowRow,
  task: TaskRow,
  stack: ResolvedStack,
  deploy: DeployRow,
  shutdown: AbortSignal | undefined,
): Promise<{ output: string; exitCode: number | null; durationMs: number | null; failure: string | null }> {
  const redactor = new Redactor();
  // The deploy set of credentials, fetched only now that the gate has passed, for this task only.
  const secrets = await deps.credentials.forTask({ repo: workflow.repo, stack: stack.name, kind: "deploy" });
  for (const value of Object.values(secrets)) redactor.register(value);
  const env = stepEnv(workflow, stack, secrets);
  const { sandbox } = await deps.sandboxes.acquire(workflow.config.image);
  const stopNow = () => void sandbox.kill();
  shutdown?.addEventListener("abort", stopNow);
  try {
    await checkout(gh, workflow, sandbox.workspaceDir);
    const timeoutMs = deps.config.sandbox.timeoutSeconds * 1000;
    if (stack.engine === "pulumi") {
      const previewTaskId = task.depends_on[0];
      const plan = previewTaskId ? await getSavedPlan(deps.db, previewTaskId) : null;
      // What is applied is what was approved: the stored plan must still hash to the approved hash.
      if (!plan || pulumiPlanHash(plan) !== deploy.plan_hash) return { output: "", exitCode: null, durationMs: null, failure: "the approved plan is missing or does not match its hash; nothing was applied" };
      const name = `.agent-plan-${randomBytes(8).toString("hex")}.json`;
      await writeFile(join(sandbox.workspaceDir, name), plan, { mode: 0o444 });
      let output = "";
      const redacting = redactor.stream();
      const res = await runPulumiUp(sandbox, {
        pulumiStack: stack.pulumiStack ?? stack.name,
        workdir: stack.dir,
        env,
        timeoutMs,
        planPath: `${WORKSPACE_MOUNT}/${name}`,
        onOutput: (chunk) => (output += redacting.push(chunk)),
      });
      output += redacting.end();
      const failure = res.failure ? redactor.redact(res.failure.message) : res.exec.exitCode === 0 ? null : res.exec.timedOut ? "the deploy ran past its time limit and was stopped" : "the deploy was stopped";
      return { output, exitCode: res.exec.exitCode, durationMs: res.exec.durationMs, failure };
    }
    const spec = stack.steps.find((s) => s.name === "deploy");
    if (!spec) return { output: "", exitCode: null, durationMs: null, failure: `stack ${stack.name} has no deploy command` };
    const run = await runStep(spec, { sandbox, stack, env, timeoutMs, redactor, onProgress: () => {} });
    const failure = run.res.exitCode === 0 ? null : run.res.timedOut ? "the deploy ran past its time limit and was stopped" : `the deploy command failed (exit ${run.res.exitCode ?? "killed"})`;
    return { output: run.output, exitCode: run.res.exitCode, durationMs: run.res.durationMs, failure };
  } finally {
    shutdown?.removeEventListener("abort", stopNow);
    await sandbox.destroy().catch(() => {});
  }
}

async function needsAttention(deps: AppDeps, gh: GitHub, r: RepoRef, workflow: WorkflowRow, task: TaskRow, deploy: DeployRow, why: string, log: AppDeps["log"]): Promise<void> {
  await endDeploy(deps.db, task.id, { state: "NEEDS_ATTENTION", error: why });
  await finishTask(deps.db, task.id, { state: "BLOCKED", steps: task.steps, error: why });
  if (deploy.deployment_id) await setDeploymentStatus(gh, r, Number(deploy.deployment_id), "error", { description: "interrupted: needs a human" }).catch(() => {});
  if (task.check_run_id) {
    await updateCheckRun(gh, r, Number(task.check_run_id), { status: "completed", conclusion: "action_required", completedAt: new Date().toISOString(), output: { title: `Deploy of ${deploy.stack} needs attention`, summary: why } });
  }
  await appendAudit(deps.db, { actor: "agent", action: "deploy.needs_attention", repo: workflow.repo, prNumber: deploy.pr_number, workflowId: workflow.id, taskId: task.id, detail: { stack: deploy.stack, plan_hash: deploy.plan_hash, deployment_id: deploy.deployment_id } });
  await createComment(gh, r, deploy.pr_number, `⚠️ Deploy of ${code(deploy.stack)} at ${code(shortSha(deploy.head_sha))} needs attention: ${why}.`);
  log.error({ stack: deploy.stack }, "deploy interrupted; handed to a human");
}
