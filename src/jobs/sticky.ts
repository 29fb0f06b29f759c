import { createComment, updateComment, type GitHub, type RepoRef } from "../connectors/github.js";
import type { Db } from "../connectors/store/db.js";
import { getStickyCommentId, latestPreviewPerStack, setStickyCommentId, withPrLock } from "../connectors/store/workflows.js";
import { renderStickyComment } from "../render/sticky-comment.js";

/**
 * Re-renders the one living PR comment from the database and writes it: updated in place,
 * created once. A per-PR lock keeps two workers from creating two comments or writing an
 * older state over a newer one.
 */
export async function refreshStickyComment(
  db: Db,
  gh: GitHub,
  r: RepoRef,
  prNumber: number,
  webBaseUrl: string,
  notice?: string,
): Promise<number> {
  const repo = `${r.owner}/${r.repo}`;
  return withPrLock(db, repo, prNumber, async () => {
    const stacks = await latestPreviewPerStack(db, repo, prNumber);
    const body = renderStickyComment({ repo, webBaseUrl, stacks, ...(notice ? { notice } : {}) });
    const existing = await getStickyCommentId(db, repo, prNumber);
    if (existing !== null && (await updateComment(gh, r, existing, body))) return existing;
    const id = await createComment(gh, r, prNumber, body);
    await setStickyCommentId(db, repo, prNumber, id);
    return id;
  });
}
