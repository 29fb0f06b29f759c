/**
 * The review queue's jobs (src/deploys/review.ts): a review stack's destroy, run as a task in a
 * sandbox (select, the template's config, the destroy previewed, then applied and the stack
 * removed; audited and told in the pull request), and the sweep's ticks.
 */
import type { Job } from "bullmq";
import { getPull } from "../connectors/github.js";
import { runPulumiDestroy } from "../connectors/pulumi/cli.js";
import { reviewDestroyJobId, type ReviewJobData } from "../connectors/queues.js";
import { appendAudit, auditWorkflow } from "../connectors/store/audit.js";
import { liveDeployTasks } from "../connectors/store/gate.js";
import { saveStepLog } from "../connectors/store/logs.js";
import { endReviewDestroy, getReviewStack, setReviewDestroyTask } from "../connectors/store/review-stacks.js";
import { claimTask, createDestroyWorkflow, finishTask } from "../connectors/store/workflows.js";
import { repoOf, sweepReviewStacks } from "../deploys/review.js";
import type { AppDeps } from "../deps.js";
import type { StepResult } from "../domain/steps.js";
import { code, fencedWithin, headTail } from "../render/markdown.js";
import { taskLogUrl } from "../web/log-links.js";
import { PLAN_READ_LIMIT_BYTES } from "./engine-steps.js";
import { withSandboxSession } from "./sandbox-session.js";

/** A job of the review queue: a destroy, or the sweep's tick. */
export async function processReviewJob(deps: AppDeps, job: Job<ReviewJobData>): Promise<void> {
  if (job.data.kind === "sweep") {
    await sweepReviewStacks(deps);
    return;
  }
  await processReviewDestroy(deps, job.data, { lastAttempt: job.attemptsMade + 1 >= (job.opts.attempts ?? 1) });
}

/** A review stack's deploy is queued or running: the destroy waits for it (the job is retried). */
export class ReviewStackBusyError extends Error {
  override name = "ReviewStackBusyError";
}

export async function processReviewDestroy(deps: AppDeps, d: { repo: string; stack: string }, opts: { lastAttempt: boolean }): Promise<void> {
  const row = await getReviewStack(deps.db, d.repo, d.stack);
  if (!row || row.state !== "destroying") return;
  const target = { installationId: Number(row.installation_id), repo: repoOf(row.repo) };
  if ((await liveDeployTasks(deps.db, d.repo, [d.stack])).get(d.stack)?.length) {
    if (!opts.lastAttempt) throw new ReviewStackBusyError(`a deploy of ${d.stack} is queued or running; its destroy waits for it`);
    await endReviewDestroy(deps.db, d.repo, d.stack, false);
    await appendAudit(deps.db, { actor: "agent", action: "review.destroy_failed", repo: d.repo, prNumber: row.pr_number, detail: { stack: d.stack, reason: row.destroy_reason, error: "a deploy of it did not end" } });
    await deps.writes.comment(target, row.pr_number, `⚠️ Review stack ${code(d.stack)} was not destroyed: a deploy of it did not end. The next sweep tries again; \`/agent destroy --review ${row.base_stack}\` does now.`);
    return;
  }
  const gh = await deps.github(Number(row.installation_id));
  const sha = row.deployed_sha ?? (await getPull(gh, repoOf(row.repo), row.pr_number)).headSha;
  const stack = row.stack_config;
  const created = await createDestroyWorkflow(deps.db, {
    repo: row.repo,
    installationId: Number(row.installation_id),
    prNumber: row.pr_number,
    headSha: sha,
    requestedBy: "agent",
    config: { image: row.image, cloneUrl: row.clone_url, defaultBranch: row.default_branch, stacks: [stack] },
    stack: stack.name,
    jobId: `${reviewDestroyJobId(row.repo, stack.name)}__${Date.now()}`,
  });
  await setReviewDestroyTask(deps.db, row.repo, stack.name, created.task.id);
  const task = (await claimTask(deps.db, created.task.id)) ?? created.task;
  const log = deps.log.child({ task_id: task.id, repo: row.repo, stack: stack.name });
  const run = { deps, gh, repo: repoOf(row.repo), target, workflow: created.workflow, task, stack, log };
  const started = Date.now();
  let output = "";
  let result: Awaited<ReturnType<typeof runPulumiDestroy>> | null = null;
  let error: string | null = null;
  try {
    result = await withSandboxSession(run, "deploy", undefined, async (session) => {
      const redacting = session.redactor.stream();
      const ran = await runPulumiDestroy(session.sandbox, {
        pulumiStack: stack.pulumiStack ?? stack.name,
        template: stack.review!.template,
        workdir: stack.dir,
        env: session.env,
        timeoutMs: deps.config.sandbox.timeoutSeconds * 1000,
        readLimitBytes: PLAN_READ_LIMIT_BYTES,
        onOutput: (chunk) => (output += redacting.push(chunk)),
      });
      output += redacting.end();
      return ran.failure ? { ...ran, failure: { ...ran.failure, message: session.redactor.redact(ran.failure.message) } } : ran;
    });
    error = result === null ? "stopped before the destroy started" : result.failure ? result.failure.message : result.exec.exitCode === 0 || result.gone ? null : result.exec.timedOut ? "the destroy ran past its time limit and was stopped" : "the destroy was stopped";
  } catch (err) {
    error = (err as Error).message;
  }
  const ok = error === null;
  const step: StepResult = { name: "deploy", status: ok ? "succeeded" : "failed", exitCode: result?.exec.exitCode ?? null, durationMs: Date.now() - started, outputTail: headTail(output, 60_000), truncated: false };
  await saveStepLog(deps.db, task.id, { step: "deploy", content: output, truncated: false });
  await finishTask(deps.db, task.id, { state: ok ? "SUCCEEDED" : "FAILED", steps: [step], error });
  await endReviewDestroy(deps.db, row.repo, stack.name, ok);
  // The stack's own root resource is not one of its resources to the reader.
  const deleted = (result?.preview?.resources ?? []).filter((r) => r.op === "delete" && r.type !== "pulumi:pulumi:Stack");
  await auditWorkflow(deps.db, created.workflow, ok ? "review.destroyed" : "review.destroy_failed", { stack: stack.name, reason: row.destroy_reason, sha, gone: result?.gone ?? false, resources: deleted.map((r) => r.urn), error }, task.id);
  const logUrl = taskLogUrl(deps.config, task.id);
  const logLink = logUrl ? ` [Log](${logUrl})` : "";
  await deps.writes.comment(
    target,
    row.pr_number,
    ok
      ? `🧹 Review stack ${code(stack.name)} destroyed (${row.destroy_reason ?? "asked for"}): ${result?.gone ? "it no longer existed, nothing to delete" : `${deleted.length} resource${deleted.length === 1 ? "" : "s"} deleted and the stack removed`}.${logLink}`
      : `⚠️ Review stack ${code(stack.name)} could not be destroyed (${row.destroy_reason ?? "asked for"}): ${error}. Its resources may remain and still count against \`review_max_live\`; after fixing the cause, comment \`/agent destroy --review ${row.base_stack}\`.${logLink}${output ? `\n\n${fencedWithin(headTail(output, 4000), 6000)}` : ""}`,
    { idempotencyKey: `task:${task.id}:review-destroyed` },
  );
  log.info({ ok, gone: result?.gone ?? false, deleted: deleted.length }, "review stack destroy ended");
}
