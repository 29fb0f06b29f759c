import type pg from "pg";
import type { Db } from "./db.js";
import { waitCycle, type WaitEdge } from "../../approval/locks.js";

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

const QUEUE_ORDER = "w.requested_at, w.request_id";

/** Live waiters of a stack's lock, in queue order (tasks no longer PENDING have left the queue). */
export async function lockQueue(db: Db | pg.PoolClient, repo: string, stack: string): Promise<LockWaiter[]> {
  const res = await db.query<{ task_id: string; pr_number: number }>(
    `SELECT w.task_id, w.pr_number FROM lock_waits w JOIN tasks t ON t.id = w.task_id
     WHERE w.repo = $1 AND w.stack = $2 AND t.state = 'PENDING' ORDER BY ${QUEUE_ORDER}`,
    [repo, stack],
  );
  return res.rows.map((r, i) => ({ taskId: r.task_id, prNumber: r.pr_number, position: i + 1 }));
}

/** Whether a task waits in a lock queue (then it is started by the queue, not by its dependencies). */
export async function isWaitingForLock(db: Db, taskId: string): Promise<boolean> {
  return Boolean((await db.query("SELECT 1 FROM lock_waits WHERE task_id = $1", [taskId])).rowCount);
}

/** Serialises lock decisions on these stacks for the rest of the transaction, in name order (no two transactions wait for each other). */
async function lockStacksForDecision(client: pg.PoolClient, repo: string, stacks: readonly string[]): Promise<void> {
  for (const stack of [...new Set(stacks)].sort()) await client.query("SELECT pg_advisory_xact_lock(hashtext('stack-lock:' || $1), hashtext($2))", [repo, stack]);
}

/** Whether a pull request may take the stack now: its own already, or unlocked (or expired) with nobody else ahead in its queue. */
async function freeFor(client: pg.PoolClient, repo: string, stack: string, prNumber: number, ahead: { requestedAt: Date; requestId: string } | null): Promise<boolean> {
  const lock = await client.query<{ pr_number: number }>("SELECT pr_number FROM stack_locks WHERE repo = $1 AND stack = $2 AND expires_at > now()", [repo, stack]);
  // Already this PR's: it keeps it, whoever waits (they wait for this PR to let go).
  if (lock.rows[0]) return lock.rows[0].pr_number === prNumber;
  const waiting = await client.query(
    `SELECT 1 FROM lock_waits w JOIN tasks t ON t.id = w.task_id
     WHERE w.repo = $1 AND w.stack = $2 AND t.state = 'PENDING' AND w.pr_number <> $3
       AND ($4::timestamptz IS NULL OR (w.requested_at, w.request_id) < ($4::timestamptz, $5::uuid)) LIMIT 1`,
    [repo, stack, prNumber, ahead?.requestedAt ?? null, ahead?.requestId ?? null],
  );
  return !waiting.rowCount;
}

async function takeLocks(client: pg.PoolClient, repo: string, stacks: readonly string[], prNumber: number, lockedBy: string, ttlSeconds: number): Promise<StackLock[]> {
  const taken: StackLock[] = [];
  for (const stack of stacks) {
    const res = await client.query<LockRow>(
      `INSERT INTO stack_locks (repo, stack, pr_number, locked_by, acquired_at, expires_at)
       VALUES ($1, $2, $3, $4, now(), now() + make_interval(secs => $5))
       ON CONFLICT (repo, stack) DO UPDATE
         SET pr_number = EXCLUDED.pr_number, locked_by = EXCLUDED.locked_by,
             acquired_at = CASE WHEN stack_locks.pr_number = EXCLUDED.pr_number AND stack_locks.expires_at > now() THEN stack_locks.acquired_at ELSE now() END,
             expires_at = EXCLUDED.expires_at
         WHERE stack_locks.pr_number = EXCLUDED.pr_number OR stack_locks.expires_at <= now()
       RETURNING *`,
      [repo, stack, prNumber, lockedBy, ttlSeconds],
    );
    if (!res.rows[0]) throw new Error(`stack lock ${repo}/${stack} was taken inside its own decision lock`);
    taken.push(toLock(res.rows[0]));
  }
  return taken;
}

/**
 * Inside a transaction (the preview command's): the locks of all `stacks` for this pull request
 * at once, or none. Each stack must be free for it (unlocked, expired or its own, with nobody
 * else waiting); then every lock is taken and `queued` is false. Otherwise nothing is taken and
 * every task of the command joins its stack's queue (`request`: the command's workflow id).
 */
