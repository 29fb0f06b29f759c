import { nextRollbackStep } from "../approval/mainline-gate.js";
import { decideImage } from "../approval/images.js";
import { hasAtLeast, type RepoPermission } from "../approval/permissions.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { RepoConfig } from "../config/repo/schema.js";
import { deployOfPreview, lastGoodDeploy } from "../connectors/store/gate.js";
import { latestMainlinePreview, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import { mainlineTitle, startMainlinePreview } from "../deploys/mainline.js";
import { requestApply } from "../deploys/request-apply.js";
import { approvedBy, renderApplyConflict, renderGateChecklist } from "../render/gate.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { applyRequester, audit, reply, type CommandContext } from "./context.js";

/**
 * `/agent rollback [stack]`: goes back to the default branch's last successfully deployed
 * commit of the stack. The first call previews that commit; once the plan is approved (or when
 * the stack's `rollback_approvals` is 0, at once) the next call applies exactly that plan.
 */
export async function requestRollback(ctx: CommandContext, stackName: string, loaded: { config: RepoConfig; stacks: ResolvedStack[] }, permission: RepoPermission): Promise<void> {
  const stack = loaded.stacks.find((s) => s.name === stackName)!;
  if (!hasAtLeast(permission, stack.gate.deployPermission)) {
    await audit(ctx, "rollback.refused", { stack: stack.name, reason: "permission", required: stack.gate.deployPermission, actual: permission });
    await reply(ctx, `rolling back ${code(stack.name)} needs **${stack.gate.deployPermission}** access and you have **${permission}**. Nothing was run.`);
    return;
  }
  const image = decideImage(loaded.config.sandbox?.image, ctx.deps.config.sandbox);
  if (!image.ok) {
    await reply(ctx, `I can't run the rollback: ${image.message}.`);
    return;
  }
  const target = await lastGoodDeploy(ctx.deps.db, ctx.repoFullName, stack.name);
  const current = await latestMainlinePreview(ctx.deps.db, ctx.repoFullName, ctx.threadNumber, stack.name);
  const deploy = current ? await deployOfPreview(ctx.deps.db, current.task.id) : null;
  const step = nextRollbackStep({
    now: new Date(),
    ttlSeconds: ctx.deps.config.gate.approvalTtlSeconds,
    target: target?.sha ?? null,
    current: current && current.workflow.config.branch?.purpose === "rollback"
      ? { sha: current.workflow.head_sha, state: current.task.state, createdAt: current.workflow.created_at, deploy: deploy ? (deploy.state === "PENDING" || deploy.state === "RUNNING" ? "live" : "ended") : null }
      : null,
  });
  switch (step.kind) {
    case "nothing-deployed":
      await audit(ctx, "rollback.refused", { stack: stack.name, reason: "no successful deploy recorded" });
      await reply(ctx, `there is nothing to roll ${code(stack.name)} back to: no successful deploy of it from the default branch is recorded. Deploy a pull request first, or fix forward with a new one.`);
      return;
    case "wait":
      await reply(ctx, `the rollback preview of ${code(stack.name)} at ${code(shortSha(current!.workflow.head_sha))} is ${step.state === "PENDING" ? "queued" : "still running"}; its plan will be posted here.`);
      return;
    case "applying":
      await reply(ctx, `the rollback of ${code(stack.name)} to ${code(shortSha(current!.workflow.head_sha))} is already being applied.`);
      return;
    case "gate":
      await applyIfApproved(ctx, stack, current!.workflow, current!.task);
      return;
    case "preview": {
      const approvals = Math.max(stack.gate.rollbackApprovals, ctx.deps.config.gate.minApprovals);
      const started = await startMainlinePreview(ctx.deps, {
        repo: ctx.repo,
        repoFullName: ctx.repoFullName,
        installationId: ctx.installationId,
        threadNumber: ctx.threadNumber,
        sha: target!.sha,
        stack,
        requestedBy: ctx.actor,
        deliveryId: ctx.deliveryId,
        config: { image: image.image, cloneUrl: ctx.cloneUrl, defaultBranch: ctx.defaultBranch },
        branch: { purpose: "rollback", approvals, command: `/agent rollback ${stack.name}` },
      });
      await audit(ctx, started ? "rollback.requested" : "rollback.duplicate", { stack: stack.name, target_sha: target!.sha, from_deploy: target!.task_id, approvals_required: approvals }, started ?? {});
      const from = target!.kind === "branch" ? "an earlier rollback" : `#${target!.pr_number}`;
      await reply(
        ctx,
        started
          ? `⏪ rolling back ${code(stack.name)} to ${code(shortSha(target!.sha))}, its last successful deploy from the default branch (${from}). Previewing that commit first; ${approvals === 0 ? "the plan is applied as soon as it is ready (no approval needed for a rollback of this stack)" : `the plan needs ${approvals} approval${approvals === 1 ? "" : "s"} before it is applied`}.`
          : `a rollback preview of ${code(stack.name)} at ${code(shortSha(target!.sha))} is already queued.`,
      );
      return;
    }
  }
}

/**
 * A succeeded branch preview through its gate: the checklist when blocked, else the apply.
 * Shared by `/agent rollback` and `/agent deploy` on a merged PR (a merge commit to re-approve).
 */
export async function applyIfApproved(ctx: CommandContext, stack: ResolvedStack, workflow: WorkflowRow, task: TaskRow): Promise<void> {
  const what = mainlineTitle(workflow.config.branch!);
  const outcome = await requestApply(applyRequester(ctx), { kind: "mainline", stack, workflow, task });
  switch (outcome.status) {
    case "blocked":
      await reply(ctx, renderGateChecklist(stack.name, outcome.gate, workflow.head_sha, what));
      return;
    case "conflict":
      await reply(ctx, renderApplyConflict(stack.name, outcome.conflict, `this ${what.toLowerCase()} preview of ${code(stack.name)}`, `Comment \`${workflow.config.branch!.command}\` to preview it afresh.`));
      return;
    case "queued": {
      const by = approvedBy(outcome.gate);
      await reply(ctx, `⏪ applying the ${what.toLowerCase()} of ${code(stack.name)} at ${code(shortSha(workflow.head_sha))} (plan ${code(shortPlanHash(outcome.planHash) ?? "")})${by ? `, approved by ${by}` : ""}.`);
    }
  }
}
