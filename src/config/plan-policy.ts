/**
 * The plan policy as written (snake_case YAML keys): its schema, checked where a block is read
 * (the server's PLAN_POLICY_CONFIG file, src/config/plan-policy-config.ts, and a repository's
 * `policy`, src/config/repo/schema.ts), and the merge of the server's block with a stack's
 * override. The evaluation of a merged policy on a plan is pure policy:
 * src/approval/plan-policy.ts, which owns the type ({@link PlanPolicyConfig}) and the defaults.
 *
 * Nothing in the schema has a zod default: "unset" must stay distinguishable from "set to the
 * default" for the merge; the defaults are applied by the evaluation.
 */
import { z } from "zod";
import { PLAN_POLICY_DEFAULTS, type PlanBudget, type PlanPolicyConfig, type PlanProtection } from "../approval/plan-policy.js";
import { GitHubLoginRef, TeamRef } from "./fields.js";
import { describeZodIssues, type ConfigIssue, type IssuePath, type YamlSource } from "./issues.js";

// ---------------------------------------------------------------------------------------------
// Schema

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
    users: z.array(GitHubLoginRef).max(100).optional(),
    teams: z.array(TeamRef).max(20).optional(),
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

/** One policy block: the server's (per selector) or a repository's `policy` (top level or per stack). */
export const PlanPolicySchema = z.strictObject({
  protect: z.array(Protection, { error: "must be a list of protections" }).max(100, "may list at most 100 protections").optional(),
  max_deletes: z.number({ error: "must be a whole number ≥ 0" }).int("must be a whole number ≥ 0").min(0, "must be a whole number ≥ 0").optional(),
  max_replaces: z.number({ error: "must be a whole number ≥ 0" }).int("must be a whole number ≥ 0").min(0, "must be a whole number ≥ 0").optional(),
  max_changes_decision: RuleDecision.optional(),
  budget: Budget.optional(),
}) satisfies z.ZodType<PlanPolicyConfig>;

/**
 * Validates one policy block; the issues name the offending key. `at` is where the block sits
 * in `doc` (default: it is `doc`), for line numbers from `source`.
 */
export function parsePlanPolicy(
  raw: unknown,
  where: { doc?: unknown; at?: IssuePath; source?: YamlSource | null } = {},
): { ok: true; policy: PlanPolicyConfig } | { ok: false; issues: ConfigIssue[] } {
  const parsed = PlanPolicySchema.safeParse(raw ?? {});
  if (parsed.success) return { ok: true, policy: parsed.data };
  const data = where.at ? where.doc : raw;
  return { ok: false, issues: describeZodIssues(parsed.error.issues, { data, schema: PlanPolicySchema, at: where.at, source: where.source }) };
}

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
