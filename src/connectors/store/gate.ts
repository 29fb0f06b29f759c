import type { Db } from "./db.js";

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
}

/** Records an `/approve` or `/deny`; false when this comment was recorded already (a redelivery). */
export async function recordApproval(db: Db, a: NewApproval): Promise<boolean> {
  const res = await db.query(
    `INSERT INTO approvals (repo, pr_number, stack, head_sha, plan_hash, kind, actor, actor_type, reason, comment_id, delivery_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
    [a.repo, a.prNumber, a.stack, a.headSha, a.planHash, a.kind, a.actor, a.actorType, a.reason, a.commentId, a.deliveryId],
  );
  return res.rowCount === 1;
}

/** `/approve` and `/deny` on a PR that name this stack or no stack, oldest first. */
export async function listApprovals(db: Db, repo: string, prNumber: number, stack: string): Promise<ApprovalRow[]> {
  const res = await db.query<ApprovalRow>(
    "SELECT * FROM approvals WHERE repo = $1 AND pr_number = $2 AND (stack IS NULL OR stack = $3) ORDER BY created_at, id",
    [repo, prNumber, stack],
  );
  return res.rows;
}

export type DeployKind = "deploy" | "branch";

export type DeployState = "PENDING" | "RUNNING" | "SUCCEEDED" | "FAILED" | "NEEDS_ATTENTION";

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
}

/** Why a deploy could not be recorded: another is live on the stack, or this plan was applied already. */
export type DeployConflict = { kind: "busy"; other: DeployRow } | { kind: "applied"; other: DeployRow };

export async function findDeployConflict(db: Db, repo: string, stack: string, headSha: string, planHash: string): Promise<DeployConflict | null> {
  const res = await db.query<DeployRow>(
    `SELECT * FROM deploys WHERE repo = $1 AND stack = $2
       AND (state IN ('PENDING', 'RUNNING')
            OR (kind = 'deploy' AND head_sha = $3 AND plan_hash = $4 AND state IN ('SUCCEEDED', 'NEEDS_ATTENTION')))
     ORDER BY created_at DESC LIMIT 1`,
    [repo, stack, headSha, planHash],
  );
  const other = res.rows[0];
  if (!other) return null;
  return other.state === "PENDING" || other.state === "RUNNING" ? { kind: "busy", other } : { kind: "applied", other };
}

export async function getDeploy(db: Db, taskId: string): Promise<DeployRow | null> {
  return (await db.query<DeployRow>("SELECT * FROM deploys WHERE task_id = $1", [taskId])).rows[0] ?? null;
}

/** Moves PENDING → RUNNING once; null when the deploy is not pending (already started once, or ended). */
export async function startDeploy(db: Db, taskId: string): Promise<DeployRow | null> {
  const res = await db.query<DeployRow>("UPDATE deploys SET state = 'RUNNING', started_at = now() WHERE task_id = $1 AND state = 'PENDING' RETURNING *", [taskId]);
  return res.rows[0] ?? null;
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

/** The latest deploy of a preview's plan (any state), if any: a branch preview is applied at most once. */
export async function deployOfPreview(db: Db, previewTaskId: string): Promise<DeployRow | null> {
  const res = await db.query<DeployRow>(
    "SELECT * FROM deploys WHERE preview_task_id = $1 ORDER BY created_at DESC LIMIT 1",
    [previewTaskId],
  );
  return res.rows[0] ?? null;
}
