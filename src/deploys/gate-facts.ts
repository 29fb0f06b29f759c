/**
 * Everything the deploy gate (src/approval/gate.ts) needs to know about a pull request and a
 * stack, read from GitHub and Postgres. Used where a command asks (`/agent deploy`, `/approve`,
 * `/agent status`, the buttons) and by the deploy job just before it applies
 * (src/deploys/apply-gate.ts): it needs no command context, only an installation client.
 */
import { mainlineGateFacts, mainlineGatePolicy } from "../approval/mainline-gate.js";
import { evaluateGate, isOwnDeployCheck, type ApprovalVerdict, type GateFacts, type GatePolicy, type GateResult } from "../approval/gate.js";
import type { RepoPermission } from "../approval/permissions.js";
import { changedByFrom } from "../approval/timeline.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import { behindBy, getEnvironmentRules, getPermission, getPull, isBranchProtected, listChecks, listPullCommitters, listReviews, listTeamMembers, type GitHub, type PullInfo, type RepoRef, membershipIn } from "../connectors/github.js";
import { listApprovals, listConsumedApprovals, type ApprovalRow } from "../connectors/store/gate.js";
import { getStackLock } from "../connectors/store/locks.js";
import { listPrEvents, successfulPreviews } from "../connectors/store/timeline.js";
import { getTask, latestPreviewOf, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import type { PreviewOutcome } from "../plan/types.js";
import type { EnvironmentFacts } from "../approval/environment.js";
import { deployBudget } from "../ops/error-budget.js";
import { decideAutoApply, type AutoApply } from "../approval/phase.js";
import type { BudgetState } from "../approval/error-budget.js";
import { repoPhase } from "../connectors/store/phases.js";
import { tierOf } from "../connectors/store/tiers.js";
import { describeTier } from "../approval/tiers.js";

/** Where the gate is asked about: a pull request of a repository, through an installation client. */
export interface GateSubject {
  deps: AppDeps;
  gh: GitHub;
  repo: RepoRef;
  repoFullName: string;
  /** The pull request. */
  threadNumber: number;
  /** Who asks for the deploy (a command's author, a queued deploy's requester): their trust tier counts. */
  actor?: string;
}

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

/** `/approve` and `/deny` rows as the gate reads them (with their ids, for the deploy that uses them). */
export function approvalCommands(rows: ApprovalRow[]): GateFacts["commands"] {
  return rows.map((a) => ({ id: String(a.id), kind: a.kind, actor: a.actor, actorType: a.actor_type, headSha: a.head_sha, planHash: a.plan_hash, at: a.created_at }));
}

/** Who changed the pull request besides its author: recorded pushers, and its commits' authors and committers. */
export async function changedByOf(s: GateSubject, author: string): Promise<Array<{ login: string; why: string }>> {
  const pushes = await listPrEvents(s.deps.db, s.repoFullName, s.threadNumber);
  const commits = await listPullCommitters(s.gh, s.repo, s.threadNumber);
  return changedByFrom({ author, pushes, commits });
}

/**
 * Everyone who may not approve a merge commit's plan besides `requestedBy` (who is excluded as
 * the one who asked): the pull request's author, its pushers and its commits' authors/committers.
 */
export async function pullChangers(s: GateSubject, requestedBy: string): Promise<Array<{ login: string; why: string }>> {
  const pull = await getPull(s.gh, s.repo, s.threadNumber);
  const requester = requestedBy.toLowerCase();
  return [
    ...(pull.author ? [{ login: pull.author, why: "wrote the pull request" }] : []),
    ...(await changedByOf(s, pull.author)),
  ].filter((c) => c.login.toLowerCase() !== requester);
}

export interface GatheredFacts {
  facts: GateFacts;
  /** The preview task the facts' `preview` is (what a deploy would apply), or null. */
  previewTaskId: string | null;
  previewPlan: PreviewOutcome | null;
  pull: PullInfo;
}

/**
 * Everything the gate needs to know about this PR and stack, read from GitHub and Postgres now.
 * `forApproval`: only what decides whether an approval counts (no checks, lock or divergence),
 * and the plan it is judged against is the head's latest *successful* preview, so a re-preview
 * still running does not make an approval look void.
 */
export async function gatherFacts(s: GateSubject, stack: ResolvedStack, policy: GatePolicy, opts: { forApproval?: boolean } = {}): Promise<GatheredFacts> {
  const { db } = s.deps;
  const pull = await getPull(s.gh, s.repo, s.threadNumber);
  const history = (await successfulPreviews(db, s.repoFullName, s.threadNumber, stack.name)).filter((p) => p.headSha === pull.headSha);
  let preview = await latestPreviewOf(db, s.repoFullName, s.threadNumber, stack.name);
  const lastGood = history.at(-1);
  if (opts.forApproval && lastGood && preview?.id !== lastGood.taskId) {
    const found = await getTask(db, lastGood.taskId);
    if (found) preview = { ...found.task, head_sha: found.workflow.head_sha };
  }
  const reviews = await listReviews(s.gh, s.repo, s.threadNumber);
  const approvals = await listApprovals(db, s.repoFullName, s.threadNumber, stack.name);
  const consumed = await listConsumedApprovals(db, s.repoFullName, stack.name);
  const changedBy = await changedByOf(s, pull.author);
  const full = !opts.forApproval;
  // The stack's GitHub environment: its protection rules are requirements of the deploy.
  const environment = full ? await environmentFacts(s, stack, pull) : null;
  // Teams the plan policy (or the environment) names must be known too, to tell whether one of them approved.
  const policyTeams = preview?.head_sha === pull.headSha ? (preview.policy?.requiredApprovers.teams ?? []) : [];
  const teams = [...new Set([...(policy.approvers?.teams ?? []), ...policyTeams, ...(environment?.rules.reviewers?.teams ?? [])])];
  const { permissions, teamMembers } = await approverFacts(s.gh, s.repo, [...reviews.flatMap((r) => (r.user ? [r.user.login] : [])), ...approvals.map((a) => a.actor)], { ...policy, approvers: teams.length ? { users: policy.approvers?.users ?? [], teams } : policy.approvers });
  const checks = full && policy.require.statusChecks ? await listChecks(s.gh, s.repo, pull.headSha) : [];
  const lock = full ? await getStackLock(db, s.repoFullName, stack.name) : null;
  const behind = full && policy.require.undiverged ? await behindBy(s.gh, s.repo, pull.baseRef, pull.headSha) : 0;
  // The stack's error budget (off when the server sets no limits): exhausted, deploys lose autonomy.
  const budget = full ? await deployBudget(db, s.repoFullName, stack.name, { stack: s.deps.config.errorBudget, repository: s.deps.config.repoErrorBudget }, s.deps.metrics) : null;
  // The deploy's trust tier (the lowest of its requester's, the repository's and the stack's).
  const tier = full && s.actor ? await tierOf(db, { actor: s.actor, repo: s.repoFullName, stack: stack.name, fork: pull.headRepoFullName !== pull.baseRepoFullName, teams: membershipIn(s.gh, s.repoFullName, s.actor) }, s.deps.config.defaultTier) : null;
  return {
    pull,
    previewTaskId: preview?.id ?? null,
    previewPlan: preview?.plan ?? null,
    facts: {
      now: new Date(),
      stack: stack.name,
      prNumber: s.threadNumber,
      pr: {
        author: pull.author,
        headSha: pull.headSha,
        draft: pull.draft,
        mergeable: pull.mergeable,
        behindBy: behind,
        fromFork: pull.headRepoFullName !== pull.baseRepoFullName,
        open: pull.state === "open",
        changedBy,
      },
      preview: preview ? { headSha: preview.head_sha, planHash: preview.plan_hash, state: preview.state, finishedAt: preview.finished_at, policy: preview.policy } : null,
      previews: history.map((p) => ({ planHash: p.planHash, finishedAt: p.finishedAt })),
      consumed,
      reviews,
      commands: approvalCommands(approvals),
      permissions,
      teamMembers,
      checks,
      // Without a configured list, every check reported on the head commit must be green.
      requiredChecks: stack.gate.requiredChecks ?? [...new Set(checks.map((c) => c.name).filter((n) => !isOwnDeployCheck(n)))],
      lock: full ? (lock ? { prNumber: lock.prNumber } : null) : { prNumber: s.threadNumber },
      ...(environment ? { environment } : {}),
      ...(budget ? { budget } : {}),
      ...(tier ? { tier: { name: tier.tier.name, extraApprovals: tier.tier.extraApprovals, rule: describeTier(tier) } } : {}),
    },
  };
}

/**
 * The stack's GitHub environment and the branch a deploy of this PR applies: its head branch,
 * or the base branch when the stack merges first (merge-then-deploy, merge-queue). Null when
 * the repository has no such environment.
 */
async function environmentFacts(s: GateSubject, stack: ResolvedStack, pull: PullInfo): Promise<EnvironmentFacts | null> {
  const rules = await getEnvironmentRules(s.gh, s.repo, stack.environment?.name ?? stack.name);
  if (!rules) return null;
  const name = stack.gate.mode === "deploy-then-merge" ? pull.headRef : pull.baseRef;
  // A fork's branch is never one of this repository's protected branches.
  const fork = pull.headRepoFullName !== pull.baseRepoFullName && name === pull.headRef;
  const isProtected = rules.branchPolicy?.protectedBranches && !fork ? await isBranchProtected(s.gh, s.repo, name) : false;
  return { rules, ref: { name: fork ? `${pull.headRepoFullName ?? "fork"}:${name}` : name, protected: isProtected } };
}

/** The stack's GitHub environment for an apply of the default branch (a rollback, a merge commit, a drift fix); null: none. */
export async function mainlineEnvironment(gh: GitHub, r: RepoRef, stack: ResolvedStack, defaultBranch: string): Promise<EnvironmentFacts | null> {
  const rules = await getEnvironmentRules(gh, r, stack.environment?.name ?? stack.name);
  if (!rules) return null;
  const isProtected = rules.branchPolicy?.protectedBranches ? await isBranchProtected(gh, r, defaultBranch) : false;
  return { rules, ref: { name: defaultBranch, protected: isProtected } };
}

/** The approvers' facts, with the environment's reviewer teams known too. */
export function withEnvironmentTeams(policy: GatePolicy, environment: EnvironmentFacts | null): GatePolicy {
  const envTeams = environment?.rules.reviewers?.teams ?? [];
  if (envTeams.length === 0) return policy;
  return { ...policy, approvers: { users: policy.approvers?.users ?? [], teams: [...new Set([...(policy.approvers?.teams ?? []), ...envTeams])] } };
}

/**
 * What a branch apply's gate needs besides approvals rows, read once: the stack's error budget
 * (for an apply that is a deploy: a merge commit, a drift fix, an `act` apply; none for a
 * rollback, which a budget never holds, or a drift check), and the approvals required — the
 * branch's with the server's floor, except the `act` apply of a merged commit whose plan
 * qualifies now (src/approval/phase.ts: the policy allows it, nothing destructive, the budget
 * holds, the repository still in `act`): then only the floor. Asked when the preview ends and
 * again at the claim.
 */
export async function mainlineRequirements(deps: AppDeps, workflow: WorkflowRow, task: TaskRow, stack: ResolvedStack): Promise<{ approvals: number; auto: AutoApply | null; budget: BudgetState | null }> {
  const branch = workflow.config.branch!;
  const floor = deps.config.gate.minApprovals;
  const budget = branch.purpose !== "rollback" && branch.purpose !== "drift" ? await deployBudget(deps.db, workflow.repo, stack.name, { stack: deps.config.errorBudget, repository: deps.config.repoErrorBudget }, deps.metrics) : null;
  if (branch.purpose !== "act") return { approvals: Math.max(branch.approvals, floor), auto: null, budget };
  const phase = await repoPhase(deps.db, workflow.repo, deps.config.defaultPhase);
  const auto: AutoApply = phase.phase !== "act" ? { apply: false, why: `the repository is in \`${phase.phase}\` now, not \`act\`` } : decideAutoApply({ plan: task.plan, decision: task.policy, budgetExhausted: budget?.exhausted ?? false });
  return { approvals: auto.apply ? floor : Math.max(branch.approvals, floor), auto, budget };
}

/** The gate for a branch preview (rollback, merge commit): approvals from the thread bound to its commit and plan. */
export async function evaluateMainlineGate(deps: AppDeps, gh: GitHub, r: RepoRef, workflow: WorkflowRow, task: TaskRow, stack: ResolvedStack): Promise<GateResult> {
  const branch = workflow.config.branch!;
  const needs = await mainlineRequirements(deps, workflow, task, stack);
  const policy = mainlineGatePolicy(gatePolicy(stack, deps.config.gate), needs.approvals);
  const rows = await listApprovals(deps.db, workflow.repo, workflow.pr_number, stack.name);
  // A drift check applies nothing: only the applies of the default branch meet the environment.
  const environment = branch.purpose === "drift" ? null : await mainlineEnvironment(gh, r, stack, workflow.config.defaultBranch);
  const { permissions, teamMembers } = await approverFacts(gh, r, rows.map((a) => a.actor), withEnvironmentTeams(policy, environment));
  const facts = mainlineGateFacts({
    now: new Date(),
    stack: stack.name,
    threadNumber: workflow.pr_number,
    requestedBy: workflow.requested_by,
    ...(branch.exclude ? { exclude: branch.exclude } : {}),
    consumed: await listConsumedApprovals(deps.db, workflow.repo, stack.name),
    sha: workflow.head_sha,
    preview: { planHash: task.plan_hash, state: task.state, finishedAt: task.finished_at, policy: task.policy },
    commands: approvalCommands(rows),
    permissions,
    teamMembers,
  });
  return evaluateGate(policy, { ...facts, ...(environment ? { environment } : {}), ...(needs.budget ? { budget: needs.budget } : {}) });
}

/**
 * What the gate makes of one recorded approval (an approvals row) right now: counted, a
 * duplicate of the same person's, or ignored and why — the pure policy's answer, so that a
 * reply never says an approval counts when the gate will ignore it. `branch`: the approval is
 * of that branch preview (rollback, merge commit) rather than of the PR's plan.
 */
export async function approvalVerdict(s: GateSubject, stack: ResolvedStack, approvalId: string, branch: { workflow: WorkflowRow; task: TaskRow } | null = null): Promise<ApprovalVerdict | null> {
  let result: GateResult;
  if (branch) {
    result = await evaluateMainlineGate(s.deps, s.gh, s.repo, branch.workflow, branch.task, stack);
  } else {
    const policy = gatePolicy(stack, s.deps.config.gate);
    const { facts } = await gatherFacts(s, stack, policy, { forApproval: true });
    result = evaluateGate(policy, facts);
  }
  return result.verdicts.find((v) => v.ref.source === "comment" && v.ref.id === approvalId) ?? null;
}
