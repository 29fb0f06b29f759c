/**
 * Merge-group checks (src/deploys/merge-queue.ts): what was checked on which commit, for which
 * pull requests, and how it ended. The decision is taken once: CHECKING → PASSED / FAILED /
 * DESTROYED moves only from CHECKING, so two workers finishing the last two previews of a
 * group at once post one verdict.
 */
import type { Db } from "./db.js";
import type { TaskRow } from "./workflows.js";

export type MergeGroupPurpose = "queue" | "apply";
export type MergeGroupState = "CHECKING" | "PASSED" | "FAILED" | "DESTROYED";

export interface MergeGroupRow {
  id: string;
  repo: string;
  installation_id: string;
  purpose: MergeGroupPurpose;
  head_sha: string;
  base_sha: string;
  head_ref: string | null;
  pr_numbers: number[];
  stacks: string[];
  state: MergeGroupState;
  result: unknown;
  delivery_id: string | null;
  created_at: Date;
  decided_at: Date | null;
}

export interface NewMergeGroup {
  repo: string;
  installationId: number;
  purpose: MergeGroupPurpose;
  headSha: string;
  baseSha: string;
  headRef: string | null;
  prNumbers: number[];
  stacks: string[];
  deliveryId: string | null;
}

/** Records a group check; null when the same commit is already being checked (or passed) for the same purpose. */
export async function createMergeGroup(db: Db, g: NewMergeGroup): Promise<MergeGroupRow | null> {
  const res = await db.query<MergeGroupRow>(
    `INSERT INTO merge_groups (repo, installation_id, purpose, head_sha, base_sha, head_ref, pr_numbers, stacks, delivery_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (repo, purpose, head_sha) WHERE state IN ('CHECKING', 'PASSED') DO NOTHING RETURNING *`,
    [g.repo, g.installationId, g.purpose, g.headSha, g.baseSha, g.headRef, g.prNumbers, g.stacks, g.deliveryId],
  );
  return res.rows[0] ?? null;
}

export async function getMergeGroup(db: Db, id: string): Promise<MergeGroupRow | null> {
  return (await db.query<MergeGroupRow>("SELECT * FROM merge_groups WHERE id = $1", [id])).rows[0] ?? null;
}

/** The newest group check of a commit (any state), for a purpose. */
export async function mergeGroupAt(db: Db, repo: string, headSha: string, purpose: MergeGroupPurpose): Promise<MergeGroupRow | null> {
  const res = await db.query<MergeGroupRow>("SELECT * FROM merge_groups WHERE repo = $1 AND head_sha = $2 AND purpose = $3 ORDER BY created_at DESC LIMIT 1", [repo, headSha, purpose]);
  return res.rows[0] ?? null;
}

/** The one move out of CHECKING; null when the group was decided (or destroyed) already. */
export async function decideMergeGroup(db: Db, id: string, state: Exclude<MergeGroupState, "CHECKING">, result: unknown): Promise<MergeGroupRow | null> {
  const res = await db.query<MergeGroupRow>(
    "UPDATE merge_groups SET state = $2, result = $3, decided_at = now() WHERE id = $1 AND state = 'CHECKING' RETURNING *",
    [id, state, JSON.stringify(result)],
  );
  return res.rows[0] ?? null;
}

/** `merge_group.destroyed`: a group not yet applied ends (CHECKING or PASSED → DESTROYED); null when it had ended. */
export async function endMergeGroup(db: Db, id: string, why: string): Promise<MergeGroupRow | null> {
  const res = await db.query<MergeGroupRow>(
    `UPDATE merge_groups SET state = 'DESTROYED', decided_at = coalesce(decided_at, now()),
       result = coalesce(result, '{}'::jsonb) || jsonb_build_object('destroyed', $2::text)
     WHERE id = $1 AND state IN ('CHECKING', 'PASSED') RETURNING *`,
    [id, why],
  );
  return res.rows[0] ?? null;
}

/** The group's previews (one per stack), newest first per stack. */
export async function mergeGroupPreviews(db: Db, groupId: string): Promise<Array<TaskRow & { head_sha: string }>> {
  const res = await db.query<TaskRow & { head_sha: string }>(
    `SELECT DISTINCT ON (t.stack) t.*, w.head_sha FROM tasks t JOIN workflows w ON w.id = t.workflow_id
     WHERE w.kind = 'branch' AND t.kind = 'preview' AND w.config->'branch'->>'group' = $1
     ORDER BY t.stack, t.created_at DESC`,
    [groupId],
  );
  return res.rows;
}

/** Ends the group's queued and running previews as CANCELLED; returns them. */
export async function cancelMergeGroupPreviews(db: Db, groupId: string, why: string): Promise<TaskRow[]> {
  const res = await db.query<TaskRow>(
    `UPDATE tasks t SET state = 'CANCELLED', finished_at = now(), error = $2
     FROM workflows w
     WHERE t.workflow_id = w.id AND w.kind = 'branch' AND w.config->'branch'->>'group' = $1 AND t.state IN ('PENDING', 'RUNNING')
     RETURNING t.*`,
    [groupId, why],
  );
  return res.rows;
}
