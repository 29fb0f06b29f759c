/**
 * Error budgets (seed 002's "Error Budget System"), pure: a stack's errors within a window
 * against three limits. An exhausted budget takes autonomy away: the stack's deploys need one
 * more approval, from a maintainer, or are frozen (the server decides) until the window passes
 * or an operator resets it with a reason. Rollbacks are never held by it. No I/O.
 */

export interface BudgetLimits {
  /** Errors of any kind within the window (seed default 8). */
  maxTotalErrors: number;
  /** The same error (one normalised signature) within the window (seed default 2). */
  maxSameErrorRepeats: number;
  /** Procedure violations within the window: plan-integrity failures and deploys break-glass stopped (seed default 1). */
  maxProcedureViolations: number;
  windowSeconds: number;
  /** What an exhausted budget does to deploys. */
  onExhausted: "extra-approval" | "freeze";
}

export const SEED_BUDGET: BudgetLimits = { maxTotalErrors: 8, maxSameErrorRepeats: 2, maxProcedureViolations: 1, windowSeconds: 7 * 86_400, onExhausted: "extra-approval" };

/**
 * One error of a stack: a failed (or interrupted) deploy, a rollback (something had to be
 * undone), a plan the policy denied, a preview whose plan failed its integrity check, or a
 * deploy break-glass stopped. The last two are procedure violations.
 */
export interface BudgetEvent {
  at: Date;
  kind: "deploy-failed" | "rollback" | "policy-denied" | "integrity" | "break-glass";
  /** The normalised error's signature (same signature = the same error); null when there is no message. */
  signature: string | null;
  /** How the error reads, short (the first line of its message). */
  label: string;
}

// A plan the policy denied is an error, not a violation: the policy did its job, and a PR iterating
// on its plan would otherwise freeze the stack at the first denial.
const VIOLATIONS: ReadonlySet<BudgetEvent["kind"]> = new Set(["integrity", "break-glass"]);

export interface BudgetState {
  /** A stack's own budget, or its repository's (every stack's errors together, its own limits). */
  scope: "stack" | "repository";
  limits: BudgetLimits;
  total: number;
  violations: number;
  /** The most repeated error within the window (2 or more), if any. */
  repeated: { label: string; count: number } | null;
  exhausted: boolean;
  /** Which limits were reached, in words. */
  why: string[];
  /** Errors left before the total limit (0 when exhausted by any limit). */
  remaining: number;
  /** When the oldest error that counts leaves the window (when an exhausted budget frees itself at the earliest); null without errors. */
  frees: Date | null;
}

/** The budget now: the events within the window after the last reset (the caller passes only those). */
export function evaluateBudget(events: readonly BudgetEvent[], limits: BudgetLimits, now: Date, scope: BudgetState["scope"] = "stack"): BudgetState {
  const since = now.getTime() - limits.windowSeconds * 1000;
  const inWindow = events.filter((e) => e.at.getTime() > since && e.at.getTime() <= now.getTime());
  const total = inWindow.length;
  const violations = inWindow.filter((e) => VIOLATIONS.has(e.kind)).length;
  const bySignature = new Map<string, { label: string; count: number }>();
  for (const e of inWindow) {
    if (e.signature === null) continue;
    const seen = bySignature.get(e.signature);
    if (seen) seen.count++;
    else bySignature.set(e.signature, { label: e.label, count: 1 });
  }
  const top = [...bySignature.values()].sort((a, b) => b.count - a.count)[0];
  const repeated = top && top.count >= 2 ? top : null;
  const why: string[] = [];
  if (total >= limits.maxTotalErrors) why.push(`${total} errors (limit ${limits.maxTotalErrors})`);
  if (repeated && repeated.count >= limits.maxSameErrorRepeats) why.push(`the same error ${repeated.count} times (limit ${limits.maxSameErrorRepeats})`);
  if (violations >= limits.maxProcedureViolations) why.push(`${violations} procedure violation${violations === 1 ? "" : "s"} (limit ${limits.maxProcedureViolations})`);
  const exhausted = why.length > 0;
  const oldest = inWindow.reduce<Date | null>((min, e) => (min === null || e.at < min ? e.at : min), null);
  return {
    scope,
    limits,
    total,
    violations,
    repeated,
    exhausted,
    why,
    remaining: exhausted ? 0 : Math.max(0, limits.maxTotalErrors - total),
    frees: oldest ? new Date(oldest.getTime() + limits.windowSeconds * 1000) : null,
  };
}

/** "5 of 8 errors in 7 days; 2 × 'RDS timeout'". */
export function describeBudget(s: BudgetState): string {
  const days = Math.round(s.limits.windowSeconds / 86_400);
  const window = days >= 1 ? `${days} day${days === 1 ? "" : "s"}` : `${Math.round(s.limits.windowSeconds / 3600)} h`;
  const parts = [Number.isFinite(s.limits.maxTotalErrors) ? `${s.total} of ${s.limits.maxTotalErrors} errors in ${window}` : `${s.total} error${s.total === 1 ? "" : "s"} in ${window}`];
  if (s.repeated) parts.push(`${s.repeated.count} × '${s.repeated.label}'`);
  if (s.violations) parts.push(`${s.violations} procedure violation${s.violations === 1 ? "" : "s"}`);
  return `${s.scope === "repository" ? "the repository's: " : ""}${parts.join("; ")}`;
}

/**
 * The budget a deploy answers to: the stack's own, unless only its repository's is exhausted
 * (errors spread over stacks — a shared module failing everywhere — that no one stack's budget sees).
 */
export function bindingBudget(stack: BudgetState | null, repository: BudgetState | null): BudgetState | null {
  if (repository?.exhausted && !stack?.exhausted) return repository;
  return stack ?? repository;
}
