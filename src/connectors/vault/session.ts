import NodeVault from "node-vault";
import type { Logger } from "pino";
import { VaultAuthError, VaultError, VaultRequestError, VaultUnavailableError } from "./errors.js";
import { fetchVaultHealth, type VaultHealth } from "./health.js";

export { VaultAuthError, VaultError, VaultRequestError, VaultUnavailableError } from "./errors.js";

/** Time and timers, injectable so tests never sleep. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

// Globals looked up at call time, so vitest's fake timers apply too.
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending renewal must not keep the process alive on shutdown.
    (t as { unref?: () => void }).unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface VaultSessionOptions {
  /** e.g. https://vault.example:8200 (no /v1). */
  address: string;
  namespace?: string;
  roleId: string;
  /**
   * Returns the AppRole secret id, or with `wrapped` the response-wrapping token holding it.
   * Called for every login when not wrapped, so a rotated secret id file is picked up.
   */
  readSecretId: () => Promise<string>;
  wrapped?: boolean;
  /** Mount path of the AppRole auth method. */
  mount?: string;
  renewBeforeSeconds?: number;
  /** Delay before logging in again after a failed login. */
  retrySeconds?: number;
  requestTimeoutMs?: number;
  log: Logger;
  clock?: Clock;
}

export type ReachabilityListener = (reachable: boolean, error: VaultError | null) => void;

// setTimeout's ceiling (~24.8 days); a longer token TTL is simply renewed early.
const MAX_TIMER_MS = 2 ** 31 - 1;

interface AuthBlock {
  client_token: string;
  lease_duration?: number;
  renewable?: boolean;
  policies?: string[];
}

/**
 * The app's own Vault identity: AppRole login, token renewal before expiry, a fresh login when
 * renewal fails, and calls made with the current token. Vault errors come out typed; whether
 * Vault answers at all is tracked in `reachable` for health and metrics.
 *
 * Every dynamic lease is a child of the token that created it: Vault revokes them when that
 * token expires. Hence the token is renewed for as long as possible, and a fresh login only
 * happens when renewal is impossible (the old token is then gone or about to be anyway).
 */
export class VaultSession {
  readonly address: string;
  readonly #opts: VaultSessionOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** Unauthenticated calls (login, unwrap): never carries the app's token. */
  readonly #anon: NodeVault.client;
  /** Authenticated calls, with the current token. */
  readonly #api: NodeVault.client;
  readonly #renewBefore: number;
  #expiresAt = 0;
  #unwrappedSecretId: string | null = null;
  #timer: unknown = null;
  #loginInFlight: Promise<void> | null = null;
  #closed = false;
  #reachable = false;
  #unreachableReason: string | null = null;
  readonly #listeners = new Set<ReachabilityListener>();

  constructor(opts: VaultSessionOptions) {
    this.#opts = opts;
    this.address = opts.address.replace(/\/+$/, "");
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.log;
    this.#renewBefore = opts.renewBeforeSeconds ?? 60;
    this.#anon = this.#newClient();
    this.#api = this.#newClient();
  }

  /**
   * True once Vault has answered (even with an error); false before that and after a network
   * error, 5xx or sealed. The latest observation wins: a call or a health check (checkHealth).
   */
  get reachable(): boolean {
    return this.#reachable;
  }

  /** Why Vault counts as unreachable (the latest failure's message), or null while it is reachable. */
  get unreachableReason(): string | null {
    return this.#reachable ? null : this.#unreachableReason;
  }

