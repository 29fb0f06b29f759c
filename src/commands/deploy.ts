import { hasAtLeast, type RepoPermission } from "../approval/permissions.js";
import { judgeClickedPreview } from "../approval/timeline.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { RepoConfig } from "../config/repo/schema.js";
import { deployOfPreview } from "../connectors/store/gate.js";
import { latestMainlinePreview } from "../connectors/store/workflows.js";
import { gatePolicy, gatherFacts } from "../deploys/gate-facts.js";
import { requestApply } from "../deploys/request-apply.js";
import { approvedBy, renderApplyConflict, renderGateChecklist } from "../render/gate.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { decideImage } from "../approval/images.js";
import { applyRequester, audit, reply, type CommandContext } from "./context.js";
import { applyIfApproved } from "./rollback.js";

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
  const pending = await latestMainlinePreview(ctx.deps.db, ctx.repoFullName, ctx.threadNumber, stack.name);
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
  const gathered = await gatherFacts(ctx, stack, policy);
  const { facts } = gathered;
  if (clicked) {
    const current = facts.preview && facts.preview.headSha === facts.pr.headSha && facts.preview.state === "SUCCEEDED" ? facts.preview.planHash : null;
    const judged = judgeClickedPreview({ clicked, currentHead: facts.pr.headSha, currentPlan: current });
    if (!judged.current) {
      await audit(ctx, "deploy.stale_button", { stack: stack.name, clicked_task: clicked.taskId, clicked_sha: clicked.headSha, clicked_plan_hash: clicked.planHash, head_sha: facts.pr.headSha, plan_hash: current, why: judged.why });
      await reply(ctx, `the Deploy button you clicked was for ${code(stack.name)} at ${code(shortSha(clicked.headSha))} (plan ${code(shortPlanHash(clicked.planHash) ?? "none")}), which is no longer current: ${judged.why}. Nothing was queued; use the current preview's check run, or comment \`/agent deploy ${stack.name}\`.`);
      return;
    }
  }
  const outcome = await requestApply(applyRequester(ctx), {
    kind: "pull",
    stack,
    policy,
    gathered,
    config: { image: image.image, cloneUrl: ctx.cloneUrl, defaultBranch: ctx.defaultBranch },
  });
  switch (outcome.status) {
    case "blocked":
      await reply(ctx, renderGateChecklist(stack.name, outcome.gate, outcome.headSha));
      return;
    case "conflict":
      await reply(ctx, renderApplyConflict(stack.name, outcome.conflict, `this preview of ${code(stack.name)} (plan ${code(shortPlanHash(outcome.gate.planHash) ?? "")})`, `To apply again, run \`/agent preview ${stack.name}\` for a fresh plan and get it approved.`));
      return;
    case "queued": {
      const by = approvedBy(outcome.gate);
      await reply(ctx, `deploying ${code(stack.name)} at ${code(shortSha(outcome.headSha))} (plan ${code(shortPlanHash(outcome.planHash) ?? "")})${by ? `, approved by ${by}` : ""}. ${stack.gate.mode === "merge-then-deploy" ? " The PR is merged first; the merge commit is applied only if it plans the same." : " The PR is merged once it succeeds."}`);
    }
  }
}
