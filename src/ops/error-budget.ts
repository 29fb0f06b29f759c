/**
 * A stack's error budget from the audit log (the facts; the arithmetic is
 * src/approval/error-budget.ts): failed and interrupted deploys, rollbacks, plans the policy
 * denied, plan-integrity failures and deploys break-glass stopped, within the window and since
 * the stack's last `budget.reset`. The same error is the same normalised message (the
 * normalisation the diagnostics use).
 */
import { createHash } from "node:crypto";
import { bindingBudget, evaluateBudget, type BudgetEvent, type BudgetLimits, type BudgetState } from "../approval/error-budget.js";
import { appendAudit } from "../connectors/store/audit.js";
import type { Db } from "../connectors/store/db.js";
import { normaliseLog } from "../diagnose/log-text.js";
import type { Metrics } from "../web/metrics.js";

interface Row {
  action: string;
  detail: Record<string, unknown>;
  at: Date;
}

/** The first line of an error, as the budget names it. */
function labelOf(error: string): string {
  const line = error.split("\n")[0]!.trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

function signatureOf(error: string): string {
  return createHash("sha256").update(normaliseLog(error)).digest("hex").slice(0, 16);
}

/**
 * What makes two failed deploys "the same error": the failure and the last lines of the step's
 * output saying error, normalised (ids, numbers, hashes and times replaced, as the diagnostics
 * do), hashed. `label` is how it reads: that error line, or the failure.
 */
export function errorSignature(failure: string, output: string): { signature: string; label: string } {
  const lines = output.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const errors = lines.filter((l) => /\b(error|exception|fatal|failed|timeout|timed out)\b/i.test(l)).slice(-3);
  const said = errors.at(-1);
  return { signature: signatureOf([failure, ...errors].join("\n")), label: labelOf(said ?? failure) };
}

/** An audit row as a budget event (the rows are already filtered to the stack). */
function eventOf(r: Row): BudgetEvent {
  const error = typeof r.detail.error === "string" ? r.detail.error : "";
  switch (r.action) {
    case "deploy.failed":
      // Recorded with the deploy (errorSignature); older rows have only the failure.
      if (typeof r.detail.error_signature === "string") return { at: r.at, kind: "deploy-failed", signature: r.detail.error_signature, label: typeof r.detail.error_line === "string" ? r.detail.error_line : labelOf(error) };
      return { at: r.at, kind: "deploy-failed", signature: error ? signatureOf(error) : null, label: error ? labelOf(error) : "deploy failed" };
    case "deploy.needs_attention":
      return { at: r.at, kind: "deploy-failed", signature: "interrupted", label: "deploy interrupted mid-apply" };
    case "rollback.finished":
      return { at: r.at, kind: "rollback", signature: null, label: "rolled back" };
    case "preview.succeeded":
      return { at: r.at, kind: "policy-denied", signature: null, label: "plan denied by the plan policy" };
    case "preview.failed":
      return { at: r.at, kind: "integrity", signature: "integrity", label: "plan integrity check failed" };
    default:
      return { at: r.at, kind: "break-glass", signature: null, label: "deploy stopped by break-glass" };
  }
}

/** When the stack's budget (null: the repository's) was last reset (an operator, with a reason), or null. */
async function lastReset(db: Db, repo: string, stack: string | null): Promise<Date | null> {
  const res = await db.query<{ at: Date | null }>("SELECT max(at) AS at FROM audit_log WHERE repo = $1 AND action = 'budget.reset' AND detail->>'stack' IS NOT DISTINCT FROM $2", [repo, stack]);
  return res.rows[0]?.at ?? null;
}

/** The budget events of a stack (null: of every stack of the repository) within the window, after its last reset. */
export async function budgetEvents(db: Db, repo: string, stack: string | null, limits: BudgetLimits, now: Date = new Date()): Promise<BudgetEvent[]> {
  const windowStart = new Date(now.getTime() - limits.windowSeconds * 1000);
  const reset = await lastReset(db, repo, stack);
  const since = reset && reset > windowStart ? reset : windowStart;
  const res = await db.query<Row>(
    `SELECT action, detail, at FROM audit_log
     WHERE repo = $1 AND at > $2 AND ($3::text IS NULL OR detail->>'stack' = $3) AND (
       action IN ('deploy.failed', 'deploy.needs_attention')
       OR (action = 'rollback.finished' AND detail->>'outcome' = 'SUCCEEDED')
       OR (action = 'preview.succeeded' AND detail->'policy'->>'decision' = 'DENY')
       OR (action = 'preview.failed' AND detail->>'integrity_failed' = 'true'))
     UNION ALL
     SELECT action, detail, at FROM audit_log
     WHERE action = 'break_glass.revoke' AND at > $2
       AND detail->'running' @> jsonb_build_array(CASE WHEN $3::text IS NULL THEN jsonb_build_object('repo', $1::text) ELSE jsonb_build_object('repo', $1::text, 'stack', $3::text) END)
     ORDER BY at`,
    [repo, since, stack],
  );
  return res.rows.map(eventOf);
}

/** The stack's budget now; `metrics`: its remaining errors are published (agent_error_budget_remaining). */
export async function stackBudget(db: Db, repo: string, stack: string, limits: BudgetLimits, metrics?: Metrics, now: Date = new Date()): Promise<BudgetState> {
  const state = evaluateBudget(await budgetEvents(db, repo, stack, limits, now), limits, now);
  metrics?.errorBudgetRemaining.set({ repo, stack }, state.remaining);
  return state;
}

/** The repository's budget now: every stack's errors against the repository's limits (published with stack "*"). */
export async function repositoryBudget(db: Db, repo: string, limits: BudgetLimits, metrics?: Metrics, now: Date = new Date()): Promise<BudgetState> {
  const state = evaluateBudget(await budgetEvents(db, repo, null, limits, now), limits, now, "repository");
  metrics?.errorBudgetRemaining.set({ repo, stack: "*" }, state.remaining);
  return state;
}

/** The budget a deploy of the stack answers to (src/approval/error-budget.ts bindingBudget); null: budgets are off. */
export async function deployBudget(db: Db, repo: string, stack: string, limits: { stack: BudgetLimits | null; repository: BudgetLimits | null }, metrics?: Metrics): Promise<BudgetState | null> {
  const own = limits.stack ? await stackBudget(db, repo, stack, limits.stack, metrics) : null;
  const all = limits.repository ? await repositoryBudget(db, repo, limits.repository, metrics) : null;
  return bindingBudget(own, all);
}

/** An operator's reset of a stack's budget (or, with no stack, the repository's; audited with the reason): errors before it no longer count there. */
export async function resetBudget(db: Db, r: { repo: string; stack: string | null; reason: string; by: string }): Promise<void> {
  await appendAudit(db, { actor: r.by, action: "budget.reset", repo: r.repo, detail: { ...(r.stack ? { stack: r.stack } : {}), reason: r.reason } });
}
