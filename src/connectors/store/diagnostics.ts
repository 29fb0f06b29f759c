/**
 * Read-side queries for issue diagnostics (src/jobs/diagnose.ts): recent runs, failures with
 * the tail of the failing step's log, locks, pending approvals, stuck tasks; plus the report
 * comment per issue and the knowledge-base bookkeeping. No policy here.
 */
import type { StepResult } from "../../domain/steps.js";
import type { Db } from "./db.js";

export interface RunRow {
  taskId: string;
  kind: string;
  workflowKind: string;
  stack: string;
  state: string;
  prNumber: number;
  headSha: string;
  requestedBy: string;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  error: string | null;
}

export interface FailureRow extends RunRow {
  /** The step that failed (or timed out), when one did. */
  step: string | null;
  /** That step's stored log (already redacted when it was saved), else its output tail. */
  log: string;
  /** The sandbox's reason for stopping the step (timeout, memory, …). */
  reason: string | null;
}

const RUN_COLUMNS = `t.id AS "taskId", t.kind, w.kind AS "workflowKind", t.stack, t.state::text AS state, w.pr_number AS "prNumber",
  w.head_sha AS "headSha", w.requested_by AS "requestedBy", t.created_at AS "createdAt", t.started_at AS "startedAt",
  t.finished_at AS "finishedAt", t.error`;

/** The latest tasks of a repository (one stack, or all), newest first. */
export async function recentRuns(db: Db, repo: string, stack: string | null, limit: number): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM tasks t JOIN workflows w ON w.id = t.workflow_id
     WHERE w.repo = $1 AND ($2::text IS NULL OR t.stack = $2) ORDER BY t.created_at DESC, t.id LIMIT $3`,
    [repo, stack, limit],
  );
  return rows;
}

function failedStep(steps: StepResult[]): StepResult | null {
  return steps.find((s) => s.status === "failed" || s.status === "timed_out") ?? null;
}

/** Failed tasks, newest first, with the failing step and its log. */
export async function recentFailures(db: Db, repo: string, stack: string | null, limit: number, since?: Date): Promise<FailureRow[]> {
  const { rows } = await db.query<RunRow & { steps: StepResult[] }>(
    `SELECT ${RUN_COLUMNS}, t.steps FROM tasks t JOIN workflows w ON w.id = t.workflow_id
     WHERE w.repo = $1 AND ($2::text IS NULL OR t.stack = $2) AND t.state = 'FAILED'
       AND ($4::timestamptz IS NULL OR t.created_at >= $4)
     ORDER BY t.created_at DESC, t.id LIMIT $3`,
    [repo, stack, limit, since ?? null],
  );
  if (rows.length === 0) return [];
  const logs = await db.query<{ task_id: string; step: string; content: string }>(
    "SELECT task_id, step, content FROM task_logs WHERE task_id = ANY($1::uuid[])",
    [rows.map((r) => r.taskId)],
  );
  const logOf = new Map(logs.rows.map((l) => [`${l.task_id}/${l.step}`, l.content]));
  return rows.map(({ steps, ...run }) => {
    const failed = failedStep(steps ?? []);
    const stored = failed ? logOf.get(`${run.taskId}/${failed.name}`) : undefined;
    return { ...run, step: failed?.name ?? null, log: stored ?? failed?.outputTail ?? "", reason: failed?.reason ?? null };
  });
}

/** The first successful deploy of a stack after a moment: what fixed a failure. */
export async function nextGoodDeploy(db: Db, repo: string, stack: string, after: Date): Promise<{ prNumber: number; headSha: string; finishedAt: Date } | null> {
  const { rows } = await db.query<{ prNumber: number; headSha: string; finishedAt: Date }>(
    `SELECT pr_number AS "prNumber", head_sha AS "headSha", finished_at AS "finishedAt" FROM deploys
     WHERE repo = $1 AND stack = $2 AND state = 'SUCCEEDED' AND finished_at > $3 ORDER BY finished_at LIMIT 1`,
    [repo, stack, after],
  );
  return rows[0] ?? null;
}

export interface LockRow {
  stack: string;
  prNumber: number;
  heldBy: string;
  acquiredAt: Date;
  expiresAt: Date;
}

export async function repoLocks(db: Db, repo: string, stack: string | null): Promise<LockRow[]> {
  const { rows } = await db.query<LockRow>(
    `SELECT stack, pr_number AS "prNumber", locked_by AS "heldBy", acquired_at AS "acquiredAt", expires_at AS "expiresAt"
     FROM stack_locks WHERE repo = $1 AND ($2::text IS NULL OR stack = $2) ORDER BY stack`,
    [repo, stack],
  );
  return rows;
}

/** A stack whose last drift check found drift (src/deploys/drift.ts). */
export interface OpenDriftRow {
  stack: string;
  since: string;
  sha: string;
  issueNumber: number | null;
}

export async function openDrift(db: Db, repo: string, stack: string | null): Promise<OpenDriftRow[]> {
  const { rows } = await db.query<OpenDriftRow>(
    `SELECT stack, since, sha, issue_number AS "issueNumber" FROM drift_stacks
     WHERE repo = $1 AND state = 'drifted' AND ($2::text IS NULL OR stack = $2) ORDER BY stack`,
    [repo, stack],
  );
  return rows;
}

export interface PendingApprovalRow {
  what: "deploy" | "rollback" | "slack";
  stack: string;
  prNumber: number;
  headSha: string;
  since: Date;
  state: string;
}

/**
 * What waits on a human: deploys queued, running or needing attention, rollbacks previewed but
 * not applied, and Slack approval requests nobody answered yet.
 */
export async function pendingApprovals(db: Db, repo: string, stack: string | null): Promise<PendingApprovalRow[]> {
  const { rows } = await db.query<PendingApprovalRow>(
    `SELECT 'deploy' AS what, stack, pr_number AS "prNumber", head_sha AS "headSha", created_at AS since, state
       FROM deploys WHERE repo = $1 AND ($2::text IS NULL OR stack = $2) AND state IN ('PENDING', 'RUNNING', 'NEEDS_ATTENTION')
     UNION ALL
     SELECT 'rollback', t.stack, w.pr_number, w.head_sha, t.finished_at, 'awaiting approval'
       FROM tasks t JOIN workflows w ON w.id = t.workflow_id
      WHERE w.repo = $1 AND ($2::text IS NULL OR t.stack = $2) AND w.kind = 'branch' AND t.kind = 'preview' AND t.state = 'SUCCEEDED'
        AND NOT EXISTS (SELECT 1 FROM deploys d WHERE d.preview_task_id = t.id)
        AND t.finished_at > now() - interval '1 day'
     UNION ALL
     SELECT 'slack', stack, pr_number, head_sha, created_at, 'asked in Slack'
       FROM slack_messages WHERE repo = $1 AND ($2::text IS NULL OR stack = $2) AND decided IS NULL
     ORDER BY since DESC LIMIT 20`,
    [repo, stack],
  );
  return rows;
}

/** Tasks RUNNING for longer than they are allowed to: a worker died or a step hangs. */
export async function stuckTasks(db: Db, repo: string, stack: string | null, timeoutSeconds: number): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM tasks t JOIN workflows w ON w.id = t.workflow_id
     WHERE w.repo = $1 AND ($2::text IS NULL OR t.stack = $2) AND t.state = 'RUNNING'
       AND t.started_at < now() - make_interval(secs => $3) ORDER BY t.started_at LIMIT 20`,
    [repo, stack, timeoutSeconds],
  );
  return rows;
}

