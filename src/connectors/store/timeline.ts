/**
 * The timeline approvals are judged against: who pushed to a pull request and when
 * (pr_events, migration 014), and the successful previews of a stack with their plans and
 * finishing times. Reads and writes only; src/approval/timeline.ts and gate.ts decide.
 */
import type { PreviewFact, PushFact } from "../../approval/timeline.js";
import type { Queryable } from "./db.js";
import type { TaskRow } from "./workflows.js";

type PreviewTaskView = Pick<TaskRow, "id" | "plan_hash" | "state" | "finished_at" | "policy"> & { head_sha: string };

export interface NewPrEvent {
  repo: string;
  prNumber: number;
  kind: PushFact["kind"];
  actor: string;
  headSha: string;
  /** GitHub's time (`pull_request.updated_at`), or the app's for an `observed` head. */
  at: Date;
  deliveryId: string | null;
}

/** Records a push, opening, closing or observed head; false when this delivery was recorded already. */
export async function recordPrEvent(q: Queryable, e: NewPrEvent): Promise<boolean> {
  const res = await q.query(
    `INSERT INTO pr_events (repo, pr_number, kind, actor, head_sha, at, delivery_id) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
    [e.repo, e.prNumber, e.kind, e.actor, e.headSha, e.at, e.deliveryId],
  );
  return res.rowCount === 1;
}

/** Every recorded event of a pull request, oldest first. */
export async function listPrEvents(q: Queryable, repo: string, prNumber: number): Promise<PushFact[]> {
  const res = await q.query<{ kind: PushFact["kind"]; actor: string; head_sha: string; at: Date }>(
    "SELECT kind, actor, head_sha, at FROM pr_events WHERE repo = $1 AND pr_number = $2 ORDER BY at, id",
    [repo, prNumber],
  );
  return res.rows.map((r) => ({ kind: r.kind, actor: r.actor, headSha: r.head_sha, at: r.at }));
}

/**
 * The successful previews of a stack in a thread, oldest first: of the PR's heads (kind
 * `preview`), or of default-branch commits (kind `branch`: rollback, merge commit).
 */
export async function successfulPreviews(q: Queryable, repo: string, thread: number, stack: string, kind: "preview" | "branch" = "preview"): Promise<Array<PreviewFact & { taskId: string }>> {
  const res = await q.query<{ id: string; head_sha: string; plan_hash: string; finished_at: Date }>(
    `SELECT t.id, w.head_sha, t.plan_hash, t.finished_at FROM tasks t JOIN workflows w ON w.id = t.workflow_id
     WHERE w.repo = $1 AND w.pr_number = $2 AND w.kind = $4 AND t.kind = 'preview' AND t.stack = $3
       AND t.state = 'SUCCEEDED' AND t.plan_hash IS NOT NULL AND t.finished_at IS NOT NULL
     ORDER BY t.finished_at, t.created_at`,
    [repo, thread, stack, kind],
  );
  return res.rows.map((r) => ({ taskId: r.id, headSha: r.head_sha, planHash: r.plan_hash, finishedAt: r.finished_at }));
}

/** The database's clock now: what `recorded_at` is compared with. */
/** Events of a pull request recorded at or after `since` (the database's clock), oldest first. */
export async function prEventsRecordedSince(q: Queryable, repo: string, prNumber: number, since: string): Promise<PushFact[]> {
  const res = await q.query<{ kind: PushFact["kind"]; actor: string; head_sha: string; at: Date }>(
    "SELECT kind, actor, head_sha, at FROM pr_events WHERE repo = $1 AND pr_number = $2 AND recorded_at >= $3 ORDER BY recorded_at, id",
    [repo, prNumber, since],
  );
  return res.rows.map((r) => ({ kind: r.kind, actor: r.actor, headSha: r.head_sha, at: r.at }));
}

/** The latest preview task of a stack on a PR (any state but CANCELLED), read with `q` (inside a transaction). */
export async function latestPreviewTask(q: Queryable, repo: string, prNumber: number, stack: string): Promise<PreviewTaskView | null> {
  const res = await q.query<PreviewTaskView>(
    `SELECT t.id, w.head_sha, t.plan_hash, t.state, t.finished_at, t.policy FROM tasks t JOIN workflows w ON w.id = t.workflow_id
     WHERE w.repo = $1 AND w.pr_number = $2 AND w.kind = 'preview' AND t.kind = 'preview' AND t.stack = $3 AND t.state <> 'CANCELLED'
     ORDER BY t.created_at DESC LIMIT 1`,
    [repo, prNumber, stack],
  );
  return res.rows[0] ?? null;
}
