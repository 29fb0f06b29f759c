import { TIER_NAMES, describeTier, type TierName } from "../approval/tiers.js";
import { GITHUB_LOGIN_SOURCE, STACK_NAME_RE } from "../config/fields.js";
import { loadServerConfig } from "../config/server-config.js";
import type { Db } from "../connectors/store/db.js";
import { listTiers, setTier, tierOf, type TierKind } from "../connectors/store/tiers.js";
import { OPERATOR_NAME_HINT, operatorName, parseFlags, reasonOf } from "./cli-args.js";
import { REPO_PATTERN, type AuditCliIo } from "./audit-cli.js";

/**
 * `tier show` and `tier set`: trust tiers (seed 002 T0–T4; src/approval/tiers.ts) of actors,
 * repositories and stacks. Promotion and demotion happen only here, never by a comment; each is
 * audited (`tier.changed`: who, why, from, to). src/cli.ts dispatches here.
 */
export const TIER_USAGE = `usage: npm run agent -- tier show [--repo <owner/name> [--stack <name>] --actor <login> [--member-of <team-slug,…>]]
       npm run agent -- tier set (--repo <owner/name> | --repo <owner/name> --stack <name> | --actor <login> | --team <org/team-slug>) --tier <observer | operator | builder | executor | architect | default> --reason <text> [--as <operator name>]

  show    every assignment (JSON), or the effective tier of an actor's task in a repository (and
          stack); the app asks GitHub for team memberships, here --member-of says which teams of
          the repository's organisation the actor is in
  set     assign a tier; "default" removes the assignment (back to TRUST_DEFAULT_TIER). A team's
          tier is an actor's when they have none of their own (the highest of their teams')

exit status: 0 done, 1 failure, 2 usage error
`;

const LOGIN = new RegExp(`^${GITHUB_LOGIN_SOURCE}$`);
/** A team slug (lowercase letters, digits, `-`, `_`), and `org/slug`. */
const SLUG = /^[a-z0-9][a-z0-9_-]{0,99}$/i;
const TEAM = new RegExp(`^${GITHUB_LOGIN_SOURCE}/[a-z0-9][a-z0-9_-]{0,99}$`, "i");

export async function tierCommand(argv: readonly string[], deps: { db: Db; env: NodeJS.ProcessEnv }, io: AuditCliIo): Promise<number> {
  const usage = (message: string) => {
    io.stderr(`error: ${message}\n\n${TIER_USAGE}`);
    return 2;
  };
  const parsed = parseFlags(argv, { repo: { type: "string" }, stack: { type: "string" }, actor: { type: "string" }, team: { type: "string" }, "member-of": { type: "string" }, tier: { type: "string" }, reason: { type: "string" }, as: { type: "string" } } as const);
  if (!parsed.ok) return usage(parsed.message);
  const { values, positionals } = parsed;
  const [command, ...extra] = positionals;
  if (extra.length) return usage(`unexpected argument: ${JSON.stringify(extra[0]).slice(0, 60)}`);
  if (values.repo !== undefined && !REPO_PATTERN.test(values.repo)) return usage("--repo: not owner/name");
  if (values.stack !== undefined && (!STACK_NAME_RE.test(values.stack) || values.repo === undefined)) return usage("--stack needs a stack name and --repo");
  if (values.actor !== undefined && !LOGIN.test(values.actor)) return usage("--actor: not a GitHub login");
  if (values.team !== undefined && !TEAM.test(values.team)) return usage("--team: not org/team-slug");
  const memberOf = values["member-of"]?.split(",").map((t) => t.trim()).filter(Boolean) ?? [];
  if (memberOf.some((t) => !SLUG.test(t))) return usage("--member-of: a comma-separated list of team slugs");
  const fallback = loadServerConfig(deps.env).defaultTier;
  if (command === "show") {
    if (values.actor !== undefined && values.repo !== undefined) {
      const e = await tierOf(deps.db, { actor: values.actor, repo: values.repo, stack: values.stack ?? null, teams: async (slugs) => slugs.filter((s) => memberOf.includes(s.toLowerCase())) }, fallback);
      io.stdout(`${JSON.stringify({ tier: e.tier.name, level: e.tier.level, rule: describeTier(e).replaceAll("\u200b", ""), sources: e.sources, capabilities: e.tier }, null, 2)}\n`);
    } else io.stdout(`${JSON.stringify({ default: fallback, assigned: await listTiers(deps.db) }, null, 2)}\n`);
    return 0;
  }
  if (command !== "set") return usage(command === undefined ? "no tier command given" : `unknown tier command: ${JSON.stringify(command).slice(0, 60)}`);
  const given = [values.actor, values.repo, values.team].filter((v) => v !== undefined).length;
  const target: { kind: TierKind; subject: string } | null =
    given !== 1 ? null : values.actor !== undefined ? { kind: "actor", subject: values.actor } : values.team !== undefined ? { kind: "team", subject: values.team } : values.stack ? { kind: "stack", subject: `${values.repo}:${values.stack}` } : { kind: "repository", subject: values.repo! };
  if (!target) return usage("give exactly one of --actor, --team, --repo, or --repo with --stack");
  const tier = values.tier === "default" ? null : (TIER_NAMES as readonly string[]).includes(values.tier ?? "") ? (values.tier as TierName) : undefined;
  if (tier === undefined) return usage(`--tier must be ${TIER_NAMES.join(", ")} or default`);
  const reason = reasonOf(values.reason);
  if (!reason) return usage("--reason <text> is required (at most 500 characters)");
  const by = operatorName(deps.env, values.as);
  if (!by) return usage(OPERATOR_NAME_HINT);
  const changed = await setTier(deps.db, { ...target, tier, by, reason });
  io.stdout(`${JSON.stringify({ ...target, ...changed }, null, 2)}\n`);
  return 0;
}