export async function takeOrQueueLocks(
  client: pg.PoolClient,
  r: { repo: string; prNumber: number; lockedBy: string; ttlSeconds: number; requestId: string; tasks: Array<{ id: string; stack: string }> },
): Promise<{ queued: boolean; deadlock?: WaitEdge[] }> {
  const stacks = r.tasks.map((t) => t.stack);
  await lockStacksForDecision(client, r.repo, stacks);
  let free = true;
  for (const stack of stacks) if (!(await freeFor(client, r.repo, stack, r.prNumber, null))) free = false;
  if (free) {
    await takeLocks(client, r.repo, stacks, r.prNumber, r.lockedBy, r.ttlSeconds);
    return { queued: false };
  }
  // Waiting must not close a cycle with other PRs' waits (each PR keeps its locks until it
  // merges or closes). One queuer per repository at a time decides, so two requests cannot
  // close a cycle together unseen.
  await client.query("SELECT pg_advisory_xact_lock(hashtext('lock-waits:' || $1))", [r.repo]);
  const next: WaitEdge[] = [];
  for (const stack of stacks) {
    const ahead = await client.query<{ pr_number: number }>(
      `SELECT pr_number FROM stack_locks WHERE repo = $1 AND stack = $2 AND expires_at > now() AND pr_number <> $3
       UNION SELECT w.pr_number FROM lock_waits w JOIN tasks t ON t.id = w.task_id WHERE w.repo = $1 AND w.stack = $2 AND t.state = 'PENDING' AND w.pr_number <> $3`,
      [r.repo, stack, r.prNumber],
    );
    for (const a of ahead.rows) next.push({ from: r.prNumber, to: a.pr_number, stack });
  }
  const deadlock = waitCycle(await waitEdges(client, r.repo), r.prNumber, next);
  if (deadlock) return { queued: false, deadlock };
  for (const t of r.tasks) await client.query("INSERT INTO lock_waits (task_id, request_id, repo, stack, pr_number) VALUES ($1, $2, $3, $4, $5)", [t.id, r.requestId, r.repo, t.stack, r.prNumber]);
  return { queued: true };
}

/** The repository's waits-for graph now: each waiting PR to the holder of its stack and to every PR ahead of it in that stack's queue. */
async function waitEdges(client: pg.PoolClient, repo: string): Promise<WaitEdge[]> {
  const res = await client.query<{ from: number; to: number; stack: string }>(
    `SELECT w.pr_number AS "from", l.pr_number AS "to", w.stack FROM lock_waits w
       JOIN tasks t ON t.id = w.task_id AND t.state = 'PENDING'
       JOIN stack_locks l ON l.repo = w.repo AND l.stack = w.stack AND l.expires_at > now() AND l.pr_number <> w.pr_number
     WHERE w.repo = $1
     UNION
     SELECT w.pr_number, a.pr_number, w.stack FROM lock_waits w
       JOIN tasks t ON t.id = w.task_id AND t.state = 'PENDING'
       JOIN lock_waits a ON a.repo = w.repo AND a.stack = w.stack AND a.pr_number <> w.pr_number AND (a.requested_at, a.request_id) < (w.requested_at, w.request_id)
       JOIN tasks ta ON ta.id = a.task_id AND ta.state = 'PENDING'
     WHERE w.repo = $1`,
    [repo],
  );
  return res.rows;
}

/**
 * After a stack's lock was released: the request at the head of its queue gets the locks of
 * all its stacks, in one transaction, if every one of them is free for it (it is first in each
 * queue, and none is held by another PR); its wait rows go. Otherwise nothing changes — it
 * keeps its places, and a later release finishes the set. Null when nothing was handed over.
 */
export async function promoteLockWaiter(db: Db, repo: string, stack: string, ttlSeconds: number): Promise<{ taskIds: string[]; stacks: string[]; prNumber: number } | null> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    // Waiters whose task ended (cancelled, superseded) leave the queue.
    await client.query("DELETE FROM lock_waits w USING tasks t WHERE t.id = w.task_id AND w.repo = $1 AND t.state <> 'PENDING'", [repo]);
    const head = (
      await client.query<{ request_id: string; requested_at: Date; pr_number: number }>(
        `SELECT w.request_id, w.requested_at, w.pr_number FROM lock_waits w WHERE w.repo = $1 AND w.stack = $2 ORDER BY ${QUEUE_ORDER} LIMIT 1`,
        [repo, stack],
      )
    ).rows[0];
    if (!head) {
      await client.query("COMMIT");
      return null;
    }
    const rows = (
      await client.query<{ task_id: string; stack: string; locked_by: string }>(
        `SELECT w.task_id, w.stack, wf.requested_by AS locked_by FROM lock_waits w JOIN tasks t ON t.id = w.task_id JOIN workflows wf ON wf.id = t.workflow_id
         WHERE w.request_id = $1 ORDER BY w.stack`,
        [head.request_id],
      )
    ).rows;
    const stacks = rows.map((x) => x.stack);
    await lockStacksForDecision(client, repo, stacks);
    for (const s of stacks) {
      if (!(await freeFor(client, repo, s, head.pr_number, { requestedAt: head.requested_at, requestId: head.request_id }))) {
        await client.query("ROLLBACK");
        return null;
      }
    }
    // Still waiting (a concurrent releaser may have handed it over already).
    const gone = await client.query("DELETE FROM lock_waits WHERE request_id = $1", [head.request_id]);
    if (gone.rowCount !== rows.length) {
      await client.query("ROLLBACK");
      return null;
    }
    await takeLocks(client, repo, stacks, head.pr_number, rows[0]!.locked_by, ttlSeconds);
    await client.query("COMMIT");
    return { taskIds: rows.map((x) => x.task_id), stacks, prNumber: head.pr_number };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

