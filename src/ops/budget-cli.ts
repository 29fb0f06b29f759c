import { describeBudget } from "../approval/error-budget.js";
import { STACK_NAME_RE } from "../config/fields.js";
import { loadServerConfig } from "../config/server-config.js";
import type { Db } from "../connectors/store/db.js";
import { repositoryBudget, resetBudget, stackBudget } from "./error-budget.js";
import { OPERATOR_NAME_HINT, operatorName, parseFlags, reasonOf } from "./cli-args.js";
import { REPO_PATTERN, type AuditCliIo } from "./audit-cli.js";

/**
 * `budget show` and `budget reset`: an operator's view of a stack's error budget and the
 * audited reset that gives an exhausted stack its autonomy back (src/deploys/error-budget.ts).
 * The limits are the app's (ERROR_BUDGET_* in the same environment). src/cli.ts dispatches here.
 */
export const BUDGET_USAGE = `usage: npm run agent -- budget show --repo <owner/name> [--stack <name>]
       npm run agent -- budget reset --repo <owner/name> [--stack <name>] --reason <text> [--as <operator name>]

  show    the stack's error budget now (without --stack: the repository's, every stack's errors
          against ERROR_BUDGET_REPO_*): errors in the window, the most repeated one, procedure
          violations, whether it is exhausted and until when (JSON)
  reset   errors before now stop counting there; audited as budget.reset with the reason

exit status: 0 done, 1 failure, 2 usage error
`;

export async function budgetCommand(argv: readonly string[], deps: { db: Db; env: NodeJS.ProcessEnv }, io: AuditCliIo): Promise<number> {
  const usage = (message: string) => {
    io.stderr(`error: ${message}\n\n${BUDGET_USAGE}`);
    return 2;
  };
  const parsed = parseFlags(argv, { repo: { type: "string" }, stack: { type: "string" }, reason: { type: "string" }, as: { type: "string" } } as const);
  if (!parsed.ok) return usage(parsed.message);
  const { values, positionals } = parsed;
  const [command, ...extra] = positionals;
  if (command !== "show" && command !== "reset") return usage(command === undefined ? "no budget command given" : `unknown budget command: ${JSON.stringify(command).slice(0, 60)}`);
  if (extra.length) return usage(`unexpected argument: ${JSON.stringify(extra[0]).slice(0, 60)}`);
  if (!values.repo || !REPO_PATTERN.test(values.repo)) return usage("--repo <owner/name> is required");
  if (values.stack !== undefined && !STACK_NAME_RE.test(values.stack)) return usage("--stack: not a stack name");
  const stack = values.stack ?? null;
  const config = loadServerConfig(deps.env);
  const limits = stack ? config.errorBudget : config.repoErrorBudget;
  if (!limits) {
    io.stderr(`error: ${stack ? "stacks' error budgets are off on this server (every ERROR_BUDGET_MAX_* is 0)" : "repositories' error budgets are off on this server (every ERROR_BUDGET_REPO_MAX_* is 0)"}\n`);
    return 1;
  }
  if (command === "reset") {
    const reason = reasonOf(values.reason);
    if (!reason) return usage("--reason <text> is required (at most 500 characters): why the errors no longer count");
    const by = operatorName(deps.env, values.as);
    if (!by) return usage(OPERATOR_NAME_HINT);
    await resetBudget(deps.db, { repo: values.repo, stack, reason, by });
  }
  const state = stack ? await stackBudget(deps.db, values.repo, stack, limits) : await repositoryBudget(deps.db, values.repo, limits);
  io.stdout(`${JSON.stringify({ repo: values.repo, stack, ...(command === "reset" ? { reset: true } : {}), summary: describeBudget(state), exhausted: state.exhausted, why: state.why, remaining: Number.isFinite(state.remaining) ? state.remaining : null, frees: state.frees }, null, 2)}\n`);
  return 0;
}
