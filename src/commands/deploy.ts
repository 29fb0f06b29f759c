import { evaluateGate } from "../approval/gate.js";
import { hasAtLeast, type RepoPermission } from "../approval/permissions.js";
import { judgeClickedPreview } from "../approval/timeline.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { RepoConfig } from "../config/repo/schema.js";
import { deployOfPreview } from "../connectors/store/gate.js";
import { latestBranchPreview } from "../connectors/store/workflows.js";
import { enqueueDeploy } from "../jobs/enqueue-deploy.js";
import { gatePolicy, gatherFacts } from "../jobs/gate-facts.js";
import { requestSlackApproval } from "../jobs/slack.js";
import { appliedHow, renderGateChecklist } from "../render/gate.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { decideImage } from "../approval/images.js";
import { audit, reply, type CommandContext } from "./context.js";
import { applyIfApproved } from "./rollback.js";

// The gate's facts are gathered in the jobs layer: the deploy job asks the same gate again just before it applies.
export { approvalCommands, approverFacts, gatePolicy, gatherFacts } from "../jobs/gate-facts.js";

/** The preview a check run's Deploy button was clicked on: it deploys that plan or nothing. */
export interface ClickedPreview {
  taskId: string;
  headSha: string;
  planHash: string | null;
  state: string;
}

/**
 * `/agent deploy [stack]`: asks the gate; when anything is unmet, one reply with the whole
 * checklist and nothing runs. Otherwise records the deploy (at most one live per stack, one
 * apply per preview) and enqueues it; the deploy job asks the gate once more before it applies.
 * `clicked`: the Deploy button of that preview's check run — only its plan, never a newer one.
 */
