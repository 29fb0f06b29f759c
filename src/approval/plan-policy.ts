/**
 * Plan policy: rules evaluated on every preview before anyone approves. Pure policy, like the
 * gate (`gate.ts`): the caller loads the server's policy block and the stack's override (read
 * from the default branch), merges them (`mergePlanPolicy`, src/config/plan-policy.ts),
 * evaluates the latest preview with {@link evaluatePlanPolicy}, and the gate folds the decision
 * into its approval requirement (`applyPlanDecision`, gate-plan.ts).
 *
 * Rules:
 * - `protect[i]`: a resource whose type and/or URN matches, and whose op is listed in `on`
 *   (default delete and replace), yields `deny` (default) or `needs_approval` (with
 *   `extra_approvals`, default 1, and/or named `approvers`).
 * - `max_deletes` / `max_replaces`: more deletes (replaces) than the maximum yield
 *   `max_changes_decision` (default `needs_approval`, one extra approval). At the maximum is fine.
 * - `budget`: the plan's estimated monthly cost change (from `cost_hints`) pushing the stack over
 *   `threshold` × `monthly_usd` (default 80%) needs `extra_approvals` (default 1) more approvals;
 *   over 100% of the budget it is denied when `deny_over_budget` is true.
 *
 * Decisions: DENY (blocks the deploy whatever the approvals) > NEEDS_APPROVAL > ALLOW; the
 * overall decision is the most severe finding's. Every matching rule fires (not only the first
 * per resource), so adding a rule can only add findings: that is what makes a stack override
 * unable to relax the server's policy (see `mergePlanPolicy`).
 */
import type { PreviewOutcome, ResourceOp } from "../plan/types.js";
import { loginKey, teamKey } from "./names.js";
import { centsOf, globToRegExp, priceOf, readHints } from "./plan-cost.js";
import { describeOps, needsText, percent, percentOfThreshold, urnList, usd } from "./plan-text.js";

// ---------------------------------------------------------------------------------------------
// The policy as written (snake_case YAML keys; schema and merge: src/config/plan-policy.ts).
// Every key is optional: "unset" stays distinguishable from "set to the default" for the merge.

export type PlanRuleDecision = "deny" | "needs_approval";

export interface PlanProtection {
  /** Shown as the rule that fired; default `protect[<index>]`. */
  name?: string;
  types?: string[];
  urns?: string[];
  on?: ("delete" | "replace")[];
  decision?: PlanRuleDecision;
  approvers?: { users?: string[]; teams?: string[] };
  extra_approvals?: number;
}

export interface PlanBudget {
  monthly_usd: number;
  current_monthly_usd?: number;
  threshold?: number;
  cost_hints?: Record<string, number>;
  extra_approvals?: number;
  deny_over_budget?: boolean;
  /** Not supported (the schema refuses it): a stored plan carries no resource tags. */
  tag?: never;
}

export interface PlanPolicyConfig {
  protect?: PlanProtection[];
  max_deletes?: number;
  max_replaces?: number;
  max_changes_decision?: PlanRuleDecision;
  budget?: PlanBudget;
}

// ---------------------------------------------------------------------------------------------
// Defaults

export const PLAN_POLICY_DEFAULTS = Object.freeze({
  protectOn: Object.freeze(["delete", "replace"] as const),
  protectDecision: "deny" as const,
  protectExtraApprovals: 1,
  maxChangesDecision: "needs_approval" as const,
  maxChangesExtraApprovals: 1,
  budgetThreshold: 0.8,
  budgetCurrentUsd: 0,
  budgetExtraApprovals: 1,
  denyOverBudget: false,
});

// ---------------------------------------------------------------------------------------------
// Evaluation

export type PlanDecisionKind = "ALLOW" | "NEEDS_APPROVAL" | "DENY";

export interface RequiredApprovers {
  users: string[];
  teams: string[];
}

export interface PlanFinding {
  /** `protect[0]` (or the entry's `name`), `max_deletes`, `max_replaces`, `budget`, `plan`. */
  rule: string;
  decision: "NEEDS_APPROVAL" | "DENY";
  /** Plain text naming the resources or the figures. */
  message: string;
  /** URNs the rule fired on. */
  resources?: string[];
  /** NEEDS_APPROVAL only: approvals this rule adds on top of the gate's. */
  extraApprovals?: number;
  /** NEEDS_APPROVAL only: people who must be among the counted approvals. */
  approvers?: RequiredApprovers;
}

