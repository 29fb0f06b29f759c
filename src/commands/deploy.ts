import { evaluateGate, isOwnDeployCheck, type GateFacts, type GatePolicy } from "../approval/gate.js";
import { hasAtLeast, type RepoPermission } from "../approval/permissions.js";
import type { RepoConfig, ResolvedStack } from "../config/repo-config.js";
import { behindBy, createCheckRun, getPermission, getPull, listChecks, listReviews, listTeamMembers } from "../connectors/github.js";
import { findDeployConflict, listApprovals } from "../connectors/store/gate.js";
import { getStackLock } from "../connectors/store/locks.js";
import { createDeployWorkflow, latestPreviewOf, setTaskCheckRun } from "../connectors/store/workflows.js";
import { DEPLOY_JOB_OPTIONS, deployJobId } from "../jobs/queues.js";
import { deployCheckRunName, deployQueuedOutput } from "../render/check-run.js";
import { renderGateChecklist } from "../render/gate.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { decideImage } from "../approval/images.js";
import { audit, reply, type CommandContext } from "./context.js";

/** The stack's gate from the default branch, with the server's floor and approval lifetime. */
export function gatePolicy(stack: ResolvedStack, server: { approvalTtlSeconds: number; minApprovals: number }): GatePolicy {
  const g = stack.gate;
  return {
    requiredApprovals: Math.max(g.approvals, server.minApprovals),
    approvers: g.approvers,
    sources: g.count,
    approvalTtlSeconds: server.approvalTtlSeconds,
    require: {
      previewSucceeded: g.require.preview,
      statusChecks: g.require.statusChecks,
      mergeable: g.require.mergeable,
      undiverged: g.require.undiverged,
      notDraft: g.require.notDraft,
      lockHeld: g.require.lock,
    },
  };
}

/** Everything the gate needs to know about this PR and stack, read from GitHub and Postgres now. */
async function gatherFacts(ctx: CommandContext, stack: ResolvedStack, policy: GatePolicy): Promise<{ facts: GateFacts; previewTaskId: string | null }> {
  const pull = await getPull(ctx.gh, ctx.repo, ctx.issueNumber);
  const preview = await latestPreviewOf(ctx.deps.db, ctx.repoFullName, ctx.issueNumber, stack.name);
  const reviews = await listReviews(ctx.gh, ctx.repo, ctx.issueNumber);
  const approvals = await listApprovals(ctx.deps.db, ctx.repoFullName, ctx.issueNumber, stack.name);
  const logins = new Set<string>([...reviews.flatMap((r) => (r.user ? [r.user.login] : [])), ...approvals.map((a) => a.actor)]);
  const permissions: Record<string, RepoPermission> = {};
  for (const login of logins) permissions[login] = await getPermission(ctx.gh, ctx.repo, login);
  const teamMembers: Record<string, string[]> = {};
  for (const team of policy.approvers?.teams ?? []) teamMembers[team] = await listTeamMembers(ctx.gh, ctx.repo.owner, team);
  const checks = policy.require.statusChecks ? await listChecks(ctx.gh, ctx.repo, pull.headSha) : [];
  const lock = await getStackLock(ctx.deps.db, ctx.repoFullName, stack.name);
  const behind = policy.require.undiverged ? await behindBy(ctx.gh, ctx.repo, pull.baseRef, pull.headSha) : 0;
  return {
    previewTaskId: preview?.id ?? null,
    facts: {
      now: new Date(),
      stack: stack.name,
      prNumber: ctx.issueNumber,
      pr: {
        author: pull.author,
        headSha: pull.headSha,
        draft: pull.draft,
        mergeable: pull.mergeable,
        behindBy: behind,
        fromFork: pull.headRepoFullName !== pull.baseRepoFullName,
      },
      preview: preview ? { headSha: preview.head_sha, planHash: preview.plan_hash, state: preview.state, finishedAt: preview.finished_at } : null,
      reviews,
      commands: approvals.map((a) => ({ kind: a.kind, actor: a.actor, actorType: a.actor_type, headSha: a.head_sha, planHash: a.plan_hash, at: a.created_at })),
      permissions,
      teamMembers,
      checks,
      // Without a configured list, every check reported on the head commit must be green.
      requiredChecks: stack.gate.requiredChecks ?? [...new Set(checks.map((c) => c.name).filter((n) => !isOwnDeployCheck(n)))],
      lock: lock ? { prNumber: lock.prNumber } : null,
    },
  };
}

