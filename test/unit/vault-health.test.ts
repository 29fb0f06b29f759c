/**
 * Vault's `sys/health` at the HTTP boundary (nock): which answers count as up, how the session
 * takes them as its reachability, and the probe's schedule with timers that only run when the
 * test says so (no sleeps).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import nock from "nock";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseCredentialsConfig } from "../../src/config/credentials-config.js";
import { createDb } from "../../src/connectors/store/db.js";
import { credentialSourceFromConfig } from "../../src/connectors/vault/index.js";
import { fetchVaultHealth, healthFromStatus, HealthProbe, type ProbeTimers } from "../../src/connectors/vault/health.js";
import { VaultSession } from "../../src/connectors/vault/session.js";

const VAULT = "https://vault.test:8200";

/** Vault's sys/health body (its fields as documented; values per state). */
const healthBody = (over: Record<string, unknown> = {}) => ({
  initialized: true,
  sealed: false,
  standby: false,
  performance_standby: false,
  replication_performance_mode: "disabled",
  replication_dr_mode: "disabled",
  server_time_utc: 1_763_800_000,
  version: "1.18.2",
  cluster_name: "vault-cluster-test",
  cluster_id: "3e8b1c2a-0000-4000-8000-000000000000",
  ...over,
});

/** Timers that run only when fired. */
class ManualTimers implements ProbeTimers {
  #next = 0;
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.#next;
    this.pending.set(id, { fn, ms });
    return id;
  };
  clearTimeout = (h: unknown) => void this.pending.delete(h as number);
  fire(): void {
    const [id, t] = [...this.pending][0]!;
    this.pending.delete(id);
    t.fn();
  }
}

beforeAll(() => {
  nock.disableNetConnect();
  nock.enableNetConnect(/127\.0\.0\.1|localhost/);
});
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});
afterAll(() => nock.enableNetConnect());

