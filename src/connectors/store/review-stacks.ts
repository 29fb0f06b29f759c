/** Review stacks' records (src/deploys/review.ts): live ones count against the cost guard. */
import { decideReviewSlot, type LiveReviewStack } from "../../approval/review.js";
import type { ResolvedStack } from "../../config/repo/resolve.js";
import { inTransaction, type Db } from "./db.js";

export type ReviewState = "live" | "destroying" | "destroyed" | "destroy_failed";

export interface ReviewStackRow {
  repo: string;
  stack: string;
  base_stack: string;
  pr_number: number;
  installation_id: string;
  clone_url: string;
  default_branch: string;
  state: ReviewState;
  requested_by: string;
  stack_config: ResolvedStack;
  image: string;
  created_at: Date;
  ttl_seconds: number;
  expires_at: Date;
  warned_at: Date | null;
  deployed_sha: string | null;
  outputs: Record<string, unknown> | null;
  destroy_reason: string | null;
  destroy_task_id: string | null;
  destroyed_at: Date | null;
}

/** Not destroyed: its resources may exist (what the cost guard counts). */
const HOLDING = "state <> 'destroyed'";

export async function getReviewStack(db: Db, repo: string, stack: string): Promise<ReviewStackRow | null> {
  return (await db.query<ReviewStackRow>("SELECT * FROM review_stacks WHERE repo = $1 AND stack = $2", [repo, stack])).rows[0] ?? null;
}

export async function liveReviewStacks(db: Db, repo: string): Promise<ReviewStackRow[]> {
  return (await db.query<ReviewStackRow>(`SELECT * FROM review_stacks WHERE repo = $1 AND ${HOLDING} ORDER BY expires_at`, [repo])).rows;
}

/** Every review stack not destroyed, of every repository (the start-up reaper). */
export async function allLiveReviewStacks(db: Db): Promise<ReviewStackRow[]> {
  return (await db.query<ReviewStackRow>("SELECT * FROM review_stacks WHERE state <> 'destroyed' ORDER BY expires_at")).rows;
}

export async function reviewStacksOfPr(db: Db, repo: string, pr: number): Promise<ReviewStackRow[]> {
  return (await db.query<ReviewStackRow>(`SELECT * FROM review_stacks WHERE repo = $1 AND pr_number = $2 AND ${HOLDING} ORDER BY stack`, [repo, pr])).rows;
}

export interface NewReviewStack {
  repo: string;
  stack: string;
  base: string;
  pr: number;
  installationId: number;
  cloneUrl: string;
  defaultBranch: string;
  requestedBy: string;
  ttlSeconds: number;
  /** The review stack as resolved now: what its destroy runs, whatever the config says by then. */
  stackConfig: ResolvedStack;
  /** The sandbox image its deploys run in (its destroy runs in it too). */
  image: string;
}

/**
 * Takes a slot for a review stack under the cost guard, serialised per repository: a stack
 * already live is renewed (expiry from now, warning reset); a new one is recorded `live` while
 * fewer than `max` are. `created`: this call recorded it (a caller whose deploy is then not
 * queued gives the slot back with {@link releaseReviewSlot}).
 */
export type TakenSlot = { kind: "ok"; created: boolean } | { kind: "full"; live: LiveReviewStack[]; max: number } | { kind: "destroying" };

