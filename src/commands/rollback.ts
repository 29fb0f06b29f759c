import { nextRollbackStep, type RollbackStep } from "../approval/mainline-gate.js";
import type { MainlineApply } from "../config/workflow.js";
import { decideImage } from "../approval/images.js";
import { hasAtLeast, type RepoPermission } from "../approval/permissions.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { RepoConfig } from "../config/repo/schema.js";
import { deployOfPreview, lastGoodDeploy } from "../connectors/store/gate.js";
import { latestMainlinePreview, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import { mainlineTitle, startMainlinePreview } from "../deploys/mainline.js";
import { requestApply } from "../deploys/request-apply.js";
import { requestRollbackRun } from "../deploys/deploy-run.js";
import { stackGraph } from "../config/repo/resolve.js";
import { layersOf, upstreamWithin } from "../domain/stack-graph.js";
import { approvedBy, renderApplyConflict, renderGateChecklist } from "../render/gate.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { refusedInObserve } from "./phase.js";
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
  const { step, current } = await mainlineStepOf(ctx, stack.name, "rollback", target?.sha ?? null);
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

/**
 * `/agent rollback a b c`: several stacks back to their last good commits, applied together in
 * reverse dependency order (what depends on a stack goes back before it). The first call
 * previews each stack's target; once every one is planned and approved, the same command
 * applies them as one run (src/deploys/deploy-run.ts): every stack through its own gate, a
 * failure stopping the stacks it depends on.
 */
export async function requestRollbackStacks(ctx: CommandContext, names: string[], loaded: { config: RepoConfig; stacks: ResolvedStack[] }, permission: RepoPermission): Promise<void> {
  if (await refusedInObserve(ctx, `/agent rollback ${names.join(" ")}`, { stacks: names })) return;
  if (names.length === 1) return requestRollback(ctx, names[0]!, loaded, permission);
  const graph = stackGraph(loaded.stacks);
  const ordered = layersOf(graph, names).flat().reverse();
  const stacks = ordered.map((n) => loaded.stacks.find((s) => s.name === n)!);
  const command = `/agent rollback ${ordered.join(" ")}`;
  const short = stacks.filter((s) => !hasAtLeast(permission, s.gate.deployPermission));
  if (short.length) {
    await audit(ctx, "rollback.refused", { stacks: ordered, reason: "permission", actual: permission });
    await reply(ctx, `rolling back ${short.map((s) => `${code(s.name)} needs **${s.gate.deployPermission}** access`).join(", ")} and you have **${permission}**. Nothing was run.`);
    return;
  }
  const image = decideImage(loaded.config.sandbox?.image, ctx.deps.config.sandbox);
  if (!image.ok) {
    await reply(ctx, `I can't run the rollback: ${image.message}.`);
    return;
  }
  const states = [];
  for (const stack of stacks) {
    const target = await lastGoodDeploy(ctx.deps.db, ctx.repoFullName, stack.name);
    const { step, current } = await mainlineStepOf(ctx, stack.name, "rollback", target?.sha ?? null);
    states.push({ stack, target, current, step });
  }
  const nothing = states.filter((s) => s.step.kind === "nothing-deployed");
  if (nothing.length) {
    await audit(ctx, "rollback.refused", { stacks: ordered, reason: "no successful deploy recorded", missing: nothing.map((s) => s.stack.name) });
    await reply(ctx, `there is nothing to roll ${nothing.map((s) => code(s.stack.name)).join(", ")} back to: no successful deploy from the default branch is recorded. Nothing was run; roll back the other stacks on their own, or fix forward.`);
    return;
  }
  const applying = states.filter((s) => s.step.kind === "applying");
  if (applying.length) {
    await reply(ctx, `the rollback of ${applying.map((s) => code(s.stack.name)).join(", ")} is already being applied.`);
    return;
  }
  const toPreview = states.filter((s) => s.step.kind === "preview");
  if (toPreview.length) {
    const lines: string[] = [];
    for (const s of toPreview) {
      const approvals = Math.max(s.stack.gate.rollbackApprovals, ctx.deps.config.gate.minApprovals);
      const started = await startMainlinePreview(ctx.deps, {
        repo: ctx.repo,
        repoFullName: ctx.repoFullName,
        installationId: ctx.installationId,
        threadNumber: ctx.threadNumber,
        sha: s.target!.sha,
        stack: s.stack,
        requestedBy: ctx.actor,
        deliveryId: ctx.deliveryId,
        config: { image: image.image, cloneUrl: ctx.cloneUrl, defaultBranch: ctx.defaultBranch },
        branch: { purpose: "rollback", approvals, command, together: ordered },
      });
      await audit(ctx, started ? "rollback.requested" : "rollback.duplicate", { stack: s.stack.name, target_sha: s.target!.sha, from_deploy: s.target!.task_id, approvals_required: approvals, together: ordered }, started ?? {}, `rollback:${s.stack.name}`);
      lines.push(`- ${code(s.stack.name)} → ${code(shortSha(s.target!.sha))} (${s.target!.kind === "branch" ? "an earlier rollback" : `#${s.target!.pr_number}`}), ${approvals === 0 ? "no approval needed" : `${approvals} approval${approvals === 1 ? "" : "s"} needed`}`);
    }
    await reply(ctx, [`⏪ rolling back ${stacks.length} stacks to their last successful deploys from the default branch. Previewing first:`, "", ...lines, "", `Once every stack is planned and approved, comment \`${command}\` again: they are applied in this order (what depends on a stack goes back before it), each through its own gate.`].join("\n"));
    return;
  }
  const waiting = states.filter((s) => s.step.kind === "wait");
  if (waiting.length) {
    await reply(ctx, `the rollback previews of ${waiting.map((s) => code(s.stack.name)).join(", ")} are still running; their plans will be posted here. Comment \`${command}\` again once they are approved.`);
    return;
  }
  const upstream = upstreamWithin(graph, ordered);
  const outcome = await requestRollbackRun(
    applyRequester(ctx),
    states.map((s) => ({ stack: s.stack, workflow: s.current!.workflow, task: s.current!.task, after: ordered.filter((o) => (upstream.get(o) ?? []).includes(s.stack.name)) })),
    { runParallelism: loaded.config.parallel_applies },
  );
  switch (outcome.status) {
    case "blocked": {
      const blocked = outcome.gates.filter((g) => !g.gate.allowed);
      await reply(ctx, [`nothing was rolled back: every stack of a multi-stack rollback must pass its gate first, and ${blocked.length === 1 ? "this one does" : "these do"} not.`, ...blocked.map((g) => `\n${renderGateChecklist(g.stack, g.gate, g.sha, "Rollback")}`)].join("\n"));
      return;
    }
    case "conflict":
      await reply(ctx, `nothing was rolled back: ${renderApplyConflict(outcome.stack, outcome.conflict, `the rollback preview of ${code(outcome.stack)}`, `Comment \`${command}\` to preview it afresh.`)}`);
      return;
    case "queued":
      await audit(ctx, "deploy.run_queued", { run_id: outcome.runId, rollback: true, stacks: outcome.stacks.map((s) => ({ stack: s.stack, sha: s.sha, plan_hash: s.planHash, after: s.after })) });
      await reply(ctx, [`⏪ rolling back ${outcome.stacks.length} stacks in reverse dependency order (each stack's gate is asked again just before it applies; a failure stops the stacks it depends on):`, "", ...outcome.stacks.map((s, i) => `${i + 1}. ${code(s.stack)} → ${code(shortSha(s.sha))} (plan ${code(shortPlanHash(s.planHash) ?? "")}${s.approvedBy.length ? `, approved by ${s.approvedBy.map((a) => `@\u200b${a}`).join(", ")}` : ""})${s.after.length ? ` after ${s.after.map((a) => code(a)).join(", ")}` : ""}`)].join("\n"));
  }
}

/**
 * Where a two-step apply of a default-branch commit (a rollback, a drift fix) of a stack stands
 * in this thread: the newest preview of that purpose, and the next step towards `target`.
 */
export async function mainlineStepOf(ctx: CommandContext, stack: string, purpose: MainlineApply["purpose"], target: string | null): Promise<{ step: RollbackStep; current: { workflow: WorkflowRow; task: TaskRow } | null }> {
  const found = await latestMainlinePreview(ctx.deps.db, ctx.repoFullName, ctx.threadNumber, stack);
  const current = found?.workflow.config.branch?.purpose === purpose ? found : null;
  const deploy = current ? await deployOfPreview(ctx.deps.db, current.task.id) : null;
  const step = nextRollbackStep({
    now: new Date(),
    ttlSeconds: ctx.deps.config.gate.approvalTtlSeconds,
    target,
    current: current ? { sha: current.workflow.head_sha, state: current.task.state, createdAt: current.workflow.created_at, deploy: deploy ? (deploy.state === "PENDING" || deploy.state === "RUNNING" ? "live" : "ended") : null } : null,
  });
  return { step, current };
}
