/**
 * The gate's side of the plan policy: what a plan decision (plan-policy.ts) changes in the
 * gate's approval requirement, and which named approvers are still missing. Used by
 * `evaluateGate` (gate.ts); pure.
 */
import { loginKey, teamKey } from "./names.js";
import type { PlanDecision, RequiredApprovers } from "./plan-policy.js";

export interface PlanApprovalRequirement {
  /** DENY: no number of approvals lets the deploy through. */
  denied: boolean;
  /** The gate's required approvals plus the decision's extra ones (NEEDS_APPROVAL and DENY), and at least one per named user. */
  requiredApprovals: number;
  /** Who must be among the counted approvals: each user, and one member of each team. */
  requiredApprovers: RequiredApprovers;
  /**
   * The gate's allowed approvers, widened by the named ones so their approvals can count at all;
   * null (anyone with write access) stays null.
   */
  approvers: RequiredApprovers | null;
}

/**
 * What the gate must require given a plan decision. ALLOW leaves the gate's policy as it is.
 * NEEDS_APPROVAL (and DENY, which also reports `denied`) adds `extraApprovals` to the required
 * count and names the approvers who must be among the counted approvals; the count is at least
 * the number of named users (one person counts once).
 */
export function applyPlanDecision(
  policy: { requiredApprovals: number; approvers: RequiredApprovers | null },
  decision: PlanDecision,
): PlanApprovalRequirement {
  const base = Math.max(0, Math.ceil(Number.isFinite(policy.requiredApprovals) ? policy.requiredApprovals : 0));
  const gateApprovers = policy.approvers ? { users: [...policy.approvers.users], teams: [...policy.approvers.teams] } : null;
  if (decision.decision === "ALLOW") {
    return { denied: false, requiredApprovals: base, requiredApprovers: { users: [], teams: [] }, approvers: gateApprovers };
  }
  const extra = Math.max(0, Math.ceil(Number.isFinite(decision.extraApprovals) ? decision.extraApprovals : 0));
  const required = { users: [...decision.requiredApprovers.users], teams: [...decision.requiredApprovers.teams] };
  const approvers = gateApprovers;
  if (approvers) {
    for (const u of required.users) if (!approvers.users.some((a) => loginKey(a) === loginKey(u))) approvers.users.push(u);
    for (const t of required.teams) if (!approvers.teams.some((a) => teamKey(a) === teamKey(t))) approvers.teams.push(t);
  }
  return { denied: decision.decision === "DENY", requiredApprovals: Math.max(base + extra, required.users.length), requiredApprovers: required, approvers };
}

/**
 * The named approvers not yet satisfied by the counted approvals: users who have not approved,
 * teams none of whose members (per `teamMembers`, slug → logins) has approved. Logins and team
 * slugs compare case-insensitively; `@org/slug` and `slug` name the same team.
 */
export function missingRequiredApprovers(
  required: RequiredApprovers,
  countedLogins: readonly string[],
  teamMembers: Record<string, readonly string[]>,
): RequiredApprovers {
  const counted = new Set(countedLogins.map(loginKey));
  const users = required.users.filter((u) => !counted.has(loginKey(u)));
  const teams = required.teams.filter((t) => {
    const members = Object.entries(teamMembers).find(([name]) => teamKey(name) === teamKey(t))?.[1] ?? [];
    return !members.some((m) => counted.has(loginKey(m)));
  });
  return { users, teams };
}
