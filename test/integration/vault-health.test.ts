/**
 * `/readyz` and `agent_vault_up` follow Vault's health without any task running: the app asks
 * Vault's `sys/health` every VAULT_HEALTH_INTERVAL_SECONDS, so a Vault that is sealed or gone
 * shows as down, and as up again once it is back. Real web tier, Postgres and Redis; Vault at
 * its HTTP API (nock).
 */
import { EventEmitter, once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nock from "nock";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type RunningApp } from "../../src/app.js";
import { destroyTestEnv, isolateNetwork, makeTestEnv, TestOctokit, type TestEnv } from "../helpers/harness.js";

const VAULT = "https://vault.test:8200";

/** Vault's sys/health body for a state (documented fields). */
const body = (status: number) => ({
  initialized: status !== 501,
  sealed: status === 503 || status === 501,
  standby: status === 429,
  performance_standby: false,
  replication_performance_mode: "disabled",
  replication_dr_mode: "disabled",
  server_time_utc: 1_763_800_000,
  version: "1.18.2",
});

describe("Vault health without a task running", () => {
  let env: TestEnv;
  let dir: string;
  let app: RunningApp;
  /** What Vault's sys/health answers now; every probe the app makes is announced on `asked`. */
  const vault = { status: 200 };
  const asked = new EventEmitter();

  beforeAll(async () => {
    isolateNetwork();
    env = await makeTestEnv({ VAULT_HEALTH_INTERVAL_SECONDS: "1" });
    dir = await mkdtemp(join(tmpdir(), "agent-vault-health-"));
    await writeFile(join(dir, "credentials.yml"), `vault:\n  address: ${VAULT}\n  approle: { role_id: role-agent, secret_id_env: SID }\nstacks: {}\n`);
    nock(VAULT)
      .post("/v1/auth/approle/login", { role_id: "role-agent", secret_id: "sid-1" })
      .reply(200, { auth: { client_token: "hvs.CAESIhealthProbeClientToken0000000000", accessor: "a", policies: ["agent"], lease_duration: 3600, renewable: true } });
    nock(VAULT, { badheaders: ["x-vault-token"] })
      .persist()
      .get("/v1/sys/health")
      .reply(() => {
        const status = vault.status;
        setImmediate(() => asked.emit("probe", status));
        return [status, body(status)];
      });
    app = await startApp({ ...env.config, role: "web" }, { Octokit: TestOctokit, log: pino({ level: "silent" }), env: { CREDENTIALS_CONFIG: join(dir, "credentials.yml"), SID: "sid-1" } });
  });
  afterAll(async () => {
    await app.stop();
    nock.cleanAll();
    await destroyTestEnv(env);
    await rm(dir, { recursive: true, force: true });
  });

  /** Resolves when the app has asked sys/health by itself (its timer) and got `status`. */
  const probedWith = async (status: number) => {
    const deadline = AbortSignal.timeout(10_000);
    for (;;) {
      const [seen] = (await once(asked, "probe", { signal: deadline }).catch(() => {
        throw new Error(`the app did not ask Vault's sys/health by itself (expected an answer ${status})`);
      })) as [number];
      if (seen === status) break;
    }
    // That round may still be settling; joining it (or running the next) leaves the state it saw.
    await app.vaultHealth!.probeNow();
  };
  const ready = async () => {
    const res = await fetch(`http://127.0.0.1:${app.port}/readyz`);
    return { status: res.status, body: (await res.json()) as { ok: boolean; checks: Record<string, string> } };
  };
  const vaultUp = async () => {
    const text = await (await fetch(`http://127.0.0.1:${app.port}/metrics`)).text();
    return Number(/^agent_vault_up (\d+)$/m.exec(text)?.[1]);
  };

  it("positive control: a healthy Vault is ready and up", async () => {
    await probedWith(200);
    expect(await ready()).toEqual({ status: 200, body: { ok: true, checks: { postgres: "ok", redis: "ok", vault: "ok" } } });
    expect(await vaultUp()).toBe(1);
  });

  it("ATTACK: Vault sealed while no task runs: /readyz answers 503 naming vault, agent_vault_up is 0; both recover when it is unsealed", async () => {
    vault.status = 503;
    await probedWith(503);
    const down = await ready();
    expect(down.status).toBe(503);
    expect(down.body.checks).toEqual({ postgres: "ok", redis: "ok", vault: `down: Vault at ${VAULT} is sealed (503) (sys/health)` });
    expect(await vaultUp()).toBe(0);

    vault.status = 200;
    await probedWith(200);
    expect((await ready()).status).toBe(200);
    expect(await vaultUp()).toBe(1);
  });

  it("a standby node counts as up (it forwards to the active node); an uninitialised one as down", async () => {
    vault.status = 429;
    await probedWith(429);
    expect((await ready()).body.checks.vault).toBe("ok");
    vault.status = 501;
    await probedWith(501);
    expect((await ready()).body.checks.vault).toBe(`down: Vault at ${VAULT} is not initialised (501) (sys/health)`);
    expect(await vaultUp()).toBe(0);
    vault.status = 200;
    await probedWith(200);
    expect(await vaultUp()).toBe(1);
  });
});