export interface PlanDecision {
  decision: PlanDecisionKind;
  /** In rule order: `plan`, `protect[…]` in list order, `max_deletes`, `max_replaces`, `budget`. */
  findings: PlanFinding[];
  /** The largest `extraApprovals` of the NEEDS_APPROVAL findings (not their sum); 0 without any. */
  extraApprovals: number;
  /**
   * The union of the NEEDS_APPROVAL findings' approvers: every listed user must be among the
   * counted approvals, and at least one member of every listed team.
   */
  requiredApprovers: RequiredApprovers;
  /** Estimated monthly cost change in USD (cents precision); null when no budget is configured or the plan is not typed. */
  costChangeUsd: number | null;
  /** Plain-text remarks that do not change the decision (rules not evaluated, unpriced types). */
  notes: string[];
}

/** What the rules read of one resource; anything else in the stored plan is ignored. */
interface PlanResource {
  op: ResourceOp;
  urn: string;
  type: string;
}

const OPS: ReadonlySet<string> = new Set<ResourceOp>(["create", "update", "replace", "delete", "same", "read"]);

/**
 * Evaluates the merged policy on a preview. Never throws: a policy that did not go through the
 * schema is read defensively (odd values count as unset), and a plan stored in an older or
 * damaged shape is read as far as possible.
 *
 * Untyped plans: the `command` engine's plan is plain text with no resources, so no rule can be
 * evaluated: ALLOW, no findings, `costChangeUsd` null, and a note saying so. Failing closed here
 * would require extra approvals on every deploy of every command stack whenever the server has
 * any plan policy, which teaches reviewers to rubber-stamp; the gate's own approvals still
 * apply, and a server that wants more for such stacks raises their gate approvals. A missing
 * plan (null) is treated the same (the gate requires a successful preview by default).
 *
 * A `pulumi` plan whose resources cannot be read (not a list, or entries without a string
 * URN and a known op) is a damaged typed plan, not an untyped one: when the policy has any rule,
 * a `plan` finding asks for one extra approval, and the readable entries are still evaluated.
 */
export function evaluatePlanPolicy(policy: PlanPolicyConfig | undefined | null, plan: PreviewOutcome | null): PlanDecision {
  const result: PlanDecision = {
    decision: "ALLOW",
    findings: [],
    extraApprovals: 0,
    requiredApprovers: { users: [], teams: [] },
    costChangeUsd: null,
    notes: [],
  };
  try {
    evaluateInto(result, isRecord(policy) ? (policy as PlanPolicyConfig) : {}, plan);
  } catch (err) {
    // Defensive only: every reader below tolerates odd input. Fail closed, but not silently.
    result.findings.push({
      rule: "plan",
      decision: "NEEDS_APPROVAL",
      message: `The plan policy could not be evaluated (${err instanceof Error ? err.message : String(err)}); one more approval is required.`,
      extraApprovals: 1,
    });
  }
  return summarize(result);
}

function evaluateInto(result: PlanDecision, policy: PlanPolicyConfig, plan: PreviewOutcome | null): void {
  const protections = Array.isArray(policy.protect) ? policy.protect : [];
  const maxDeletes = wholeOrUndefined(policy.max_deletes);
  const maxReplaces = wholeOrUndefined(policy.max_replaces);
  const budget = isRecord(policy.budget) ? policy.budget : undefined;
  const hasRules = protections.length > 0 || maxDeletes !== undefined || maxReplaces !== undefined || budget !== undefined;
  if (!hasRules) return;

  if (!isRecord(plan)) {
    result.notes.push("Plan policy not evaluated: there is no preview to check.");
    return;
  }
  if (plan.engine !== "pulumi") {
    result.notes.push("Plan policy not evaluated: the plan is plain text (command engine); its rules need a typed plan (pulumi engine).");
    return;
  }

  const { resources, unreadable } = readResources((plan as { resources?: unknown }).resources);
  if (unreadable !== null) {
    result.findings.push({
      rule: "plan",
      decision: "NEEDS_APPROVAL",
      message: `${unreadable}; the plan policy could only check what could be read, so one more approval is required.`,
      extraApprovals: 1,
    });
  }

  protections.forEach((p, i) => {
    if (isRecord(p)) protectFinding(result, p as PlanProtection, i, resources);
  });

  const summary = isRecord((plan as { summary?: unknown }).summary) ? ((plan as { summary: Record<string, unknown> }).summary) : {};
  const maxDecision = ruleDecision(policy.max_changes_decision, PLAN_POLICY_DEFAULTS.maxChangesDecision);
  if (maxDeletes !== undefined) maxFinding(result, "max_deletes", "delete", maxDeletes, maxDecision, resources, summary);
  if (maxReplaces !== undefined) maxFinding(result, "max_replaces", "replace", maxReplaces, maxDecision, resources, summary);

  if (budget) budgetFinding(result, budget as PlanBudget, resources);
}

