/**
 * Review stacks: an ephemeral stack `pr-<number>-<stack>` per pull request, made from the
 * template stack's config, deployed through the gate (never merging), its outputs commented,
 * and destroyed when the pull request closes, on `/agent destroy --review`, when its TTL passes
 * (a warning first) or, found orphaned at start-up, by the reaper. Every destroy is a task in a
 * sandbox: select, copy the template's config, preview the destroy (the record of what it
 * deletes), destroy and remove the stack; audited, told in the pull request.
 */
import { decideReviewSlot, sweepAction, durationWords, type LiveReviewStack } from "../approval/review.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import { getPull, type GitHub, type RepoRef } from "../connectors/github.js";
import { REVIEW_DESTROY_JOB_OPTIONS, reviewDestroyJobId } from "../connectors/queues.js";
import { appendAudit, auditWorkflow } from "../connectors/store/audit.js";
import { allLiveReviewStacks, liveReviewStacks, beginReviewDestroy, getReviewStack, markReviewWarned, recordReviewDeployed, releaseReviewSlot, reviewStacksOfPr, takeReviewSlot, type ReviewStackRow } from "../connectors/store/review-stacks.js";
import type { TaskRow, WorkflowRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { code, shortSha } from "../render/markdown.js";
import { requestApply, type ApplyRequest, type ApplyRequester, type ApplySubject } from "./request-apply.js";
import { gatePolicy, gatherFacts } from "./gate-facts.js";
import { hasAtLeast } from "../approval/permissions.js";
import { getPermission } from "../connectors/github.js";
import { renderGateChecklist } from "../render/gate.js";
import { repoPhase } from "../connectors/store/phases.js";
import type { TaskRun } from "../deps.js";

/** A review deploy request: the gate's outcome, or the cost guard's refusal. */
export type ReviewApply = ApplyRequest | { status: "full"; live: LiveReviewStack[]; max: number } | { status: "destroying" };

/**
 * The gate's path for a review stack, behind the cost guard: a slot is taken first (a live
 * stack is renewed), and given back when nothing was queued after all.
 */
export async function requestReviewApply(who: ApplyRequester, subject: Extract<ApplySubject, { kind: "pull" }>, where: { cloneUrl: string; defaultBranch: string }): Promise<ReviewApply> {
  const { deps } = who;
  const stack = subject.stack;
  const r = stack.review!;
  const max = Math.min(r.maxLive, deps.config.review.maxLive);
  const slot = await takeReviewSlot(deps.db, { repo: who.repoFullName, stack: stack.name, base: r.base, pr: r.pr, installationId: who.installationId, cloneUrl: where.cloneUrl, defaultBranch: where.defaultBranch, requestedBy: who.actor, ttlSeconds: r.ttlSeconds, stackConfig: stack, image: subject.config.image }, max);
  if (slot.kind !== "ok") {
    await appendAudit(deps.db, { actor: who.actor, action: "review.refused", repo: who.repoFullName, prNumber: who.threadNumber, deliveryId: who.deliveryId, detail: { stack: stack.name, ...(slot.kind === "full" ? { reason: "cost guard", max: slot.max, live: slot.live.map((l) => l.stack) } : { reason: "being destroyed" }) } });
    return slot.kind === "full" ? { status: "full", live: slot.live, max: slot.max } : { status: "destroying" };
  }
  const outcome = await requestApply(who, subject);
  if (outcome.status !== "queued" && slot.created) await releaseReviewSlot(deps.db, who.repoFullName, stack.name);
  return outcome;
}

/**
 * A review stack's preview succeeded: it deploys through its gate now, as the one who asked
 * for the preview (a writer, or autoplan's author with write access). Blocked (approvals
 * missing, `review.approvals` > 0), the pull request gets the checklist and deploys with
 * `/agent deploy --review` once approved. Only this preview: a newer one asks for itself.
 */
export async function deployReviewAfterPreview(run: TaskRun): Promise<void> {
  const { deps, gh, repo, workflow, task, stack, target } = run;
  const r = stack.review!;
  const say = (body: string) => deps.writes.comment(target, workflow.pr_number, body, { idempotencyKey: `task:${task.id}:review-auto` });
  // A fork's code is never deployed (its previews get no credentials either).
  if (workflow.config.fork) return;
  const phase = await repoPhase(deps.db, workflow.repo, deps.config.defaultPhase);
  if (phase.phase === "observe") {
    await say(`Review stack ${code(stack.name)} was previewed but not deployed: this repository is in \`observe\` mode (set for ${code(phase.scope)}).`);
    return;
  }
  const permission = await getPermission(gh, repo, workflow.requested_by);
  if (!hasAtLeast(permission, stack.gate.deployPermission)) {
    await say(`Review stack ${code(stack.name)} was previewed, but deploying it needs **${stack.gate.deployPermission}** access, which @${workflow.requested_by} does not have: someone who does can comment \`/agent deploy --review ${r.base}\`.`);
    return;
  }
  const policy = gatePolicy(stack, deps.config.gate);
  const gathered = await gatherFacts({ deps, gh, repo, repoFullName: workflow.repo, threadNumber: workflow.pr_number, actor: workflow.requested_by }, stack, policy);
  if (gathered.previewTaskId !== task.id) return;
  const who: ApplyRequester = { deps, gh, repo, repoFullName: workflow.repo, installationId: Number(workflow.installation_id), threadNumber: workflow.pr_number, actor: workflow.requested_by, deliveryId: workflow.delivery_id };
  const config = { image: workflow.config.image, cloneUrl: workflow.config.cloneUrl, defaultBranch: workflow.config.defaultBranch };
  const outcome = await requestReviewApply(who, { kind: "pull", stack, policy, gathered, config }, config);
  switch (outcome.status) {
    case "full":
      await say(renderReviewFull(stack.name, outcome.live, outcome.max));
      return;
    case "destroying":
      await say(REVIEW_BEING_DESTROYED(stack.name));
      return;
    case "blocked":
      await say(`${renderGateChecklist(stack.name, outcome.gate, outcome.headSha)}\n\nOnce it is approved, \`/agent deploy --review ${r.base}\` deploys it.`);
      return;
    case "conflict":
      return; // this plan was applied already, or a deploy of the stack is under way
    case "queued":
      await say(`deploying review stack ${code(stack.name)} at ${code(shortSha(outcome.headSha))} (plan ${code(outcome.planHash.slice(7, 19))}); its outputs are posted here once it is up. Nothing is merged.`);
  }
}

/**
 * The cost guard asked ahead of a preview (the deploy asks again, atomically): of these review
 * stacks, those that fit now — a live one is renewed, a new one while room is left, counting
 * the ones before it — and, for each that does not, the live ones and the limit.
 */
export async function reviewRoom(deps: AppDeps, repo: string, stacks: readonly ResolvedStack[]): Promise<{ fit: ResolvedStack[]; refused: Array<{ stack: ResolvedStack; live: LiveReviewStack[]; max: number }> }> {
  const fit: ResolvedStack[] = [];
  const refused: Array<{ stack: ResolvedStack; live: LiveReviewStack[]; max: number }> = [];
  if (stacks.length === 0) return { fit, refused };
  const live = (await liveReviewStacks(deps.db, repo)).map((l) => ({ stack: l.stack, pr: l.pr_number, expiresAt: l.expires_at }));
  for (const s of stacks) {
    const max = Math.min(s.review!.maxLive, deps.config.review.maxLive);
    const slot = decideReviewSlot(s.name, live, max);
    if (!slot.ok) {
      refused.push({ stack: s, live: slot.live, max });
      continue;
    }
    if (!slot.renewal) live.push({ stack: s.name, pr: s.review!.pr, expiresAt: new Date() });
    fit.push(s);
  }
  return { fit, refused };
}

/** The cost guard's refusal, with the live review stacks (oldest expiry first). */
export function renderReviewFull(stack: string, live: LiveReviewStack[], max: number): string {
  const lines = live.map((l) => `- ${code(l.stack)} of #${l.pr}, expires ${l.expiresAt.toISOString().replace(/\.\d+Z$/, "Z")}`);
  return [`${code(stack)} was not created: this repository already has ${live.length} live review stack${live.length === 1 ? "" : "s"}, its limit (\`review_max_live\`: ${max}). Nothing was run.`, "", ...lines, "", "Destroy one (`/agent destroy --review` in its pull request, or close it), then ask again."].join("\n");
}

export const REVIEW_BEING_DESTROYED = (stack: string) => `${code(stack)} is being destroyed right now; ask again once its destroy is reported here. Nothing was run.`;

/** Output values are the program's (pull-request code): a plain https link, or an inert code span. */
function outputValue(v: unknown): string {
  if (typeof v === "string" && /^https?:\/\/[A-Za-z0-9._~:/?#[\]@!$&'()*+,;=%-]{1,500}$/.test(v)) return v;
  return code(typeof v === "string" ? v : JSON.stringify(v), 200);
}

/** After a review stack's deploy succeeded: its record, and its outputs told in the pull request. */
export async function afterReviewDeploy(deps: AppDeps, c: { workflow: WorkflowRow; task: TaskRow; stack: ResolvedStack; sha: string; planHash: string }, outputs: Record<string, unknown> | null): Promise<void> {
  const { workflow, stack } = c;
  const r = stack.review!;
  await recordReviewDeployed(deps.db, workflow.repo, stack.name, c.sha, outputs);
  const row = await getReviewStack(deps.db, workflow.repo, stack.name);
  await auditWorkflow(deps.db, workflow, "review.deployed", { stack: stack.name, base: r.base, sha: c.sha, plan_hash: c.planHash, outputs: outputs ? Object.keys(outputs) : null, expires_at: row?.expires_at ?? null }, c.task.id);
  const entries = Object.entries(outputs ?? {}).slice(0, 50);
  const table = entries.length ? ["| Output | Value |", "|---|---|", ...entries.map(([k, v]) => `| ${code(k, 100)} | ${outputValue(v)} |`)] : [outputs === null ? "_Its outputs could not be read._" : "_It has no outputs._"];
  const expiry = row ? ` or when its TTL passes in ${durationWords(r.ttlSeconds)} (${row.expires_at.toISOString().replace(/\.\d+Z$/, "Z")}; every deploy renews it)` : "";
  await deps.writes.comment({ installationId: Number(workflow.installation_id), repo: repoOf(workflow.repo) }, workflow.pr_number, [
    `🔍 Review stack ${code(stack.name)} deployed at ${code(shortSha(c.sha))} (plan ${code(c.planHash.slice(7, 19))}), from ${code(r.base)} with the config of ${code(r.template)}. Nothing was merged.`,
    "",
    ...table,
    "",
    `It is destroyed when this pull request closes or merges, on \`/agent destroy --review ${r.base}\`${expiry}.`,
  ].join("\n"), { idempotencyKey: `task:${c.task.id}:review-outputs` });
}

/** `owner/name` as a RepoRef. */
export function repoOf(full: string): RepoRef {
  const [owner, repo] = full.split("/") as [string, string];
  return { owner, repo };
}

/**
 * Starts a review stack's destroy, once: only the caller that moves it to `destroying` enqueues
 * the job (a close, a sweep and a command at once destroy it once). False: nothing to start.
 */
export async function startReviewDestroy(deps: AppDeps, repo: string, stack: string, reason: string, actor: string): Promise<boolean> {
  const row = await beginReviewDestroy(deps.db, repo, stack, reason);
  if (!row) return false;
  await appendAudit(deps.db, { actor, action: "review.destroy_started", repo, prNumber: row.pr_number, detail: { stack, reason } });
  await deps.queues.review.add("destroy", { kind: "destroy", repo, stack }, { ...REVIEW_DESTROY_JOB_OPTIONS, jobId: reviewDestroyJobId(repo, stack) });
  return true;
}

/** A pull request closed or merged: its live review stacks are destroyed. */
export async function destroyReviewStacksOfPr(deps: AppDeps, repo: string, pr: number, merged: boolean, actor: string): Promise<string[]> {
  const started: string[] = [];
  for (const row of await reviewStacksOfPr(deps.db, repo, pr)) {
    if (await startReviewDestroy(deps, repo, row.stack, merged ? "the pull request was merged" : "the pull request was closed", actor)) started.push(row.stack);
  }
  return started;
}

/**
 * The sweep (a BullMQ job scheduler's tick, and once at start-up): warns in the pull request
 * before a live review stack's TTL passes and destroys it once it has. A destroy that failed is
 * not retried on every tick (it would fail the same way): it stays counted by the cost guard
 * until `/agent destroy --review` or the start-up reaper. Returns what it did.
 */
export async function sweepReviewStacks(deps: AppDeps, now: Date = new Date()): Promise<{ warned: string[]; destroyed: string[] }> {
  const warned: string[] = [];
  const destroyed: string[] = [];
  const rows = (await deps.db.query<ReviewStackRow>("SELECT * FROM review_stacks WHERE state = 'live' ORDER BY expires_at")).rows;
  for (const row of rows) {
    const action = sweepAction({ expiresAt: row.expires_at, warnedAt: row.warned_at, ttlSeconds: row.ttl_seconds }, now);
    if (action === "destroy") {
      if (await startReviewDestroy(deps, row.repo, row.stack, "its TTL passed", "agent")) destroyed.push(row.stack);
    } else if (action === "warn" && (await markReviewWarned(deps.db, row.repo, row.stack, row.expires_at))) {
      warned.push(row.stack);
      const left = durationWords((row.expires_at.getTime() - now.getTime()) / 1000);
      await appendAudit(deps.db, { actor: "agent", action: "review.expiry_warned", repo: row.repo, prNumber: row.pr_number, detail: { stack: row.stack, expires_at: row.expires_at } });
      await deps.writes.comment({ installationId: Number(row.installation_id), repo: repoOf(row.repo) }, row.pr_number, `⏳ Review stack ${code(row.stack)} expires in ${left} (${row.expires_at.toISOString().replace(/\.\d+Z$/, "Z")}) and will then be destroyed. To keep it another ${durationWords(row.ttl_seconds)}, deploy it again: \`/agent deploy --review ${row.base_stack}\`.`, { idempotencyKey: `review:${row.repo}:${row.stack}:warn:${row.expires_at.toISOString()}` });
    }
  }
  return { warned, destroyed };
}

/** The sweep's job scheduler: one per deployment, whoever upserts it. */
export async function scheduleReviewSweep(deps: AppDeps): Promise<void> {
  await deps.queues.review.upsertJobScheduler("review-sweep", { every: deps.config.review.sweepSeconds * 1000 }, { name: "sweep", data: { kind: "sweep" }, opts: { removeOnComplete: 100, removeOnFail: 100 } });
}

/**
 * On start-up: review stacks whose pull request closed while the app was down (the webhook was
 * missed) are destroyed, and destroys a stopped worker left `destroying` are queued again (the
 * job id makes that a no-op while one is queued). Best effort, per stack.
 */
export async function reapReviewOrphans(deps: AppDeps): Promise<{ reaped: string[]; resumed: string[]; failed: number }> {
  const reaped: string[] = [];
  const resumed: string[] = [];
  let failed = 0;
  for (const row of await allLiveReviewStacks(deps.db)) {
    try {
      if (row.state === "destroying") {
        await deps.queues.review.add("destroy", { kind: "destroy", repo: row.repo, stack: row.stack }, { ...REVIEW_DESTROY_JOB_OPTIONS, jobId: reviewDestroyJobId(row.repo, row.stack) });
        resumed.push(row.stack);
        continue;
      }
      const gh: GitHub = await deps.github(Number(row.installation_id));
      const pull = await getPull(gh, repoOf(row.repo), row.pr_number);
      if (pull.state !== "open" && (await startReviewDestroy(deps, row.repo, row.stack, "orphaned: its pull request closed while the app was down", "agent"))) reaped.push(row.stack);
    } catch (err) {
      failed++;
      deps.log.warn({ err, repo: row.repo, stack: row.stack }, "review stack not reaped");
    }
  }
  return { reaped, resumed, failed };
}
