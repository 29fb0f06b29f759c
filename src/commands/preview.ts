import { decideImage } from "../approval/images.js";
import { mayPreviewFork } from "../approval/forks.js";
import type { RepoPermission } from "../approval/permissions.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { RepoConfig } from "../config/repo/schema.js";
import { stacksToAutoplan } from "../approval/autoplan.js";
import { getPull, listPullFiles } from "../connectors/github.js";
import { getStackLock, isWaitingForLock, lockQueue } from "../connectors/store/locks.js";
import { startLockQueue } from "../jobs/lock-queue.js";
import { createPreviewWorkflow } from "../connectors/store/workflows.js";
import { checksJobId, previewJobId, TASK_JOB_OPTIONS } from "../connectors/queues.js";
import { planChecks } from "../config/checks.js";
import { stackGraph } from "../config/repo/resolve.js";
import { upstreamWithin } from "../domain/stack-graph.js";
import { releaseDependents } from "../jobs/dependents.js";
import { announceCancelledPreviews } from "../jobs/cancel-previews.js";
import { refreshSticky } from "../jobs/sticky.js";
import { checksCheckRunName, lockWaitOutput, previewCheckRunName, queuedOutput } from "../render/check-run.js";
import { code } from "../render/markdown.js";
import { traceField } from "../ops/tracing.js";
import { taskLogUrl } from "../web/log-links.js";
import { audit, reply, writeTarget, type CommandContext } from "./context.js";
import { confirmVouchedHead } from "./vouch.js";

/**
 * Queued check runs sent as acknowledgements (a burst's worth): a 200-stack preview's other
 * creations must not hold back the results of stacks that already finished.
 */
export const ACKNOWLEDGING_CHECK_RUNS = 10;

/**
 * `/agent preview --all`: every stack whose paths this PR's changes match — autoplan's choice,
 * also past its blast radius (`autoplan_max_stacks`), since a writer asked for it.
 */
export async function previewChangedStacks(ctx: CommandContext, repoConfig: { config: RepoConfig; stacks: ResolvedStack[] }, permission: RepoPermission | null): Promise<void> {
  const matched = stacksToAutoplan(repoConfig.stacks.filter((s) => !s.review), await listPullFiles(ctx.gh, ctx.repo, ctx.threadNumber));
  if (matched.length === 0) {
    await audit(ctx, "preview.rejected", { reason: "no stack matches the changed files", all: true });
    await reply(ctx, "no stack's `paths` match this pull request's changed files, so `--all` has nothing to preview; name the stacks instead: `/agent preview <stack> [<stack>…]`.");
    return;
  }
  await startPreview(ctx, matched, repoConfig, permission, { vouch: false });
}

/**
 * `/agent preview [stack...]`: records a workflow, shows a queued check run per stack on
 * the PR's head SHA, and enqueues one task per stack. Slow work happens in the task worker.
 */