function readResources(raw: unknown): { resources: PlanResource[]; unreadable: string | null } {
  if (!Array.isArray(raw)) return { resources: [], unreadable: "The stored plan has no readable resource list" };
  const resources: PlanResource[] = [];
  let bad = 0;
  for (const r of raw) {
    if (!isRecord(r) || typeof r.urn !== "string" || typeof r.op !== "string" || !OPS.has(r.op)) {
      bad++;
      continue;
    }
    const type = typeof r.type === "string" && r.type !== "" ? r.type : typeFromUrn(r.urn);
    resources.push({ op: r.op as ResourceOp, urn: r.urn, type });
  }
  return { resources, unreadable: bad ? `${bad} resource entr${bad === 1 ? "y" : "ies"} of the stored plan could not be read` : null };
}

/** The type segment of `urn:pulumi:<stack>::<project>::<parent$type>::<name>`, or "". */
function typeFromUrn(urn: string): string {
  const parts = urn.split("::");
  if (parts.length < 4) return "";
  const q = parts[2]!;
  return q.slice(q.lastIndexOf("$") + 1);
}

function protectFinding(result: PlanDecision, p: PlanProtection, index: number, resources: PlanResource[]): void {
  const types = globList(p.types);
  const urns = globList(p.urns);
  if (!types && !urns) return; // matches nothing (the schema requires one of them)
  const on = new Set<string>(Array.isArray(p.on) && p.on.length ? p.on : PLAN_POLICY_DEFAULTS.protectOn);
  const hits = resources.filter(
    (r) => on.has(r.op) && (!types || types.some((g) => g.test(r.type))) && (!urns || urns.some((g) => g.test(r.urn))),
  );
  if (!hits.length) return;
  const rule = typeof p.name === "string" && p.name !== "" ? p.name : `protect[${index}]`;
  const decision = ruleDecision(p.decision, PLAN_POLICY_DEFAULTS.protectDecision);
  const what = describeOps(hits);
  if (decision === "DENY") {
    const protectedText = hits.length === 1 ? "a protected resource" : "protected resources";
    result.findings.push({ rule, decision, message: `${rule} denies this deploy: the plan ${what}, ${protectedText}.`, resources: hits.map((h) => h.urn) });
    return;
  }
  const approvers = approversOf(p.approvers);
  const named = approvers.users.length + approvers.teams.length > 0;
  const extra = wholeOrUndefined(p.extra_approvals) ?? PLAN_POLICY_DEFAULTS.protectExtraApprovals;
  const finding: PlanFinding = {
    rule,
    decision,
    message: `${rule} needs ${needsText(extra, approvers)}: the plan ${what}, ${hits.length === 1 ? "a protected resource" : "protected resources"}.`,
    resources: hits.map((h) => h.urn),
    extraApprovals: extra,
  };
  if (named) finding.approvers = approvers;
  result.findings.push(finding);
}

function maxFinding(
  result: PlanDecision,
  rule: "max_deletes" | "max_replaces",
  op: "delete" | "replace",
  max: number,
  decision: "NEEDS_APPROVAL" | "DENY",
  resources: PlanResource[],
  summary: Record<string, unknown>,
): void {
  const listed = resources.filter((r) => r.op === op);
  // The CLI's changeSummary is authoritative on totals; the resource list names them.
  const summarized = wholeOrUndefined(summary[op]) ?? 0;
  const count = Math.max(listed.length, summarized);
  if (count <= max) return;
  const noun = op === "delete" ? (count === 1 ? "delete" : "deletes") : count === 1 ? "replacement" : "replacements";
  const limit = `${rule} is ${max}`;
  const named = listed.length ? `: ${urnList(listed.map((r) => r.urn))}` : "";
  const finding: PlanFinding =
    decision === "DENY"
      ? { rule, decision, message: `${rule} denies this deploy: the plan has ${count} ${noun} (${limit})${named}.` }
      : {
          rule,
          decision,
          message: `${rule} needs ${needsText(PLAN_POLICY_DEFAULTS.maxChangesExtraApprovals, { users: [], teams: [] })}: the plan has ${count} ${noun} (${limit})${named}.`,
          extraApprovals: PLAN_POLICY_DEFAULTS.maxChangesExtraApprovals,
        };
  if (listed.length) finding.resources = listed.map((r) => r.urn);
  result.findings.push(finding);
}

/**
 * Cost change = Σ hint(type) over creates − Σ hint(type) over deletes. Updates, replaces, reads
 * and sames change nothing: a {@link ResourceChange} carries one type, and a type change gives
 * the resource a new URN, which the plan shows as a delete of the old one and a create of the
 * new one (priced by those). A type without a hint costs 0 and is noted. Computed in cents.
 *
 * The rule fires only when the change is positive (a plan that saves money or costs nothing is
 * never held up, even on a stack already over its threshold) and current + change exceeds
 * threshold × budget (strictly: exactly at the threshold is allowed).
 */
