import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import type { CredentialsConfig, VaultSettings } from "../../config/credentials-config.js";
import type { CredentialSource } from "../credentials.js";
import { EnvCredentialSource } from "../env-credentials.js";
import type { Db } from "../store/db.js";
import { VaultCredentialSource, type RecoveryResult, type RevokeAllResult } from "./credential-source.js";
import { VaultUnavailableError } from "./errors.js";
import { HealthProbe, type VaultHealth } from "./health.js";
import { systemClock, VaultSession, type Clock } from "./session.js";

export { CredentialError, VaultAuthError, VaultError, VaultRequestError, VaultUnavailableError } from "./errors.js";
export { VaultCredentialSource, type RecoveryResult, type RevokeAllResult, type VaultApi } from "./credential-source.js";
export { VaultSession, systemClock, type Clock, type ReachabilityListener, type VaultSessionOptions } from "./session.js";
export { fetchVaultHealth, healthFromStatus, HealthProbe, type VaultHealth } from "./health.js";

export interface CredentialsRuntime {
  /** recoverLeases / revokeAll exist only with Vault (the env fallback has no leases). */
  source: CredentialSource & {
    recoverLeases?(): Promise<RecoveryResult>;
    revokeAll?(filter?: { stack?: string }): Promise<RevokeAllResult>;
  };
  /** For health and metrics (`reachable`, `onReachability`); null without Vault. */
  session: VaultSession | null;
  /** The `sys/health` probe (with Vault and `healthIntervalSeconds`); `probeNow()` runs a round at once. */
  health: HealthProbe<VaultHealth> | null;
  /** Stops token renewal and the health probe. */
  close(): void;
}

export interface CredentialsDeps {
  db: Db;
  log: Logger;
  /** Where secret_id_env and the env fallback read from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  /**
   * Probe Vault's `sys/health` this often (VAULT_HEALTH_INTERVAL_SECONDS), so reachability does
   * not wait for the next call; absent: no probe (one-shot users such as the CLI).
   */
  healthIntervalSeconds?: number;
}

/**
 * Vault when the config has a `vault:` section, else the development env fallback. A Vault
 * that is down at start-up does not stop the app (tasks fail with a clear error and the
 * session keeps trying); a Vault that refuses the app's identity does: that needs a human.
 */
export async function credentialSourceFromConfig(config: CredentialsConfig, deps: CredentialsDeps): Promise<CredentialsRuntime> {
  const env = deps.env ?? process.env;
  if (!config.vault) {
    return { source: new EnvCredentialSource(config, { log: deps.log, env }), session: null, health: null, close: () => {} };
  }
  const v = config.vault;
  const session = new VaultSession({
    address: v.address,
    ...(v.namespace ? { namespace: v.namespace } : {}),
    roleId: v.approle.role_id,
    readSecretId: secretIdReader(v.approle, env),
    wrapped: v.approle.wrapped,
    mount: v.approle.mount,
    renewBeforeSeconds: v.renew_before_seconds,
    requestTimeoutMs: v.request_timeout_seconds * 1000,
    log: deps.log,
    ...(deps.clock ? { clock: deps.clock } : {}),
  });
  try {
    await session.start();
  } catch (err) {
    if (!(err instanceof VaultUnavailableError)) {
      session.close();
      throw err;
    }
    deps.log.error({ vault: session.address, err: err.message }, "Vault is unavailable at start-up; tasks needing credentials fail until it is back");
  }
  const source = new VaultCredentialSource({ vault: session, config, db: deps.db, log: deps.log, taskTokens: v.task_tokens });
  const health =
    deps.healthIntervalSeconds === undefined
      ? null
      : new HealthProbe({ check: () => session.checkHealth(), intervalMs: deps.healthIntervalSeconds * 1000, timers: deps.clock ?? systemClock });
  health?.start();
  return {
    source,
    session,
    health,
    close: () => {
      health?.stop();
      session.close();
    },
  };
}

/** Reads the secret id (or wrapping token) from its file or variable each time it is needed. */
export function secretIdReader(approle: VaultSettings["approle"], env: NodeJS.ProcessEnv): () => Promise<string> {
  const file = approle.secret_id_file;
  if (file) {
    return async () => {
      try {
        return (await readFile(file, "utf8")).trim();
      } catch (err) {
        throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
  }
  const name = approle.secret_id_env ?? "VAULT_SECRET_ID";
  return async () => {
    const value = env[name];
    if (!value) throw new Error(`environment variable ${name} is not set`);
    return value;
  };
}
