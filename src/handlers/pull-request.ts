import type { Context } from "probot";
import { autoplanWithinBlastRadius, mayAutoplan, stacksToAutoplan } from "../approval/autoplan.js";
import { audit, commandContextFor, deliveryWriteKey, loadDefaultBranchConfig, writeTarget, type CommandContext } from "../commands/context.js";
import { autoplanHeldMessage } from "../render/autoplan.js";
import { startPreview } from "../commands/preview.js";
import { getPermission, listPullFiles } from "../connectors/github.js";
import { cancelLockWaitsOf, cancelOlderPreviews } from "../connectors/store/workflows.js";
import { announceCancelledPreviews } from "../jobs/cancel-previews.js";
import { appendAudit } from "../connectors/store/audit.js";
import { releaseStackLocks } from "../connectors/store/locks.js";
import { startLockQueue } from "../jobs/lock-queue.js";
import { withGateLock } from "../connectors/store/gate.js";
import { recordPrEvent, type NewPrEvent } from "../connectors/store/timeline.js";
import type { AppDeps } from "../deps.js";
import { withReviewStacks } from "../config/repo/resolve.js";
import { destroyReviewStacksOfPr, reviewRoom } from "../deploys/review.js";
import { applyMergedInAct } from "../deploys/act.js";

/**
 * Records a push, opening or closing under the PR's gate lock (src/connectors/store/gate.ts):
 * a deploy job claiming its apply at the same moment either sees it or was claimed before it.
 */
async function recordUnderGateLock(deps: AppDeps, e: NewPrEvent): Promise<void> {
  await withGateLock(deps.db, e.repo, e.prNumber, (q) => recordPrEvent(q, e));
}

/** GitHub's time of the event (`pull_request.updated_at`), comparable with comments' `created_at`. */
function eventTime(pr: { updated_at?: string | null }): Date {
  const at = pr.updated_at ? new Date(pr.updated_at) : new Date(Number.NaN);
  return Number.isNaN(at.getTime()) ? new Date() : at;
}

/**
 * `pull_request.closed` (merged or not): recorded (a queued deploy of it is then blocked at the
 * time of apply), and the PR's stack locks are released.
 */
export async function onPullRequestClosed(context: Context<"pull_request.closed">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  const repo = payload.repository.full_name;
  await recordUnderGateLock(deps, {
    repo,
    prNumber: payload.pull_request.number,
    kind: "closed",
    actor: payload.sender?.login ?? "github",
    headSha: payload.pull_request.head.sha,
    at: eventTime(payload.pull_request),
    deliveryId: context.id,
  });
  const released = await releaseStackLocks(deps.db, repo, { prNumber: payload.pull_request.number });
  // Its previews waiting in lock queues leave them; the released stacks go to the next in line.
  const left = await cancelLockWaitsOf(deps.db, repo, payload.pull_request.number, "the pull request was closed");
  const target = { installationId: payload.installation!.id, repo: { owner: payload.repository.owner.login, repo: payload.repository.name } };
  if (left.length) await announceCancelledPreviews(deps, target, payload.pull_request.number, left, "The pull request was closed.", payload.sender?.login ?? "github");
  await startLockQueue(deps, repo, released.map((l) => l.stack));
  // Its review stacks go with it (src/deploys/review.ts).
  await destroyReviewStacksOfPr(deps, repo, payload.pull_request.number, Boolean(payload.pull_request.merged), payload.sender?.login ?? "github");
  // `act`: a merged pull request's undeployed stacks are previewed at the merge commit, and may apply by themselves (src/deploys/act.ts).
  if (payload.pull_request.merged) {
    await applyMergedInAct(deps, context.octokit, {
      repo: target.repo,
      repoFullName: repo,
      installationId: target.installationId,
      pr: payload.pull_request.number,
      headSha: payload.pull_request.head.sha,
      mergeSha: payload.pull_request.merge_commit_sha ?? null,
      mergedBy: payload.pull_request.merged_by?.login ?? payload.sender?.login ?? "github",
      deliveryId: context.id,
      cloneUrl: payload.repository.clone_url,
      defaultBranch: payload.repository.default_branch,
    });
  }
  if (released.length === 0) return;
  await appendAudit(deps.db, {
    actor: payload.sender?.login ?? "github",
    action: "lock.released",
    repo,
    prNumber: payload.pull_request.number,
    deliveryId: context.id,
    detail: { stacks: released.map((l) => l.stack), by: payload.pull_request.merged ? "merged" : "closed" },
  });
  deps.log.info({ delivery_id: context.id, repo, pr: payload.pull_request.number, stacks: released.map((l) => l.stack) }, "stack locks released");
}