export async function takeReviewSlot(db: Db, r: NewReviewStack, max: number): Promise<TakenSlot> {
  return inTransaction(db, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('review:' || $1))", [r.repo]);
    const live = (await client.query<ReviewStackRow>(`SELECT * FROM review_stacks WHERE repo = $1 AND ${HOLDING}`, [r.repo])).rows;
    // Its destroy is running: a deploy now would race it.
    if (live.some((l) => l.stack === r.stack && l.state === "destroying")) return { kind: "destroying" };
    const slot = decideReviewSlot(r.stack, live.map((l) => ({ stack: l.stack, pr: l.pr_number, expiresAt: l.expires_at })), max);
    if (!slot.ok) return { kind: "full", live: slot.live, max: slot.max };
    await client.query(
      `INSERT INTO review_stacks (repo, stack, base_stack, pr_number, installation_id, clone_url, default_branch, state, requested_by, ttl_seconds, expires_at, stack_config, image)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'live', $8, $9::integer, now() + make_interval(secs => $9::integer), $10, $11)
       ON CONFLICT (repo, stack) DO UPDATE SET
         state = 'live', requested_by = EXCLUDED.requested_by, stack_config = EXCLUDED.stack_config, image = EXCLUDED.image, ttl_seconds = EXCLUDED.ttl_seconds, expires_at = EXCLUDED.expires_at, warned_at = NULL,
         created_at = CASE WHEN review_stacks.state = 'destroyed' THEN now() ELSE review_stacks.created_at END,
         deployed_sha = CASE WHEN review_stacks.state = 'destroyed' THEN NULL ELSE review_stacks.deployed_sha END,
         destroy_reason = NULL, destroyed_at = NULL`,
      [r.repo, r.stack, r.base, r.pr, r.installationId, r.cloneUrl, r.defaultBranch, r.requestedBy, r.ttlSeconds, JSON.stringify(r.stackConfig), r.image],
    );
    return { kind: "ok", created: !slot.renewal };
  });
}

/** A slot taken for a deploy that was not queued after all: nothing was made. */
export async function releaseReviewSlot(db: Db, repo: string, stack: string): Promise<void> {
  await db.query("DELETE FROM review_stacks WHERE repo = $1 AND stack = $2 AND state = 'live' AND deployed_sha IS NULL", [repo, stack]);
}

/** A deploy of it succeeded: what it runs and what it says. */
export async function recordReviewDeployed(db: Db, repo: string, stack: string, sha: string, outputs: Record<string, unknown> | null): Promise<void> {
  await db.query("UPDATE review_stacks SET deployed_sha = $3, outputs = $4 WHERE repo = $1 AND stack = $2", [repo, stack, sha, outputs === null ? null : JSON.stringify(outputs)]);
}

/** The expiry warning was posted (once per expiry: a renewal clears it). `expiresAt` as read (a Date keeps milliseconds, Postgres microseconds). */
export async function markReviewWarned(db: Db, repo: string, stack: string, expiresAt: Date): Promise<boolean> {
  const res = await db.query("UPDATE review_stacks SET warned_at = now() WHERE repo = $1 AND stack = $2 AND state = 'live' AND warned_at IS NULL AND abs(extract(epoch FROM expires_at - $3::timestamptz)) < 0.001", [repo, stack, expiresAt]);
  return res.rowCount === 1;
}

/**
 * Moves a review stack to `destroying`, once: only the caller that gets the row starts its
 * destroy (a close and a sweep at once destroy it once). A failed destroy can be started again.
 */
export async function beginReviewDestroy(db: Db, repo: string, stack: string, reason: string): Promise<ReviewStackRow | null> {
  const res = await db.query<ReviewStackRow>(
    "UPDATE review_stacks SET state = 'destroying', destroy_reason = $3 WHERE repo = $1 AND stack = $2 AND state IN ('live', 'destroy_failed') RETURNING *",
    [repo, stack, reason],
  );
  return res.rows[0] ?? null;
}

export async function setReviewDestroyTask(db: Db, repo: string, stack: string, taskId: string): Promise<void> {
  await db.query("UPDATE review_stacks SET destroy_task_id = $3 WHERE repo = $1 AND stack = $2", [repo, stack, taskId]);
}

export async function endReviewDestroy(db: Db, repo: string, stack: string, ok: boolean): Promise<void> {
  await db.query(
    `UPDATE review_stacks SET state = $3, destroyed_at = CASE WHEN $3 = 'destroyed' THEN now() ELSE NULL END, outputs = CASE WHEN $3 = 'destroyed' THEN NULL ELSE outputs END
     WHERE repo = $1 AND stack = $2 AND state = 'destroying'`,
    [repo, stack, ok ? "destroyed" : "destroy_failed"],
  );
}
