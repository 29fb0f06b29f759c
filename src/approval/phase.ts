/**
 * Rollout phases (seed 000 §5.5), pure: `observe` (read-only: previews, status, diagnostics;
 * no deploy, no deploy credentials), `suggest` (deploys through the full human gate) and `act`
 * (besides, after a merge, a plan the policy allows with no destructive step applies without a
 * human's approval — unless the error budget is exhausted, which drops it back to `suggest`).
 */
import type { PlanDecision } from "./plan-policy.js";
import type { PreviewOutcome } from "../plan/types.js";

export const PHASES = ["observe", "suggest", "act"] as const;
export type Phase = (typeof PHASES)[number];

/** The phase of a repository: its own row, else its organisation's (`owner/*`), else the default. */
export function phaseOf(repo: string, rows: ReadonlyMap<string, Phase>, fallback: Phase): { phase: Phase; scope: string } {
  const own = rows.get(repo);
  if (own) return { phase: own, scope: repo };
  const org = `${repo.split("/")[0]}/*`;
  const orgPhase = rows.get(org);
  if (orgPhase) return { phase: orgPhase, scope: org };
  return { phase: fallback, scope: "default" };
}

/** `owner/name` or `owner/*`. */
export const PHASE_SCOPE_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/(?:\*|[A-Za-z0-9._-]{1,100})$/;

export type AutoApply = { apply: true } | { apply: false; why: string };

/**
 * `act`: may a merged commit's plan apply without a human? Only a pulumi plan the policy
 * classified ALLOW, with no delete or replace, while the stack's error budget holds.
 */
export function decideAutoApply(p: { plan: PreviewOutcome | null; decision: PlanDecision | null; budgetExhausted: boolean }): AutoApply {
  if (p.budgetExhausted) return { apply: false, why: "the stack's error budget is exhausted, so the repository is back to `suggest` for it" };
  if (!p.plan || p.plan.engine !== "pulumi") return { apply: false, why: "only a Pulumi plan can be checked for destructive steps; a command's output cannot" };
  if (!p.decision) return { apply: false, why: "no plan policy classified the plan (configure one: `act` applies only plans it calls ALLOW)" };
  if (p.decision.decision !== "ALLOW") return { apply: false, why: `the plan policy says ${p.decision.decision}` };
  const destructive = p.plan.resources.filter((r) => r.op === "delete" || r.op === "replace");
  if (destructive.length) return { apply: false, why: `the plan ${destructive.length === 1 ? "deletes or replaces a resource" : `deletes or replaces ${destructive.length} resources`} (${destructive.slice(0, 3).map((r) => r.name).join(", ")})` };
  return { apply: true };
}
