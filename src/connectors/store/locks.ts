import type { Db } from "./db.js";

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
