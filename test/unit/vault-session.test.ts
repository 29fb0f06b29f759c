import nock from "nock";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  VaultAuthError,
  VaultSession,
  VaultUnavailableError,
  type Clock,
  type VaultSessionOptions,
} from "../../src/connectors/vault/session.js";

const VAULT = "https://vault.test:8200";

/** Timers that only run when the test says so; time moves only when the test moves it. */
class FakeClock implements Clock {
  t = 1_700_000_000_000;
  #next = 0;
  timers = new Map<number, { at: number; ms: number; fn: () => void }>();
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.#next;
    this.timers.set(id, { at: this.t + ms, ms, fn });
    return id;
  };
  clearTimeout = (h: unknown) => void this.timers.delete(h as number);
  /** The single pending timer's delay in ms (tests expect at most one). */
  get pendingDelay(): number | null {
    expect(this.timers.size).toBeLessThanOrEqual(1);
    return [...this.timers.values()][0]?.ms ?? null;
  }
  /** Moves time to the next timer and runs it. */
  fireNext(): void {
    const [id, timer] = [...this.timers.entries()].sort((a, b) => a[1].at - b[1].at)[0]!;
    this.timers.delete(id);
    this.t = Math.max(this.t, timer.at);
    timer.fn();
  }
}

const loginReply = (token: string, ttl = 3600) => ({
  request_id: "r-1",
  lease_id: "",
  renewable: false,
  lease_duration: 0,
  data: null,
  auth: { client_token: token, accessor: `acc-${token}`, policies: ["default", "agent"], token_policies: ["default", "agent"], lease_duration: ttl, renewable: true },
});

const renewReply = (token: string, ttl = 3600) => ({
  auth: { client_token: token, accessor: `acc-${token}`, policies: ["default", "agent"], lease_duration: ttl, renewable: true },
});

/** Login must never present a token (not even VAULT_TOKEN from the environment). */
const vaultAnon = () => nock(VAULT, { badheaders: ["x-vault-token"] });

let logs: string[];
let clock: FakeClock;
const sessions: VaultSession[] = [];

function session(over: Partial<VaultSessionOptions> = {}): VaultSession {
  const s = new VaultSession({
    address: `${VAULT}/`,
    roleId: "role-1",
    readSecretId: async () => "secret-id-1\n",
    renewBeforeSeconds: 60,
    log: pino({ level: "info" }, { write: (l: string) => void logs.push(l) }),
    clock,
    ...over,
  });
  sessions.push(s);
  return s;
}

beforeAll(() => {
  nock.disableNetConnect();
  nock.enableNetConnect(/127\.0\.0\.1|localhost/);
});
afterAll(() => {
  nock.enableNetConnect();
});
beforeEach(() => {
  logs = [];
  clock = new FakeClock();
  process.env.VAULT_TOKEN = "ambient-token-must-not-be-used";
});
afterEach(() => {
  for (const s of sessions.splice(0)) s.close();
  delete process.env.VAULT_TOKEN;
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
  // Whatever happened, no token or secret id reached the logs.
  const all = logs.join("\n");
  for (const secret of ["secret-id-1", "tok-1", "tok-2", "wrap-token", "unwrapped-secret"]) expect(all).not.toContain(secret);
});

describe("VaultSession: AppRole login", () => {
  it("logs in with role_id and secret_id, then uses the client token on authenticated calls", async () => {
    const login = vaultAnon().post("/v1/auth/approle/login", { role_id: "role-1", secret_id: "secret-id-1" }).reply(200, loginReply("tok-1"));
    const s = session();
    expect(s.reachable).toBe(false);
    await s.start();
    expect(login.isDone()).toBe(true);
    expect(s.reachable).toBe(true);
    expect(s.authenticated).toBe(true);

    const read = nock(VAULT)
      .get("/v1/secret/data/app")
      .matchHeader("x-vault-token", "tok-1")
      .reply(200, { data: { data: { a: "1" }, metadata: { version: 3, created_time: "2024-01-01T00:00:00Z" } } });
    expect(await s.read("secret/data/app")).toMatchObject({ data: { data: { a: "1" } } });
    expect(read.isDone()).toBe(true);
    // Renewal scheduled renew_before_seconds before the token's TTL ends.
    expect(clock.pendingDelay).toBe((3600 - 60) * 1000);
  });

  it("logs in on a custom mount and sends the namespace header", async () => {
    const login = vaultAnon()
      .post("/v1/auth/ci-approle/login", { role_id: "role-1", secret_id: "secret-id-1" })
      .matchHeader("x-vault-namespace", "team-a")
      .reply(200, loginReply("tok-1"));
    await session({ mount: "ci-approle", namespace: "team-a" }).start();
    expect(login.isDone()).toBe(true);
  });

  it("a refused login is a VaultAuthError (Vault answered: still reachable)", async () => {
    vaultAnon().post("/v1/auth/approle/login").reply(400, { errors: ["invalid role or secret ID"] });
    const s = session();
    const err = await s.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultAuthError);
    expect((err as Error).message).toBe(`Vault at ${VAULT} refused AppRole login (400): invalid role or secret ID`);
    expect((err as VaultAuthError).status).toBe(400);
    expect(s.reachable).toBe(true);
    expect(s.authenticated).toBe(false);
  });

  it("a short TTL is renewed at a third of it, not in a loop", async () => {
    vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-1", 60));
    await session({ renewBeforeSeconds: 60 }).start();
    expect(clock.pendingDelay).toBe(20_000);
  });
});

