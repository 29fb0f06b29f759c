/**
 * Applying a default-branch commit: `/agent rollback` (the last good commit) and a merge-first
 * deploy whose merge commit planned differently from the approved plan. Both go the same way:
 * a `branch` workflow previews the commit, the result is posted where the command was typed,
 * and the plan is applied through the same gate as a PR deploy (approvals bound to that commit
 * and plan), or at once when the stack's policy needs no approval.
 */
import { evaluateMainlineGate, mainlineRequirements } from "./gate-facts.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { RepoRef } from "../connectors/github.js";
import { auditWorkflow } from "../connectors/store/audit.js";
import { createMainlinePreview, finishTask, getTasks } from "../connectors/store/workflows.js";
import type { AppDeps, TaskRun } from "../deps.js";
import type { PreviewOutcome } from "../plan/types.js";
import { completedOutput, previewCheckRunName, queuedOutput } from "../render/check-run.js";
import { code, shortSha } from "../render/markdown.js";
import { destructiveHeader, destructiveLine, shortPlanHash, summaryLine } from "../render/plan.js";
import { taskLogUrl } from "../web/log-links.js";
import { enqueueDeploy, type EnqueuedDeploy } from "./enqueue.js";
import { mainlinePreviewJobId, TASK_JOB_OPTIONS } from "../connectors/queues.js";
import { traceField } from "../ops/tracing.js";
import { requestSlackApproval } from "./slack.js";
import type { MainlineApply, WorkflowConfig } from "../config/workflow.js";

export interface MainlinePreviewRequest {
  repo: RepoRef;
  repoFullName: string;
  installationId: number;
  threadNumber: number;
  sha: string;
  stack: ResolvedStack;
  requestedBy: string;
  deliveryId: string | null;
  config: Omit<WorkflowConfig, "stacks" | "checks" | "branch">;
  branch: MainlineApply;
  /** Tasks that must end first: the preview starts when they succeeded, and does not run if one failed (src/jobs/dependents.ts). */
  after?: string[];
}

/** Records and enqueues the preview of a default-branch commit; false when an identical one is live. */
export async function startMainlinePreview(deps: AppDeps, b: MainlinePreviewRequest): Promise<{ taskId: string; workflowId: string; notRun?: true } | null> {
  const created = await createMainlinePreview(deps.db, {
    repo: b.repoFullName,
    installationId: b.installationId,
    threadNumber: b.threadNumber,
    sha: b.sha,
    requestedBy: b.requestedBy,
    deliveryId: b.deliveryId,
    config: { ...b.config, stacks: [b.stack], branch: b.branch },
    stack: b.stack.name,
    jobId: mainlinePreviewJobId(b.repoFullName, b.threadNumber, b.sha, b.stack.name, b.deliveryId ?? String(Date.now())),
    ...(b.after?.length ? { after: b.after } : {}),
  });
  if (!created) return null;
  await deps.writes.checkRun(
    { installationId: b.installationId, repo: b.repo },
    created.task.id,
    { ...queuedOutput(b.stack.name, b.sha, b.requestedBy), detailsUrl: taskLogUrl(deps.config, created.task.id) },
    { cls: "ack", identity: { name: previewCheckRunName(b.stack.name), headSha: b.sha } },
  );
  // Waiting for tasks that are still live: the last to end starts it (src/jobs/dependents.ts).
  // Those that ended before it was recorded release nothing, so their outcome is read here.
  const after = b.after?.length ? await getTasks(deps.db, b.after) : [];
  if (after.some((t) => t.state === "PENDING" || t.state === "RUNNING")) return { taskId: created.task.id, workflowId: created.workflow.id };
  const failed = after.find((t) => t.state !== "SUCCEEDED");
  if (failed) {
    const error = `not run: ${failed.stack} failed before it`;
    await finishTask(deps.db, created.task.id, { state: "FAILED", steps: [], error });
    await deps.writes.checkRun({ installationId: b.installationId, repo: b.repo }, created.task.id, completedOutput(b.stack.name, { succeeded: false, steps: [], error }));
    return { taskId: created.task.id, workflowId: created.workflow.id, notRun: true };
  }
  await deps.queues.tasks.add("preview", { taskId: created.task.id, workflowId: created.workflow.id, deliveryId: b.deliveryId, ...traceField() }, { ...TASK_JOB_OPTIONS, jobId: created.task.job_id });
  return { taskId: created.task.id, workflowId: created.workflow.id };
}

/** Puts an allowed branch preview's plan on the deploy queue. */
export async function applyMainlinePreview(run: TaskRun, by: { actor: string; deliveryId: string | null }): Promise<EnqueuedDeploy> {
  const { deps, repo: r, workflow, task, stack } = run;
  return enqueueDeploy(deps, {
    repo: r,
    repoFullName: workflow.repo,
    installationId: Number(workflow.installation_id),
    threadNumber: workflow.pr_number,
    sha: workflow.head_sha,
    planHash: task.plan_hash!,
    previewTaskId: task.id,
    requestedBy: by.actor,
    deliveryId: by.deliveryId,
    config: workflow.config,
    stack,
    kind: "branch",
    // The rollback SLA counts from the first request, approvals included.
    requestedAt: workflow.created_at,
  });
}

