import type { AuditAction } from "../../domain/audit-actions.js";
import type { Db, Queryable } from "./db.js";

export interface AuditEntry {
  actor: string;
  action: AuditAction;
  repo?: string | null;
  prNumber?: number | null;
  deliveryId?: string | null;
  workflowId?: string | null;
  taskId?: string | null;
  detail?: Record<string, unknown>;
  /** The row's cause (a delivery's step): appending again with the key adds nothing. */
  idempotencyKey?: string | null;
}

/**
 * Appends to the audit log; the table's triggers refuse UPDATE, DELETE and TRUNCATE. A row of a
 * task whose trust tier is known (tasks.tier) carries it in `detail.tier` unless it names one.
 */
export async function appendAudit(db: Queryable, e: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (actor, action, repo, pr_number, delivery_id, workflow_id, task_id, detail, idempotency_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7,
       CASE WHEN $7::uuid IS NULL OR $8::jsonb ? 'tier' THEN $8::jsonb
            ELSE $8::jsonb || COALESCE((SELECT jsonb_build_object('tier', tier) FROM tasks WHERE id = $7::uuid AND tier IS NOT NULL), '{}'::jsonb) END,
       $9)
     ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`,
    [
      e.actor,
      e.action,
      e.repo ?? null,
      e.prNumber ?? null,
      e.deliveryId ?? null,
      e.workflowId ?? null,
      e.taskId ?? null,
      JSON.stringify(e.detail ?? {}),
      e.idempotencyKey ?? null,
    ],
  );
}

export interface AuditRow {
  id: string;
  at: Date;
  actor: string;
  action: string;
  repo: string | null;
  pr_number: number | null;
  delivery_id: string | null;
  workflow_id: string | null;
  task_id: string | null;
  detail: Record<string, unknown>;
}

export async function listAudit(db: Db, repo: string, prNumber: number): Promise<AuditRow[]> {
  const res = await db.query<AuditRow>(
    "SELECT * FROM audit_log WHERE repo = $1 AND pr_number = $2 ORDER BY id",
    [repo, prNumber],
  );
  return res.rows;
}

/** A row the app itself writes about a workflow (and, given, one of its tasks): actor `agent`. */
export async function auditWorkflow(
  db: Db,
  workflow: { id: string; repo: string; pr_number: number },
  action: AuditAction,
  detail: Record<string, unknown>,
  taskId: string | null = null,
): Promise<void> {
  await appendAudit(db, { actor: "agent", action, repo: workflow.repo, prNumber: workflow.pr_number, workflowId: workflow.id, taskId, detail });
}
