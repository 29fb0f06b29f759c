import { getPull, type GitHub, type RepoRef } from "../connectors/github.js";
import type { WriteTarget } from "../connectors/outbox/writes.js";
import type { AppDeps } from "../deps.js";

/** Merge outcome as a deploy reports it. */
export type MergeOutcome = { merged: true; sha: string } | { merged: false; status: number; message: string };

/**
 * Merges a pull request exactly once per key (the outbox's send-once write), with `sha` so that
 * GitHub refuses when the head moved. An answer lost on the way is settled by asking GitHub
 * whether the PR is merged, never by merging again.
 */
export async function mergePullOnce(deps: AppDeps, gh: GitHub, r: RepoRef, target: WriteTarget, key: string, m: { number: number; sha: string; method: "merge" | "squash" | "rebase" }): Promise<MergeOutcome> {
  const sent = await deps.writes.merge(target, key, m);
  if (sent.state === "sent") return sent.result as MergeOutcome;
  if (sent.state === "failed") return { merged: false, status: 0, message: sent.error };
  const pull = await getPull(gh, r, m.number);
  return pull.merged && pull.mergeCommitSha ? { merged: true, sha: pull.mergeCommitSha } : { merged: false, status: 0, message: "GitHub's answer to the merge was lost and the pull request is not merged" };
}
