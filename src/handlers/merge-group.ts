/**
 * `merge_group` (GitHub's merge queue): `checks_requested` checks the group's commit and
 * reports `agent/merge-queue` on it; `destroyed` stops that check and forgets the group.
 * The work is in src/deploys/merge-queue.ts.
 */
import type { Context } from "probot";
import type { AppDeps } from "../deps.js";
import { checkMergeGroup, destroyMergeGroup, QUEUE_ACTOR } from "../deploys/merge-queue.js";
import { announceCancelledPreviews } from "../jobs/cancel-previews.js";

export async function onMergeGroupChecksRequested(context: Context<"merge_group.checks_requested">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  const installationId = payload.installation?.id;
  const repository = payload.repository;
  if (!installationId || !repository) return;
  const [owner, repo] = repository.full_name.split("/") as [string, string];
  await checkMergeGroup(deps, context.octokit, {
    repo: { owner, repo },
    repoFullName: repository.full_name,
    installationId,
    cloneUrl: repository.clone_url,
    defaultBranch: repository.default_branch,
    headSha: payload.merge_group.head_sha,
    baseSha: payload.merge_group.base_sha,
    headRef: payload.merge_group.head_ref,
    deliveryId: context.id,
  });
}

export async function onMergeGroupDestroyed(context: Context<"merge_group.destroyed">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  const installationId = payload.installation?.id;
  const repository = payload.repository;
  if (!installationId || !repository) return;
  const [owner, repo] = repository.full_name.split("/") as [string, string];
  const { cancelled, why } = await destroyMergeGroup(deps, { repoFullName: repository.full_name, headSha: payload.merge_group.head_sha, reason: (payload as { reason?: string }).reason ?? null, deliveryId: context.id });
  // Queued jobs dropped, running sandboxes stopped, their check runs closed as cancelled.
  await announceCancelledPreviews(deps, { installationId, repo: { owner, repo } }, 0, cancelled, `Cancelled: ${why}.`, QUEUE_ACTOR);
}
