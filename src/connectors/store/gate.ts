import type pg from "pg";
import { inTransaction, type Db } from "./db.js";

/** The pool, or one client inside a transaction (withGateLock). */
export type { Queryable } from "./db.js";
import type { Queryable } from "./db.js";

/**
 * Runs `fn` in one transaction holding the gate lock of a pull request (or of the issue a
 * rollback was asked in): a transaction-level advisory lock on (hashtext('gate:' || repo),
 * thread), apart from the sticky comment's session lock (withPrLock) on (hashtext(repo), thread).
 * Whatever changes what the gate of that thread decides takes it — recording a /deny, a push, a
 * close — and so does claiming an apply, which re-reads all of it under the lock: a deploy is
 * either claimed before such a change (and the change's reply says it is too late) or sees it.
 */
export async function withGateLock<T>(db: Db, repo: string, thread: number, fn: (q: pg.PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(db, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('gate:' || $1), $2)", [repo, thread]);
    return fn(client);
  });
}

export interface ApprovalRow {
  id: string;
  repo: string;
  pr_number: number;
  stack: string | null;
  head_sha: string;
  plan_hash: string | null;
  kind: "approve" | "deny";
  actor: string;
  actor_type: string;
  reason: string | null;
  created_at: Date;
}

export interface NewApproval {
  repo: string;
  prNumber: number;
  stack: string | null;
  headSha: string;
  planHash: string | null;
  kind: "approve" | "deny";
  actor: string;
  actorType: string;
  reason: string | null;
  commentId: number | null;
  deliveryId: string | null;
  /** When it was said: the comment's `created_at` (default: now). The gate binds it to what was previewed before. */
  createdAt?: Date | null;
}

/**
 * Records an `/approve` or `/deny`. `created` is false when this comment was recorded already
 * (a redelivery); `id` is the row's either way.
 */
export async function recordApproval(db: Queryable, a: NewApproval): Promise<{ id: string; created: boolean }> {
  const res = await db.query<{ id: string }>(
    `INSERT INTO approvals (repo, pr_number, stack, head_sha, plan_hash, kind, actor, actor_type, reason, comment_id, delivery_id, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12, now())) ON CONFLICT DO NOTHING RETURNING id`,
    [a.repo, a.prNumber, a.stack, a.headSha, a.planHash, a.kind, a.actor, a.actorType, a.reason, a.commentId, a.deliveryId, a.createdAt ?? null],
  );
  if (res.rows[0]) return { id: String(res.rows[0].id), created: true };
  const existing = await db.query<{ id: string }>("SELECT id FROM approvals WHERE comment_id = $1 AND coalesce(stack, '') = coalesce($2, '')", [a.commentId, a.stack]);
  return { id: String(existing.rows[0]!.id), created: false };
}

/** `/approve` and `/deny` on a PR that name this stack or no stack, oldest first. */
export async function listApprovals(db: Queryable, repo: string, prNumber: number, stack: string): Promise<ApprovalRow[]> {
  const res = await db.query<ApprovalRow>(
    "SELECT * FROM approvals WHERE repo = $1 AND pr_number = $2 AND (stack IS NULL OR stack = $3) ORDER BY created_at, id",
    [repo, prNumber, stack],
  );
  return res.rows;
}

export type DeployKind = "deploy" | "branch";

/** BLOCKED: the gate no longer passed when the job was about to apply; nothing ran, no approval was used. */
export type DeployState = "PENDING" | "RUNNING" | "SUCCEEDED" | "FAILED" | "NEEDS_ATTENTION" | "BLOCKED";

export interface DeployRow {
  task_id: string;
  repo: string;
  stack: string;
  pr_number: number;
  head_sha: string;
  plan_hash: string;
  state: DeployState;
  requested_by: string;
  deployment_id: string | null;
  merged: boolean | null;
  error: string | null;
  kind: DeployKind;
  /** The default branch's commit that carries what was applied. */
  merge_sha: string | null;
  preview_task_id: string | null;
  requested_at: Date | null;
  started_at: Date | null;
  created_at: Date;
  finished_at: Date | null;
  /** The deploy run (`/agent deploy a b c`) this deploy belongs to; null for a single-stack deploy. */
  run_id: string | null;
  /** Deploy tasks of the run that must succeed before this one starts (its upstream stacks). */
  after_tasks: string[];
}

/**
 * Why a deploy could not be recorded: another is live on the stack, or this preview was applied
 * already (in any state but BLOCKED: a preview is applied at most once, a failed apply too).
 * Not (SHA, plan): re-applying a known-good plan from a fresh preview — a rollback — is allowed.
 */
export type DeployConflict = { kind: "busy"; other: DeployRow } | { kind: "applied"; other: DeployRow };

export async function findDeployConflict(db: Db, repo: string, stack: string, previewTaskId: string): Promise<DeployConflict | null> {
  const res = await db.query<DeployRow>(
    `SELECT * FROM deploys WHERE (repo = $1 AND stack = $2 AND state IN ('PENDING', 'RUNNING'))
        OR (preview_task_id = $3 AND state <> 'BLOCKED')
     ORDER BY (state IN ('PENDING', 'RUNNING')) DESC, created_at DESC LIMIT 1`,
    [repo, stack, previewTaskId],
  );
  const other = res.rows[0];
  if (!other) return null;
  return other.state === "PENDING" || other.state === "RUNNING" ? { kind: "busy", other } : { kind: "applied", other };
}

/** The tasks of each stack's queued or running deploy (what a merge group's re-check waits for). */
export async function liveDeployTasks(db: Db, repo: string, stacks: string[]): Promise<Map<string, string[]>> {
  const res = await db.query<{ stack: string; task_id: string }>("SELECT stack, task_id FROM deploys WHERE repo = $1 AND stack = ANY($2::text[]) AND state IN ('PENDING', 'RUNNING')", [repo, stacks]);
  const live = new Map<string, string[]>();
  for (const r of res.rows) live.set(r.stack, [...(live.get(r.stack) ?? []), r.task_id]);
  return live;
}

