/**
 * The gate at the time of use. A deploy passed its gate when it was queued; by the time a
 * worker takes the job, someone may have said `/deny`, pushed, closed the PR, re-previewed with
 * another plan, or the approvals may have expired. So the deploy job asks the whole gate again
 * immediately before it applies, atomically with claiming the apply:
 *
 *   1. read GitHub (the PR, reviews, commits, checks, permissions) — slow, outside any lock;
 *   2. in ONE Postgres transaction holding the PR's gate lock (withGateLock), which recording a
 *      /deny, a push or a close also takes: re-read the approvals, the approvals already used,
 *      the previews and the pushes/closes recorded since step 1, evaluate the pure gate, and only
 *      if it allows this very deploy (same head, same plan) move it PENDING → RUNNING and record
 *      the approvals it uses; otherwise end it BLOCKED (nothing applied, no approval used).
 *
 * Why a lock and not only the GitHub read: a /deny is ours (Postgres), so it is serialised with
 * the claim exactly — it either lands before (the deploy is blocked) or after (its reply says the
 * deploy is already applying). A push or a close is GitHub's: step 1 sees everything GitHub knew
 * by then, and the webhooks recorded after step 1 (pr_events, under the same lock) cover the
 * time between step 1 and the claim. A push GitHub has made but not yet told us about at the
 * moment of the claim is not caught here; for a PR deploy the merge with `sha` (GitHub refuses
 * when the head moved) still stops the new commits from being merged unapproved.
 */
