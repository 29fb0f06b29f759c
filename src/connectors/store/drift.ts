/** Drift checks' outcome per stack and the stack's drift issue (src/deploys/drift.ts). */
import type pg from "pg";
import { inTransaction, type Db } from "./db.js";

export interface DriftStackRow {
  repo: string;
  stack: string;
  state: "clean" | "drifted" | "failed";
  since: Date | null;
  checked_at: Date;
  sha: string;
  task_id: string | null;
  issue_number: number | null;
  types: string[];
}

export async function getDriftStack(db: Db | pg.PoolClient, repo: string, stack: string): Promise<DriftStackRow | null> {
  return (await db.query<DriftStackRow>("SELECT * FROM drift_stacks WHERE repo = $1 AND stack = $2", [repo, stack])).rows[0] ?? null;
}

/** The stacks whose drift issue is this issue (a drift issue names one stack). */
export async function driftStackOfIssue(db: Db, repo: string, issueNumber: number): Promise<DriftStackRow | null> {
  return (await db.query<DriftStackRow>("SELECT * FROM drift_stacks WHERE repo = $1 AND issue_number = $2", [repo, issueNumber])).rows[0] ?? null;
}

/**
 * Records a check's outcome and runs `tell` with the row before and after, in one transaction
 * holding the stack's drift lock: two checks ending at once update one issue, in order. `tell`
 * returns the issue number to keep (it may create the issue).
 */
export async function recordDriftCheck(
  db: Db,
  r: { repo: string; stack: string; state: DriftStackRow["state"]; sha: string; taskId: string; types: string[] },
  tell: (before: DriftStackRow | null, after: DriftStackRow, client: pg.PoolClient) => Promise<number | null>,
): Promise<DriftStackRow> {
  return inTransaction(db, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('drift:' || $1), hashtext($2))", [r.repo, r.stack]);
    const before = await getDriftStack(client, r.repo, r.stack);
    // A task reported twice (a retried job) changes nothing the second time.
    if (before?.task_id === r.taskId) return before;
    const since = r.state === "drifted" ? (before?.state === "drifted" && before.since ? before.since : new Date()) : r.state === "failed" ? (before?.since ?? null) : null;
    const after: DriftStackRow = { repo: r.repo, stack: r.stack, state: r.state, since, checked_at: new Date(), sha: r.sha, task_id: r.taskId, issue_number: before?.issue_number ?? null, types: r.types };
    after.issue_number = await tell(before, after, client);
    await client.query(
      `INSERT INTO drift_stacks (repo, stack, state, since, checked_at, sha, task_id, issue_number, types) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (repo, stack) DO UPDATE SET state = EXCLUDED.state, since = EXCLUDED.since, checked_at = EXCLUDED.checked_at, sha = EXCLUDED.sha, task_id = EXCLUDED.task_id, issue_number = EXCLUDED.issue_number, types = EXCLUDED.types`,
      [after.repo, after.stack, after.state, after.since, after.checked_at, after.sha, after.task_id, after.issue_number, after.types],
    );
    return after;
  });
}

/**
 * The fleet view: other stacks of the repository drifting now in at least one of the same
 * resource types, whose last check ended within `withinSeconds` of `at` (the same scheduled run).
 */
export async function relatedDrift(db: Db | pg.PoolClient, repo: string, stack: string, types: string[], at: Date, withinSeconds = 3600): Promise<DriftStackRow[]> {
  if (types.length === 0) return [];
  const res = await db.query<DriftStackRow>(
    `SELECT * FROM drift_stacks WHERE repo = $1 AND stack <> $2 AND state = 'drifted' AND types && $3::text[]
       AND abs(extract(epoch FROM (checked_at - $4::timestamptz))) <= $5 ORDER BY stack`,
    [repo, stack, types, at, withinSeconds],
  );
  return res.rows;
}
