import { evaluateGate, isOwnDeployCheck, type GateFacts, type GatePolicy } from "../approval/gate.js";
import { hasAtLeast, type RepoPermission } from "../approval/permissions.js";
import type { RepoConfig, ResolvedStack } from "../config/repo-config.js";
import { behindBy, getPermission, getPull, listChecks, listReviews, listTeamMembers, type GitHub, type RepoRef } from "../connectors/github.js";
import { deployOfPreview, listApprovals } from "../connectors/store/gate.js";
import { getStackLock } from "../connectors/store/locks.js";
import { latestBranchPreview, latestPreviewOf } from "../connectors/store/workflows.js";
import { enqueueDeploy } from "../jobs/enqueue-deploy.js";
import { requestSlackApproval } from "../jobs/slack.js";
import type { PreviewOutcome } from "../plan/types.js";
import { renderGateChecklist } from "../render/gate.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { decideImage } from "../approval/images.js";
import { audit, reply, type CommandContext } from "./context.js";
import { applyIfApproved } from "./rollback.js";

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

/** The permission of everyone who approved or denied, and the members of the approver teams. */
export async function approverFacts(
  gh: GitHub,
  repo: RepoRef,
  logins: string[],
  policy: GatePolicy,
): Promise<{ permissions: Record<string, RepoPermission>; teamMembers: Record<string, string[]> }> {
  const permissions: Record<string, RepoPermission> = {};
  for (const login of new Set(logins)) permissions[login] = await getPermission(gh, repo, login);
  const teamMembers: Record<string, string[]> = {};
  for (const team of policy.approvers?.teams ?? []) teamMembers[team] = await listTeamMembers(gh, repo.owner, team);
  return { permissions, teamMembers };
}

/** `/approve` and `/deny` rows as the gate reads them. */
export function approvalCommands(rows: Awaited<ReturnType<typeof listApprovals>>): GateFacts["commands"] {
  return rows.map((a) => ({ kind: a.kind, actor: a.actor, actorType: a.actor_type, headSha: a.head_sha, planHash: a.plan_hash, at: a.created_at }));
}

/** Everything the gate needs to know about this PR and stack, read from GitHub and Postgres now. */
export async function gatherFacts(ctx: CommandContext, stack: ResolvedStack, policy: GatePolicy): Promise<{ facts: GateFacts; previewTaskId: string | null; previewPlan: PreviewOutcome | null }> {
  const pull = await getPull(ctx.gh, ctx.repo, ctx.issueNumber);
  const preview = await latestPreviewOf(ctx.deps.db, ctx.repoFullName, ctx.issueNumber, stack.name);
  const reviews = await listReviews(ctx.gh, ctx.repo, ctx.issueNumber);
  const approvals = await listApprovals(ctx.deps.db, ctx.repoFullName, ctx.issueNumber, stack.name);
  // Teams the plan policy names must be known too, to tell whether one of them approved.
  const policyTeams = preview?.head_sha === pull.headSha ? (preview.policy?.requiredApprovers.teams ?? []) : [];
  const teams = [...new Set([...(policy.approvers?.teams ?? []), ...policyTeams])];
  const { permissions, teamMembers } = await approverFacts(ctx.gh, ctx.repo, [...reviews.flatMap((r) => (r.user ? [r.user.login] : [])), ...approvals.map((a) => a.actor)], { ...policy, approvers: teams.length ? { users: policy.approvers?.users ?? [], teams } : policy.approvers });
  const checks = policy.require.statusChecks ? await listChecks(ctx.gh, ctx.repo, pull.headSha) : [];
  const lock = await getStackLock(ctx.deps.db, ctx.repoFullName, stack.name);
  const behind = policy.require.undiverged ? await behindBy(ctx.gh, ctx.repo, pull.baseRef, pull.headSha) : 0;
  return {
    previewTaskId: preview?.id ?? null,
    previewPlan: preview?.plan ?? null,
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
      preview: preview ? { headSha: preview.head_sha, planHash: preview.plan_hash, state: preview.state, finishedAt: preview.finished_at, policy: preview.policy } : null,
      reviews,
      commands: approvalCommands(approvals),
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
  // Merge-first left a merge commit to approve: `/agent deploy` now applies that plan.
  const pending = await latestBranchPreview(ctx.deps.db, ctx.repoFullName, ctx.issueNumber, stack.name);
  if (pending?.workflow.config.branch?.purpose === "merge-commit" && !(await deployOfPreview(ctx.deps.db, pending.task.id))) {
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
        ? `this plan of ${code(stack.name)} (${code(shortPlanHash(result.planHash) ?? "")}) was already applied (${other.other.state.toLowerCase()}); a plan is applied at most once.`
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
