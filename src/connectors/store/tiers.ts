/** Trust tier assignments (src/approval/tiers.ts): set by an operator, audited. */
import { actorTierSource, effectiveTier, type EffectiveTier, type TierName, type TierSource } from "../../approval/tiers.js";
import { appendAudit } from "./audit.js";
import { inTransaction, type Db } from "./db.js";

export type TierKind = "repository" | "stack" | "actor" | "team";

/** Which of these team slugs (of the repository's organisation) the actor is an active member of; throws when GitHub cannot say. */
export type TeamMembership = (slugs: readonly string[]) => Promise<string[]>;

/**
 * A task's effective tier: the actor's (their own assignment, else their teams' — see
 * actorTierSource), the repository's and (for a stack's task) the stack's assignments, each the
 * server's default when unassigned; a fork's code is `observer`. Team assignments count only for
 * teams of the repository's organisation; membership is asked only when such an assignment exists.
 */
export async function tierOf(db: Db, t: { actor: string; repo: string; stack: string | null; fork?: boolean; teams?: TeamMembership }, fallback: TierName): Promise<EffectiveTier> {
  const org = t.repo.split("/")[0]!.toLowerCase();
  const wanted: Array<[TierKind, string]> = [["actor", t.actor.toLowerCase()], ["repository", t.repo], ...(t.stack ? [["stack", `${t.repo}:${t.stack}`] as [TierKind, string]] : [])];
  const res = await db.query<{ kind: TierKind; subject: string; tier: TierName }>(
    "SELECT kind, subject, tier FROM trust_tiers WHERE (kind, subject) IN (SELECT * FROM unnest($1::text[], $2::text[])) OR (kind = 'team' AND lower(split_part(subject, '/', 1)) = $3)",
    [wanted.map((w) => w[0]), wanted.map((w) => w[1]), org],
  );
  const row = (kind: TierKind, subject: string) => res.rows.find((r) => r.kind === kind && r.subject === subject);
  const teams = res.rows.filter((r) => r.kind === "team").map((r) => ({ team: r.subject, tier: r.tier }));
  const own = row("actor", t.actor.toLowerCase())?.tier ?? null;
  let memberOf: string[] | "unknown" = [];
  if (!own && teams.length) {
    try {
      const slugs = teams.map((x) => x.team.split("/")[1]!);
      memberOf = t.teams ? (await t.teams(slugs)).map((slug) => `${org}/${slug.toLowerCase()}`) : "unknown";
    } catch {
      memberOf = "unknown";
    }
  }
  const sources: TierSource[] = [
    actorTierSource({ login: t.actor, own, teams, memberOf, fallback }),
    ...wanted.slice(1).map(([kind, subject]) => ({ of: kind, subject, tier: row(kind, subject)?.tier ?? fallback, assigned: Boolean(row(kind, subject)) })),
  ];
  if (t.fork) sources.push({ of: "fork", subject: "fork", tier: "observer", assigned: false });
  return effectiveTier(sources);
}

/** Assigns (or with `null` removes) a tier, with its audit row, in one transaction. */
export async function setTier(db: Db, r: { kind: TierKind; subject: string; tier: TierName | null; by: string; reason: string }): Promise<{ from: TierName | null; to: TierName | null }> {
  const subject = r.kind === "actor" || r.kind === "team" ? r.subject.toLowerCase() : r.subject;
  return inTransaction(db, async (client) => {
    const before = (await client.query<{ tier: TierName }>("SELECT tier FROM trust_tiers WHERE kind = $1 AND subject = $2 FOR UPDATE", [r.kind, subject])).rows[0]?.tier ?? null;
    if (r.tier === null) await client.query("DELETE FROM trust_tiers WHERE kind = $1 AND subject = $2", [r.kind, subject]);
    else
      await client.query(
        `INSERT INTO trust_tiers (kind, subject, tier, set_by, reason) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (kind, subject) DO UPDATE SET tier = EXCLUDED.tier, set_by = EXCLUDED.set_by, reason = EXCLUDED.reason, set_at = now()`,
        [r.kind, subject, r.tier, r.by, r.reason],
      );
    const repo = r.kind === "repository" ? subject : r.kind === "stack" ? subject.split(":")[0]! : null;
    await appendAudit(client, { actor: r.by, action: "tier.changed", repo, detail: { kind: r.kind, subject, from: before, to: r.tier, reason: r.reason } });
    return { from: before, to: r.tier };
  });
}

export async function listTiers(db: Db): Promise<Array<{ kind: TierKind; subject: string; tier: TierName; set_by: string; reason: string; set_at: Date }>> {
  return (await db.query<{ kind: TierKind; subject: string; tier: TierName; set_by: string; reason: string; set_at: Date }>("SELECT * FROM trust_tiers ORDER BY kind, subject")).rows;
}

/** The tier a task runs under, as last resolved for it; its later audit rows carry it. */
export async function recordTaskTier(db: Db, taskId: string, tier: TierName): Promise<void> {
  await db.query("UPDATE tasks SET tier = $2 WHERE id = $1", [taskId, tier]);
}
