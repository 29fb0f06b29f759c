import type { Logger } from "pino";
import { stackCredentials, type CredentialsConfig } from "../config/credentials-config.js";
import { refuseUntrusted, type CredentialRequest, type CredentialSource, type IssuedCredentials } from "./credentials.js";
import { CredentialError } from "./vault/errors.js";

export const ENV_CREDENTIALS_WARNING = "credentials come from environment variables: not for production";

/**
 * Development without Vault: a stack's `env:` mapping copies variables of the app's own
 * process into the task (task variable ← process variable). Nothing is short-lived or
 * per-kind here, hence the warning; there are no leases to release.
 */
export class EnvCredentialSource implements CredentialSource {
  readonly #config: Pick<CredentialsConfig, "stacks">;
  readonly #env: NodeJS.ProcessEnv;

  constructor(config: Pick<CredentialsConfig, "stacks">, opts: { log: Logger; env?: NodeJS.ProcessEnv }) {
    this.#config = config;
    this.#env = opts.env ?? process.env;
    opts.log.warn(ENV_CREDENTIALS_WARNING);
  }

  async forTask(req: CredentialRequest): Promise<IssuedCredentials> {
    refuseUntrusted(req);
    const mapping = stackCredentials(this.#config, req.stack, req.reviewOf)?.env ?? {};
    const env: Record<string, string> = {};
    for (const [name, from] of Object.entries(mapping)) {
      const value = this.#env[from];
      if (value === undefined) throw new CredentialError(`${name}: the app's environment variable ${from} is not set`, name, null);
      env[name] = value;
    }
    return { env, release: async () => {} };
  }
}
