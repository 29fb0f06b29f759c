import type pg from "pg";
import type { Db } from "./db.js";
import type { TaskRow } from "./workflows.js";

export interface StackLock {
  repo: string;
  stack: string;
  prNumber: number;
  lockedBy: string;
  acquiredAt: Date;
  expiresAt: Date;
}

export type LockResult = { ok: true; lock: StackLock } | { ok: false; holder: StackLock };

interface LockRow {
  repo: string;
  stack: string;
  pr_number: number;
  locked_by: string;
  acquired_at: Date;
  expires_at: Date;
}

const toLock = (r: LockRow): StackLock => ({
  repo: r.repo,
  stack: r.stack,
  prNumber: r.pr_number,
  lockedBy: r.locked_by,
  acquiredAt: r.acquired_at,
  expiresAt: r.expires_at,
});

/**
 * Takes or renews the lock on (repo, stack) for a pull request, in one statement: the row is
 * written only when it is free, expired, or already this PR's. Postgres serialises concurrent
 * attempts on the primary key, so two PRs can never both hold it.
 */
export async function acquireStackLock(
  db: Db,
  l: { repo: string; stack: string; prNumber: number; lockedBy: string; ttlSeconds: number },
): Promise<LockResult> {
  const res = await db.query<LockRow>(
    `INSERT INTO stack_locks (repo, stack, pr_number, locked_by, acquired_at, expires_at)
     VALUES ($1, $2, $3, $4, now(), now() + make_interval(secs => $5))
     ON CONFLICT (repo, stack) DO UPDATE
       SET pr_number = EXCLUDED.pr_number, locked_by = EXCLUDED.locked_by,
           acquired_at = CASE WHEN stack_locks.pr_number = EXCLUDED.pr_number AND stack_locks.expires_at > now()
                              THEN stack_locks.acquired_at ELSE now() END,
           expires_at = EXCLUDED.expires_at
       WHERE stack_locks.pr_number = EXCLUDED.pr_number OR stack_locks.expires_at <= now()
     RETURNING *`,
    [l.repo, l.stack, l.prNumber, l.lockedBy, l.ttlSeconds],
  );
  if (res.rows[0]) return { ok: true, lock: toLock(res.rows[0]) };
  const holder = await getStackLock(db, l.repo, l.stack);
  // Expired between the two statements: try once more.
  return holder ? { ok: false, holder } : acquireStackLock(db, l);
}

/** The live (unexpired) lock on a stack, if any. */
export async function getStackLock(db: Db, repo: string, stack: string): Promise<StackLock | null> {
  const res = await db.query<LockRow>("SELECT * FROM stack_locks WHERE repo = $1 AND stack = $2 AND expires_at > now()", [repo, stack]);
  return res.rows[0] ? toLock(res.rows[0]) : null;
}

export async function locksHeldBy(db: Db, repo: string, prNumber: number): Promise<StackLock[]> {
  const res = await db.query<LockRow>(
    "SELECT * FROM stack_locks WHERE repo = $1 AND pr_number = $2 AND expires_at > now() ORDER BY stack",
    [repo, prNumber],
  );
  return res.rows.map(toLock);
}

/** Releases locks of a repo: those of one PR, or one stack's, or both filters; returns what was released. */
export async function releaseStackLocks(db: Db, repo: string, filter: { prNumber?: number; stack?: string }): Promise<StackLock[]> {
  const res = await db.query<LockRow>(
    `DELETE FROM stack_locks WHERE repo = $1 AND ($2::int IS NULL OR pr_number = $2) AND ($3::text IS NULL OR stack = $3)
     RETURNING *`,
    [repo, filter.prNumber ?? null, filter.stack ?? null],
  );
  return res.rows.map(toLock).filter((l) => l.expiresAt > new Date());
}

/** A preview waiting in a stack's lock queue. */
export interface LockWaiter {
  taskId: string;
  prNumber: number;
  /** 1 for the head of the queue. */
  position: number;
}

