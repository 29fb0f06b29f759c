import { existsSync, realpathSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { pino, type Logger } from "pino";
import { CredentialsConfigError, credentialsConfigFromEnv, type CredentialsConfig } from "./config/credentials-config.js";
import { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL } from "./config/server-config.js";
import { publishTaskCancel } from "./connectors/cancellation.js";
import { createRedis } from "./connectors/queues.js";
import { createDb } from "./connectors/store/db.js";
import { auditCommand } from "./ops/audit-cli.js";
import { budgetCommand } from "./ops/budget-cli.js";
import { phaseCommand } from "./ops/phase-cli.js";
import { tierCommand } from "./ops/tier-cli.js";
import { rotateCommand } from "./ops/rotate-cli.js";
import { credentialSourceFromConfig, type CredentialsRuntime } from "./connectors/vault/index.js";
import { BreakGlassError, BreakGlassInputError, breakGlass, type BreakGlassDeps } from "./ops/break-glass.js";
import { OPERATOR_NAME_HINT, operatorName } from "./ops/cli-args.js";
import { STACK_NAME_RE } from "./config/fields.js";

/**
 * Operator commands, run next to the app (same DATABASE_URL and CREDENTIALS_CONFIG):
 *
 *   npm run agent -- revoke [--stack <name>] [--as <operator name>]
 *   npm run agent -- audit verify | audit export [--repo o/r] [--stack s] [--since ISO] [--until ISO] [--limit N]
 *   npm run agent -- budget show | budget reset --repo o/r --stack s [--reason <text>] [--as <name>]
 *   npm run agent -- rotate (--secret <name> | --all) [--as <name>]
 *   npm run agent -- phase show [--repo o/r] | phase set --scope <o/r | o/*> --phase <…> --reason <text> [--as <name>]
 *
 * Exit status: 0 done, 1 failed or incomplete, 2 usage or configuration error.
 */

export const USAGE = `usage: npm run agent -- revoke [--stack <name>] [--as <operator name>]

  revoke          break-glass: revoke every credential lease the app holds (Vault prefix
                  revocation), stop queued deploys and the deploys already applying (their
                  worker kills the sandbox; they need a human). Audited as break_glass.revoke.
  --stack <name>  only this stack (default: every stack)
  --as <name>     who is doing this, for the audit log (default: $USER)

  audit verify    recompute the audit log's hash chain; prints its head hash (keep it elsewhere)
  audit export    the audit log as JSON lines: [--repo o/r] [--stack s] [--since ISO] [--until ISO] [--limit N]

  budget show     a stack's error budget: --repo o/r --stack s
  budget reset    its audited reset: --repo o/r --stack s --reason <text> [--as <name>]

  phase show      rollout phases: [--repo o/r]
  phase set       --scope <o/r | o/*> --phase <observe | suggest | act | default> --reason <text> [--as <name>]

  rotate          emergency rotation of static secrets: --secret <name> | --all [--as <name>]

  tier show       trust tiers: [--repo o/r [--stack s] --actor login]
  tier set        (--actor login | --repo o/r [--stack s]) --tier <observer…architect | default> --reason <text> [--as <name>]

environment:
  CREDENTIALS_CONFIG  the app's credentials config file (required)
  DATABASE_URL        the app's database (default ${DEFAULT_DATABASE_URL})

exit status: 0 done, 1 failed or incomplete (see the JSON summary), 2 usage or configuration error
`;

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

const LOG_LEVELS = new Set(["trace", "debug", "info", "warn", "error", "fatal", "silent"]);

/** Runs one command; returns the exit status (never calls process.exit). */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const usageError = (message: string) => {
    io.stderr.write(`error: ${message}\n\n${USAGE}`);
    return 2;
  };

  // `audit …` has its own flags (src/ops/audit-cli.ts).
  if (argv[0] === "audit") {
    const db = createDb(env.DATABASE_URL?.trim() || DEFAULT_DATABASE_URL);
    try {
      return await auditCommand(argv.slice(1), { db }, { stdout: (t) => void io.stdout.write(t), stderr: (t) => void io.stderr.write(t) });
    } finally {
      await db.end().catch(() => {});
    }
  }

  // `budget …` (an error budget and its audited reset) and `phase …` (rollout phases): src/ops/{budget,phase}-cli.ts.
  if (argv[0] === "budget" || argv[0] === "phase" || argv[0] === "tier") {
    const db = createDb(env.DATABASE_URL?.trim() || DEFAULT_DATABASE_URL);
    try {
      const run = argv[0] === "budget" ? budgetCommand : argv[0] === "phase" ? phaseCommand : tierCommand;
      return await run(argv.slice(1), { db, env }, { stdout: (t) => void io.stdout.write(t), stderr: (t) => void io.stderr.write(t) });
    } finally {
      await db.end().catch(() => {});
    }
  }

  // `rotate …`: emergency rotation of static secrets (src/ops/rotate-cli.ts).
  if (argv[0] === "rotate") {
    const db = createDb(env.DATABASE_URL?.trim() || DEFAULT_DATABASE_URL);
    const level = env.LOG_LEVEL && LOG_LEVELS.has(env.LOG_LEVEL) ? env.LOG_LEVEL : "info";
    try {
      return await rotateCommand(argv.slice(1), { db, env, log: pino({ level, base: { cmd: "rotate" } }, { write: (line: string) => void io.stderr.write(line) }) }, { stdout: (t) => void io.stdout.write(t), stderr: (t) => void io.stderr.write(t) });
    } finally {
      await db.end().catch(() => {});
    }
  }

  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: { stack: { type: "string" }, as: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (err) {
    return usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === "help") {
    io.stdout.write(USAGE);
    return 0;
  }
  const [command, ...extra] = positionals;
  if (command === undefined) return usageError("no command given");
  if (command !== "revoke") return usageError(`unknown command: ${JSON.stringify(command).slice(0, 60)}`);
  if (extra.length) return usageError(`unexpected argument: ${JSON.stringify(extra[0]).slice(0, 60)}`);
  if (values.stack !== undefined && !STACK_NAME_RE.test(values.stack)) {
    return usageError(`--stack: not a stack name: ${JSON.stringify(values.stack).slice(0, 80)}`);
  }
  const actor = operatorName(env, values.as);
  if (!actor) return usageError(OPERATOR_NAME_HINT);

  if (!env.CREDENTIALS_CONFIG?.trim()) {
    io.stderr.write(
      "error: CREDENTIALS_CONFIG is not set: point it at the app's credentials config file (the one the app runs with), so the leases can be revoked in its Vault\n",
    );
    return 2;
  }
  let config: CredentialsConfig;
  try {
    config = credentialsConfigFromEnv(env)!;
  } catch (err) {
    if (err instanceof CredentialsConfigError) {
      io.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  const level = env.LOG_LEVEL && LOG_LEVELS.has(env.LOG_LEVEL) ? env.LOG_LEVEL : "info";
  const log: Logger = pino({ level, base: { cmd: "revoke" } }, { write: (line: string) => void io.stderr.write(line) });
  const db = createDb(env.DATABASE_URL?.trim() || DEFAULT_DATABASE_URL);
  let runtime: CredentialsRuntime | null = null;
  let redisClient: ReturnType<typeof createRedis> | null = null;
  try {
    let credentials: BreakGlassDeps["credentials"];
    try {
      runtime = await credentialSourceFromConfig(config, { db, log: log.child({ name: "credentials" }), env });
      credentials = runtime.source;
    } catch (err) {
      // Vault refused the app's identity: still stop the deploys, and audit the failure.
      credentials = { revokeAll: () => Promise.reject(err) };
    }
    try {
      const redis = createRedis(env.REDIS_URL?.trim() || DEFAULT_REDIS_URL);
      redisClient = redis;
      // Workers applying a deploy of the stack stop it when they hear this.
      const stopRunning = (ids: string[]) => publishTaskCancel(redis, env.QUEUE_PREFIX?.trim() || "agent", ids);
      const result = await breakGlass({ db, log, credentials, stopRunning }, { ...(values.stack !== undefined ? { stack: values.stack } : {}), actor, via: "cli" });
      io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return 0;
    } catch (err) {
      if (err instanceof BreakGlassInputError) return usageError(err.message);
      if (err instanceof BreakGlassError) {
        io.stdout.write(`${JSON.stringify(err.result, null, 2)}\n`);
        io.stderr.write(`error: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  } catch (err) {
    io.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    runtime?.close();
    await redisClient?.quit().catch(() => {});
    await db.end().catch(() => {});
  }
}

function runDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(resolve(script)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (runDirectly()) {
  // Like the app (src/main.ts): settings from .env, without overriding the environment.
  const envFile = process.env.ENV_FILE ?? ".env";
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  main(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr }).then(
    (code) => process.stdout.write("", () => process.exit(code)),
    (err: unknown) => {
      process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
