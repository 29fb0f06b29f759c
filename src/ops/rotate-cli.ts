import type { Logger } from "pino";
import { CredentialsConfigError, credentialsConfigFromEnv, GITHUB_APP_KEY_MANUAL, GITHUB_APP_KEY_SECRET } from "../config/credentials-config.js";
import type { Db } from "../connectors/store/db.js";
import { credentialSourceFromConfig } from "../connectors/vault/index.js";
import type { AuditCliIo } from "./audit-cli.js";
import { OPERATOR_NAME_HINT, operatorName, parseFlags } from "./cli-args.js";
import { defaultGenerator, rotateSecret, type KvApi, type RotationOutcome } from "./rotation.js";

/**
 * `rotate --secret <name> | --all`: emergency rotation of the static secrets the credentials
 * config's `rotation` lists (src/ops/rotation.ts), with the app's Vault identity; every step is
 * audited. Combine with `revoke` (break-glass) when leases may be compromised too.
 */
export const ROTATE_USAGE = `usage: npm run agent -- rotate (--secret <name> | --all) [--as <operator name>]

  rotate   write a new version of the secret (or of every rotated secret), verify it, destroy the
           old version; a failure keeps the old value (exit 1). Audited as rotation.*

exit status: 0 done, 1 a rotation failed, 2 usage or configuration error
`;

export async function rotateCommand(argv: readonly string[], deps: { db: Db; env: NodeJS.ProcessEnv; log: Logger; vault?: KvApi }, io: AuditCliIo): Promise<number> {
  const usage = (message: string) => {
    io.stderr(`error: ${message}\n\n${ROTATE_USAGE}`);
    return 2;
  };
  const parsed = parseFlags(argv, { secret: { type: "string" }, all: { type: "boolean" }, as: { type: "string" } } as const);
  if (!parsed.ok) return usage(parsed.message);
  const { values, positionals } = parsed;
  if (positionals.length) return usage(`unexpected argument: ${JSON.stringify(positionals[0]).slice(0, 60)}`);
  if ((values.secret === undefined) === (values.all !== true)) return usage("give exactly one of --secret <name> or --all");
  const actor = operatorName(deps.env, values.as);
  if (!actor) return usage(OPERATOR_NAME_HINT);
  let config;
  try {
    config = credentialsConfigFromEnv(deps.env);
  } catch (err) {
    if (err instanceof CredentialsConfigError) return usage(err.message);
    throw err;
  }
  if (values.secret === GITHUB_APP_KEY_SECRET) return usage(GITHUB_APP_KEY_MANUAL);
  const secrets = config?.rotation?.secrets ?? [];
  const chosen = values.all ? secrets : secrets.filter((s) => s.name === values.secret);
  if (!config?.vault || chosen.length === 0) return usage(values.all || !config?.vault ? "no secret rotation is configured (CREDENTIALS_CONFIG with `vault` and `rotation`)" : `no rotated secret is named ${JSON.stringify(values.secret)} (configured: ${secrets.map((s) => s.name).join(", ") || "none"})`);
  const runtime = deps.vault ? null : await credentialSourceFromConfig(config, { db: deps.db, log: deps.log, env: deps.env });
  try {
    const vault = deps.vault ?? runtime!.session!;
    const outcomes: RotationOutcome[] = [];
    for (const spec of chosen) outcomes.push(await rotateSecret({ vault, db: deps.db, generate: defaultGenerator(deps.env) }, spec, { actor, reason: "emergency" }));
    io.stdout(`${JSON.stringify(outcomes, null, 2)}\n`);
    return outcomes.every((o) => o.rotated) ? 0 : 1;
  } finally {
    runtime?.close();
  }
}
