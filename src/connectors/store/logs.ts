import type { Db } from "./db.js";

export interface StepLog {
  step: string;
  content: string;
  truncated: boolean;
}

/** Stores one step's full output (already redacted); a retried attempt overwrites it. */
export async function saveStepLog(db: Db, taskId: string, log: StepLog): Promise<void> {
  await db.query(
    `INSERT INTO task_logs (task_id, step, content, truncated) VALUES ($1, $2, $3, $4)
     ON CONFLICT (task_id, step) DO UPDATE SET content = EXCLUDED.content, truncated = EXCLUDED.truncated, created_at = now()`,
    [taskId, log.step, log.content, log.truncated],
  );
}

export async function getTaskLogs(db: Db, taskId: string): Promise<StepLog[]> {
  const res = await db.query<StepLog>(
    "SELECT step, content, truncated FROM task_logs WHERE task_id = $1 ORDER BY created_at, step",
    [taskId],
  );
  return res.rows;
}
