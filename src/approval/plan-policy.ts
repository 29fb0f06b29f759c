/**
 * Plan policy: rules evaluated on every preview before anyone approves. Pure policy, like the
 * gate (`gate.ts`): the caller loads the server's policy block and the stack's override (read
 * from the default branch), merges them with {@link mergePlanPolicy}, evaluates the latest
 * preview with {@link evaluatePlanPolicy} and folds the decision into the gate's approval
 * requirement with {@link applyPlanDecision}.
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
 * unable to relax the server's policy (see {@link mergePlanPolicy}).
 */
import { z } from "zod";
import type { GatePolicy } from "./gate.js";
import type { PreviewOutcome, ResourceOp } from "../plan/types.js";

// ---------------------------------------------------------------------------------------------
// Schema (snake_case YAML keys). Nothing has a zod default: "unset" must stay distinguishable
// from "set to the default" for the merge; the defaults are applied by the evaluation.

const GITHUB_LOGIN_RE = /^@?[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
/** `slug`, `org/slug` or `@org/slug` (the gate tolerates all three). */
const TEAM_RE = /^@?(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

const Glob = z
  .string({ error: "must be a string" })
  .min(1, "must not be empty")
  .max(500, "must be at most 500 characters")
  .refine((s) => s.trim() === s, "must not start or end with whitespace");

const Globs = z.array(Glob, { error: "must be a list of strings" }).min(1, "must list at least one pattern").max(100, "may list at most 100 patterns");

const ProtectOp = z.enum(["delete", "replace"], { error: "must be `delete` or `replace`" });

const RuleDecision = z.enum(["deny", "needs_approval"], { error: "must be `deny` or `needs_approval`" });

const ExtraApprovals = z.number({ error: "must be a whole number (0-10)" }).int("must be a whole number (0-10)").min(0, "must be a whole number (0-10)").max(10, "must be a whole number (0-10)");

const Approvers = z
  .strictObject({
    users: z.array(z.string().regex(GITHUB_LOGIN_RE, "must be a GitHub login")).max(100).optional(),
    teams: z.array(z.string().regex(TEAM_RE, "must be a team slug (`slug` or `org/slug`)")).max(20).optional(),
  })
  .refine((a) => (a.users?.length ?? 0) + (a.teams?.length ?? 0) > 0, "must name at least one user or team");

const Protection = z
  .strictObject({
    /** Shown as the rule that fired; default `protect[<index>]`. */
    name: z.string().min(1, "must not be empty").max(100, "must be at most 100 characters").optional(),
    types: Globs.optional(),
    urns: Globs.optional(),
    on: z.array(ProtectOp, { error: "must be a list of `delete` and/or `replace`" }).min(1, "must list `delete` and/or `replace`").optional(),
    decision: RuleDecision.optional(),
    approvers: Approvers.optional(),
    extra_approvals: ExtraApprovals.optional(),
  })
  .superRefine((p, ctx) => {
    if (p.types === undefined && p.urns === undefined) {
      ctx.addIssue({ code: "custom", path: [], message: "must list `types`, `urns` or both", input: p });
    }
    if ((p.decision ?? "deny") !== "needs_approval") {
      for (const key of ["approvers", "extra_approvals"] as const) {
        if (p[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: "is only allowed with `decision: needs_approval`", input: p[key] });
      }
    } else if (p.extra_approvals === 0 && p.approvers === undefined) {
      ctx.addIssue({ code: "custom", path: ["extra_approvals"], message: "0 extra approvals needs named `approvers` (otherwise the rule requires nothing)", input: 0 });
    }
  });

const Usd = (what: string) => z.number({ error: `must be ${what}` }).refine(Number.isFinite, `must be ${what}`);

const Budget = z
  .strictObject({
    monthly_usd: Usd("a positive number of US dollars").refine((n) => n > 0 && n <= 1e12, "must be a positive number of US dollars"),
    current_monthly_usd: Usd("a number of US dollars ≥ 0").refine((n) => n >= 0 && n <= 1e12, "must be a number of US dollars ≥ 0").optional(),
    threshold: z
      .number({ error: "must be a fraction of the budget, greater than 0 and at most 1 (0.8 = 80%)" })
      .refine((n) => n > 0 && n <= 1, "must be a fraction of the budget, greater than 0 and at most 1 (0.8 = 80%)")
      .optional(),
    cost_hints: z
      .record(Glob, Usd("a monthly cost in US dollars ≥ 0").refine((n) => n >= 0 && n <= 1e9, "must be a monthly cost in US dollars ≥ 0"), {
        error: "must map resource types (or globs) to monthly costs in US dollars",
      })
      .optional(),
    extra_approvals: ExtraApprovals.refine((n) => n >= 1, "must be a whole number (1-10)").optional(),
    deny_over_budget: z.boolean({ error: "must be `true` or `false`" }).optional(),
    /**
     * Not supported: a plan's {@link ResourceChange} carries no resource inputs or tags, so a
     * per-resource cost cannot be read from them; only `cost_hints` price a plan.
     */
    tag: z
      .never({ error: "is not supported: the stored plan does not carry resource inputs or tags; price resource types with `cost_hints`" })
      .optional(),
  });

export const PlanPolicySchema = z.strictObject({
  protect: z.array(Protection, { error: "must be a list of protections" }).max(100, "may list at most 100 protections").optional(),
  max_deletes: z.number({ error: "must be a whole number ≥ 0" }).int("must be a whole number ≥ 0").min(0, "must be a whole number ≥ 0").optional(),
  max_replaces: z.number({ error: "must be a whole number ≥ 0" }).int("must be a whole number ≥ 0").min(0, "must be a whole number ≥ 0").optional(),
  max_changes_decision: RuleDecision.optional(),
  budget: Budget.optional(),
});

export type PlanPolicyConfig = z.infer<typeof PlanPolicySchema>;
export type PlanProtection = NonNullable<PlanPolicyConfig["protect"]>[number];
export type PlanBudget = NonNullable<PlanPolicyConfig["budget"]>;

export interface PlanPolicyIssue {
  /** `protect[0].decision`, `budget.threshold`; "" for the block itself. */
  path: string;
  message: string;
}

/** Validates one policy block; the issues name the offending key. */
export function parsePlanPolicy(raw: unknown): { ok: true; policy: PlanPolicyConfig } | { ok: false; issues: PlanPolicyIssue[] } {
  const parsed = PlanPolicySchema.safeParse(raw ?? {});
  if (parsed.success) return { ok: true, policy: parsed.data };
  return { ok: false, issues: parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })) };
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? String(p) : `.${String(p)}`;
  return out;
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
// Merge