/** The deploys of a run, in the order they were recorded (dependency order). */
export async function getRunDeploys(db: Queryable, runId: string): Promise<DeployRow[]> {
  return (await db.query<DeployRow>("SELECT * FROM deploys WHERE run_id = $1 ORDER BY created_at, task_id", [runId])).rows;
}

export async function getDeploy(db: Db, taskId: string): Promise<DeployRow | null> {
  return (await db.query<DeployRow>("SELECT * FROM deploys WHERE task_id = $1", [taskId])).rows[0] ?? null;
}

/**
 * Moves PENDING → RUNNING once and records the approvals it uses (each at most once, ever);
 * null when the deploy is not pending (already started once, or ended). Call it inside
 * withGateLock, right after the gate said yes on facts read under that lock.
 */
export async function claimDeploy(q: pg.PoolClient, taskId: string, used: Array<{ source: "comment" | "review"; id: string; login: string }>): Promise<DeployRow | null> {
  const res = await q.query<DeployRow>("UPDATE deploys SET state = 'RUNNING', started_at = now() WHERE task_id = $1 AND state = 'PENDING' RETURNING *", [taskId]);
  const row = res.rows[0];
  if (!row) return null;
  for (const u of used) {
    // A conflict means another deploy used it first: the caller's transaction fails rather than share it.
    await q.query("INSERT INTO deploy_approvals (repo, stack, source, approval_id, login, deploy_task_id) VALUES ($1, $2, $3, $4, $5, $6)", [row.repo, row.stack, u.source, u.id, u.login, taskId]);
  }
  return row;
}

/** Ends a PENDING deploy as BLOCKED (the gate said no at the time of use); false when it was not pending. */
export async function blockDeploy(q: Queryable, taskId: string, why: string): Promise<boolean> {
  const res = await q.query("UPDATE deploys SET state = 'BLOCKED', error = $2, finished_at = now() WHERE task_id = $1 AND state = 'PENDING'", [taskId, why]);
  return res.rowCount === 1;
}

/** Approvals of this stack a deploy already used, with that deploy's plan and state. */
export async function listConsumedApprovals(q: Queryable, repo: string, stack: string): Promise<Array<{ source: "comment" | "review"; id: string; deploy: { planHash: string; state: string } }>> {
  const res = await q.query<{ source: "comment" | "review"; approval_id: string; plan_hash: string; state: string }>(
    `SELECT a.source, a.approval_id, d.plan_hash, d.state FROM deploy_approvals a JOIN deploys d ON d.task_id = a.deploy_task_id
     WHERE a.repo = $1 AND a.stack = $2`,
    [repo, stack],
  );
  return res.rows.map((r) => ({ source: r.source, id: r.approval_id, deploy: { planHash: r.plan_hash, state: r.state } }));
}

/** Deploys of a thread (PR or issue) that are queued or applying. */
export async function liveDeploysOf(q: Queryable, repo: string, thread: number): Promise<DeployRow[]> {
  const res = await q.query<DeployRow>("SELECT * FROM deploys WHERE repo = $1 AND pr_number = $2 AND state IN ('PENDING', 'RUNNING') ORDER BY created_at", [repo, thread]);
  return res.rows;
}

export async function endDeploy(
  db: Db,
  taskId: string,
  end: { state: Exclude<DeployState, "PENDING" | "RUNNING">; error?: string | null; merged?: boolean | null },
): Promise<void> {
  await db.query(
    `UPDATE deploys SET state = $2, error = $3, merged = coalesce($4, merged), finished_at = now()
     WHERE task_id = $1 AND state IN ('PENDING', 'RUNNING')`,
    [taskId, end.state, end.error ?? null, end.merged ?? null],
  );
}

export async function setDeploymentId(db: Db, taskId: string, deploymentId: number): Promise<void> {
  await db.query("UPDATE deploys SET deployment_id = $2 WHERE task_id = $1", [taskId, deploymentId]);
}

export async function setMerged(db: Db, taskId: string, merged: boolean, mergeSha: string | null = null): Promise<void> {
  await db.query("UPDATE deploys SET merged = $2, merge_sha = coalesce($3, merge_sha) WHERE task_id = $1", [taskId, merged, mergeSha]);
}

/**
 * The default branch's last successfully deployed commit of a stack: a PR deploy that was
 * merged (its merge commit), or an earlier rollback. What `/agent rollback` goes back to.
 */
export async function lastGoodDeploy(db: Db, repo: string, stack: string): Promise<(DeployRow & { sha: string }) | null> {
  const res = await db.query<DeployRow & { sha: string }>(
    `SELECT *, coalesce(merge_sha, head_sha) AS sha FROM deploys
     WHERE repo = $1 AND stack = $2 AND state = 'SUCCEEDED'
       AND ((kind = 'deploy' AND merged AND merge_sha IS NOT NULL) OR kind = 'branch')
     ORDER BY finished_at DESC LIMIT 1`,
    [repo, stack],
  );
  return res.rows[0] ?? null;
}

/**
 * The latest deploy of a preview's plan (any state but BLOCKED, which applied nothing), if any:
 * a preview is applied at most once.
 */
export async function deployOfPreview(db: Db, previewTaskId: string): Promise<DeployRow | null> {
  const res = await db.query<DeployRow>(
    "SELECT * FROM deploys WHERE preview_task_id = $1 AND state <> 'BLOCKED' ORDER BY created_at DESC LIMIT 1",
    [previewTaskId],
  );
  return res.rows[0] ?? null;
}
