/**
 * The GitHub write outbox in PostgreSQL (migration 015): rows in, claims out, outcomes recorded.
 * Coalescing is one upsert: a write to an object that already has an unsent write merges into
 * it (newer fields win, the more urgent class and the earlier due time are kept).
 */
import { inTransaction, type Db, type Queryable } from "../store/db.js";
import { classOf } from "./pacer.js";

export type OutboxKind = "reaction" | "comment" | "comment_upsert" | "comment_delete" | "check_run" | "deployment" | "deployment_status" | "merge";
export type OutboxState = "pending" | "sending" | "sent" | "failed" | "unknown" | "superseded";

export interface NewWrite {
  installationId: number;
  repo: string;
  kind: OutboxKind;
  priority: number;
  objectKey?: string | null;
  idempotencyKey?: string | null;
  body: Record<string, unknown>;
  sendOnce?: boolean;
  /** Not sent before this many milliseconds from now (a debounce: newer writes to the object merge in meanwhile). */
  delayMs?: number;
  /** Not sent sooner than this many milliseconds after the object's last sent write (at most one write per interval). */
  minIntervalMs?: number;
  /** Insert it claimed by this sender (a send-once write its caller sends itself, at once). */
  claimAs?: string;
}

export interface OutboxRow {
  id: string;
  installation_id: string;
  repo: string;
  kind: OutboxKind;
  priority: number;
  object_key: string | null;
  idempotency_key: string | null;
  body: Record<string, unknown>;
  send_once: boolean;
  state: OutboxState;
  attempts: number;
  claimed_by: string | null;
  result: Record<string, unknown> | null;
  last_error: string | null;
}

const UNIQUE_VIOLATION = "23505";
/** No single write takes this long (Octokit's own retries included): a claim this old was lost. */
export const STALE_CLAIM_SECONDS = 300;

/**
 * Adds a write (or merges it into the unsent one for the same object). With an idempotency key
 * already used, nothing is added and the earlier row is returned (`existing`).
 */
export async function enqueueWrite(db: Queryable, w: NewWrite): Promise<{ row: OutboxRow; existing: boolean }> {
  // Checked first so a re-run's write never merges into (and rewinds) a newer unsent one.
  if (w.idempotencyKey) {
    const found = await findByIdempotencyKey(db, w.idempotencyKey);
    if (found) return { row: found, existing: true };
  }
  const minIntervalMs = w.objectKey ? Math.max(0, Math.round(w.minIntervalMs ?? 0)) : 0;
  const params = [w.installationId, w.repo, w.kind, w.priority, w.objectKey ?? null, w.idempotencyKey ?? null, JSON.stringify(w.body), w.sendOnce ?? false, Math.max(0, w.delayMs ?? 0), w.claimAs ?? null, minIntervalMs];
  // Due after the debounce, and no sooner than the interval after the object's last sent write.
  const insert = `INSERT INTO github_outbox (installation_id, repo, kind, priority, object_key, idempotency_key, body, send_once, not_before, state, claimed_by, claimed_at, attempts, min_interval_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8,
             GREATEST(clock_timestamp() + make_interval(secs => $9::float8 / 1000),
                      CASE WHEN $11::int > 0 THEN (SELECT max(s.done_at) FROM github_outbox s WHERE s.state = 'sent' AND s.object_key = $5::text) + make_interval(secs => $11::int / 1000.0) END),
             CASE WHEN $10::text IS NULL THEN 'pending' ELSE 'sending' END, $10::text, CASE WHEN $10::text IS NULL THEN NULL ELSE clock_timestamp() END,
             CASE WHEN $10::text IS NULL THEN 0 ELSE 1 END, $11::int)`;
  try {
    const res = w.objectKey
      ? await db.query<OutboxRow>(
          `${insert}
           ON CONFLICT (object_key) WHERE state = 'pending' AND object_key IS NOT NULL DO UPDATE SET
             -- The newest intent wins: a delete after an update, an update after a delete.
             kind = EXCLUDED.kind,
             body = CASE WHEN github_outbox.kind = EXCLUDED.kind THEN github_outbox.body || EXCLUDED.body ELSE EXCLUDED.body END,
             priority = LEAST(github_outbox.priority, EXCLUDED.priority),
             not_before = LEAST(github_outbox.not_before, EXCLUDED.not_before),
             min_interval_ms = GREATEST(github_outbox.min_interval_ms, EXCLUDED.min_interval_ms),
             idempotency_key = COALESCE(github_outbox.idempotency_key, EXCLUDED.idempotency_key)
           RETURNING *`,
          params,
        )
      : await db.query<OutboxRow>(`${insert} RETURNING *`, params);
    return { row: res.rows[0]!, existing: false };
  } catch (err) {
    if ((err as { code?: string }).code !== UNIQUE_VIOLATION || !w.idempotencyKey) throw err;
    const found = await findByIdempotencyKey(db, w.idempotencyKey);
    if (!found) throw err;
    return { row: found, existing: true };
  }
}