export async function saveReport(
  db: Db,
  r: { repo: string; issueNumber: number; commentId: number | null; stack: string | null; requestedBy: string; report: unknown },
): Promise<void> {
  await db.query(
    `INSERT INTO diagnostic_reports (repo, issue_number, comment_id, stack, requested_by, report) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (repo, issue_number) DO UPDATE SET comment_id = EXCLUDED.comment_id, stack = EXCLUDED.stack,
       requested_by = EXCLUDED.requested_by, report = EXCLUDED.report, updated_at = now()`,
    [r.repo, r.issueNumber, r.commentId, r.stack, r.requestedBy, JSON.stringify(r.report)],
  );
}

export async function hasReport(db: Db, repo: string, issueNumber: number): Promise<boolean> {
  const { rowCount } = await db.query("SELECT 1 FROM diagnostic_reports WHERE repo = $1 AND issue_number = $2", [repo, issueNumber]);
  return (rowCount ?? 0) > 0;
}

/** Source id → digest of what was indexed, for the given ids. */
export async function indexedDigests(db: Db, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<{ id: string; digest: string }>("SELECT id, digest FROM knowledge_sources WHERE id = ANY($1::text[])", [ids]);
  return new Map(rows.map((r) => [r.id, r.digest]));
}

export async function markIndexed(db: Db, sources: Array<{ id: string; repo: string; kind: string; digest: string }>): Promise<void> {
  if (sources.length === 0) return;
  await db.query(
    `INSERT INTO knowledge_sources (id, repo, kind, digest)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
     ON CONFLICT (id) DO UPDATE SET digest = EXCLUDED.digest, indexed_at = now()`,
    [sources.map((s) => s.id), sources.map((s) => s.repo), sources.map((s) => s.kind), sources.map((s) => s.digest)],
  );
}

export async function indexedIds(db: Db, repo: string, kind: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>("SELECT id FROM knowledge_sources WHERE repo = $1 AND kind = $2", [repo, kind]);
  return rows.map((r) => r.id);
}

export async function forgetIndexed(db: Db, ids: string[]): Promise<void> {
  if (ids.length) await db.query("DELETE FROM knowledge_sources WHERE id = ANY($1::text[])", [ids]);
}
