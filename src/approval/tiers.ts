/**
 * Trust tiers (seed 002 "Trust Tiers" T0–T4), pure. A task's effective tier is the lowest of its
 * actor's, its repository's and its stack's (a fork's code is always the lowest); the tier says
 * which commands may run, which credential sets a task may receive, the longest its credentials
 * may live (the task is stopped then), the sandbox runtime, and how many approvals a deploy needs
 * beyond the stack's own. Assignments are server-side (`npm run agent -- tier set`). No I/O.
 */

export const TIER_NAMES = ["observer", "operator", "builder", "executor", "architect"] as const;
export type TierName = (typeof TIER_NAMES)[number];

export interface Tier {
  name: TierName;
  /** T0–T4. */
  level: number;
  /** Commands it may run (their table names; `approve`/`deny` included). */
  commands: readonly string[];
  /** The credential sets its tasks may receive: none, preview only, or preview and deploy. */
  credentials: "none" | "preview" | "deploy";
  /** Seconds its tasks' credentials may live: the task is stopped by then (seed: 1 h, 30 m, 30 m, 15 m, 15 m). */
  credentialTtlSeconds: number;
  /** The sandbox runtime it runs under; null: the stack's (or the server's default). */
  runtime: "runsc" | null;
  /** Approvals its deploys need beyond the stack's own. */
  extraApprovals: number;
}

const READ = ["help", "status", "preview", "ok-to-test", "drift", "diagnose", "cancel"];
const GATE = [...READ, "approve", "deny", "unlock"];
const ALL = [...GATE, "deploy", "rollback", "destroy"];

/** The seed's table, mapped to this app (README "Governance": trust tiers). */
export const TIERS: Readonly<Record<TierName, Tier>> = {
  observer: { name: "observer", level: 0, commands: READ, credentials: "none", credentialTtlSeconds: 3600, runtime: "runsc", extraApprovals: 0 },
  operator: { name: "operator", level: 1, commands: GATE, credentials: "preview", credentialTtlSeconds: 1800, runtime: "runsc", extraApprovals: 0 },
  builder: { name: "builder", level: 2, commands: ALL, credentials: "deploy", credentialTtlSeconds: 1800, runtime: null, extraApprovals: 1 },
  executor: { name: "executor", level: 3, commands: ALL, credentials: "deploy", credentialTtlSeconds: 900, runtime: null, extraApprovals: 0 },
  architect: { name: "architect", level: 4, commands: ALL, credentials: "deploy", credentialTtlSeconds: 900, runtime: null, extraApprovals: 0 },
};

/** Where one of the three tiers comes from: an assignment, or the server's default. */
export interface TierSource {
  /** `team`: the actor's tier, from a team of the repository's organisation the actor belongs to. */
  of: "actor" | "team" | "repository" | "stack" | "fork";
  subject: string;
  tier: TierName;
  /** An operator's assignment; false: the server's default tier. */
  assigned: boolean;
  /** Why a team source is what it is when membership could not be read. */
  note?: string;
}

/** A team assignment of the repository's organisation, and whether the actor is an active member (null: could not be read). */
export interface TeamTier {
  team: string;
  tier: TierName;
}

/**
 * The actor's tier. Their own assignment wins (an operator named them); otherwise the highest
 * tier of the assigned teams they belong to (team membership grants, like GitHub's own team
 * permissions); otherwise the server's default. When membership could not be read, the lowest
 * of the teams' tiers and the default: an outage never promotes anyone.
 */
export function actorTierSource(a: { login: string; own: TierName | null; teams: readonly TeamTier[]; memberOf: readonly string[] | "unknown"; fallback: TierName }): TierSource {
  if (a.own) return { of: "actor", subject: a.login, tier: a.own, assigned: true };
  if (a.teams.length === 0) return { of: "actor", subject: a.login, tier: a.fallback, assigned: false };
  if (a.memberOf === "unknown") {
    const lowest = [...a.teams].sort((x, y) => TIERS[x.tier].level - TIERS[y.tier].level)[0]!;
    if (TIERS[a.fallback].level <= TIERS[lowest.tier].level) return { of: "actor", subject: a.login, tier: a.fallback, assigned: false };
    return { of: "team", subject: lowest.team, tier: lowest.tier, assigned: true, note: `team membership of @\u200b${a.login} could not be read: the lowest team tier applies` };
  }
  const member = a.teams.filter((t) => a.memberOf.includes(t.team.toLowerCase()));
  if (member.length === 0) return { of: "actor", subject: a.login, tier: a.fallback, assigned: false };
  const highest = [...member].sort((x, y) => TIERS[y.tier].level - TIERS[x.tier].level)[0]!;
  return { of: "team", subject: highest.team, tier: highest.tier, assigned: true, note: `@\u200b${a.login} is a member` };
}

export interface EffectiveTier {
  tier: Tier;
  /** The source that set the minimum (the rule a denial names). */
  bound: TierSource;
  sources: TierSource[];
}

/** The lowest of the actor's, the repository's and (when the task has one) the stack's tiers; a fork's code is `observer`. */
export function effectiveTier(sources: readonly TierSource[]): EffectiveTier {
  const bound = [...sources].sort((a, b) => TIERS[a.tier].level - TIERS[b.tier].level)[0]!;
  return { tier: TIERS[bound.tier], bound, sources: [...sources] };
}

/** "operator (T1), set for actor @alice" — the rule that made the tier. */
export function describeTier(e: EffectiveTier): string {
  const b = e.bound;
  const who = b.of === "actor" ? `@\u200b${b.subject}` : `\`${b.subject}\``;
  const rule = b.of === "fork" ? "always, for a fork's code" : `${b.assigned ? "assigned to" : "the server's default for"} ${b.of} ${who}${b.note ? ` (${b.note})` : ""}`;
  return `${e.tier.name} (T${e.tier.level}), ${rule}`;
}

export type TierDecision = { allowed: true } | { allowed: false; why: string; needs: TierName };

/** May a task of this tier run the command? A denial names the tier and the rule that set it, and the lowest tier that may. */
export function mayRunCommand(e: EffectiveTier, command: string): TierDecision {
  if (e.tier.commands.includes(command)) return { allowed: true };
  const needs = TIER_NAMES.find((n) => TIERS[n].commands.includes(command)) ?? "executor";
  return { allowed: false, needs, why: `\`${command}\` needs trust tier ${needs} (T${TIERS[needs].level}) or higher, and the effective tier here is ${describeTier(e)} — the lowest of the actor's, the repository's and the stack's` };
}

/** The credentials a task of this kind gets under the tier: the kind, none, or a refusal (a deploy without deploy credentials cannot run). */
export function credentialsFor(e: EffectiveTier, kind: "preview" | "deploy" | "diagnose"): { issue: boolean } | { refused: string } {
  if (kind === "diagnose") return { issue: true };
  if (kind === "deploy") return e.tier.credentials === "deploy" ? { issue: true } : { refused: `a deploy needs deploy credentials, which trust tier ${describeTier(e)} does not receive` };
  return { issue: e.tier.credentials !== "none" };
}
