/**
 * `gate.mode: merge-queue`: approvals and previews happen on the pull request; GitHub's merge
 * queue merges; the app checks each merge group and applies what merged.
 *
 *   1. `merge_group.checks_requested`: the stacks the group changes (compare base…head) are
 *      previewed at the group's head commit; once all ended, every stack's group plan is judged
 *      against the approved plans of the group's pull requests that touch it
 *      (src/approval/merge-group.ts) and the required check `agent/merge-queue` is reported on
 *      the head commit: success, or failure with the reason (GitHub then ejects the group).
 *   2. `push` to the default branch whose new head is a passed group's head: when the branch
 *      was at the group's base, each stack's checked plan is applied (exactly the plan checked
 *      in the queue). When the branch had moved (an earlier entry merged first), the group's
 *      plans were made against an older state: the head is previewed again, after the stacks'
 *      running deploys, and judged against the pull requests this push merged, then applied.
 *   3. `merge_group.destroyed`: the group's previews are cancelled; nothing of it is applied.
 *
 * Group workflows have no thread (pr_number 0): their outcome goes to every PR of the group.
 */
import { mergeQueueFacts, mergeQueuePolicy, prNumberOfQueueRef } from "../approval/merge-queue-gate.js";
import { evaluateGate } from "../approval/gate.js";
import { groupMembers, judgeGroup, judgeStack, type ApprovedPlan, type PlanOf, type StackJudgement } from "../approval/merge-group.js";
import { stacksToAutoplan } from "../approval/autoplan.js";
import { decideImage } from "../approval/images.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import { compareFiles, defaultBranchConfig, getPull, listMergeQueue, listPullFiles, REPO_CONFIG_PATH, type GitHub, type RepoRef } from "../connectors/github.js";
import type { WriteTarget } from "../connectors/outbox/writes.js";
import { appendAudit } from "../connectors/store/audit.js";
import { liveDeployTasks } from "../connectors/store/gate.js";
import { cancelMergeGroupPreviews, createMergeGroup, decideMergeGroup, endMergeGroup, getMergeGroup, mergeGroupAt, mergeGroupPreviews, type MergeGroupRow } from "../connectors/store/merge-groups.js";
import { getSavedPlan } from "../connectors/store/plans.js";
import { getTask, type TaskRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { code, shortSha } from "../render/markdown.js";
import { renderMergeGroupCheck, renderMergeGroupNotApplied } from "../render/merge-queue.js";
import { enqueueDeploy } from "./enqueue.js";
import { gatePolicy, gatherFacts } from "./gate-facts.js";
import { startMainlinePreview } from "./mainline.js";

export const MERGE_QUEUE_CHECK = "agent/merge-queue";
/** Who the audit log names for what the queue did (no person typed it). */
export const QUEUE_ACTOR = "merge-queue";

export interface MergeGroupEvent {
  repo: RepoRef;
  repoFullName: string;
  installationId: number;
  cloneUrl: string;
  defaultBranch: string;
  headSha: string;
  baseSha: string;
  headRef: string | null;
  deliveryId: string | null;
}

type Loaded = { ok: true; stacks: ResolvedStack[]; image: string } | { ok: false; why: string | null };

/** The default branch's configuration (a pull request never picks its own gate); why: null when there is none. */
async function loadConfig(deps: AppDeps, gh: GitHub, repo: RepoRef, defaultBranch: string): Promise<Loaded> {
  const loaded = await defaultBranchConfig(gh, repo, defaultBranch);
  if (loaded === null) return { ok: false, why: null };
  if (!loaded.ok) return { ok: false, why: `${REPO_CONFIG_PATH} on ${defaultBranch} is not valid` };
  const image = decideImage(loaded.config.sandbox?.image, deps.config.sandbox);
  if (!image.ok) return { ok: false, why: image.message };
  return { ok: true, stacks: loaded.stacks, image: image.image };
}

/** The merge-queue stacks a diff changes; all of them when GitHub could not list every file. */
function stacksChanged(stacks: ResolvedStack[], diff: { files: string[]; complete: boolean }): ResolvedStack[] {
  if (!diff.complete) return stacks;
  const names = new Set(stacksToAutoplan(stacks, diff.files));
  return stacks.filter((s) => names.has(s.name));
}

/** `merge_group.checks_requested`. */
export async function checkMergeGroup(deps: AppDeps, gh: GitHub, ev: MergeGroupEvent): Promise<void> {
  const target: WriteTarget = { installationId: ev.installationId, repo: ev.repo };
  const loaded = await loadConfig(deps, gh, ev.repo, ev.defaultBranch);
  const queued = loaded.ok ? loaded.stacks.filter((s) => s.gate.mode === "merge-queue") : [];
  // The entries up to this group's (GitHub builds each on all ahead of it); if GitHub no longer
  // lists it, the PR its ref names. Missing a PR is safe: its changes then plan differently
  // from every approval, or change a stack no known PR accounts for, and the check fails.
  const entries = await listMergeQueue(gh, ev.repo, ev.defaultBranch);
  const fromRef = prNumberOfQueueRef(ev.headRef);
  const prs = groupMembers(entries, ev.headSha) ?? (fromRef ? [fromRef] : []);
  const changed = loaded.ok ? stacksChanged(queued, await compareFiles(gh, ev.repo, ev.baseSha, ev.headSha)) : [];
  const group = await createMergeGroup(deps.db, { repo: ev.repoFullName, installationId: ev.installationId, purpose: "queue", headSha: ev.headSha, baseSha: ev.baseSha, headRef: ev.headRef, prNumbers: prs, stacks: changed.map((s) => s.name), deliveryId: ev.deliveryId });
  if (!group) return; // a redelivery: the first one is checking it
  const identity = { name: MERGE_QUEUE_CHECK, headSha: ev.headSha };
  await appendAudit(deps.db, { actor: QUEUE_ACTOR, action: "merge_group.checking", repo: ev.repoFullName, deliveryId: ev.deliveryId, detail: { group: group.id, head_sha: ev.headSha, base_sha: ev.baseSha, prs, stacks: group.stacks } });
  if (!loaded.ok && loaded.why) return decide(deps, target, group, { pass: false, judgements: [], problem: `${loaded.why}; nothing in the group can be shown to plan what was approved` }, identity);
  if (changed.length === 0) return decide(deps, target, group, { pass: true, judgements: [], problem: null }, identity);
  await deps.writes.checkRun(target, group.id, { status: "in_progress", startedAt: new Date().toISOString(), output: { title: `Previewing ${changed.length} stack${changed.length === 1 ? "" : "s"} of the merge group`, summary: `Previewing ${changed.map((s) => code(s.name)).join(", ")} at ${code(shortSha(ev.headSha))} for ${prs.map((n) => `#${n}`).join(", ") || "no known pull request"}; the check passes only if each plan is what the pull requests' approvals allow.` } }, { cls: "ack", identity });
  await previewGroup(deps, gh, ev, group, changed, (loaded as Extract<Loaded, { ok: true }>).image);
}

/** One preview per changed stack at the group's head, run like a rollback's (no thread, no lock). */
async function previewGroup(deps: AppDeps, gh: GitHub, ev: MergeGroupEvent, group: MergeGroupRow, stacks: ResolvedStack[], image: string, after: ReadonlyMap<string, string[]> = new Map()): Promise<void> {
  // Fork code in the group runs as fork code does anywhere: without credentials or egress.
  let fork = false;
  for (const n of group.pr_numbers) {
    const pull = await getPull(gh, ev.repo, n).catch(() => null);
    if (!pull || pull.headRepoFullName !== pull.baseRepoFullName) fork = true;
  }
  for (const stack of stacks) {
    await startMainlinePreview(deps, {
      repo: ev.repo,
      repoFullName: ev.repoFullName,
      installationId: ev.installationId,
      threadNumber: 0,
      sha: group.head_sha,
      stack,
      requestedBy: QUEUE_ACTOR,
      deliveryId: ev.deliveryId,
      config: { image, cloneUrl: ev.cloneUrl, defaultBranch: ev.defaultBranch, ...(fork ? { fork: true } : {}) },
      branch: { purpose: "merge-queue", approvals: 0, command: "", group: group.id, prs: group.pr_numbers },
      ...(after.get(stack.name)?.length ? { after: after.get(stack.name)! } : {}),
    });
  }
  // Previews that could not run (what they waited for failed) have ended already.
  await decideMergeGroupIfDone(deps, group.id);
}

interface GroupVerdict {
  pass: boolean;
  judgements: StackJudgement[];
  /** Why nothing could be judged (configuration), or null. */
  problem: string | null;
}

/**
 * After one of a group's previews ended: once all have, judge the group and act on it. The
 * decision is taken once (CHECKING → PASSED/FAILED moves once), whichever worker gets there.
 */
export async function decideMergeGroupIfDone(deps: AppDeps, groupId: string): Promise<void> {
  const group = await getMergeGroup(deps.db, groupId);
  if (!group || group.state !== "CHECKING") return;
  const previews = await mergeGroupPreviews(deps.db, group.id);
  if (previews.length < group.stacks.length || previews.some((p) => p.state === "PENDING" || p.state === "RUNNING")) return;
  const [owner, repo] = group.repo.split("/") as [string, string];
  const target: WriteTarget = { installationId: Number(group.installation_id), repo: { owner, repo } };
  const gh = await deps.github(target.installationId);
  const judgements: StackJudgement[] = [];
  for (const stackName of group.stacks) {
    const preview = previews.find((p) => p.stack === stackName)!;
    judgements.push(await judgeGroupStack(deps, gh, target.repo, group, stackName, preview));
  }
  const verdict = judgeGroup(judgements);
  await decide(deps, target, group, { pass: verdict.pass, judgements, problem: null }, { name: MERGE_QUEUE_CHECK, headSha: group.head_sha });
}

/**
 * One stack of a group: its plan at the group commit against what each pull request of the
 * group that touches the stack has approved. Also asked again right before the apply.
 */
export async function judgeGroupStack(deps: AppDeps, gh: GitHub, repo: RepoRef, group: MergeGroupRow, stackName: string, preview: TaskRow): Promise<StackJudgement> {
  const workflow = (await getTask(deps.db, preview.id))?.workflow;
  const stack = workflow?.config.stacks.find((s) => s.name === stackName);
  if (!stack) return { stack: stackName, pass: false, why: `the group's preview of \`${stackName}\` is not on record`, prs: [] };
  const groupPlan = preview.state === "SUCCEEDED" && preview.plan_hash ? await planOf(deps, preview.id, preview.plan_hash, stack) : null;
  const approved: ApprovedPlan[] = [];
  for (const pr of group.pr_numbers) {
    const files = await listPullFiles(gh, repo, pr);
    if (!stacksToAutoplan([stack], files).length) continue;
    approved.push(await approvedPlanOf(deps, gh, repo, group.repo, pr, stack));
  }
  return judgeStack(stackName, groupPlan, approved);
}

async function planOf(deps: AppDeps, taskId: string, hash: string, stack: ResolvedStack): Promise<PlanOf> {
  return stack.engine === "pulumi" ? { hash, engine: "pulumi", saved: await getSavedPlan(deps.db, taskId) } : { hash, engine: "command", saved: null };
}

/** What one pull request has approved for a stack: its gate (merge-queue policy) over its latest preview of its head. */
async function approvedPlanOf(deps: AppDeps, gh: GitHub, repo: RepoRef, repoFullName: string, pr: number, stack: ResolvedStack): Promise<ApprovedPlan> {
  const policy = mergeQueuePolicy(gatePolicy(stack, deps.config.gate));
  // Full facts: the environment's rules (its reviewers, branches) bind a merge-queue apply too.
  const gathered = await gatherFacts({ deps, gh, repo, repoFullName, threadNumber: pr }, stack, policy);
  const result = evaluateGate(policy, mergeQueueFacts(gathered.facts));
  if (!result.allowed) {
    const unmet = result.requirements.filter((x) => !x.met).map((x) => x.detail);
    return { pr, plan: null, refused: unmet.join("; ") || "its gate does not pass" };
  }
  if (!result.planHash || !gathered.previewTaskId) return { pr, plan: null, refused: null };
  return { pr, plan: await planOf(deps, gathered.previewTaskId, result.planHash, stack), refused: null };
}

/** Records the verdict once, then reports it: the queue's check, or (after a push) the applies. */
async function decide(deps: AppDeps, target: WriteTarget, group: MergeGroupRow, verdict: GroupVerdict, identity: { name: string; headSha: string }): Promise<void> {
  const decided = await decideMergeGroup(deps.db, group.id, verdict.pass ? "PASSED" : "FAILED", { judgements: verdict.judgements, problem: verdict.problem });
  if (!decided) return;
  await appendAudit(deps.db, {
    actor: QUEUE_ACTOR,
    action: verdict.pass ? "merge_group.passed" : "merge_group.failed",
    repo: group.repo,
    idempotencyKey: `merge_group:${group.id}:decided`,
    detail: { group: group.id, purpose: group.purpose, head_sha: group.head_sha, base_sha: group.base_sha, prs: group.pr_numbers, judgements: verdict.judgements, problem: verdict.problem },
  });
  if (group.purpose === "queue") {
    await deps.writes.checkRun(target, group.id, renderMergeGroupCheck(decided, verdict), { identity, idempotencyKey: `merge_group:${group.id}:check` });
    return;
  }
  if (!verdict.pass) {
    await tellGroup(deps, target, decided, renderMergeGroupNotApplied(decided, [...verdict.judgements.flatMap((j) => (j.pass ? [] : [j.why])), ...(verdict.problem ? [verdict.problem] : [])]), "not-applied");
    return;
  }
  await applyGroup(deps, target, decided);
}

/** A comment on every pull request of the group (each sent once). */
export async function tellGroup(deps: AppDeps, target: WriteTarget, group: Pick<MergeGroupRow, "id" | "pr_numbers">, text: string, key: string): Promise<void> {
  for (const pr of group.pr_numbers) await deps.writes.comment(target, pr, text, { idempotencyKey: `merge_group:${group.id}:${key}:${pr}` });
}

/** Queues the apply of every stack of a passed group, each with the plan its preview checked. */
async function applyGroup(deps: AppDeps, target: WriteTarget, group: MergeGroupRow): Promise<void> {
  const previews = await mergeGroupPreviews(deps.db, group.id);
  const refused: string[] = [];
  for (const stackName of group.stacks) {
    const preview = previews.find((p) => p.stack === stackName);
    const found = preview ? await getTask(deps.db, preview.id) : null;
    const stack = found?.workflow.config.stacks.find((s) => s.name === stackName);
    if (!found || !stack || !found.task.plan_hash) {
      refused.push(`${code(stackName)}: its checked plan is not on record`);
      continue;
    }
    const enqueued = await enqueueDeploy(deps, {
      repo: target.repo,
      repoFullName: group.repo,
      installationId: target.installationId,
      threadNumber: 0,
      sha: group.head_sha,
      planHash: found.task.plan_hash,
      previewTaskId: found.task.id,
      requestedBy: QUEUE_ACTOR,
      deliveryId: group.delivery_id,
      config: found.workflow.config,
      stack,
      kind: "branch",
    });
    // A replayed push: this checked plan was applied (or is applying) already, once is enough.
    if (!enqueued.ok && enqueued.conflict?.other.preview_task_id === found.task.id) continue;
    await appendAudit(deps.db, { actor: QUEUE_ACTOR, action: "merge_group.apply_queued", repo: group.repo, idempotencyKey: `merge_group:${group.id}:apply:${stackName}`, detail: { group: group.id, stack: stackName, head_sha: group.head_sha, plan_hash: found.task.plan_hash, queued: enqueued.ok, conflict: enqueued.ok ? null : enqueued.conflict?.kind ?? null } });
    if (!enqueued.ok) refused.push(`${code(stackName)}: ${enqueued.conflict?.kind === "busy" ? "another deploy of it is queued or running" : "its checked plan was applied already"}`);
  }
  if (refused.length) await tellGroup(deps, target, group, renderMergeGroupNotApplied(group, refused), "refused");
}

export interface DefaultBranchPush {
  repo: RepoRef;
  repoFullName: string;
  installationId: number;
  cloneUrl: string;
  defaultBranch: string;
  before: string;
  after: string;
  deliveryId: string | null;
}

/** A push to the default branch: when it is a merge group landing, apply what the group checked. */
export async function onMergeGroupLanded(deps: AppDeps, gh: GitHub, p: DefaultBranchPush): Promise<void> {
  const group = await mergeGroupAt(deps.db, p.repoFullName, p.after, "queue");
  if (!group || group.state === "DESTROYED" || group.state === "CHECKING") return;
  const target: WriteTarget = { installationId: p.installationId, repo: p.repo };
  if (group.state === "FAILED") {
    // Merged although `agent/merge-queue` failed (it is not a required check): nothing is applied.
    if (group.stacks.length) await tellGroup(deps, target, group, renderMergeGroupNotApplied(group, [`its \`${MERGE_QUEUE_CHECK}\` check had failed, so the merge was not checked safe (make the check required in the branch's ruleset)`]), "landed-failed");
    return;
  }
  if (group.stacks.length === 0) return;
  if (group.base_sha === p.before) return applyGroup(deps, target, group);
  // The default branch moved after the group was built: an entry ahead merged (and is applying)
  // on its own. The group's plans assumed the older state, so the head is previewed again —
  // after the stacks' live deploys end — and judged against the PRs this push merged.
  const prior = await mergeGroupAt(deps.db, p.repoFullName, p.before, "queue");
  const merged = group.pr_numbers.filter((n) => !(prior?.state === "PASSED" && prior.pr_numbers.includes(n)));
  const loaded = await loadConfig(deps, gh, p.repo, p.defaultBranch);
  if (!loaded.ok) {
    await tellGroup(deps, target, group, renderMergeGroupNotApplied(group, [loaded.why ?? `there is no ${REPO_CONFIG_PATH} on ${p.defaultBranch}`]), "landed-config");
    return;
  }
  const changed = stacksChanged(loaded.stacks.filter((s) => s.gate.mode === "merge-queue"), await compareFiles(gh, p.repo, p.before, p.after));
  const check = await createMergeGroup(deps.db, { repo: p.repoFullName, installationId: p.installationId, purpose: "apply", headSha: p.after, baseSha: p.before, headRef: group.head_ref, prNumbers: merged, stacks: changed.map((s) => s.name), deliveryId: p.deliveryId });
  if (!check) return;
  if (changed.length === 0) return decide(deps, target, check, { pass: true, judgements: [], problem: null }, { name: MERGE_QUEUE_CHECK, headSha: p.after });
  const live = await liveDeployTasks(deps.db, p.repoFullName, changed.map((s) => s.name));
  const ev: MergeGroupEvent = { repo: p.repo, repoFullName: p.repoFullName, installationId: p.installationId, cloneUrl: p.cloneUrl, defaultBranch: p.defaultBranch, headSha: p.after, baseSha: p.before, headRef: group.head_ref, deliveryId: p.deliveryId };
  await previewGroup(deps, gh, ev, check, changed, loaded.image, live);
}

/**
 * `merge_group.destroyed`: a group not yet applied ends and its queued or running previews are
 * cancelled (returned, for the caller to stop and announce); a destroyed group is never applied.
 * A group destroyed because it merged stays as it is: its push applies it.
 */
export async function destroyMergeGroup(deps: AppDeps, ev: { repoFullName: string; headSha: string; reason: string | null; deliveryId: string | null }): Promise<{ cancelled: TaskRow[]; why: string }> {
  const why = `the merge group was destroyed${ev.reason ? ` (${ev.reason})` : ""}`;
  const group = await mergeGroupAt(deps.db, ev.repoFullName, ev.headSha, "queue");
  if (!group || ev.reason === "merged") return { cancelled: [], why };
  const ended = await endMergeGroup(deps.db, group.id, why);
  if (!ended) return { cancelled: [], why };
  const cancelled = await cancelMergeGroupPreviews(deps.db, group.id, why);
  await appendAudit(deps.db, { actor: QUEUE_ACTOR, action: "merge_group.destroyed", repo: ev.repoFullName, deliveryId: ev.deliveryId, idempotencyKey: `merge_group:${group.id}:destroyed`, detail: { group: group.id, head_sha: ev.headSha, reason: ev.reason, was: group.state, cancelled: cancelled.map((t) => ({ id: t.id, stack: t.stack })) } });
  return { cancelled, why };
}