/** Live waiters of a stack's lock, in queue order (tasks no longer PENDING have left the queue). */
export async function lockQueue(db: Db | pg.PoolClient, repo: string, stack: string): Promise<LockWaiter[]> {
  const res = await db.query<{ task_id: string; pr_number: number }>(
    `SELECT w.task_id, w.pr_number FROM lock_waits w JOIN tasks t ON t.id = w.task_id
     WHERE w.repo = $1 AND w.stack = $2 AND t.state = 'PENDING' ORDER BY w.created_at, w.task_id`,
    [repo, stack],
  );
  return res.rows.map((r, i) => ({ taskId: r.task_id, prNumber: r.pr_number, position: i + 1 }));
}

/** Whether a task waits in a lock queue (then it is started by the queue, not by its dependencies). */
export async function isWaitingForLock(db: Db, taskId: string): Promise<boolean> {
  return Boolean((await db.query("SELECT 1 FROM lock_waits WHERE task_id = $1", [taskId])).rowCount);
}

/**
 * The head of a stack's queue gets the lock, in one transaction: the oldest live waiter (rows
 * locked, so two releasers do not both promote), the lock taken for its PR if the stack is free
 * (or already its PR's), its wait row removed. Null when nobody waits or the lock is held.
 */
export async function promoteLockWaiter(db: Db, repo: string, stack: string, ttlSeconds: number): Promise<{ taskIds: string[]; prNumber: number; lock: StackLock } | null> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    // Waiters whose task ended (cancelled, superseded) leave the queue.
    await client.query("DELETE FROM lock_waits w USING tasks t WHERE t.id = w.task_id AND w.repo = $1 AND w.stack = $2 AND t.state <> 'PENDING'", [repo, stack]);
    const head = await client.query<{ task_id: string; pr_number: number; locked_by: string }>(
      `SELECT w.task_id, w.pr_number, wf.requested_by AS locked_by FROM lock_waits w
       JOIN tasks t ON t.id = w.task_id JOIN workflows wf ON wf.id = t.workflow_id
       WHERE w.repo = $1 AND w.stack = $2 ORDER BY w.created_at, w.task_id LIMIT 1 FOR UPDATE OF w`,
      [repo, stack],
    );
    const next = head.rows[0];
    if (!next) {
      await client.query("COMMIT");
      return null;
    }
    const taken = await client.query<LockRow>(
      `INSERT INTO stack_locks (repo, stack, pr_number, locked_by, acquired_at, expires_at)
       VALUES ($1, $2, $3, $4, now(), now() + make_interval(secs => $5))
       ON CONFLICT (repo, stack) DO UPDATE
         SET pr_number = EXCLUDED.pr_number, locked_by = EXCLUDED.locked_by, acquired_at = now(), expires_at = EXCLUDED.expires_at
         WHERE stack_locks.pr_number = EXCLUDED.pr_number OR stack_locks.expires_at <= now()
       RETURNING *`,
      [repo, stack, next.pr_number, next.locked_by, ttlSeconds],
    );
    if (!taken.rows[0]) {
      await client.query("ROLLBACK");
      return null;
    }
    // Every live waiter of this PR on the stack starts with it (one lock, one PR).
    const started = await client.query<{ task_id: string }>("DELETE FROM lock_waits WHERE repo = $1 AND stack = $2 AND pr_number = $3 RETURNING task_id", [repo, stack, next.pr_number]);
    await client.query("COMMIT");
    return { taskIds: started.rows.map((r) => r.task_id), prNumber: next.pr_number, lock: toLock(taken.rows[0]) };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** A closed pull request leaves every lock queue: its waiting previews are cancelled (returned, to be announced). */
export async function cancelLockWaitsOf(db: Db, repo: string, prNumber: number, why: string): Promise<TaskRow[]> {
  const res = await db.query<TaskRow>(
    `UPDATE tasks t SET state = 'CANCELLED', finished_at = now(), error = $3
     FROM lock_waits w WHERE w.task_id = t.id AND w.repo = $1 AND w.pr_number = $2 AND t.state = 'PENDING'
     RETURNING t.*`,
    [repo, prNumber, why],
  );
  await db.query("DELETE FROM lock_waits WHERE repo = $1 AND pr_number = $2", [repo, prNumber]);
  return res.rows;
}