/**
 * The effective policy of one stack: the server's block, made stricter by the stack's override
 * (read from the repository's default branch). The override can never relax the server:
 *
 * - `protect`: the server's entries, then the override's (concatenated). Every matching entry
 *   fires, so added entries only add findings; an override cannot remove or weaken a server
 *   entry. Unnamed override entries are named `stack protect[<j>]` (j: index in the override), so
 *   a finding says which file the rule came from; unnamed server entries stay `protect[<i>]`.
 * - `max_deletes`, `max_replaces`: the lower of the two; one side unset → the other's.
 * - `max_changes_decision`: the more severe (`deny` over `needs_approval`); unset → the other's.
 *   It applies to both maxima, wherever they came from.
 * - `budget`: one side unset → the other's block whole (a server without a budget cannot be
 *   relaxed by one). Both set, key by key:
 *   - `monthly_usd`: the lower; `threshold`: the lower (unset counts as the default 0.8, so an
 *     override's 0.9 never raises the server's default);
 *   - `current_monthly_usd`: the higher (unset = 0);
 *   - `extra_approvals`: the higher (unset = 1); `deny_over_budget`: either side's `true`;
 *   - `cost_hints`: the server's when it has any; the override's only when the server has none.
 *     Hints price deletes too (a delete saves its hint), so a repo raising a hint could offset
 *     a create with a delete: the server's prices are authoritative.
 *
 * Neither side is mutated; the result shares no arrays with the inputs.
 */