export async function findByIdempotencyKey(db: Queryable, key: string): Promise<OutboxRow | null> {
  return (await db.query<OutboxRow>("SELECT * FROM github_outbox WHERE idempotency_key = $1", [key])).rows[0] ?? null;
}

/**
 * Claims the most urgent due write of an installation no more urgent than `maxPriority` allows,
 * skipping objects with a write in flight (two writes to one object never race).
 */
export async function claimNext(db: Db, installationId: number, maxPriority: number, owner: string): Promise<OutboxRow | null> {
  const res = await db.query<OutboxRow>(
    `UPDATE github_outbox SET state = 'sending', claimed_by = $3, claimed_at = clock_timestamp(), attempts = attempts + 1
     WHERE id = (
       SELECT o.id FROM github_outbox o
       WHERE o.state = 'pending' AND o.installation_id = $1 AND o.priority <= $2 AND o.not_before <= clock_timestamp()
         AND (o.object_key IS NULL OR NOT EXISTS (SELECT 1 FROM github_outbox s WHERE s.state = 'sending' AND s.object_key = o.object_key))
       ORDER BY o.priority, o.id
       LIMIT 1
       FOR UPDATE SKIP LOCKED)
     RETURNING *`,
    [installationId, maxPriority, owner],
  );
  return res.rows[0] ?? null;
}

/** Per class, the earliest due time of an installation's pending writes (ms from now; ≤ 0 is due). */
export async function pendingDue(db: Db, installationId: number): Promise<Array<{ priority: number; dueInMs: number }>> {
  const res = await db.query<{ priority: number; due_in_ms: number }>(
    `SELECT priority, EXTRACT(EPOCH FROM min(not_before) - clock_timestamp())::float8 * 1000 AS due_in_ms
     FROM github_outbox WHERE state = 'pending' AND installation_id = $1 GROUP BY priority ORDER BY priority`,
    [installationId],
  );
  return res.rows.map((r) => ({ priority: r.priority, dueInMs: r.due_in_ms }));
}

/** Pending writes per class and how long the oldest due one has waited (metrics). */
export async function outboxDepth(db: Db): Promise<{ pending: Record<string, number>; oldestDueSeconds: number }> {
  const res = await db.query<{ priority: number; n: number; oldest: number | null }>(
    `SELECT priority, count(*)::int AS n, EXTRACT(EPOCH FROM clock_timestamp() - min(not_before) FILTER (WHERE not_before <= clock_timestamp()))::float8 AS oldest
     FROM github_outbox WHERE state = 'pending' GROUP BY priority`,
  );
  const pending: Record<string, number> = { ack: 0, final: 0, progress: 0 };
  let oldest = 0;
  for (const r of res.rows) {
    pending[classOf(r.priority)] = r.n;
    oldest = Math.max(oldest, r.oldest ?? 0);
  }
  return { pending, oldestDueSeconds: oldest };
}

