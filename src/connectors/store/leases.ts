import type { CredentialKind } from "../credentials.js";
import type { Db } from "./db.js";

/**
 * Dynamic credential leases issued to tasks (table credential_leases). Only identifiers and
 * bookkeeping: never a secret value.
 */
export interface CredentialLease {
  leaseId: string;
  taskId: string;
  repo: string;
  stack: string;
  kind: CredentialKind;
  path: string;
  issuedAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  revokeError: string | null;
}

interface LeaseRow {
  lease_id: string;
  task_id: string;
  repo: string;
  stack: string;
  kind: CredentialKind;
  path: string;
  issued_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  revoke_error: string | null;
}

const toLease = (r: LeaseRow): CredentialLease => ({
  leaseId: r.lease_id,
  taskId: r.task_id,
  repo: r.repo,
  stack: r.stack,
  kind: r.kind,
  path: r.path,
  issuedAt: r.issued_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
  revokeError: r.revoke_error,
});

export interface NewLease {
  leaseId: string;
  taskId: string;
  repo: string;
  stack: string;
  kind: CredentialKind;
  path: string;
  /** Vault's lease_duration; 0 or less: no known expiry. */
  ttlSeconds: number;
}

export async function recordLease(db: Db, l: NewLease): Promise<void> {
  await db.query(
    `INSERT INTO credential_leases (lease_id, task_id, repo, stack, kind, path, issued_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, now(), CASE WHEN $7::int > 0 THEN now() + make_interval(secs => $7::int) END)
     ON CONFLICT (lease_id) DO NOTHING`,
    [l.leaseId, l.taskId, l.repo, l.stack, l.kind, l.path, Math.floor(l.ttlSeconds)],
  );
}

/** Marks a lease revoked; returns false when it already was. */
export async function markLeaseRevoked(db: Db, leaseId: string): Promise<boolean> {
  const res = await db.query("UPDATE credential_leases SET revoked_at = now(), revoke_error = NULL WHERE lease_id = $1 AND revoked_at IS NULL", [leaseId]);
  return (res.rowCount ?? 0) > 0;
}

/** Keeps the lease unrevoked (recovery retries it) and notes why revocation failed. */
export async function markLeaseRevokeFailed(db: Db, leaseId: string, error: string): Promise<void> {
  await db.query("UPDATE credential_leases SET revoke_error = $2 WHERE lease_id = $1 AND revoked_at IS NULL", [leaseId, error.slice(0, 1000)]);
}

export async function leasesOfTask(db: Db, taskId: string): Promise<CredentialLease[]> {
  const res = await db.query<LeaseRow>("SELECT * FROM credential_leases WHERE task_id = $1 ORDER BY issued_at, lease_id", [taskId]);
  return res.rows.map(toLease);
}

/**
 * Unrevoked leases whose task is not RUNNING (finished, failed, cancelled, or without a task
 * row at all): nobody will release them any more.
 */
export async function orphanedLeases(db: Db): Promise<CredentialLease[]> {
  const res = await db.query<LeaseRow>(
    `SELECT l.* FROM credential_leases l
     WHERE l.revoked_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = l.task_id AND t.state = 'RUNNING')
       -- A diagnosis has no task row; its probes hold their lease for seconds, then release it.
       AND NOT (l.kind = 'diagnose' AND l.issued_at > now() - interval '10 minutes')
     ORDER BY l.issued_at, l.lease_id`,
  );
  return res.rows.map(toLease);
}

/** Every unrevoked lease, or those of one stack. */
export async function unrevokedLeases(db: Db, filter: { stack?: string } = {}): Promise<CredentialLease[]> {
  const res = await db.query<LeaseRow>(
    `SELECT * FROM credential_leases WHERE revoked_at IS NULL AND ($1::text IS NULL OR stack = $1) ORDER BY issued_at, lease_id`,
    [filter.stack ?? null],
  );
  return res.rows.map(toLease);
}

/**
 * After a prefix revocation: marks revoked every lease read from one of `paths` and issued
 * before `issuedBefore` (a lease issued after the prefix revocation is still live). Returns
 * how many rows changed.
 */
export async function markPathsRevoked(db: Db, paths: string[], issuedBefore: string): Promise<number> {
  if (paths.length === 0) return 0;
  const res = await db.query(
    "UPDATE credential_leases SET revoked_at = now(), revoke_error = NULL WHERE revoked_at IS NULL AND path = ANY($1::text[]) AND issued_at <= $2::timestamptz",
    [paths, issuedBefore],
  );
  return res.rowCount ?? 0;
}

