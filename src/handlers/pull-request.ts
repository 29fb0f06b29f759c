import type { Context } from "probot";
import { cancelOlderPreviews } from "../connectors/store/workflows.js";
import { announceCancelledPreviews } from "../jobs/cancel-previews.js";
import { appendAudit } from "../connectors/store/audit.js";
import { releaseStackLocks } from "../connectors/store/locks.js";
import type { AppDeps } from "../deps.js";

/** `pull_request.closed` (merged or not): the PR's stack locks are released. */
export async function onPullRequestClosed(context: Context<"pull_request.closed">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  const repo = payload.repository.full_name;
  const released = await releaseStackLocks(deps.db, repo, { prNumber: payload.pull_request.number });
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

/** `pull_request.synchronize` (a push): previews of older commits are cancelled, running ones stopped. */
export async function onPullRequestPushed(context: Context<"pull_request.synchronize">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  const repo = payload.repository.full_name;
  const [owner, name] = repo.split("/") as [string, string];
  const headSha = payload.pull_request.head.sha;
  const cancelled = await cancelOlderPreviews(deps.db, repo, payload.pull_request.number, headSha);
  await announceCancelledPreviews(
    deps,
    context.octokit,
    { owner, repo: name },
    payload.pull_request.number,
    cancelled,
    `A newer commit (${headSha.slice(0, 7)}) was pushed; this preview was cancelled.`,
    payload.sender?.login ?? "github",
  );
}
