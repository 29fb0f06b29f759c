import type { Logger } from "pino";
import { VaultUnavailableError } from "./errors.js";

export class GithubKeyError extends Error {
  override name = "GithubKeyError";
}

/**
 * The GitHub App's private key from Vault (KV v2), for a deployment that keeps no key on disk.
 * Waits while Vault is unreachable (the app starts only once it has the key); anything else —
 * a refused read, a missing field, a value that is not a PEM key — needs a human and throws.
 */
export async function readGithubPrivateKey(
  vault: { read(path: string): Promise<unknown> },
  ref: { kv: string; key: string },
  opts: { log: Logger; retryMs?: number; signal?: AbortSignal },
): Promise<string> {
  const retryMs = opts.retryMs ?? 5000;
  for (;;) {
    let res: unknown;
    try {
      res = await vault.read(ref.kv);
    } catch (err) {
      if (!(err instanceof VaultUnavailableError)) throw new GithubKeyError(`cannot read the GitHub App key from ${ref.kv}: ${(err as Error).message}`);
      opts.log.warn({ path: ref.kv, err: err.message }, "Vault is unavailable: waiting for the GitHub App key before starting");
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, retryMs);
        opts.signal?.addEventListener("abort", () => (clearTimeout(t), reject(new GithubKeyError("stopped while waiting for the GitHub App key"))), { once: true });
      });
      continue;
    }
    const value = (res as { data?: { data?: Record<string, unknown> } })?.data?.data?.[ref.key];
    if (typeof value !== "string") throw new GithubKeyError(`the secret ${ref.kv} has no string field "${ref.key}" (the GitHub App key)`);
    const pem = value.includes("-----BEGIN") ? value : Buffer.from(value, "base64").toString("utf8");
    if (!/-----BEGIN (RSA )?PRIVATE KEY-----/.test(pem)) throw new GithubKeyError(`the field "${ref.key}" of ${ref.kv} is not a PEM private key`);
    return pem;
  }
}