/** Installations with pending writes due within `withinMs`. */
export async function installationsWithDueWrites(db: Db, withinMs: number): Promise<number[]> {
  const res = await db.query<{ installation_id: string }>(
    "SELECT DISTINCT installation_id FROM github_outbox WHERE state = 'pending' AND not_before <= clock_timestamp() + make_interval(secs => $1::float8 / 1000)",
    [withinMs],
  );
  return res.rows.map((r) => Number(r.installation_id));
}

/** The write reached GitHub; an object it created is remembered under its key. */
export async function markSent(db: Db, row: OutboxRow, result: Record<string, unknown>, created?: { key: string; githubId: number; digest?: string }): Promise<void> {
  await inTransaction(db, async (client) => {
    await client.query("UPDATE github_outbox SET state = 'sent', result = $2::jsonb, done_at = clock_timestamp(), last_error = NULL WHERE id = $1", [row.id, JSON.stringify(result)]);
    // A write to the object that came in while this one was in flight keeps its distance too.
    if (row.object_key)
      await client.query(
        `UPDATE github_outbox SET not_before = GREATEST(not_before, clock_timestamp() + make_interval(secs => min_interval_ms / 1000.0))
         WHERE state = 'pending' AND object_key = $1 AND min_interval_ms > 0`,
        [row.object_key],
      );
    if (created) await rememberObject(client, created.key, created.githubId, created.digest ?? null);
  });
}

/** A write that GitHub refused for good (or that has nothing left to change). */
export async function markFailed(db: Queryable, rowId: string, error: string, result?: Record<string, unknown>): Promise<void> {
  await db.query("UPDATE github_outbox SET state = 'failed', last_error = $2, result = $3::jsonb, done_at = clock_timestamp() WHERE id = $1", [rowId, error.slice(0, 2000), result ? JSON.stringify(result) : null]);
}

/**
 * Puts a claimed write back to be sent again after `delayMs`. When a newer write to the same
 * object came in meanwhile, this one's fields go under the newer one's (which is what is meant
 * now) and this row is superseded: still one write per object.
 */
export async function requeue(db: Db, row: OutboxRow, delayMs: number, error: string | null, opts: { refundAttempt?: boolean } = {}): Promise<void> {
  await inTransaction(db, async (client) => {
    const newer = row.object_key
      ? (await client.query<{ id: string }>("SELECT id FROM github_outbox WHERE state = 'pending' AND object_key = $1 FOR UPDATE", [row.object_key])).rows[0]
      : undefined;
    if (newer) {
      await client.query(
        `UPDATE github_outbox n SET body = CASE WHEN n.kind = o.kind THEN o.body || n.body ELSE n.body END, priority = LEAST(n.priority, o.priority) FROM github_outbox o WHERE n.id = $1 AND o.id = $2`,
        [newer.id, row.id],
      );
      await client.query("UPDATE github_outbox SET state = 'superseded', last_error = $2, done_at = clock_timestamp() WHERE id = $1", [row.id, error]);
    } else {
      await client.query(
        `UPDATE github_outbox SET state = 'pending', claimed_by = NULL, claimed_at = NULL, last_error = $2,
           attempts = attempts - $4::int, not_before = clock_timestamp() + make_interval(secs => $3::float8 / 1000) WHERE id = $1`,
        [row.id, error, Math.max(0, delayMs), opts.refundAttempt ? 1 : 0],
      );
    }
  });
}

/**
 * Writes left `sending` by a process that is gone: sent again — except send-once writes, which
 * may have reached GitHub and become `unknown` (their caller asks GitHub what happened).
 */