  /**
   * Asks Vault's `sys/health` (health.ts says which answers count as up) and takes the answer as
   * the current reachability, so an outage, and the way back, show in `/readyz` and
   * `agent_vault_up` without a task having to need Vault. Never throws.
   */
  async checkHealth(): Promise<VaultHealth> {
    const health = await fetchVaultHealth(this.address, this.#opts.requestTimeoutMs ?? 10_000);
    const error = health.up ? null : new VaultUnavailableError(`Vault at ${this.address} is ${health.state} (sys/health)`, health.status ?? undefined);
    this.#setReachable(health.up, error);
    return health;
  }

  /** Whether the session holds a token it believes valid. */
  get authenticated(): boolean {
    return this.#api.token.length > 0 && this.#clock.now() < this.#expiresAt;
  }

  /** Called on every change of `reachable`; returns the unsubscribe function. */
  onReachability(cb: ReachabilityListener): () => void {
    this.#listeners.add(cb);
    return () => void this.#listeners.delete(cb);
  }

  /** First login (unwrapping the secret id if it is wrapped). */
  async start(): Promise<void> {
    await this.login();
  }

  /** Logs in with AppRole; concurrent callers share one login. */
  login(): Promise<void> {
    this.#loginInFlight ??= this.#login().finally(() => {
      this.#loginInFlight = null;
    });
    return this.#loginInFlight;
  }

  /** Renews the token (normally called by the timer); logs in again when renewal fails. */
  async renew(): Promise<void> {
    this.#clearTimer();
    if (!this.#api.token) return this.login();
    let res: unknown;
    try {
      res = await this.#call("token renewal", "request", () => this.#api.tokenRenewSelf());
    } catch (err) {
      this.#log.warn({ vault: this.address, err: (err as Error).message }, "Vault token renewal failed; logging in again");
      return this.login();
    }
    const ttl = Number((res as { auth?: AuthBlock } | null)?.auth?.lease_duration) || 0;
    // Near the token's max TTL renewals come back ever shorter: a fresh token is needed.
    if (ttl > 0 && ttl <= this.#renewBefore) {
      this.#log.info({ vault: this.address, ttl }, "Vault token reached its maximum TTL; logging in again");
      return this.login();
    }
    this.#accept(res, "token renewal");
  }

  /** GET <path> with the app's token; the whole response body. */
  read(path: string): Promise<unknown> {
    return this.#authed(`read ${path}`, () => this.#api.read(path));
  }

  /** A call with the app's token to any API path (`/secret/data/app`): KV v2 writes, metadata, destroy. */
  request(method: "GET" | "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<unknown> {
    return this.#authed(`${method} ${path}`, () => this.#api.request({ path: path.startsWith("/") ? path : `/${path}`, method, ...(body !== undefined ? { json: body } : {}) }));
  }

  /**
   * A child token of the app's for one task (`auth/token/create`): not renewable, dead after
   * `ttlSeconds` (explicit max TTL), and every lease read with it is revoked by Vault when it
   * dies — a worker that crashed cannot leave a task's dynamic credentials alive past that.
   */
  async createChildToken(r: { ttlSeconds: number; meta: Record<string, string> }): Promise<{ token: string; accessor: string }> {
    const ttl = `${r.ttlSeconds}s`;
    const res = (await this.#authed("create a task token", () =>
      this.#api.request({ path: "/auth/token/create", method: "POST", json: { ttl, explicit_max_ttl: ttl, renewable: false, display_name: "task", meta: r.meta } }),
    )) as { auth?: { client_token?: unknown; accessor?: unknown } } | null;
    const token = res?.auth?.client_token;
    const accessor = res?.auth?.accessor;
    if (typeof token !== "string" || !token || typeof accessor !== "string" || !accessor) throw new VaultError("auth/token/create answered without a token and accessor");
    return { token, accessor };
  }

  /** GET <path> with another token (a task's child token); the whole response body. */
  readAs(token: string, path: string): Promise<unknown> {
    return this.#authed(`read ${path}`, () => this.#api.request({ path: `/${path.replace(/^\/+/, "")}`, method: "GET", headers: { "X-Vault-Token": token } }));
  }

  /** POST auth/token/revoke-accessor: ends a task token and, with it, its leases. */
  async revokeAccessor(accessor: string): Promise<void> {
    await this.#authed("revoke a task token", () => this.#api.request({ path: "/auth/token/revoke-accessor", method: "POST", json: { accessor } }));
  }

  /** PUT sys/leases/revoke. */
  async revokeLease(leaseId: string): Promise<void> {
    await this.#authed(`revoke lease ${leaseId}`, () => this.#api.revoke({ lease_id: leaseId }));
  }

  /**
   * PUT sys/leases/revoke-prefix/<prefix>/ (needs `sudo` on that path). The trailing slash
   * keeps `database/creds/app` from also matching `database/creds/app2`. node-vault's own
   * revokePrefix uses the deprecated sys/revoke-prefix path, hence the generic request.
   */
  async revokePrefix(prefix: string): Promise<void> {
    const clean = prefix.replace(/^\/+|\/+$/g, "");
    await this.#authed(`revoke prefix ${clean}`, () => this.#api.request({ path: `/sys/leases/revoke-prefix/${clean}/`, method: "PUT" }));
  }

  /** Stops renewals and retries. Calls still work with the current token until it expires. */
  close(): void {
    this.#closed = true;
    this.#clearTimer();
  }

  #newClient(): NodeVault.client {
    const client = NodeVault({
      endpoint: this.address,
      apiVersion: "v1",
      // node-vault's debug output (DEBUG=node-vault) prints request bodies: secret ids included.
      debug: () => {},
      ...(this.#opts.namespace ? { namespace: this.#opts.namespace } : {}),
      requestOptions: { timeout: this.#opts.requestTimeoutMs ?? 10_000 },
    }) as NodeVault.client & { namespace?: string; pathPrefix: string };
    // node-vault falls back to VAULT_TOKEN / VAULT_NAMESPACE / VAULT_PREFIX from the process
    // environment; only the credentials config decides here.
    client.token = "";
    client.namespace = this.#opts.namespace;
    client.pathPrefix = "";
    return client;
  }

  async #login(): Promise<void> {
    this.#clearTimer();
    try {
      const secretId = await this.#secretId();
      this.#anon.token = ""; // node-vault keeps the token of the last login on the client
      const res = await this.#call("AppRole login", "auth", () =>
        this.#anon.approleLogin({ mount_point: this.#opts.mount ?? "approle", role_id: this.#opts.roleId, secret_id: secretId }),
      );
      this.#anon.token = "";
      const auth = this.#accept(res, "AppRole login");
      this.#log.info({ vault: this.address, policies: auth.policies, ttl: auth.lease_duration }, "logged in to Vault");
    } catch (err) {
      this.#scheduleRetry();
      throw err;
    }
  }

  async #secretId(): Promise<string> {
    if (this.#opts.wrapped && this.#unwrappedSecretId) return this.#unwrappedSecretId;
    let value: string;
    try {
      value = (await this.#opts.readSecretId()).trim();
    } catch (err) {
      throw new VaultAuthError(`cannot read the AppRole secret id: ${(err as Error).message}`);
    }
    if (!value) throw new VaultAuthError("the AppRole secret id is empty");
    if (!this.#opts.wrapped) return value;
    // A wrapping token works once: it is unwrapped here and the secret id kept in memory.
    const res = await this.#call("unwrapping the secret id", "auth", () =>
      this.#anon.unwrap({ requestOptions: { headers: { "X-Vault-Token": value } } }),
    );
    const secretId = (res as { data?: { secret_id?: unknown } } | null)?.data?.secret_id;
    if (typeof secretId !== "string" || !secretId) throw new VaultAuthError(`Vault at ${this.address} unwrapped no secret_id from the wrapping token`);
    this.#unwrappedSecretId = secretId;
    return secretId;
  }

  /** Takes the token of a login or renewal and schedules the next renewal. */
  #accept(res: unknown, what: string): AuthBlock {
    const auth = (res as { auth?: AuthBlock } | null)?.auth;
    if (!auth || typeof auth.client_token !== "string" || !auth.client_token) {
      throw new VaultAuthError(`Vault at ${this.address} answered the ${what} without a client token`);
    }
    this.#api.token = auth.client_token;
    const ttl = Number(auth.lease_duration) || 0;
    this.#expiresAt = ttl > 0 ? this.#clock.now() + ttl * 1000 : Infinity;
    this.#schedule(ttl, auth.renewable !== false);
    return auth;
  }

  #schedule(ttl: number, renewable: boolean): void {
    this.#clearTimer();
    if (this.#closed || ttl <= 0) return; // a token without a TTL needs no renewal
    // The configured margin, but never earlier than a third of the TTL (no renewal storm on short TTLs).
    const delaySeconds = Math.max(ttl - this.#renewBefore, ttl / 3, 1);
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = null;
        // Failures are logged and retried inside; nothing to do with them here.
        void (renewable ? this.renew() : this.login()).catch(() => {});
      },
      Math.min(delaySeconds * 1000, MAX_TIMER_MS),
    );
  }

  #scheduleRetry(): void {
    this.#clearTimer();
    if (this.#closed) return;
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = null;
        void this.login().catch(() => {});
      },
      (this.#opts.retrySeconds ?? 30) * 1000,
    );
  }

  #clearTimer(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #authed<T>(what: string, fn: () => Promise<T>): Promise<T> {
    // A token past its expiry (timers delayed, process suspended) is replaced before use.
    if (!this.authenticated) await this.login();
    return this.#call(what, "request", fn);
  }

  /** Runs one Vault call, maps its failure to a typed error and tracks reachability. */
  async #call<T>(what: string, phase: "auth" | "request", fn: () => Promise<T>): Promise<T> {
    try {
      const res = await fn();
      this.#setReachable(true, null);
      return res;
    } catch (err) {
      const mapped = this.#classify(err, what, phase);
      this.#setReachable(!(mapped instanceof VaultUnavailableError), mapped);
      throw mapped;
    }
  }

  /**
   * Only our own messages leave here: node-vault's errors carry the request (token header,
   * secret id in the body), so they are never passed on or logged.
   */
  #classify(err: unknown, what: string, phase: "auth" | "request"): VaultError {
    if (err instanceof VaultError) return err;
    const e = err as { response?: { statusCode?: unknown; body?: unknown }; code?: unknown; cause?: { code?: unknown }; message?: unknown } | null;
    const status = e?.response?.statusCode;
    if (typeof status === "number") {
      const detail = vaultMessages(e?.response?.body);
      if (status === 503) return new VaultUnavailableError(`Vault at ${this.address} is sealed or unavailable (503) during ${what}${detail}`, status);
      if (status >= 500 || status === 429) return new VaultUnavailableError(`Vault at ${this.address} answered ${status} during ${what}${detail}`, status);
      if (phase === "auth") return new VaultAuthError(`Vault at ${this.address} refused ${what} (${status})${detail}`, status);
      return new VaultRequestError(`Vault at ${this.address} refused ${what} (${status})${detail}`, status);
    }
    const code = typeof e?.code === "string" ? e.code : typeof e?.cause?.code === "string" ? e.cause.code : null;
    const reason = code ?? (typeof e?.message === "string" && e.message ? e.message : "no answer");
    return new VaultUnavailableError(`Vault at ${this.address} is unreachable during ${what}: ${reason}`);
  }

  #setReachable(reachable: boolean, error: VaultError | null): void {
    if (!reachable) this.#unreachableReason = error?.message ?? null;
    if (reachable === this.#reachable) return;
    this.#reachable = reachable;
    if (reachable) this.#log.info({ vault: this.address }, "Vault is reachable");
    else this.#log.error({ vault: this.address, err: error?.message }, "Vault is unreachable");
    for (const cb of this.#listeners) {
      try {
        cb(reachable, error);
      } catch {
        // An observer's failure is not the session's.
      }
    }
  }
}

/** Vault's `{errors: [...]}`, shortened, for messages. */
function vaultMessages(body: unknown): string {
  const errors = (body as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return "";
  const text = errors.filter((x) => typeof x === "string").join("; ").replace(/\s+/g, " ").trim();
  return text ? `: ${text.slice(0, 300)}` : "";
}