/**
 * `/agent deploy [stack]`: asks the gate; when anything is unmet, one reply with the whole
 * checklist and nothing runs. Otherwise records the deploy (at most one live per stack, one
 * apply per plan) and enqueues it.
 */
export async function requestDeploy(
  ctx: CommandContext,
  stackName: string,
  loaded: { config: RepoConfig; stacks: ResolvedStack[] },
  permission: RepoPermission,
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
  const policy = gatePolicy(stack, ctx.deps.config.gate);
  const { facts, previewTaskId } = await gatherFacts(ctx, stack, policy);
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
    return;
  }
  const conflict = await findDeployConflict(ctx.deps.db, ctx.repoFullName, stack.name, facts.pr.headSha, result.planHash);
  const created = conflict
    ? null
    : await createDeployWorkflow(ctx.deps.db, {
        repo: ctx.repoFullName,
        installationId: ctx.installationId,
        prNumber: ctx.issueNumber,
        headSha: facts.pr.headSha,
        planHash: result.planHash,
        requestedBy: ctx.actor,
        deliveryId: ctx.deliveryId,
        config: { image: image.image, cloneUrl: ctx.cloneUrl, defaultBranch: ctx.defaultBranch, stacks: [stack] },
        stack: stack.name,
        jobId: deployJobId(ctx.repoFullName, stack.name, facts.pr.headSha, result.planHash),
        previewTaskId,
      });
  if (!created) {
    const other = conflict ?? (await findDeployConflict(ctx.deps.db, ctx.repoFullName, stack.name, facts.pr.headSha, result.planHash));
    await audit(ctx, "deploy.duplicate", { stack: stack.name, plan_hash: result.planHash, other: other ? { state: other.other.state, pr: other.other.pr_number } : null });
    await reply(
      ctx,
      other?.kind === "applied"
        ? `this plan of ${code(stack.name)} (${code(shortPlanHash(result.planHash) ?? "")}) was already applied (${other.other.state.toLowerCase()}); a plan is applied at most once.`
        : `a deploy of ${code(stack.name)} is already queued or running${other ? ` (from #${other.other.pr_number})` : ""}; one at a time per stack.`,
    );
    return;
  }
  const checkRunId = await createCheckRun(ctx.gh, ctx.repo, deployCheckRunName(stack.name), facts.pr.headSha, created.task.id, deployQueuedOutput(stack.name, facts.pr.headSha, ctx.actor));
  await setTaskCheckRun(ctx.deps.db, created.task.id, checkRunId);
  await ctx.deps.queues.tasks.add("deploy", { taskId: created.task.id, workflowId: created.workflow.id, deliveryId: ctx.deliveryId }, { ...DEPLOY_JOB_OPTIONS, jobId: created.task.job_id });
  await audit(ctx, "deploy.queued", { stack: stack.name, head_sha: facts.pr.headSha, plan_hash: result.planHash, approved_by: result.counted.map((a) => a.login) }, { workflowId: created.workflow.id, taskId: created.task.id });
  const by = result.counted.map((a) => `@\u200b${a.login}`).join(", ");
  await reply(ctx, `deploying ${code(stack.name)} at ${code(shortSha(facts.pr.headSha))} (plan ${code(shortPlanHash(result.planHash) ?? "")})${by ? `, approved by ${by}` : ""}. The PR is merged once it succeeds.`);
}