describe("sys/health: which answers count as up", () => {
  it("active, standby and performance standby are up; DR secondary, uninitialised, sealed, removed and anything else are down", () => {
    expect([200, 429, 473].map((s) => healthFromStatus(s).up)).toEqual([true, true, true]);
    expect([472, 501, 503, 530, 500, 502, 404, 418].map((s) => healthFromStatus(s).up)).toEqual(Array(8).fill(false));
    expect(healthFromStatus(503)).toEqual({ up: false, status: 503, state: "sealed (503)" });
    expect(healthFromStatus(502)).toEqual({ up: false, status: 502, state: "answered 502" });
  });

  it("asks GET /v1/sys/health without a token or namespace, and reads the status", async () => {
    nock(VAULT, { badheaders: ["x-vault-token", "x-vault-namespace"] })
      .get("/v1/sys/health")
      .reply(429, healthBody({ standby: true }))
      .get("/v1/sys/health")
      .reply(503, healthBody({ sealed: true }))
      .get("/v1/sys/health")
      .reply(501, healthBody({ initialized: false, sealed: true }));
    expect(await fetchVaultHealth(`${VAULT}/`, 1000)).toEqual({ up: true, status: 429, state: "standby" });
    expect(await fetchVaultHealth(VAULT, 1000)).toEqual({ up: false, status: 503, state: "sealed (503)" });
    expect(await fetchVaultHealth(VAULT, 1000)).toEqual({ up: false, status: 501, state: "not initialised (501)" });
  });

  it("no connection, or no answer in time, is down, never a throw", async () => {
    // Nothing listens on port 9 of the loopback: the connection is refused at once.
    expect(await fetchVaultHealth("http://127.0.0.1:9", 1000)).toEqual({ up: false, status: null, state: "unreachable: ECONNREFUSED" });
    nock(VAULT).get("/v1/sys/health").replyWithError("socket hang up");
    expect(await fetchVaultHealth(VAULT, 1000)).toEqual({ up: false, status: null, state: "unreachable: socket hang up" });
    // A Vault that takes the connection and never answers (a hung node): down after the timeout.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      expect(await fetchVaultHealth(`http://127.0.0.1:${port}`, 200)).toEqual({ up: false, status: null, state: "unreachable: no answer within 200 ms" });
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe("VaultSession.checkHealth", () => {
  const session = () =>
    new VaultSession({ address: VAULT, roleId: "role-1", readSecretId: async () => "secret-id-1", log: pino({ level: "silent" }), requestTimeoutMs: 1000 });

  it("takes each answer as the session's reachability, with the reason, and tells listeners", async () => {
    const s = session();
    const seen: boolean[] = [];
    s.onReachability((up) => seen.push(up));
    nock(VAULT)
      .get("/v1/sys/health")
      .reply(200, healthBody())
      .get("/v1/sys/health")
      .reply(503, healthBody({ sealed: true }))
      .get("/v1/sys/health")
      .reply(429, healthBody({ standby: true }));
    await s.checkHealth();
    expect(s.reachable).toBe(true);
    expect(s.unreachableReason).toBeNull();
    await s.checkHealth();
    expect(s.reachable).toBe(false);
    expect(s.unreachableReason).toBe(`Vault at ${VAULT} is sealed (503) (sys/health)`);
    await s.checkHealth();
    expect(s.reachable).toBe(true);
    expect(seen).toEqual([true, false, true]);
    s.close();
  });
});

describe("HealthProbe: the schedule", () => {
  it("probes every interval once started, one round at a time, and stops for good", async () => {
    const timers = new ManualTimers();
    let rounds = 0;
    let release: (() => void) | null = null;
    const probe = new HealthProbe({
      check: () => new Promise<number>((resolve) => (release = () => resolve(++rounds))),
      intervalMs: 15_000,
      timers,
    });
    expect(timers.pending.size).toBe(0);
    probe.start();
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([15_000]);
    timers.fire();
    // While a round runs nothing else is scheduled, and probeNow() joins it.
    expect(timers.pending.size).toBe(0);
    const joined = probe.probeNow();
    release!();
    expect(await joined).toBe(1);
    await new Promise((r) => setImmediate(r)); // the round's finally() schedules the next one
    expect(timers.pending.size).toBe(1);

    probe.stop();
    expect(timers.pending.size).toBe(0);
    // A round already running when stopped schedules nothing after it.
    probe.start();
    timers.fire();
    probe.stop();
    release!();
    await new Promise((r) => setImmediate(r));
    expect(timers.pending.size).toBe(0);
    expect(probe.running).toBe(false);
  });

  it("the credentials runtime starts the probe only when asked to, and close() stops it", async () => {
    const timers = new ManualTimers();
    const clock = { now: () => Date.now(), ...timers };
    const config = parseCredentialsConfig({ vault: { address: VAULT, approle: { role_id: "role-1", secret_id_env: "SID" } }, stacks: {} }, "test");
    // Never queried: the probe needs no database.
    const db = createDb("postgres://postgres@127.0.0.1:5432/unused");
    const login = () => nock(VAULT).post("/v1/auth/approle/login").reply(200, { auth: { client_token: "tok-1", lease_duration: 3600, renewable: true, policies: ["agent"] } });
    try {
      login();
      const without = await credentialSourceFromConfig(config, { db, log: pino({ level: "silent" }), env: { SID: "s" }, clock });
      expect(without.health).toBeNull();
      without.close();
      timers.pending.clear();

      login();
      const rt = await credentialSourceFromConfig(config, { db, log: pino({ level: "silent" }), env: { SID: "s" }, clock, healthIntervalSeconds: 15 });
      // The token renewal and the probe.
      expect([...timers.pending.values()].map((t) => t.ms).sort((a, b) => a - b)).toEqual([15_000, (3600 - 60) * 1000]);
      nock(VAULT).get("/v1/sys/health").reply(503, healthBody({ sealed: true }));
      const probeTimer = [...timers.pending].find(([, t]) => t.ms === 15_000)!;
      timers.pending.delete(probeTimer[0]);
      probeTimer[1].fn();
      await new Promise<void>((resolve) => rt.session!.onReachability(() => resolve()));
      expect(rt.session!.reachable).toBe(false);
      rt.close();
      expect(timers.pending.size).toBe(0);
    } finally {
      await db.end();
    }
  });
});