describe("VaultSession: renewal", () => {
  it("renews with renew-self before expiry, on the timer, and reschedules", async () => {
    vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-1", 3600));
    const s = session();
    await s.start();
    const renew = nock(VAULT).post("/v1/auth/token/renew-self").matchHeader("x-vault-token", "tok-1").reply(200, renewReply("tok-1", 1800));
    clock.fireNext();
    await vi.waitFor(() => expect(renew.isDone()).toBe(true));
    await vi.waitFor(() => expect(clock.pendingDelay).toBe((1800 - 60) * 1000));
    expect(s.authenticated).toBe(true);
  });

  it("a failed renewal logs in again and the new token is used", async () => {
    vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-1"));
    const s = session();
    await s.start();
    nock(VAULT).post("/v1/auth/token/renew-self").matchHeader("x-vault-token", "tok-1").reply(403, { errors: ["permission denied"] });
    const relogin = vaultAnon().post("/v1/auth/approle/login", { role_id: "role-1", secret_id: "secret-id-1" }).reply(200, loginReply("tok-2"));
    await s.renew();
    expect(relogin.isDone()).toBe(true);
    const read = nock(VAULT).get("/v1/secret/data/app").matchHeader("x-vault-token", "tok-2").reply(200, { data: { data: {}, metadata: { version: 1 } } });
    await s.read("secret/data/app");
    expect(read.isDone()).toBe(true);
    expect(logs.join("\n")).toMatch(/renewal failed; logging in again/);
  });

  it("near the token's max TTL (renewal shorter than the margin) logs in again", async () => {
    vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-1"));
    const s = session();
    await s.start();
    nock(VAULT).post("/v1/auth/token/renew-self").matchHeader("x-vault-token", "tok-1").reply(200, renewReply("tok-1", 30));
    const relogin = vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-2"));
    await s.renew();
    expect(relogin.isDone()).toBe(true);
    const read = nock(VAULT).get("/v1/x/data/y").matchHeader("x-vault-token", "tok-2").reply(200, {});
    await s.read("x/data/y");
    expect(read.isDone()).toBe(true);
  });

  it("a token past its expiry (timers delayed) is replaced before the next call", async () => {
    vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-1", 600));
    const s = session();
    await s.start();
    clock.t += 601_000; // the renewal timer never got to run
    expect(s.authenticated).toBe(false);
    const relogin = vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-2"));
    const read = nock(VAULT).get("/v1/x/data/y").matchHeader("x-vault-token", "tok-2").reply(200, {});
    await s.read("x/data/y");
    expect(relogin.isDone() && read.isDone()).toBe(true);
  });

  it("close() clears the renewal timer", async () => {
    vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-1"));
    const s = session();
    await s.start();
    expect(clock.timers.size).toBe(1);
    s.close();
    expect(clock.timers.size).toBe(0);
  });

  it("the default clock unrefs its timer (a pending renewal does not hold the process open)", async () => {
    const spy = vi.spyOn(globalThis, "setTimeout");
    const clear = vi.spyOn(globalThis, "clearTimeout");
    try {
      vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-1"));
      const s = session({ clock: undefined });
      await s.start();
      const i = spy.mock.calls.findIndex((c) => c[1] === (3600 - 60) * 1000);
      expect(i).toBeGreaterThanOrEqual(0);
      const timer = spy.mock.results[i]!.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
      s.close();
      expect(clear).toHaveBeenCalledWith(timer);
    } finally {
      spy.mockRestore();
      clear.mockRestore();
    }
  });
});