function budgetFinding(result: PlanDecision, b: PlanBudget, resources: PlanResource[]): void {
  const d = PLAN_POLICY_DEFAULTS;
  const budgetCents = centsOf(b.monthly_usd);
  const hints = readHints(b.cost_hints);
  let changeCents = 0;
  const unpriced = new Set<string>();
  const priced: PlanResource[] = [];
  for (const r of resources) {
    if (r.op !== "create" && r.op !== "delete") continue;
    const hint = priceOf(hints, r.type);
    if (hint === undefined) {
      unpriced.add(r.type || r.urn);
      continue;
    }
    if (hint === 0) continue;
    changeCents += r.op === "create" ? hint : -hint;
    priced.push(r);
  }
  result.costChangeUsd = changeCents / 100;
  if (unpriced.size) {
    const list = [...unpriced].sort();
    result.notes.push(`No cost hint for ${list.length === 1 ? "type" : "types"} ${list.slice(0, 10).join(", ")}${list.length > 10 ? ` and ${list.length - 10} more` : ""}; counted as $0 a month.`);
  }
  if (budgetCents === undefined || budgetCents <= 0) return;
  if (changeCents <= 0) return;
  const currentCents = Math.max(0, centsOf(b.current_monthly_usd) ?? d.budgetCurrentUsd);
  const threshold = typeof b.threshold === "number" && b.threshold > 0 && b.threshold <= 1 ? b.threshold : d.budgetThreshold;
  const limitCents = Math.round(threshold * budgetCents);
  const afterCents = currentCents + changeCents;
  if (afterCents <= limitCents) return;

  const figures =
    `the plan adds about ${usd(changeCents)} a month, taking the stack from ${usd(currentCents)} to ${usd(afterCents)}, ` +
    `${percent(afterCents, budgetCents)} of its ${usd(budgetCents)} monthly budget`;
  const resourcesOf = priced.length ? { resources: priced.map((r) => r.urn) } : {};
  if (afterCents > budgetCents && b.deny_over_budget === true) {
    result.findings.push({ rule: "budget", decision: "DENY", message: `budget denies this deploy: ${figures} (over budget).`, ...resourcesOf });
    return;
  }
  const extra = wholeOrUndefined(b.extra_approvals) ?? d.budgetExtraApprovals;
  const over = afterCents > budgetCents ? "over budget" : `over the ${percentOfThreshold(threshold)} threshold`;
  result.findings.push({
    rule: "budget",
    decision: "NEEDS_APPROVAL",
    message: `budget needs ${needsText(Math.max(1, extra), { users: [], teams: [] })}: ${figures} (${over}).`,
    extraApprovals: Math.max(1, extra),
    ...resourcesOf,
  });
}

function summarize(result: PlanDecision): PlanDecision {
  let decision: PlanDecisionKind = "ALLOW";
  let extra = 0;
  const users = new Map<string, string>();
  const teams = new Map<string, string>();
  for (const f of result.findings) {
    if (f.decision === "DENY") decision = "DENY";
    else {
      if (decision === "ALLOW") decision = "NEEDS_APPROVAL";
      extra = Math.max(extra, f.extraApprovals ?? 0);
      for (const u of f.approvers?.users ?? []) if (!users.has(loginKey(u))) users.set(loginKey(u), u.replace(/^@/, ""));
      for (const t of f.approvers?.teams ?? []) if (!teams.has(teamKey(t))) teams.set(teamKey(t), t.replace(/^@/, ""));
    }
  }
  result.decision = decision;
  result.extraApprovals = extra;
  result.requiredApprovers = { users: [...users.values()], teams: [...teams.values()] };
  return result;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function wholeOrUndefined(v: unknown): number | undefined {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined;
}

function ruleDecision(v: unknown, fallback: "deny" | "needs_approval"): "NEEDS_APPROVAL" | "DENY" {
  const d = v === "deny" || v === "needs_approval" ? v : fallback;
  return d === "deny" ? "DENY" : "NEEDS_APPROVAL";
}

function globList(v: unknown): RegExp[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const res = v.filter((g): g is string => typeof g === "string" && g !== "").map(globToRegExp);
  return res.length ? res : undefined;
}

function approversOf(v: unknown): RequiredApprovers {
  if (!isRecord(v)) return { users: [], teams: [] };
  const strings = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === "string" && s !== "") : []);
  return { users: strings(v.users), teams: strings(v.teams) };
}

