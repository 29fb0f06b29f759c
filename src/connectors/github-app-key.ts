/**
 * The GitHub App's private key, swappable while the app runs (issue 20: the key is rotated by a
 * person in the app's settings and written to Vault; the app picks it up without a restart).
 *
 * Every GitHub App JWT is signed by `AppKeyRing.createJwt` (@octokit/auth-app's `createJwt`
 * option, made for keys held elsewhere), so every Octokit client the app makes — Probot's
 * app-level one, its installation clients and the outbox's — signs with whichever key is
 * current at the moment it needs a JWT. Installation tokens already minted stay valid until
 * they expire, so work in flight is not disturbed by a switch.
 *
 * Old and new both accepted: the ring keeps the key it replaced. When GitHub refuses a JWT
 * (401 on an app-authenticated route) the ring asks its recovery (src/ops/github-app-key.ts:
 * a newer key in Vault that GitHub accepts, else the held one if GitHub still accepts it) and
 * the request is sent once more with the key that works.
 */
import { createHash, createPublicKey } from "node:crypto";
import githubAppJwt from "universal-github-app-jwt";
import type { ProbotOctokit } from "probot";

export interface AppKey {
  pem: string;
  /** Its KV v2 version in Vault (0: not from Vault). */
  version: number;
  /** As GitHub's settings page lists it: `SHA256:` + base64 of the SHA-256 of the DER public key. */
  fingerprint: string;
}

/** GitHub's fingerprint of a private key (`openssl rsa -pubout -outform DER | openssl sha256 -binary | openssl base64`). */
export function keyFingerprint(pem: string): string {
  const der = createPublicKey(pem).export({ type: "spki", format: "der" });
  return `SHA256:${createHash("sha256").update(der).digest("base64")}`;
}

export function appKey(pem: string, version: number): AppKey {
  return { pem, version, fingerprint: keyFingerprint(pem) };
}

/** A JWT for app `appId` signed with `pem` (GitHub's shape: iat 30 s back, 10 min life). */
export async function signAppJwt(appId: string | number, pem: string, timeDifference = 0): Promise<{ jwt: string; expiresAt: string }> {
  const { token, expiration } = await githubAppJwt({ id: appId, privateKey: pem, now: Math.floor(Date.now() / 1000) + timeDifference });
  return { jwt: token, expiresAt: new Date(expiration * 1000).toISOString() };
}

export class AppKeyRing {
  #current: AppKey;
  #previous: AppKey | null = null;
  #recovery: (() => Promise<boolean>) | null = null;
  #recovering: Promise<boolean> | null = null;

  constructor(initial: AppKey) {
    this.#current = initial;
  }

  get current(): AppKey {
    return this.#current;
  }

  /** The key the current one replaced, kept while GitHub may still accept only it. */
  get previous(): AppKey | null {
    return this.#previous;
  }

  /** Makes `key` current (the caller verified GitHub accepts it); the replaced one is held. */
  install(key: AppKey): void {
    if (key.fingerprint === this.#current.fingerprint) {
      this.#current = { ...this.#current, version: Math.max(this.#current.version, key.version) };
      return;
    }
    this.#previous = this.#current;
    this.#current = key;
  }

  /** auth-app's `createJwt`: signs with the key current now. */
  readonly createJwt = (appId: string | number, timeDifference?: number) => signAppJwt(appId, this.#current.pem, timeDifference ?? 0);

  /** Who finds a working key when GitHub refuses the current one (set once the app is wired). */
  onRefused(recovery: () => Promise<boolean>): void {
    this.#recovery = recovery;
  }

  /** GitHub refused a JWT: true when another key is now current. Concurrent refusals share one recovery. */
  recover(): Promise<boolean> {
    if (!this.#recovery) return Promise.resolve(false);
    this.#recovering ??= this.#recovery()
      .catch(() => false)
      .finally(() => {
        this.#recovering = null;
      });
    return this.#recovering;
  }
}

/** Routes GitHub authenticates with the app's JWT (not an installation token). */
export function isAppJwtRoute(url: string): boolean {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return false;
  }
  path = path.replace(/^\/api\/v3(?=\/)/, "");
  return /^\/app(\/|$)/.test(path) || /^\/(repos\/[^/]+\/[^/]+|orgs\/[^/]+|users\/[^/]+)\/installation$/.test(path);
}

/**
 * The Octokit class signing its app JWTs with `ring` (the `privateKey` Probot passes is replaced
 * by `createJwt`), and sending once more a request whose JWT GitHub refused when the ring's
 * recovery found another key.
 */
export function withAppKeyRing<C extends typeof ProbotOctokit>(Octokit: C, ring: AppKeyRing): C {
  const Signing = Octokit.defaults((options: { auth?: Record<string, unknown> }) => {
    if (!options.auth || !("privateKey" in options.auth || "createJwt" in options.auth)) return options;
    const { privateKey: _privateKey, ...auth } = options.auth;
    return { ...options, auth: { ...auth, createJwt: ring.createJwt } };
  }) as unknown as C;
  return Signing.plugin((octokit: { hook: InstanceType<C>["hook"] }) => {
    octokit.hook.wrap("request", async (request, options) => {
      const signedWith = ring.current.fingerprint;
      try {
        return await request(options);
      } catch (err) {
        const e = err as { status?: number; request?: { url?: string } };
        if (e.status !== 401 || !isAppJwtRoute(e.request?.url ?? "")) throw err;
        // Another request may have switched keys meanwhile; otherwise ask for a working key.
        if (ring.current.fingerprint === signedWith && !(await ring.recover())) throw err;
        return request(options);
      }
    });
    return {};
  }) as unknown as C;
}
