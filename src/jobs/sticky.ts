import type { WriteClass } from "../connectors/outbox/pacer.js";
import { objectKeys } from "../connectors/outbox/store.js";
import type { GitHubWrites, WriteTarget } from "../connectors/outbox/writes.js";
import type { Db } from "../connectors/store/db.js";
import { latestPreviewPerStack, withPrLock } from "../connectors/store/workflows.js";
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
  /** How urgent the render is (default final). */
  cls?: WriteClass;
  /** Least time between two updates of one part (STICKY_UPDATE_INTERVAL_MS). */
  minIntervalMs?: number;
}

/**
 * Re-renders the one living PR comment from the database and hands it to the outbox: updated
 * in place, created once (the outbox keeps its id under the sticky key). When the plan detail
 * outgrows one comment it continues in numbered comments right below, updated in place too;
 * parts a new render no longer needs are deleted. Each part is one object in the outbox, so
 * renders in quick succession (200 stacks finishing) cost one write per part, not one per
 * render: a render while an earlier one waits replaces it, and a part is updated at most once
 * per `minIntervalMs` (renders meanwhile merge into the waiting one). A per-PR lock keeps two workers
 * from interleaving their parts.
 */
export async function refreshStickyComment(db: Db, writes: GitHubWrites, t: WriteTarget, prNumber: number, opts: StickyOptions): Promise<void> {
  const repo = `${t.repo.owner}/${t.repo.repo}`;
  await withPrLock(db, repo, prNumber, async () => {
    const stacks = await latestPreviewPerStack(db, repo, prNumber);
    const parts = renderStickyParts({
      repo,
      webBaseUrl: opts.webBaseUrl,
      stacks,
      maxContinuations: opts.maxContinuations,
      ...(opts.logUrlFor ? { logUrlFor: opts.logUrlFor } : {}),
      ...(opts.notice ? { notice: opts.notice } : {}),
    });
    const o = { cls: opts.cls ?? "final", minIntervalMs: opts.minIntervalMs ?? 0 } as const;
    const bodies = [parts.main, ...parts.continuations];
    for (const [i, body] of bodies.entries()) await writes.upsertComment(t, objectKeys.stickyPart(repo, prNumber, i + 1), prNumber, body, o);
    // Detail from an earlier, longer preview must not linger under the new one.
    const prefix = objectKeys.stickyPrefix(repo, prNumber);
    for (const key of await writes.commentsUnder(prefix)) {
      if (Number(key.slice(prefix.length)) > bodies.length) await writes.deleteComment(t, key, o);
    }
  });
}

/**
 * The sticky comment of a PR as the server is configured (continuations, log links). `progress`
 * for renders of work still under way (queued, running): they wait in the outbox for the final
 * render and are sent only if it does not come within the debounce.
 */
export async function refreshSticky(deps: Pick<AppDeps, "db" | "config" | "writes">, t: WriteTarget, prNumber: number, cls: WriteClass = "final"): Promise<void> {
  // A merge group's workflows have no thread (pr_number 0): nothing to render.
  if (prNumber <= 0) return;
  return refreshStickyComment(deps.db, deps.writes, t, prNumber, {
    webBaseUrl: deps.config.github.webBaseUrl,
    maxContinuations: deps.config.comments.maxContinuations,
    logUrlFor: (taskId) => taskLogUrl(deps.config, taskId),
    cls,
    minIntervalMs: deps.config.comments.stickyUpdateIntervalMs,
  });
}