export function mainlineTitle(branch: MainlineApply): string {
  return branch.purpose === "rollback" ? "Rollback" : branch.purpose === "merge-queue" ? "Merge-queue deploy" : branch.purpose === "drift" ? "Drift check" : branch.purpose === "drift-fix" ? "Drift fix" : branch.purpose === "act" ? "Deploy of the merged commit" : "Deploy of the merge commit";
}

/** One line of plan: counts and destructive operations (the full table is on the check run). */
function planSummary(plan: PreviewOutcome | null): string[] {
  if (!plan) return [];
  if (plan.engine !== "pulumi") return ["The plan's output is on the check run."];
  const destructive = plan.resources.filter((x) => x.op === "delete" || x.op === "replace");
  return [`Changes: **${summaryLine(plan.summary)}**`, ...(destructive.length ? ["", destructiveHeader(destructive.length), ...destructive.slice(0, 10).map(destructiveLine)] : [])];
}

/**
 * After a branch preview ends: report it in the thread, and either apply it now (the stack's
 * policy needs no approval and nobody denied) or say who must approve and how to apply.
 */
export async function afterMainlinePreview(run: TaskRun, outcome: { succeeded: boolean; error: string | null; plan: PreviewOutcome | null }): Promise<void> {
  const { deps, gh, repo: r, target, workflow, task, stack } = run;
  const branch = workflow.config.branch!;
  const what = mainlineTitle(branch);
  const at = `${code(stack.name)} at ${code(shortSha(workflow.head_sha))}`;
  const logUrl = taskLogUrl(deps.config, task.id);
  if (!outcome.succeeded || !task.plan_hash) {
    await deps.writes.comment(target, workflow.pr_number, [`❌ ${what} of ${at}: its preview failed${outcome.error ? `: ${outcome.error}` : ""}. Nothing was applied.`, logUrl ? `\n[Full log](${logUrl})` : ""].join("\n"));
    return;
  }
  const plan = `plan ${code(shortPlanHash(task.plan_hash) ?? "")}`;
  const result = await evaluateMainlineGate(deps, gh, r, workflow, task, stack);
  if (result.allowed && branch.together) {
    // Part of a multi-stack rollback: applied with the others, in order, by the command.
    await deps.writes.comment(target, workflow.pr_number, [`⏪ ${what} of ${at} is planned (${plan}) and ready. Once every stack of ${branch.together.map((n) => code(n)).join(", ")} is, comment \`${branch.command}\` to apply them in reverse dependency order.`, "", ...planSummary(outcome.plan)].join("\n"));
    return;
  }
  // `act`: applied without a human when the plan qualifies; otherwise why not, and the human way.
  const auto = branch.purpose === "act" ? (await mainlineRequirements(deps, workflow, task, stack)).auto : null;
  if (auto) await auditWorkflow(deps.db, workflow, auto.apply ? "act.auto_apply" : "act.held", { stack: stack.name, sha: workflow.head_sha, plan_hash: task.plan_hash, ...(auto.apply ? {} : { why: auto.why }) }, task.id);
  if (result.allowed) {
    const enqueued = await applyMainlinePreview(run, { actor: auto?.apply ? "agent (act)" : workflow.requested_by, deliveryId: null });
    await auditWorkflow(deps.db, workflow, enqueued.ok ? "branch.apply_queued" : "branch.apply_refused", { stack: stack.name, sha: workflow.head_sha, plan_hash: task.plan_hash, purpose: branch.purpose, approvals_required: 0, conflict: enqueued.ok ? null : enqueued.conflict?.other.state ?? null }, task.id);
    await deps.writes.comment(
      target,
      workflow.pr_number,
      enqueued.ok
        ? [auto?.apply ? `🤖 ${what} of ${at} (${plan}) is being applied now without a human approval: the repository is in \`act\`, the plan policy allows this plan and it deletes or replaces nothing.` : `⏪ ${what} of ${at} (${plan}) is being applied now: the stack's policy needs no approval for it.`, "", ...planSummary(outcome.plan)].join("\n")
        : `${what} of ${at} is planned (${plan}) but not applied: a deploy of ${code(stack.name)} is already queued or running. Run \`${branch.command}\` again once it ends.`,
    );
    return;
  }
  const approvals = result.requirements.find((q) => q.id === "approvals");
  await requestSlackApproval(deps, {
    kind: branch.purpose === "rollback" ? "rollback" : "deploy",
    repo: workflow.repo,
    prNumber: workflow.pr_number,
    thread: "issues",
    stack: stack.name,
    sha: workflow.head_sha,
    planHash: task.plan_hash,
    plan: outcome.plan,
    requestedBy: workflow.requested_by,
    installationId: Number(workflow.installation_id),
  });
  await deps.writes.comment(
    target,
    workflow.pr_number,
    [
      auto && !auto.apply ? `⏪ ${what} of ${at} is planned (${plan}) and was not applied by itself (\`act\`): ${auto.why}. It waits for approval:` : `⏪ ${what} of ${at} is planned (${plan}) and waits for approval:`,
      "",
      ...planSummary(outcome.plan),
      "",
      `${approvals && !approvals.met ? `${approvals.detail}. ${approvals.fix ?? ""}`.trim() : "Approvals are in place."} Then comment \`${branch.command}\` to apply exactly this plan. (@${workflow.requested_by} asked for it, so their own /approve does not count${branch.exclude?.length ? `; nor does that of ${branch.exclude.map((e) => `@\u200b${e.login}`).join(", ")}, who changed the pull request` : ""}.)`,
    ].join("\n"),
  );
}
