import { createComment, deleteComment, updateComment, type GitHub, type RepoRef } from "../connectors/github.js";
import type { Db } from "../connectors/store/db.js";
import {
  getCommentParts,
  getStickyCommentId,
  latestPreviewPerStack,
  removeCommentPart,
  setCommentPart,
  setStickyCommentId,
  withPrLock,
} from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { renderStickyParts } from "../render/sticky-comment.js";
import { taskLogUrl } from "../web/log-links.js";

export interface StickyOptions {
  webBaseUrl: string;
  /** Continuation comments allowed beyond the main one (server config). */
  maxContinuations: number;
  /** Link to a task's full log, when the server has a public URL. */
  logUrlFor?: (taskId: string) => string | null;
  /** A notice shown above the table (e.g. a configuration error). */
  notice?: string;
}

/**
 * Re-renders the one living PR comment from the database and writes it: updated in place,
 * created once. When the plan detail outgrows one comment it continues in numbered comments
 * right below, which are updated in place too; parts a new render no longer needs are
 * deleted. A per-PR lock keeps two workers from creating two comments or writing an older
 * state over a newer one.
 */
export async function refreshStickyComment(db: Db, gh: GitHub, r: RepoRef, prNumber: number, opts: StickyOptions): Promise<number> {
  const repo = `${r.owner}/${r.repo}`;
  return withPrLock(db, repo, prNumber, async () => {
    const stacks = await latestPreviewPerStack(db, repo, prNumber);
    const parts = renderStickyParts({
      repo,
      webBaseUrl: opts.webBaseUrl,
      stacks,
      maxContinuations: opts.maxContinuations,
      ...(opts.logUrlFor ? { logUrlFor: opts.logUrlFor } : {}),
      ...(opts.notice ? { notice: opts.notice } : {}),
    });
    const existing = await getStickyCommentId(db, repo, prNumber);
    let mainId: number;
    if (existing !== null && (await updateComment(gh, r, existing, parts.main))) mainId = existing;
    else {
      mainId = await createComment(gh, r, prNumber, parts.main);
      await setStickyCommentId(db, repo, prNumber, mainId);
    }
    const known = await getCommentParts(db, repo, prNumber);
    for (const [i, body] of parts.continuations.entries()) {
      const part = i + 2;
      const id = known.get(part);
      if (id !== undefined && (await updateComment(gh, r, id, body))) continue;
      await setCommentPart(db, repo, prNumber, part, await createComment(gh, r, prNumber, body));
    }
    // Detail from an earlier, longer preview must not linger under the new one.
    for (const [part, id] of known) {
      if (part - 2 < parts.continuations.length) continue;
      await deleteComment(gh, r, id);
      await removeCommentPart(db, repo, prNumber, part);
    }
    return mainId;
  });
}

/** The sticky comment of a PR as the server is configured (continuations, log links). */
export function refreshSticky(deps: Pick<AppDeps, "db" | "config">, gh: GitHub, r: RepoRef, prNumber: number): Promise<number> {
  return refreshStickyComment(deps.db, gh, r, prNumber, {
    webBaseUrl: deps.config.github.webBaseUrl,
    maxContinuations: deps.config.comments.maxContinuations,
    logUrlFor: (taskId) => taskLogUrl(deps.config, taskId),
  });
}