export async function startPreview(
  ctx: CommandContext,
  stackNames: string[],
  repoConfig: { config: RepoConfig; stacks: ResolvedStack[] },
  /** The requester's permission; null for autoplan, which never runs fork code anyway. */
  permission: RepoPermission | null = null,
  /** `/agent ok-to-test`: a maintainer vouching for the head at the comment's time (src/commands/vouch.ts). */
  opts: { vouch?: boolean } = {},
): Promise<void> {
  const image = decideImage(repoConfig.config.sandbox?.image, ctx.deps.config.sandbox);
  if (!image.ok) {
    await audit(ctx, "preview.rejected", { reason: image.message });
    await reply(ctx, `I can't run the preview: ${image.message}.`);
    return;
  }
  const pull = await getPull(ctx.gh, ctx.repo, ctx.threadNumber);
  if (pull.state !== "open") {
    await audit(ctx, "preview.rejected", { reason: "pull request is not open" });
    await reply(ctx, "this pull request is closed; previews run on open pull requests only.");
    return;
  }
  // Code from a fork runs only when a maintainer says so, for each new head commit (invariant 3).
  const fromFork = pull.headRepoFullName !== pull.baseRepoFullName;
  const forkDecision = mayPreviewFork({ fromFork, permission });
  if (!forkDecision.allowed) {
    await audit(ctx, "preview.rejected", { reason: "fork", head_sha: pull.headSha, permission });
    await reply(ctx, forkDecision.why);
    return;
  }
  if ((fromFork || opts.vouch) && !(await confirmVouchedHead(ctx, pull.headSha))) return;
  const stacks = repoConfig.stacks.filter((s) => stackNames.includes(s.name));
  const checks = planChecks(stacks);
  const lockFree = stacks.filter((s) => s.gate.mode === "merge-queue").map((s) => s.name);
  const created = await createPreviewWorkflow(ctx.deps.db, {
    repo: ctx.repoFullName,
    installationId: ctx.installationId,
    prNumber: ctx.threadNumber,
    headSha: pull.headSha,
    requestedBy: ctx.actor,
    deliveryId: ctx.deliveryId,
    config: {
      image: image.image,
      cloneUrl: ctx.cloneUrl,
      defaultBranch: ctx.defaultBranch,
      stacks,
      checks,
      fork: fromFork,
    },
    stacks: stackNames,
    jobIdFor: (stack) => previewJobId(ctx.repoFullName, ctx.threadNumber, pull.headSha, stack),
    checks,
    checksJobIdFor: (key) => checksJobId(ctx.repoFullName, ctx.threadNumber, pull.headSha, key),
    // Dependency order (depends_on): a stack's preview waits for those of its upstream stacks.
    upstream: upstreamWithin(stackGraph(repoConfig.stacks), stackNames),
    // All the stacks' locks at once, or this command waits for all of them (src/jobs/lock-queue.ts).
    // Merge-queue stacks take none: GitHub's queue orders their applies, and several PRs may hold approved plans at once.
    locks: { lockedBy: ctx.actor, ttlSeconds: ctx.deps.config.locks.ttlSeconds, except: lockFree },
  });

  if (created.deadlock) {
    // Hold-and-wait across commands: say who waits for whom, and how to break it.
    const chain = created.deadlock.map((e) => `#${e.from} waits for #${e.to} (${code(e.stack)})`).join(", ");
    const mine = created.deadlock.filter((e) => e.to === ctx.threadNumber).map((e) => code(e.stack));
    await audit(ctx, "preview.locked", { deadlock: created.deadlock, queued: false });
    await reply(ctx, `nothing was queued: waiting for these locks would never end — ${chain}, and each pull request keeps its locks until it merges or closes. Release what this pull request holds (${[...new Set(mine)].join(", ")}) with \`/agent unlock <stack>\`, or let the other pull request go first, then ask again.`);
    return;
  }
  if (created.workflow && !created.lockQueued) {
    for (const t of created.tasks.filter((x) => !lockFree.includes(x.stack))) await audit(ctx, "lock.acquired", { stack: t.stack, at: "command" }, {}, `lock.acquired:${t.stack}`);
  }
  // Queued behind other pull requests' locks: who holds each stack, and this command's place.
  const waiting = new Map<string, { holderPr: number | null; position: number }>();
  for (const t of created.tasks) {
    if (!(await isWaitingForLock(ctx.deps.db, t.id))) continue;
    const lock = await getStackLock(ctx.deps.db, ctx.repoFullName, t.stack);
    const place = (await lockQueue(ctx.deps.db, ctx.repoFullName, t.stack)).find((w) => w.taskId === t.id)?.position ?? 1;
    waiting.set(t.stack, { holderPr: lock && lock.prNumber !== ctx.threadNumber ? lock.prNumber : null, position: place });
    await audit(ctx, "preview.locked", { stack: t.stack, holder_pr: lock?.prNumber ?? null, queued: true, position: place }, {}, `preview.locked:${t.stack}`);
  }
  // Identical live tasks: those recorded by an earlier attempt of this same delivery are
  // finished setting up here (it may have failed half-way); those of another delivery are
  // set up by that delivery. Enqueuing is idempotent through the job id.
  const ours = created.alreadyLive.filter((t) => t.workflow_delivery_id === ctx.deliveryId);
  const theirs = created.alreadyLive.filter((t) => t.workflow_delivery_id !== ctx.deliveryId);
  // Checks first: their check runs appear above the previews that wait for them. The queued
  // check run is the acknowledgement: first in the outbox. Its key is the task's, so a re-run
  // of this delivery (or the task's own first write) adds nothing.
  // Past the first few, a fan-out's queued check runs are progress: results of stacks that
  // finished go before creations for stacks still waiting (which merge into their result).
  const checksNew = created.checks.filter((t) => !t.check_run_id);
  let queuedCheckRuns = 0;
  for (const task of [...checksNew, ...created.tasks, ...ours]) {
    if (task.check_run_id) continue;
    const name = task.kind === "checks" ? checksCheckRunName(task.stack) : previewCheckRunName(task.stack);
    const wait = task.kind === "preview" ? waiting.get(task.stack) : undefined;
    await ctx.deps.writes.checkRun(
      writeTarget(ctx),
      task.id,
      { ...(wait ? lockWaitOutput(task.stack, pull.headSha, ctx.actor, wait) : queuedOutput(task.stack, pull.headSha, ctx.actor)), detailsUrl: taskLogUrl(ctx.deps.config, task.id) },
      { cls: queuedCheckRuns++ < ACKNOWLEDGING_CHECK_RUNS ? "ack" : "progress", identity: { name, headSha: pull.headSha }, idempotencyKey: `task:${task.id}:queued` },
    );
  }
  // A preview waiting for checks is enqueued when they succeed (src/jobs/dependents.ts); one
  // waiting for a lock when the lock queue reaches it (src/jobs/lock-queue.ts).
  const candidates = [...created.tasks, ...ours, ...theirs].filter((t) => t.depends_on.length === 0 && t.state === "PENDING");
  const runnable = [...created.checks];
  for (const t of candidates) if (!(await isWaitingForLock(ctx.deps.db, t.id))) runnable.push(t);
  for (const task of runnable) {
    await ctx.deps.queues.tasks.add(
      task.kind === "checks" ? "checks" : "preview",
      { taskId: task.id, workflowId: task.workflow_id, deliveryId: ctx.deliveryId, ...traceField() },
      { ...TASK_JOB_OPTIONS, jobId: task.job_id },
    );
  }
  // A dependency that was already live may have ended before these tasks were committed, and
  // so released nobody: release again (idempotent; nothing happens while it is still live).
  const newIds = new Set([...created.tasks, ...created.checks.filter((c) => c.workflow_id === created.workflow?.id)].map((t) => t.id));
  for (const dep of new Set(created.tasks.flatMap((t) => t.depends_on))) if (!newIds.has(dep)) await releaseDependents(ctx.deps, writeTarget(ctx), dep);
  if (waiting.size > 0) {
    // The lock may have been released between the look above and the queue row's commit.
    await startLockQueue(ctx.deps, ctx.repoFullName, [...waiting.keys()]);
    const lines = [...waiting].map(([stack, w]) =>
      w.holderPr !== null
        ? `- ${code(stack)} is locked by #${w.holderPr}: this preview waits in its queue (position ${w.position}) until #${w.holderPr} is merged or closed, \`/agent unlock ${stack}\` there, or the lock expires.`
        : `- ${code(stack)}${w.position > 1 ? ` has other pull requests ahead in its queue: position ${w.position}` : " is free, but waits with the others (position 1)"}.`,
    );
    const together = waiting.size > 1 ? "The stacks of one command are locked together, all or none, so they start together. " : "";
    await reply(ctx, `queued behind another pull request's lock; the preview starts by itself once ${waiting.size === 1 ? "the lock is" : "all the locks are"} free for this pull request:\n${lines.join("\n")}\n\n${together}\`/agent cancel\` leaves the queue.`);
  }
  // A re-run of this delivery (its handler died after recording) finds its own tasks: still "queued", one row.
  const queuedHere = created.tasks.length > 0 || ours.length > 0;
  await audit(
    ctx,
    queuedHere ? "preview.queued" : "preview.duplicate",
    {
      head_sha: pull.headSha,
      stacks: created.tasks.map((t) => t.stack),
      checks: created.checks.map((t) => ({ id: t.id, label: t.stack })),
      already_running: created.alreadyLive.map((t) => t.stack),
      superseded: created.superseded.map((t) => t.id),
      fork: pull.headRepoFullName !== pull.baseRepoFullName,
    },
    created.workflow ? { workflowId: created.workflow.id } : {},
    "preview.recorded",
  );
  await announceCancelledPreviews(ctx.deps, writeTarget(ctx), ctx.threadNumber, created.superseded, `Superseded by a preview of ${pull.headSha.slice(0, 7)}.`, ctx.actor);
  if (created.alreadyLive.length && !queuedHere) {
    const names = created.alreadyLive.map((t) => code(t.stack)).join(", ");
    await reply(ctx, `a preview of ${names} on ${code(pull.headSha.slice(0, 7))} is already queued or running; its results will appear in the summary comment.`);
  }
  // Queued is work under way: the render waits for the result's (and is sent only if that is
  // slow) — unless this is a fan-out, whose summary is the acknowledgement of the stacks whose
  // check runs wait as progress.
  await refreshSticky(ctx.deps, writeTarget(ctx), ctx.threadNumber, queuedCheckRuns > ACKNOWLEDGING_CHECK_RUNS ? "ack" : "progress");
}
