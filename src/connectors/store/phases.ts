/** Rollout phases per repository or organisation (src/approval/phase.ts): set by an operator, audited. */
import { phaseOf, type Phase } from "../../approval/phase.js";
import { appendAudit } from "./audit.js";
import { inTransaction, type Db } from "./db.js";

/** The repository's phase and where it comes from (its row, its organisation's, the default). */
export async function repoPhase(db: Db, repo: string, fallback: Phase): Promise<{ phase: Phase; scope: string }> {
  const org = `${repo.split("/")[0]}/*`;
  const res = await db.query<{ scope: string; phase: Phase }>("SELECT scope, phase FROM rollout_phases WHERE scope = ANY($1::text[])", [[repo, org]]);
  return phaseOf(repo, new Map(res.rows.map((r) => [r.scope, r.phase])), fallback);
}

/** Sets a scope's phase (or removes it: `null`, back to the organisation's or the default) with the audit row, in one transaction. */
export async function setPhase(db: Db, r: { scope: string; phase: Phase | null; by: string; reason: string }): Promise<{ from: Phase | null; to: Phase | null }> {
  return inTransaction(db, async (client) => {
    const before = (await client.query<{ phase: Phase }>("SELECT phase FROM rollout_phases WHERE scope = $1 FOR UPDATE", [r.scope])).rows[0]?.phase ?? null;
    if (r.phase === null) await client.query("DELETE FROM rollout_phases WHERE scope = $1", [r.scope]);
    else
      await client.query(
        `INSERT INTO rollout_phases (scope, phase, set_by, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (scope) DO UPDATE SET phase = EXCLUDED.phase, set_by = EXCLUDED.set_by, reason = EXCLUDED.reason, set_at = now()`,
        [r.scope, r.phase, r.by, r.reason],
      );
    await appendAudit(client, { actor: r.by, action: "phase.changed", repo: r.scope.endsWith("/*") ? null : r.scope, detail: { scope: r.scope, from: before, to: r.phase, reason: r.reason } });
    return { from: before, to: r.phase };
  });
}

export async function listPhases(db: Db): Promise<Array<{ scope: string; phase: Phase; set_by: string; reason: string; set_at: Date }>> {
  return (await db.query<{ scope: string; phase: Phase; set_by: string; reason: string; set_at: Date }>("SELECT scope, phase, set_by, reason, set_at FROM rollout_phases ORDER BY scope")).rows;
}
