import type { Logger } from "pino";
import { VaultUnavailableError } from "./errors.js";

export class GithubKeyError extends Error {
  override name = "GithubKeyError";
}

/** The key as read: its PEM and the KV v2 version it is (0 when Vault's answer names none). */
export interface VaultGithubKey {
  pem: string;
  version: number;
}

/** The PEM of a KV v2 read answer's field, raw or base64; throws GithubKeyError naming what is wrong. */
export function githubKeyFromKv(res: unknown, ref: { kv: string; key: string }): VaultGithubKey {
  const body = res as { data?: { data?: Record<string, unknown>; metadata?: { version?: unknown } } };
  const value = body?.data?.data?.[ref.key];
  if (typeof value !== "string") throw new GithubKeyError(`the secret ${ref.kv} has no string field "${ref.key}" (the GitHub App key)`);
  const pem = value.includes("-----BEGIN") ? value : Buffer.from(value, "base64").toString("utf8");
  if (!/-----BEGIN (RSA )?PRIVATE KEY-----/.test(pem)) throw new GithubKeyError(`the field "${ref.key}" of ${ref.kv} is not a PEM private key`);
  const version = Number(body?.data?.metadata?.version);
  return { pem, version: Number.isInteger(version) && version > 0 ? version : 0 };
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
): Promise<VaultGithubKey> {
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
    return githubKeyFromKv(res, ref);
  }
}
