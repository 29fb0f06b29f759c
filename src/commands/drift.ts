import { decideImage } from "../approval/images.js";
import { hasAtLeast, type RepoPermission } from "../approval/permissions.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { RepoConfig } from "../config/repo/schema.js";
import { branchHead } from "../connectors/github.js";
import { driftStackOfIssue } from "../connectors/store/drift.js";
import { startDriftCheck } from "../deploys/drift.js";
import { startMainlinePreview } from "../deploys/mainline.js";
import { code, shortSha } from "../render/markdown.js";
import { DRIFT_LABEL } from "../render/drift.js";
import { refusedInObserve } from "./phase.js";
import { audit, reply, type CommandContext } from "./context.js";
import { applyIfApproved, mainlineStepOf } from "./rollback.js";

/**
 * `/agent drift [stack]`: a drift check now — of the named stack, or of every stack with a
 * `drift` schedule. Each previews the default branch's head with `--refresh`; the result goes
 * to the stack's drift issue (opened, updated or closed), as a scheduled check's does.
 */
export async function requestDriftCheck(ctx: CommandContext, stack: string | null, loaded: { stacks: ResolvedStack[] }): Promise<void> {
  const stacks = stack ? loaded.stacks.filter((s) => s.name === stack) : loaded.stacks.filter((s) => s.drift);
  if (stacks.length === 0) {
    await reply(ctx, stack ? `there is no stack ${code(stack)}.` : "no stack has a `drift` schedule in `.github/agent.yml`; name the stack to check: `/agent drift <stack>`.");
    return;
  }
  const lines: string[] = [];
  for (const s of stacks) {
    const started = await startDriftCheck(ctx.deps, ctx.gh, { repo: ctx.repoFullName, installationId: ctx.installationId, stack: s.name, cloneUrl: ctx.cloneUrl, defaultBranch: ctx.defaultBranch, requestedBy: ctx.actor, deliveryId: ctx.deliveryId });
    lines.push(started.ok ? `- ${code(s.name)}: checking ${code(shortSha(started.sha))} (the head of ${code(ctx.defaultBranch)}) with \`--refresh\`` : `- ${code(s.name)}: not checked — ${started.why}`);
  }
  await reply(ctx, [`drift check${stacks.length === 1 ? "" : "s"}:`, ...lines, "", `Drift opens (or updates) the stack's issue labelled \`${DRIFT_LABEL}\`; a clean check closes it.`].join("\n"));
}

/**
 * `/agent deploy <stack>` on the stack's drift issue: make the resources match the default
 * branch again. Like a rollback (src/commands/rollback.ts), through the same gate: the first
 * call previews the default branch's head; once that plan is approved in the issue (the
 * stack's `approvals`, never by who asked), the same command applies exactly that plan.
 */
export async function requestDriftFix(ctx: CommandContext, stackName: string, loaded: { config: RepoConfig; stacks: ResolvedStack[] }, permission: RepoPermission): Promise<void> {
  if (await refusedInObserve(ctx, `/agent deploy ${stackName}`, { stack: stackName, drift_fix: true })) return;
  const stack = loaded.stacks.find((s) => s.name === stackName)!;
  const drift = await driftStackOfIssue(ctx.deps.db, ctx.repoFullName, ctx.threadNumber);
  if (!drift || drift.stack !== stack.name) {
    await audit(ctx, "deploy.refused", { stack: stack.name, reason: "not a drift issue", drift_stack: drift?.stack ?? null });
    await reply(ctx, `\`/agent deploy\` in an issue fixes drift: it works on a stack's drift issue (label \`${DRIFT_LABEL}\`), and this is ${drift ? `the drift issue of ${code(drift.stack)}` : "not a drift issue"}. Nothing was run.`);
    return;
  }
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
  const head = await branchHead(ctx.gh, ctx.repo, ctx.defaultBranch);
  const { step, current } = await mainlineStepOf(ctx, stack.name, "drift-fix", head);
  switch (step.kind) {
    case "nothing-deployed":
    case "preview": {
      const approvals = Math.max(stack.gate.approvals, ctx.deps.config.gate.minApprovals);
      const started = await startMainlinePreview(ctx.deps, {
        repo: ctx.repo,
        repoFullName: ctx.repoFullName,
        installationId: ctx.installationId,
        threadNumber: ctx.threadNumber,
        sha: head,
        stack,
        requestedBy: ctx.actor,
        deliveryId: ctx.deliveryId,
        config: { image: image.image, cloneUrl: ctx.cloneUrl, defaultBranch: ctx.defaultBranch },
        branch: { purpose: "drift-fix", approvals, command: `/agent deploy ${stack.name}` },
      });
      await audit(ctx, "deploy.queued", { stack: stack.name, kind: "drift-fix", stage: "preview", sha: head, approvals_required: approvals }, started ?? {});
      await reply(ctx, `🔧 fixing the drift of ${code(stack.name)}: previewing ${code(shortSha(head))}, the head of ${code(ctx.defaultBranch)}. ${approvals === 0 ? "Its plan is applied as soon as it is ready (no approval needed)." : `Once its plan has ${approvals} approval${approvals === 1 ? "" : "s"} here (\`/approve\`), comment \`/agent deploy ${stack.name}\` again to apply exactly that plan.`}`);
      return;
    }
    case "wait":
      await reply(ctx, `the preview of ${code(shortSha(current!.workflow.head_sha))} for ${code(stack.name)} is still running; its plan will be posted here.`);
      return;
    case "applying":
      await reply(ctx, `the drift fix of ${code(stack.name)} is already being applied.`);
      return;
    case "gate":
      await applyIfApproved(ctx, stack, current!.workflow, current!.task);
  }
}
