import { PHASE_SCOPE_RE, PHASES, type Phase } from "../approval/phase.js";
import { loadServerConfig } from "../config/server-config.js";
import type { Db } from "../connectors/store/db.js";
import { listPhases, repoPhase, setPhase } from "../connectors/store/phases.js";
import { OPERATOR_NAME_HINT, operatorName, parseFlags, reasonOf } from "./cli-args.js";
import { REPO_PATTERN, type AuditCliIo } from "./audit-cli.js";

/**
 * `phase show` and `phase set`: the rollout phase of a repository or organisation (seed 000
 * §5.5; src/approval/phase.ts). Set only here, never by a comment; every change is audited
 * (`phase.changed`, with who, why, from and to). src/cli.ts dispatches here.
 */
export const PHASE_USAGE = `usage: npm run agent -- phase show [--repo <owner/name>]
       npm run agent -- phase set --scope <owner/name | owner/*> --phase <observe | suggest | act | default> --reason <text> [--as <operator name>]

  show    every phase set (JSON), or the phase one repository is in and where it comes from
  set     the phase of a repository or of every repository of an organisation (owner/*);
          "default" removes the row (back to the organisation's, else ROLLOUT_DEFAULT_PHASE)
          observe  previews, status and diagnostics only; no deploy, no deploy credentials
          suggest  deploys through the full human gate
          act      also: after a merge, a plan the policy allows with nothing destructive
                   applies without a human approval, while the stack's error budget holds

exit status: 0 done, 1 failure, 2 usage error
`;

export async function phaseCommand(argv: readonly string[], deps: { db: Db; env: NodeJS.ProcessEnv }, io: AuditCliIo): Promise<number> {
  const usage = (message: string) => {
    io.stderr(`error: ${message}\n\n${PHASE_USAGE}`);
    return 2;
  };
  const parsed = parseFlags(argv, { repo: { type: "string" }, scope: { type: "string" }, phase: { type: "string" }, reason: { type: "string" }, as: { type: "string" } } as const);
  if (!parsed.ok) return usage(parsed.message);
  const { values, positionals } = parsed;
  const [command, ...extra] = positionals;
  if (extra.length) return usage(`unexpected argument: ${JSON.stringify(extra[0]).slice(0, 60)}`);
  const fallback = loadServerConfig(deps.env).defaultPhase;
  if (command === "show") {
    if (values.repo !== undefined) {
      if (!REPO_PATTERN.test(values.repo)) return usage("--repo: not owner/name");
      io.stdout(`${JSON.stringify({ repo: values.repo, ...(await repoPhase(deps.db, values.repo, fallback)) }, null, 2)}\n`);
    } else {
      io.stdout(`${JSON.stringify({ default: fallback, set: await listPhases(deps.db) }, null, 2)}\n`);
    }
    return 0;
  }
  if (command !== "set") return usage(command === undefined ? "no phase command given" : `unknown phase command: ${JSON.stringify(command).slice(0, 60)}`);
  if (!values.scope || !PHASE_SCOPE_RE.test(values.scope)) return usage("--scope <owner/name | owner/*> is required");
  const phase = values.phase === "default" ? null : (PHASES as readonly string[]).includes(values.phase ?? "") ? (values.phase as Phase) : undefined;
  if (phase === undefined) return usage("--phase must be observe, suggest, act or default");
  const reason = reasonOf(values.reason);
  if (!reason) return usage("--reason <text> is required (at most 500 characters)");
  const by = operatorName(deps.env, values.as);
  if (!by) return usage(OPERATOR_NAME_HINT);
  const changed = await setPhase(deps.db, { scope: values.scope, phase, by, reason });
  io.stdout(`${JSON.stringify({ scope: values.scope, ...changed }, null, 2)}\n`);
  return 0;
}