export async function recoverAbandoned(db: Db, isOwnerAlive: (owner: string) => Promise<boolean>, self: string): Promise<{ requeued: number; unknown: number }> {
  // Another process's claims, and any claim older than a write can take (a lost outcome of this one's).
  const { rows } = await db.query<OutboxRow & { stale: boolean }>(
    `SELECT *, claimed_at < clock_timestamp() - make_interval(secs => $2) AS stale FROM github_outbox
     WHERE state = 'sending' AND (claimed_by IS DISTINCT FROM $1 OR claimed_at < clock_timestamp() - make_interval(secs => $2))`,
    [self, STALE_CLAIM_SECONDS],
  );
  let requeued = 0;
  let unknown = 0;
  for (const row of rows) {
    if (!row.stale && row.claimed_by && (await isOwnerAlive(row.claimed_by))) continue;
    if (row.send_once) {
      const res = await db.query("UPDATE github_outbox SET state = 'unknown', last_error = 'the process sending it stopped; it may or may not have reached GitHub', done_at = clock_timestamp() WHERE id = $1 AND state = 'sending'", [row.id]);
      unknown += res.rowCount ?? 0;
    } else {
      await requeue(db, row, 0, "the process sending it stopped", { refundAttempt: true });
      requeued++;
    }
  }
  return { requeued, unknown };
}

/** Sent and failed writes older than `days` go (idempotency keys of the same age with them). */
export async function pruneDone(db: Db, days: number): Promise<number> {
  const res = await db.query("DELETE FROM github_outbox WHERE done_at < clock_timestamp() - make_interval(days => $1)", [days]);
  return res.rowCount ?? 0;
}

export async function objectId(db: Queryable, key: string): Promise<number | null> {
  const res = await db.query<{ github_id: string }>("SELECT github_id FROM github_objects WHERE key = $1", [key]);
  return res.rows[0] ? Number(res.rows[0].github_id) : null;
}

/** An object's GitHub id and the digest of what was last written to it. */
export async function objectOf(db: Queryable, key: string): Promise<{ githubId: number; digest: string | null } | null> {
  const res = await db.query<{ github_id: string; digest: string | null }>("SELECT github_id, digest FROM github_objects WHERE key = $1", [key]);
  return res.rows[0] ? { githubId: Number(res.rows[0].github_id), digest: res.rows[0].digest } : null;
}

/** Object keys under a prefix with their GitHub ids (the parts of a sticky comment). */
export async function objectsUnder(db: Queryable, prefix: string): Promise<Array<{ key: string; githubId: number }>> {
  const res = await db.query<{ key: string; github_id: string }>("SELECT key, github_id FROM github_objects WHERE starts_with(key, $1) ORDER BY key", [prefix]);
  return res.rows.map((r) => ({ key: r.key, githubId: Number(r.github_id) }));
}

export async function rememberObject(db: Queryable, key: string, githubId: number, digest: string | null = null): Promise<void> {
  await db.query(
    `INSERT INTO github_objects (key, github_id, digest) VALUES ($1, $2, $3)
     ON CONFLICT (key) DO UPDATE SET github_id = EXCLUDED.github_id, digest = EXCLUDED.digest, updated_at = now()`,
    [key, githubId, digest],
  );
  // A task's check run is also kept on the task: buttons and links find the task by it.
  if (key.startsWith(CHECK_RUN_KEY_PREFIX)) await db.query("UPDATE tasks SET check_run_id = $2 WHERE id = $1::uuid", [key.slice(CHECK_RUN_KEY_PREFIX.length), githubId]);
}

export async function forgetObject(db: Queryable, key: string): Promise<void> {
  await db.query("DELETE FROM github_objects WHERE key = $1", [key]);
}

/** Object keys: one scheme, so the rows say which object a write changes. */
export const CHECK_RUN_KEY_PREFIX = "check-run:";
export const objectKeys = {
  checkRun: (taskId: string) => `${CHECK_RUN_KEY_PREFIX}${taskId}`,
  stickyPart: (repo: string, pr: number, part: number) => `sticky:${repo}#${pr}:${part}`,
  stickyPrefix: (repo: string, pr: number) => `sticky:${repo}#${pr}:`,
  diagnosis: (repo: string, issue: number) => `diagnose:${repo}#${issue}`,
  deploymentStatus: (repo: string, deploymentId: number) => `deployment-status:${repo}:${deploymentId}`,
};