export function mergePlanPolicy(server: PlanPolicyConfig | undefined, stackOverride: PlanPolicyConfig | undefined): PlanPolicyConfig {
  const s = server ?? {};
  const o = stackOverride ?? {};
  const out: PlanPolicyConfig = {};

  const protect = [
    ...(s.protect ?? []).map((p) => cloneProtection(p)),
    ...(o.protect ?? []).map((p, j) => cloneProtection(p, p.name ?? `stack protect[${j}]`)),
  ];
  if (protect.length) out.protect = protect;

  const maxDeletes = lower(s.max_deletes, o.max_deletes);
  if (maxDeletes !== undefined) out.max_deletes = maxDeletes;
  const maxReplaces = lower(s.max_replaces, o.max_replaces);
  if (maxReplaces !== undefined) out.max_replaces = maxReplaces;
  if (s.max_changes_decision !== undefined || o.max_changes_decision !== undefined) {
    out.max_changes_decision = s.max_changes_decision === "deny" || o.max_changes_decision === "deny" ? "deny" : "needs_approval";
  }

  const budget = mergeBudget(s.budget, o.budget);
  if (budget) out.budget = budget;
  return out;
}

function cloneProtection(p: PlanProtection, name?: string): PlanProtection {
  const c: PlanProtection = { ...p };
  if (name !== undefined) c.name = name;
  if (p.types) c.types = [...p.types];
  if (p.urns) c.urns = [...p.urns];
  if (p.on) c.on = [...p.on];
  if (p.approvers) {
    c.approvers = {};
    if (p.approvers.users) c.approvers.users = [...p.approvers.users];
    if (p.approvers.teams) c.approvers.teams = [...p.approvers.teams];
  }
  return c;
}

function cloneBudget(b: PlanBudget): PlanBudget {
  return b.cost_hints ? { ...b, cost_hints: { ...b.cost_hints } } : { ...b };
}

function mergeBudget(s: PlanBudget | undefined, o: PlanBudget | undefined): PlanBudget | undefined {
  if (!s) return o ? cloneBudget(o) : undefined;
  if (!o) return cloneBudget(s);
  const d = PLAN_POLICY_DEFAULTS;
  const out: PlanBudget = { monthly_usd: Math.min(s.monthly_usd, o.monthly_usd) };
  if (s.current_monthly_usd !== undefined || o.current_monthly_usd !== undefined) {
    out.current_monthly_usd = Math.max(s.current_monthly_usd ?? d.budgetCurrentUsd, o.current_monthly_usd ?? d.budgetCurrentUsd);
  }
  if (s.threshold !== undefined || o.threshold !== undefined) {
    out.threshold = Math.min(s.threshold ?? d.budgetThreshold, o.threshold ?? d.budgetThreshold);
  }
  if (s.extra_approvals !== undefined || o.extra_approvals !== undefined) {
    out.extra_approvals = Math.max(s.extra_approvals ?? d.budgetExtraApprovals, o.extra_approvals ?? d.budgetExtraApprovals);
  }
  if (s.deny_over_budget !== undefined || o.deny_over_budget !== undefined) {
    out.deny_over_budget = s.deny_over_budget === true || o.deny_over_budget === true;
  }
  const serverHints = s.cost_hints && Object.keys(s.cost_hints).length ? s.cost_hints : undefined;
  const hints = serverHints ?? o.cost_hints;
  if (hints) out.cost_hints = { ...hints };
  return out;
}