/**
 * `pull_request.opened` / `reopened` / `synchronize`: a push first cancels previews of older
 * commits, then autoplan previews the stacks whose paths the PR changes — through the same
 * path as `/agent preview`, so locks, check runs and the sticky comment behave the same.
 */
export async function onPullRequestUpdated(
  context: Context<"pull_request.opened" | "pull_request.reopened" | "pull_request.synchronize">,
  deps: AppDeps,
): Promise<void> {
  const { payload } = context;
  const repoFullName = payload.repository.full_name;
  const [owner, name] = repoFullName.split("/") as [string, string];
  const repo = { owner, repo: name };
  const pr = payload.pull_request;
  const actor = payload.sender?.login ?? pr.user?.login ?? "github";
  const log = deps.log.child({ delivery_id: context.id, repo: repoFullName, pr: pr.number });
  // Who changed the code, and the head from when: a push is the sender's, an opening the
  // author's. The gate never counts their approvals of this PR (src/approval/gate.ts).
  await recordUnderGateLock(deps, {
    repo: repoFullName,
    prNumber: pr.number,
    kind: payload.action,
    actor: payload.action === "synchronize" ? actor : (pr.user?.login ?? actor),
    headSha: pr.head.sha,
    at: eventTime(pr),
    deliveryId: context.id,
  });
  const installationId = payload.installation?.id;
  if (!installationId) return;
  if (payload.action === "synchronize") {
    const cancelled = await cancelOlderPreviews(deps.db, repoFullName, pr.number, pr.head.sha);
    await announceCancelledPreviews(deps, { installationId, repo }, pr.number, cancelled, `A newer commit (${pr.head.sha.slice(0, 7)}) was pushed; this preview was cancelled.`, actor);
  }
  const ctx: CommandContext = {
    ...commandContextFor(deps, context, payload.repository, { installationId, threadNumber: pr.number, isPullRequest: true, commentId: 0, actor: pr.user?.login ?? actor }),
    log,
  };
  const loaded = await loadDefaultBranchConfig(ctx);
  // A repository without (valid) config gets no autoplan noise on every push; commands explain.
  if (!loaded.ok || !loaded.config.autoplan) return;
  const decision = mayAutoplan({
    fork: pr.head.repo?.full_name !== repoFullName,
    authorPermission: await getPermission(context.octokit, repo, pr.user?.login ?? ""),
  });
  if (!decision.allowed) {
    await audit(ctx, "autoplan.skipped", { reason: decision.why, head_sha: pr.head.sha });
    return;
  }
  const stacks = stacksToAutoplan(loaded.stacks, await listPullFiles(context.octokit, repo, pr.number));
  if (stacks.length === 0) return;
  const radius = autoplanWithinBlastRadius(stacks, loaded.config.autoplan_max_stacks);
  if (!radius.run) {
    await audit(ctx, "autoplan.held", { reason: radius.why, stacks, max_stacks: loaded.config.autoplan_max_stacks, head_sha: pr.head.sha, trigger: payload.action });
    await ctx.deps.writes.comment(writeTarget(ctx), pr.number, autoplanHeldMessage(stacks, loaded.config.autoplan_max_stacks, pr.head.sha), {
      cls: "ack",
      idempotencyKey: deliveryWriteKey(ctx, "autoplan-held"),
    });
    return;
  }
  // `review.auto`: the matched stacks' review stacks are previewed (and so deployed) too, while the cost guard has room.
  const withReview = withReviewStacks(loaded.stacks, pr.number);
  // (Those already live, and new ones while the cost guard has room; a full repository is told when one is asked for by command.)
  const reviews = (await reviewRoom(deps, repoFullName, withReview.filter((s) => s.review && s.reviewSettings === undefined && stacks.includes(s.review.base) && loaded.stacks.find((b) => b.name === s.review!.base)?.reviewSettings?.auto))).fit.map((s) => s.name);
  await audit(ctx, "autoplan.requested", { stacks: [...stacks, ...reviews], head_sha: pr.head.sha, trigger: payload.action });
  await startPreview(ctx, [...stacks, ...reviews], { ...loaded, stacks: withReview });
}