export async function requestDeploy(
  ctx: CommandContext,
  stackName: string,
  loaded: { config: RepoConfig; stacks: ResolvedStack[] },
  permission: RepoPermission,
  clicked: ClickedPreview | null = null,
): Promise<void> {
  const stack = loaded.stacks.find((s) => s.name === stackName)!;
  if (!hasAtLeast(permission, stack.gate.deployPermission)) {
    await audit(ctx, "deploy.refused", { stack: stack.name, reason: "permission", required: stack.gate.deployPermission, actual: permission });
    await reply(ctx, `deploying ${code(stack.name)} needs **${stack.gate.deployPermission}** access and you have **${permission}**. Nothing was run.`);
    return;
  }
  const image = decideImage(loaded.config.sandbox?.image, ctx.deps.config.sandbox);
  if (!image.ok) {
    await reply(ctx, `I can't run the deploy: ${image.message}.`);
    return;
  }
  // Merge-first left a merge commit to approve: `/agent deploy` now applies that plan.
  const pending = await latestBranchPreview(ctx.deps.db, ctx.repoFullName, ctx.issueNumber, stack.name);
  // (Not from a Deploy button: that stands for its own preview of the PR head, nothing else.)
  if (!clicked && pending?.workflow.config.branch?.purpose === "merge-commit" && !(await deployOfPreview(ctx.deps.db, pending.task.id))) {
    if (pending.task.state === "SUCCEEDED") {
      await applyIfApproved(ctx, stack, pending.workflow, pending.task);
      return;
    }
    if (pending.task.state === "PENDING" || pending.task.state === "RUNNING") {
      await reply(ctx, `the preview of the merge commit ${code(shortSha(pending.workflow.head_sha))} for ${code(stack.name)} is still running; its plan will be posted here.`);
      return;
    }
  }
  const policy = gatePolicy(stack, ctx.deps.config.gate);
  const { facts, previewTaskId, previewPlan } = await gatherFacts(ctx, stack, policy);
  if (clicked) {
    const current = facts.preview && facts.preview.headSha === facts.pr.headSha && facts.preview.state === "SUCCEEDED" ? facts.preview.planHash : null;
    const judged = judgeClickedPreview({ clicked, currentHead: facts.pr.headSha, currentPlan: current });
    if (!judged.current) {
      await audit(ctx, "deploy.stale_button", { stack: stack.name, clicked_task: clicked.taskId, clicked_sha: clicked.headSha, clicked_plan_hash: clicked.planHash, head_sha: facts.pr.headSha, plan_hash: current, why: judged.why });
      await reply(ctx, `the Deploy button you clicked was for ${code(stack.name)} at ${code(shortSha(clicked.headSha))} (plan ${code(shortPlanHash(clicked.planHash) ?? "none")}), which is no longer current: ${judged.why}. Nothing was queued; use the current preview's check run, or comment \`/agent deploy ${stack.name}\`.`);
      return;
    }
  }
  const result = evaluateGate(policy, facts);
  await audit(ctx, "gate.evaluated", {
    stack: stack.name,
    head_sha: facts.pr.headSha,
    plan_hash: result.planHash,
    allowed: result.allowed,
    requirements: result.requirements.map((r) => ({ id: r.id, met: r.met, detail: r.detail })),
    counted: result.counted.map((a) => a.login),
    ignored: result.ignored,
  });
  if (!result.allowed || !result.planHash || !previewTaskId) {
    await reply(ctx, renderGateChecklist(stack.name, result, facts.pr.headSha));
    // Waiting only for people: ask in the stack's Slack channel too (once per plan).
    const onlyPeopleMissing = result.requirements.every((r) => r.met || r.id === "approvals" || (r.id === "plan-policy" && !r.detail.startsWith("DENY")));
    if (onlyPeopleMissing && result.planHash) {
      await requestSlackApproval(ctx.deps, {
        kind: "deploy",
        repo: ctx.repoFullName,
        prNumber: ctx.issueNumber,
        thread: "pull",
        stack: stack.name,
        sha: facts.pr.headSha,
        planHash: result.planHash,
        plan: previewPlan,
        requestedBy: ctx.actor,
        installationId: ctx.installationId,
      });
    }
    return;
  }
  const enqueued = await enqueueDeploy(ctx.deps, ctx.gh, {
    repo: ctx.repo,
    repoFullName: ctx.repoFullName,
    installationId: ctx.installationId,
    threadNumber: ctx.issueNumber,
    sha: facts.pr.headSha,
    planHash: result.planHash,
    previewTaskId,
    requestedBy: ctx.actor,
    deliveryId: ctx.deliveryId,
    config: { image: image.image, cloneUrl: ctx.cloneUrl, defaultBranch: ctx.defaultBranch, stacks: [stack] },
    stack,
    kind: "deploy",
  });
  if (!enqueued.ok) {
    const other = enqueued.conflict;
    await audit(ctx, "deploy.duplicate", { stack: stack.name, plan_hash: result.planHash, other: other ? { state: other.other.state, pr: other.other.pr_number } : null });
    await reply(
      ctx,
      other?.kind === "applied"
        ? `this preview of ${code(stack.name)} (plan ${code(shortPlanHash(result.planHash) ?? "")}) was already applied once (that deploy ${appliedHow(other.other.state)}); a preview is applied at most once. To apply again, run \`/agent preview ${stack.name}\` for a fresh plan and get it approved.`
        : `a deploy of ${code(stack.name)} is already queued or running${other ? ` (from #${other.other.pr_number})` : ""}; one at a time per stack.`,
    );
    return;
  }
  // agent_approval_wait_seconds: from the preview's finish to this deploy being queued.
  if (facts.preview?.finishedAt) ctx.deps.metrics?.approvalWait.observe(Math.max(0, (Date.now() - facts.preview.finishedAt.getTime()) / 1000));
  await audit(ctx, "deploy.queued", { stack: stack.name, head_sha: facts.pr.headSha, plan_hash: result.planHash, approved_by: result.counted.map((a) => a.login) }, { workflowId: enqueued.workflowId, taskId: enqueued.taskId });
  const by = result.counted.map((a) => `@\u200b${a.login}`).join(", ");
  await reply(ctx, `deploying ${code(stack.name)} at ${code(shortSha(facts.pr.headSha))} (plan ${code(shortPlanHash(result.planHash) ?? "")})${by ? `, approved by ${by}` : ""}. ${stack.gate.mode === "merge-then-deploy" ? " The PR is merged first; the merge commit is applied only if it plans the same." : " The PR is merged once it succeeds."}`);
}
