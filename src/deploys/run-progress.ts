/**
 * Moving a deploy run along (see deploy-run.ts): called when the run is recorded
 * and after each of its deploys ends. Under the PR's lock (several workers end deploys of one
 * run at once): deploys whose upstream ended without success are ended BLOCKED, "not started";
 * deploys whose upstream all succeeded are put on the queue (the job id makes it idempotent);
 * once every deploy has ended, the pull request is merged if all succeeded, and one summary
 * comment says what was applied, what failed and what was not started. The merge and the
 * comment are keyed by the run, so a second caller adds nothing.
 */
import type { WriteTarget } from "../connectors/outbox/writes.js";
import { auditWorkflow } from "../connectors/store/audit.js";
import { blockDeploy, getRunDeploys, setMerged, type DeployRow } from "../connectors/store/gate.js";
import { finishTask, getTask, getTasks, withPrLock } from "../connectors/store/workflows.js";
import { DEPLOY_JOB_OPTIONS } from "../connectors/queues.js";
import type { AppDeps } from "../deps.js";
import { traceField } from "../ops/tracing.js";
import { renderRunSummary } from "../render/deploy-run.js";
import { mergePullOnce, type MergeOutcome } from "./merge.js";

const LIVE = new Set(["PENDING", "RUNNING"]);

export async function advanceDeployRun(deps: AppDeps, target: WriteTarget, runId: string): Promise<void> {
  const first = (await getRunDeploys(deps.db, runId))[0];
  if (!first) return;
  await withPrLock(deps.db, first.repo, first.pr_number, async () => {
    const deploys = await getRunDeploys(deps.db, runId);
    const byTask = new Map(deploys.map((d) => [d.task_id, d]));
    const tasks = new Map((await getTasks(deps.db, deploys.map((d) => d.task_id))).map((t) => [t.id, t]));
    // A failure stops everything downstream: repeat until no pending deploy has an ended-badly upstream.
    for (let changed = true; changed; ) {
      changed = false;
      for (const d of deploys) {
        if (d.state !== "PENDING") continue;
        const bad = d.after_tasks.map((id) => byTask.get(id)).find((u) => u !== undefined && !LIVE.has(u.state) && u.state !== "SUCCEEDED");
        if (!bad) continue;
        const why = `not started: ${bad.stack} ${bad.error?.startsWith("not started:") ? "was not started either" : bad.state === "BLOCKED" ? "was blocked" : "failed"}`;
        if (!(await blockDeploy(deps.db, d.task_id, why))) continue;
        await finishTask(deps.db, d.task_id, { state: "CANCELLED", steps: [], error: why });
        await deps.queues.tasks.remove(tasks.get(d.task_id)?.job_id ?? "").catch(() => 0);
        Object.assign(d, { state: "BLOCKED", error: why });
        changed = true;
        await deps.writes.checkRun(target, d.task_id, { status: "completed", conclusion: "cancelled", completedAt: new Date().toISOString(), output: { title: `Deploy of ${d.stack} not started`, summary: `${why}; nothing was applied to ${d.stack}.` } });
        const found = await getTask(deps.db, d.task_id);
        if (found) await auditWorkflow(deps.db, found.workflow, "deploy.not_started", { stack: d.stack, plan_hash: d.plan_hash, run_id: runId, upstream: bad.stack, why }, d.task_id);
      }
    }
    // Ready deploys go on the queue up to the repository's parallel_applies: those applying and
    // those already queued (their job exists) count against it.
    const limit = (await getTask(deps.db, first.task_id))?.workflow.config.runParallelism ?? Number.POSITIVE_INFINITY;
    const ready = deploys.filter((d) => d.state === "PENDING" && d.after_tasks.every((id) => byTask.get(id)?.state === "SUCCEEDED"));
    let busy = deploys.filter((d) => d.state === "RUNNING").length;
    const fresh: typeof ready = [];
    for (const d of ready) {
      const task = tasks.get(d.task_id);
      if (task && (await deps.queues.tasks.getJob(task.job_id))) busy++;
      else fresh.push(d);
    }
    for (const d of fresh) {
      if (busy >= limit) break;
      const task = tasks.get(d.task_id);
      if (!task) continue;
      await deps.queues.tasks.add("deploy", { taskId: task.id, workflowId: task.workflow_id, deliveryId: null, ...traceField() }, { ...DEPLOY_JOB_OPTIONS, jobId: task.job_id });
      busy++;
    }
    if (deploys.some((d) => LIVE.has(d.state))) return;
    await finishRun(deps, target, runId, deploys);
  });
}

/** Every deploy of the run has ended: merge when all were applied, then one summary comment. */
async function finishRun(deps: AppDeps, target: WriteTarget, runId: string, deploys: DeployRow[]): Promise<void> {
  const last = deploys.at(-1)!;
  const found = await getTask(deps.db, last.task_id);
  if (!found) return;
  const { workflow } = found;
  const order = workflow.config.runOrder ?? deploys.map((d) => d.stack);
  let merge: MergeOutcome | null = null;
  // A rollback run applies default-branch commits: there is nothing to merge.
  const rollback = deploys.every((d) => d.kind === "branch");
  if (!rollback && deploys.every((d) => d.state === "SUCCEEDED")) {
    const stack = workflow.config.stacks[0]!;
    const gh = await deps.github(target.installationId);
    merge = await mergePullOnce(deps, gh, target.repo, target, `run:${runId}:merge`, { number: last.pr_number, sha: last.head_sha, method: stack.gate.mergeMethod });
    for (const d of deploys) await setMerged(deps.db, d.task_id, merge.merged, merge.merged ? merge.sha : null);
    await auditWorkflow(deps.db, workflow, merge.merged ? "merge.succeeded" : "merge.refused", merge.merged ? { sha: merge.sha, method: stack.gate.mergeMethod, run_id: runId } : { status: merge.status, message: merge.message, run_id: runId });
  }
  await auditWorkflow(deps.db, workflow, "deploy.run_finished", { run_id: runId, outcomes: deploys.map((d) => ({ stack: d.stack, state: d.state, error: d.error })), merged: merge?.merged ?? false });
  const body = renderRunSummary({ headSha: last.head_sha, deploys, order, merge: merge ? (merge.merged ? merge : { merged: false, message: `${merge.status}: ${merge.message}` }) : null, rollback });
  await deps.writes.comment(target, last.pr_number, body, { idempotencyKey: `run:${runId}:summary` });
}