import type pg from "pg";
import type { EnvironmentFacts } from "../approval/environment.js";
import { mainlineGateFacts, mainlineGatePolicy } from "../approval/mainline-gate.js";
import { evaluateGate, type GateFacts, type GateResult } from "../approval/gate.js";
import { closedByRecords } from "../approval/timeline.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { GitHub, RepoRef } from "../connectors/github.js";
import { auditWorkflow } from "../connectors/store/audit.js";
import { blockDeploy, claimDeploy, listApprovals, listConsumedApprovals, withGateLock, type DeployRow } from "../connectors/store/gate.js";
import { dbNow } from "../connectors/store/db.js";
import { latestPreviewTask, prEventsRecordedSince, successfulPreviews } from "../connectors/store/timeline.js";
import { finishTask, getTask, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { renderGateChecklist } from "../render/gate.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { approvalCommands, approverFacts, gatePolicy, gatherFacts, mainlineEnvironment, mainlineRequirements, withEnvironmentTeams } from "./gate-facts.js";
import type { BudgetState } from "../approval/error-budget.js";
import { getMergeGroup } from "../connectors/store/merge-groups.js";
import { commentThreads } from "./threads.js";
import { judgeGroupStack } from "./merge-queue.js";

export type ApplyClaim =
  | { kind: "claimed"; deploy: DeployRow; result: GateResult }
  /** Not PENDING any more (ended, or claimed by an earlier attempt of this job). */
  | { kind: "not-pending" }
  /** The gate said no: the deploy ended BLOCKED. `why`: what changed beyond the checklist. */
  | { kind: "blocked"; result: GateResult; why: string[]; headSha: string };

/**
 * Re-evaluates the gate of a PENDING deploy and claims it (PENDING → RUNNING) only if it still
 * passes for exactly this head and plan. See the module comment.
 */
export async function claimApply(deps: AppDeps, gh: GitHub, r: RepoRef, workflow: WorkflowRow, deploy: DeployRow, stack: ResolvedStack): Promise<ApplyClaim> {
  if (deploy.kind === "branch" && workflow.config.branch?.purpose === "merge-queue") return claimMergeGroupApply(deps, gh, r, workflow, deploy);
  return deploy.kind === "branch" ? claimBranchApply(deps, gh, r, workflow, deploy, stack) : claimPrApply(deps, gh, r, deploy, stack);
}

/**
 * A merge group's apply: the group is judged again now (each PR's approvals, a /deny since the
 * queue check, the plan the group's preview checked) and claimed only if it still passes.
 */
async function claimMergeGroupApply(deps: AppDeps, gh: GitHub, r: RepoRef, workflow: WorkflowRow, deploy: DeployRow): Promise<ApplyClaim> {
  const group = workflow.config.branch?.group ? await getMergeGroup(deps.db, workflow.config.branch.group) : null;
  const preview = deploy.preview_task_id ? await getTask(deps.db, deploy.preview_task_id) : null;
  const judged =
    group && preview
      ? await judgeGroupStack(deps, gh, r, group, deploy.stack, preview.task)
      : { stack: deploy.stack, pass: false as const, why: "the merge group or its checked preview is not on record", prs: [] };
  const why = !judged.pass ? [judged.why] : group!.state !== "PASSED" ? [`the merge group is ${group!.state.toLowerCase()}`] : preview!.task.plan_hash !== deploy.plan_hash ? ["the checked plan is not the queued plan"] : [];
  const requirement = { id: "merge-group" as const, met: why.length === 0, detail: why[0] ?? "the merge group plans what its pull requests' approvals allow", fix: why.length ? "Fix forward with a new pull request, or go back with `/agent rollback`." : null, waitsForApproval: false };
  const result: GateResult = { allowed: why.length === 0, requirements: [requirement], counted: [], ignored: [], deniedBy: null, planHash: deploy.plan_hash, blockedBy: why.length ? ["merge-group"] : [], waitsOnlyForApprovals: false, verdicts: [], used: [] };
  return withGateLock(deps.db, deploy.repo, deploy.pr_number, (q) => decide(q, deploy, result, [], deploy.head_sha));
}

async function claimPrApply(deps: AppDeps, gh: GitHub, r: RepoRef, deploy: DeployRow, stack: ResolvedStack): Promise<ApplyClaim> {
  const policy = gatePolicy(stack, deps.config.gate);
  const readAt = await dbNow(deps.db);
  const gathered = await gatherFacts({ deps, gh, repo: r, repoFullName: deploy.repo, threadNumber: deploy.pr_number, actor: deploy.requested_by }, stack, policy);
  return withGateLock(deps.db, deploy.repo, deploy.pr_number, async (q) => {
    // Everything a /deny, a push, a close or a new preview may have changed since GitHub was read.
    const approvals = await listApprovals(q, deploy.repo, deploy.pr_number, stack.name);
    const consumed = await listConsumedApprovals(q, deploy.repo, stack.name);
    const since = await prEventsRecordedSince(q, deploy.repo, deploy.pr_number, readAt);
    const latest = await latestPreviewTask(q, deploy.repo, deploy.pr_number, stack.name);
    let headSha = gathered.facts.pr.headSha;
    for (const e of since) if (e.kind === "synchronize" || e.kind === "opened" || e.kind === "reopened") headSha = e.headSha;
    const open = gathered.facts.pr.open === true && closedByRecords(since) !== true;
    const history = (await successfulPreviews(q, deploy.repo, deploy.pr_number, stack.name)).filter((p) => p.headSha === headSha);
    const facts: GateFacts = {
      ...gathered.facts,
      now: new Date(),
      pr: { ...gathered.facts.pr, headSha, open },
      preview: latest ? { headSha: latest.head_sha, planHash: latest.plan_hash, state: latest.state, finishedAt: latest.finished_at, policy: latest.policy } : null,
      previews: history.map((p) => ({ planHash: p.planHash, finishedAt: p.finishedAt })),
      commands: approvalCommands(approvals),
      consumed,
    };
    const result = evaluateGate(policy, facts);
    const why: string[] = [];
    if (headSha !== deploy.head_sha) why.push(`the head moved to ${code(shortSha(headSha))} after this deploy of ${code(shortSha(deploy.head_sha))} was queued`);
    else if (result.planHash !== deploy.plan_hash) why.push(`a newer preview planned ${code(shortPlanHash(result.planHash) ?? "nothing")}, not the queued plan ${code(shortPlanHash(deploy.plan_hash) ?? "")}`);
    return decide(q, deploy, result, why, headSha);
  });
}

async function claimBranchApply(deps: AppDeps, gh: GitHub, r: RepoRef, workflow: WorkflowRow, deploy: DeployRow, stack: ResolvedStack): Promise<ApplyClaim> {
  const preview = deploy.preview_task_id ? await getTask(deps.db, deploy.preview_task_id) : null;
  const branch = preview?.workflow.config.branch ?? workflow.config.branch;
  if (!preview || !branch) {
    const result = evaluateGate(mainlineGatePolicy(gatePolicy(stack, deps.config.gate), 0), mainlineGateFacts({ now: new Date(), stack: stack.name, threadNumber: deploy.pr_number, requestedBy: deploy.requested_by, sha: deploy.head_sha, preview: { planHash: null, state: "FAILED", finishedAt: null }, commands: [], permissions: {}, teamMembers: {} }));
    return withGateLock(deps.db, deploy.repo, deploy.pr_number, (q) => decide(q, deploy, result, ["the preview this deploy would apply is not on record"], deploy.head_sha));
  }
  const needs = await mainlineRequirements(deps, preview.workflow, preview.task, stack);
  const policy = mainlineGatePolicy(gatePolicy(stack, deps.config.gate), needs.approvals);
  const before = await listApprovals(deps.db, deploy.repo, deploy.pr_number, stack.name);
  const environment = await mainlineEnvironment(gh, r, stack, preview.workflow.config.defaultBranch);
  const { permissions, teamMembers } = await approverFacts(gh, r, before.map((a) => a.actor), withEnvironmentTeams(policy, environment));
  return withGateLock(deps.db, deploy.repo, deploy.pr_number, async (q) => {
    const rows = await listApprovals(q, deploy.repo, deploy.pr_number, stack.name);
    const consumed = await listConsumedApprovals(q, deploy.repo, stack.name);
    const task = preview.task;
    const result = evaluateGate(
      policy,
      withEnvironment(environment, needs.budget, mainlineGateFacts({
        now: new Date(),
        stack: stack.name,
        threadNumber: deploy.pr_number,
        requestedBy: preview.workflow.requested_by,
        ...(branch.exclude ? { exclude: branch.exclude } : {}),
        sha: preview.workflow.head_sha,
        preview: { planHash: task.plan_hash, state: task.state, finishedAt: task.finished_at, policy: task.policy },
        commands: approvalCommands(rows),
        permissions,
        teamMembers,
        consumed,
      })),
    );
    const why = result.planHash !== deploy.plan_hash ? [`the previewed plan is not the queued plan ${code(shortPlanHash(deploy.plan_hash) ?? "")}`] : [];
    return decide(q, deploy, result, why, preview.workflow.head_sha);
  });
}

function withEnvironment(environment: EnvironmentFacts | null, budget: BudgetState | null, facts: GateFacts): GateFacts {
  return { ...facts, ...(environment ? { environment } : {}), ...(budget ? { budget } : {}) };
}

/** Inside the lock: claim with the approvals used, or end BLOCKED. */
async function decide(q: pg.PoolClient, deploy: DeployRow, result: GateResult, why: string[], headSha: string): Promise<ApplyClaim> {
  if (!result.allowed || why.length) {
    const blocked = await blockDeploy(q, deploy.task_id, ["the gate no longer passed when the deploy was about to apply", ...why, ...result.requirements.filter((x) => !x.met).map((x) => `${x.id}: ${x.detail}`)].join("; ").slice(0, 2000));
    return blocked ? { kind: "blocked", result, why, headSha } : { kind: "not-pending" };
  }
  const logins = new Map(result.verdicts.map((v) => [`${v.ref.source}:${v.ref.id}`, v.login]));
  const used = result.used.map((u) => ({ ...u, login: logins.get(`${u.source}:${u.id}`) ?? "" }));
  const claimed = await claimDeploy(q, deploy.task_id, used);
  return claimed ? { kind: "claimed", deploy: claimed, result } : { kind: "not-pending" };
}

/**
 * A deploy the gate blocked at the time of use: its task ends BLOCKED, its check run asks for
 * action with the checklist, and the thread is told what is unmet and how to go on.
 */
export async function reportBlockedApply(
  deps: AppDeps,
  gh: GitHub,
  r: RepoRef,
  workflow: WorkflowRow,
  task: TaskRow,
  deploy: DeployRow,
  claim: Extract<ApplyClaim, { kind: "blocked" }>,
  what: string,
  command: string,
): Promise<void> {
  const error = "the gate no longer passed when the deploy was about to apply; nothing was applied";
  await finishTask(deps.db, task.id, { state: "BLOCKED", steps: task.steps, error });
  const checklist = renderGateChecklist(deploy.stack, claim.result, claim.headSha, what);
  const extra = claim.why.map((w) => `- ${w}`);
  const text = [
    `⛔ The queued ${what.toLowerCase()} of ${code(deploy.stack)} at ${code(shortSha(deploy.head_sha))} (plan ${code(shortPlanHash(deploy.plan_hash) ?? "")}) was not applied: when it was about to start, the gate no longer passed. Nothing was applied and no approval was used.`,
    ...(extra.length ? ["", ...extra] : []),
    "",
    checklist,
    "",
    `Once every requirement is met again, comment \`${command}\`.`,
  ].join("\n");
  const target = { installationId: Number(workflow.installation_id), repo: r };
  await deps.writes.checkRun(target, task.id, {
    status: "completed",
    conclusion: "action_required",
    completedAt: new Date().toISOString(),
    output: { title: `${what} of ${deploy.stack} blocked at the time of apply`, summary: text },
  });
  await auditWorkflow(deps.db, workflow, "deploy.blocked", {
    stack: deploy.stack,
    kind: deploy.kind,
    head_sha: deploy.head_sha,
    plan_hash: deploy.plan_hash,
    why: claim.why,
    requirements: claim.result.requirements.map((x) => ({ id: x.id, met: x.met, detail: x.detail })),
    ignored: claim.result.ignored,
  }, task.id);
  await commentThreads(deps.writes, workflow, text, `task:${task.id}:blocked`);
}

/** The gate could not be evaluated (an error reading GitHub or Postgres): the deploy ends BLOCKED, nothing applied. */
export async function reportUncheckedApply(deps: AppDeps, gh: GitHub, r: RepoRef, workflow: WorkflowRow, task: TaskRow, deploy: DeployRow, err: Error, what: string, command: string): Promise<void> {
  await endBeforeClaim(deps, r, workflow, task, deploy, `the gate could not be checked before the apply (${err.message.slice(0, 300)}); nothing was applied`, err.message.slice(0, 500), what, command);
}

/** The repository was in `observe` when the deploy came to apply (it may have been switched after the request): nothing applied, no credentials fetched. */
export async function reportObservedApply(deps: AppDeps, r: RepoRef, workflow: WorkflowRow, task: TaskRow, deploy: DeployRow, scope: string, what: string, command: string): Promise<void> {
  await endBeforeClaim(deps, r, workflow, task, deploy, `the repository is in \`observe\` mode (set for \`${scope}\`: previews, status and diagnostics only); nothing was applied and no deploy credentials were fetched`, "observe mode", what, command);
}

/** A queued deploy that ends BLOCKED before its claim: recorded, audited, told on its check run and in its thread. */
async function endBeforeClaim(deps: AppDeps, r: RepoRef, workflow: WorkflowRow, task: TaskRow, deploy: DeployRow, reason: string, auditError: string, what: string, command: string): Promise<void> {
  if (!(await blockDeploy(deps.db, deploy.task_id, reason))) return;
  await finishTask(deps.db, task.id, { state: "BLOCKED", steps: task.steps, error: reason });
  await auditWorkflow(deps.db, workflow, "deploy.blocked", { stack: deploy.stack, kind: deploy.kind, error: auditError }, task.id);
  const text = `⛔ The queued ${what.toLowerCase()} of ${code(deploy.stack)} at ${code(shortSha(deploy.head_sha))} was not applied: ${reason}. No approval was used; comment \`${command}\` to try again.`;
  const target = { installationId: Number(workflow.installation_id), repo: r };
  await deps.writes.checkRun(target, task.id, { status: "completed", conclusion: "action_required", completedAt: new Date().toISOString(), output: { title: `${what} of ${deploy.stack} not applied`, summary: text } });
  await commentThreads(deps.writes, workflow, text, `task:${task.id}:blocked`);
}