describe("VaultSession: Vault unavailable", () => {
  it("a network error is a VaultUnavailableError naming the address; reachable turns false and login is retried", async () => {
    const s = session({ retrySeconds: 30 });
    const seen: boolean[] = [];
    s.onReachability((r) => seen.push(r));
    const refused = () => Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:8200"), { code: "ECONNREFUSED" });
    vaultAnon().post("/v1/auth/approle/login").replyWithError(refused());
    const err = await s.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultUnavailableError);
    expect((err as Error).message).toBe(`Vault at ${VAULT} is unreachable during AppRole login: ECONNREFUSED`);
    expect(s.reachable).toBe(false);
    expect(s.authenticated).toBe(false);
    // A retry is scheduled: it logs in once Vault is back, and observers see it come back.
    expect(clock.pendingDelay).toBe(30_000);
    const login = vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-1"));
    clock.fireNext();
    await vi.waitFor(() => expect(s.reachable).toBe(true));
    expect(login.isDone()).toBe(true);
    expect(s.authenticated).toBe(true);

    // Down again on an authenticated call: typed error, reachable false, observers told.
    nock(VAULT).get("/v1/database/creds/ro").replyWithError(refused());
    await expect(s.read("database/creds/ro")).rejects.toThrow(`Vault at ${VAULT} is unreachable during read database/creds/ro: ECONNREFUSED`);
    expect(s.reachable).toBe(false);
    expect(seen).toEqual([true, false]);
  });

  it("reports each change of reachability once", async () => {
    vaultAnon().post("/v1/auth/approle/login").reply(200, loginReply("tok-1"));
    const s = session();
    const seen: Array<[boolean, string | undefined]> = [];
    const off = s.onReachability((r, e) => seen.push([r, e?.name]));
    await s.start();
    nock(VAULT).get("/v1/a/data/b").reply(500, { errors: ["internal error"] });
    nock(VAULT).get("/v1/a/data/b").reply(502, { errors: [] });
    await expect(s.read("a/data/b")).rejects.toThrow(`Vault at ${VAULT} answered 500 during read a/data/b: internal error`);
    await expect(s.read("a/data/b")).rejects.toBeInstanceOf(VaultUnavailableError);
    nock(VAULT).get("/v1/a/data/b").reply(404, { errors: [] });
    await expect(s.read("a/data/b")).rejects.toThrow(/refused read a\/data\/b \(404\)/);
    off();
    nock(VAULT).get("/v1/a/data/b").reply(503, { errors: ["Vault is sealed"] });
    await expect(s.read("a/data/b")).rejects.toThrow("sealed");
    expect(seen).toEqual([
      [true, undefined],
      [false, "VaultUnavailableError"],
      [true, "VaultRequestError"],
    ]);
    expect(s.reachable).toBe(false);
  });

  it("a sealed Vault (503) on login says so", async () => {
    vaultAnon().post("/v1/auth/approle/login").reply(503, { errors: ["Vault is sealed"] });
    const s = session();
    await expect(s.start()).rejects.toThrow(`Vault at ${VAULT} is sealed or unavailable (503) during AppRole login: Vault is sealed`);
    expect(s.reachable).toBe(false);
  });
});

describe("VaultSession: wrapped secret id", () => {
  it("unwraps the wrapping token once (with it as X-Vault-Token) and logs in with the secret id inside", async () => {
    const readSecretId = vi.fn(async () => "wrap-token");
    const unwrap = nock(VAULT)
      .post("/v1/sys/wrapping/unwrap")
      .matchHeader("x-vault-token", "wrap-token")
      .reply(200, { request_id: "r", lease_id: "", renewable: false, lease_duration: 0, data: { secret_id: "unwrapped-secret", secret_id_accessor: "sa-1" }, wrap_info: null, auth: null });
    const login = vaultAnon().post("/v1/auth/approle/login", { role_id: "role-1", secret_id: "unwrapped-secret" }).reply(200, loginReply("tok-1"));
    const s = session({ wrapped: true, readSecretId });
    await s.start();
    expect(unwrap.isDone() && login.isDone()).toBe(true);

    // A later login reuses the unwrapped secret id: the wrapping token is single-use.
    nock(VAULT).post("/v1/auth/token/renew-self").reply(403, { errors: ["permission denied"] });
    const relogin = vaultAnon().post("/v1/auth/approle/login", { role_id: "role-1", secret_id: "unwrapped-secret" }).reply(200, loginReply("tok-2"));
    await s.renew();
    expect(relogin.isDone()).toBe(true);
    expect(readSecretId).toHaveBeenCalledTimes(1);
  });

  it("an already-used wrapping token is a VaultAuthError", async () => {
    nock(VAULT).post("/v1/sys/wrapping/unwrap").reply(400, { errors: ["wrapping token is not valid or does not exist"] });
    const err = await session({ wrapped: true, readSecretId: async () => "wrap-token" }).start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultAuthError);
    expect((err as Error).message).toMatch(/refused unwrapping the secret id \(400\): wrapping token is not valid/);
  });

  it("without wrapping, the secret id is read again at every login (rotation)", async () => {
    let n = 0;
    const s = session({ readSecretId: async () => `secret-id-${++n}` });
    vaultAnon().post("/v1/auth/approle/login", { role_id: "role-1", secret_id: "secret-id-1" }).reply(200, loginReply("tok-1"));
    await s.start();
    vaultAnon().post("/v1/auth/approle/login", { role_id: "role-1", secret_id: "secret-id-2" }).reply(200, loginReply("tok-2"));
    await s.login();
  });
});