function lower(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

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

interface Hints {
  exact: Map<string, number>;
  /** Globs, most literal characters first, then in declaration order. */
  globs: Array<{ re: RegExp; cents: number }>;
}

function readHints(raw: unknown): Hints {
  const exact = new Map<string, number>();
  const globs: Array<{ re: RegExp; cents: number; literal: number; order: number }> = [];
  if (!isRecord(raw)) return { exact, globs: [] };
  let order = 0;
  for (const [key, value] of Object.entries(raw)) {
    const cents = centsOf(value);
    if (cents === undefined || cents < 0 || key === "") continue;
    if (!key.includes("*")) exact.set(key, cents);
    else globs.push({ re: globToRegExp(key), cents, literal: key.replace(/\*/g, "").length, order: order++ });
  }
  globs.sort((a, b) => b.literal - a.literal || a.order - b.order);
  return { exact, globs };
}

/**
 * The hint for a type: an exact key wins; else the matching glob with the most literal (non-`*`)
 * characters, ties going to the one declared first; `"*"` is thus the fallback. Undefined: none.
 */
function priceOf(hints: Hints, type: string): number | undefined {
  const exact = hints.exact.get(type);
  if (exact !== undefined) return exact;
  return hints.globs.find((g) => g.re.test(type))?.cents;
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
// Folding the decision into the gate

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
  approvers: GatePolicy["approvers"];
}

/**
 * What the gate must require given a plan decision. ALLOW leaves the gate's policy as it is.
 * NEEDS_APPROVAL (and DENY, which also reports `denied`) adds `extraApprovals` to the required
 * count and names the approvers who must be among the counted approvals; the count is at least
 * the number of named users (one person counts once).
 */
export function applyPlanDecision(policy: Pick<GatePolicy, "requiredApprovals" | "approvers">, decision: PlanDecision): PlanApprovalRequirement {
  const base = Math.max(0, Math.ceil(Number.isFinite(policy.requiredApprovals) ? policy.requiredApprovals : 0));
  const gateApprovers = policy.approvers ? { users: [...policy.approvers.users], teams: [...policy.approvers.teams] } : null;
  if (decision.decision === "ALLOW") {
    return { denied: false, requiredApprovals: base, requiredApprovers: { users: [], teams: [] }, approvers: gateApprovers };
  }
  const extra = Math.max(0, Math.ceil(Number.isFinite(decision.extraApprovals) ? decision.extraApprovals : 0));
  const required = { users: [...decision.requiredApprovers.users], teams: [...decision.requiredApprovers.teams] };
  let approvers = gateApprovers;
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

// ---------------------------------------------------------------------------------------------
// Helpers

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function wholeOrUndefined(v: unknown): number | undefined {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined;
}

function centsOf(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? Math.round(v * 100) : undefined;
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

/**
 * `*` matches any run of characters, `/` and `:` included (type tokens and URNs are not paths);
 * everything else is literal and the match is anchored and case-sensitive.
 */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}$`, "s");
}

function approversOf(v: unknown): RequiredApprovers {
  if (!isRecord(v)) return { users: [], teams: [] };
  const strings = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === "string" && s !== "") : []);
  return { users: strings(v.users), teams: strings(v.teams) };
}

function needsText(extra: number, approvers: RequiredApprovers): string {
  const parts: string[] = [];
  if (extra > 0) parts.push(`${extra} more approval${extra === 1 ? "" : "s"}`);
  const who = [...approvers.users.map((u) => `@${u.replace(/^@/, "")}`), ...approvers.teams.map((t) => `a member of team ${t.replace(/^@/, "")}`)];
  if (who.length) parts.push(`approval by ${joinAnd(who)}`);
  return parts.join(", including ") || "another approval";
}

const OP_VERB: Record<string, string> = { delete: "deletes", replace: "replaces" };

/** "deletes urn:… and replaces urn:…", at most 10 URNs named in all. */
function describeOps(hits: PlanResource[]): string {
  const byOp = new Map<string, string[]>();
  for (const h of hits) byOp.set(h.op, [...(byOp.get(h.op) ?? []), h.urn]);
  const parts: string[] = [];
  let room = 10;
  for (const [op, urns] of byOp) {
    const shown = urns.slice(0, Math.max(0, room));
    room -= shown.length;
    const more = urns.length - shown.length;
    const list = shown.length ? `${joinAnd(shown)}${more ? ` and ${more} more` : ""}` : `${more} more`;
    parts.push(`${OP_VERB[op] ?? `${op}s`} ${list}`);
  }
  return joinAnd(parts);
}

function urnList(urns: string[]): string {
  const shown = urns.slice(0, 10);
  return `${shown.join(", ")}${urns.length > shown.length ? ` and ${urns.length - shown.length} more` : ""}`;
}

function usd(cents: number): string {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  const dollars = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const rest = abs % 100;
  return `${sign}$${dollars}${rest ? `.${String(rest).padStart(2, "0")}` : ""}`;
}

function percent(part: number, whole: number): string {
  return `${Math.round((part / whole) * 1000) / 10}%`;
}

function percentOfThreshold(threshold: number): string {
  return `${Math.round(threshold * 1000) / 10}%`;
}

function loginKey(login: string): string {
  return login.replace(/^@/, "").toLowerCase();
}

function teamKey(team: string): string {
  return team.replace(/^@/, "").replace(/^[^/]*\//, "").toLowerCase();
}

function joinAnd(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}
