import type { PreviewOutcome } from "../../plan/types.js";
import { inTransaction, type Db } from "./db.js";
import type { PlanDecision } from "../../approval/plan-policy.js";

/** Keeps a preview's typed result with its task, and Pulumi's saved plan for the deploy. */
export async function savePreviewPlan(
  db: Db,
  taskId: string,
  p: { plan: PreviewOutcome | null; planHash: string | null; savedPlan: string | null },
): Promise<void> {
  await inTransaction(db, async (client) => {
    await client.query("UPDATE tasks SET plan = $2, plan_hash = $3 WHERE id = $1", [taskId, p.plan === null ? null : JSON.stringify(p.plan), p.planHash]);
    if (p.savedPlan !== null) {
      await client.query(
        `INSERT INTO task_saved_plans (task_id, content) VALUES ($1, $2)
         ON CONFLICT (task_id) DO UPDATE SET content = EXCLUDED.content, created_at = now()`,
        [taskId, p.savedPlan],
      );
    }
  });
}

/** The saved plan a deploy applies; null when the preview kept none. */
export async function getSavedPlan(db: Db, taskId: string): Promise<string | null> {
  const res = await db.query<{ content: string }>("SELECT content FROM task_saved_plans WHERE task_id = $1", [taskId]);
  return res.rows[0]?.content ?? null;
}

/** The plan policy's decision on a preview (see src/approval/plan-policy.ts). */
export async function savePlanDecision(db: Db, taskId: string, decision: PlanDecision): Promise<void> {
  await db.query("UPDATE tasks SET policy = $2 WHERE id = $1", [taskId, JSON.stringify(decision)]);
}
