/**
 * The GitHub App's private key from Vault: with `vault.github_private_key` and no PRIVATE_KEY,
 * the app waits while Vault is unavailable, starts once it has read the key, and signs its
 * GitHub App JWT with that key. A missing field stops the start with a clear error.
 */
import { generateKeyPairSync, verify } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nock from "nock";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startApp, type RunningApp } from "../../src/app.js";
import { destroyTestEnv, isolateNetwork, makeTestEnv, TestOctokit, type TestEnv } from "../helpers/harness.js";

const VAULT = "https://vault.test:8200";
const VAULT_TOKEN = "hvs.CAESIgithubKeyClientToken000000000000";
const keys = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } });

describe("the GitHub App key from Vault", () => {
  let env: TestEnv;
  let dir: string;
  let app: RunningApp | null = null;

  beforeAll(async () => {
    isolateNetwork();
    env = await makeTestEnv();
    dir = await mkdtemp(join(tmpdir(), "agent-creds-"));
    await writeFile(
      join(dir, "credentials.yml"),
      `vault:\n  address: ${VAULT}\n  approle: { role_id: role-agent, secret_id_env: SID }\n  github_private_key: { kv: secret/data/github-app, key: private_key }\nstacks: {}\n`,
    );
  });
  afterEach(async () => {
    await app?.stop();
    app = null;
    nock.cleanAll();
  });
  afterAll(async () => {
    await destroyTestEnv(env);
    await rm(dir, { recursive: true, force: true });
  });

  const login = () =>
    nock(VAULT).post("/v1/auth/approle/login", { role_id: "role-agent", secret_id: "sid-1" }).reply(200, { auth: { client_token: VAULT_TOKEN, accessor: "a", policies: ["agent"], lease_duration: 3600, renewable: true } });
  const start = () =>
    startApp(
      { ...env.config, role: "web", github: { ...env.config.github, privateKey: undefined } },
      { Octokit: TestOctokit, log: pino({ level: "silent" }), env: { CREDENTIALS_CONFIG: join(dir, "credentials.yml"), SID: "sid-1" }, vaultRetryMs: 5 },
    );

  it("waits out a sealed Vault, then starts with the key and signs the app's JWT with it", async () => {
    login();
    const kv = nock(VAULT, { reqheaders: { "x-vault-token": VAULT_TOKEN } })
      .get("/v1/secret/data/github-app")
      .reply(503, { errors: ["Vault is sealed"] })
      .get("/v1/secret/data/github-app")
      .reply(200, { data: { data: { private_key: keys.privateKey }, metadata: { version: 1 } } });
    app = await start();
    expect(kv.isDone()).toBe(true);
    expect(app.port).toBeGreaterThan(0);

    // The installation token request carries a JWT that verifies with the Vault key's public half.
    let jwt = "";
    const api = env.config.github.apiBaseUrl ?? "https://api.github.com";
    nock(api)
      .post("/app/installations/77/access_tokens")
      .matchHeader("authorization", (v: string | null) => ((jwt = String(v).replace(/^bearer /i, "")), true))
      .reply(201, { token: "ghs_fromVaultKey000000000000000000000001", expires_at: new Date(Date.now() + 3600_000).toISOString() })
      .get("/repos/o/r")
      .reply(200, { id: 1, full_name: "o/r" });
    const gh = await app.deps.github(77);
    await gh.request("GET /repos/{owner}/{repo}", { owner: "o", repo: "r" });
    const [header, payload, signature] = jwt.split(".");
    expect(verify("RSA-SHA256", Buffer.from(`${header}.${payload}`), keys.publicKey, Buffer.from(signature!, "base64url"))).toBe(true);
  });

  it("/readyz says Vault is down when it is, naming each check", async () => {
    // Nothing listens on port 9 of the loopback: the connection is refused at once.
    const DOWN = "http://127.0.0.1:9";
    await writeFile(join(dir, "no-key.yml"), `vault:\n  address: ${DOWN}\n  approle: { role_id: role-agent, secret_id_env: SID }\nstacks: {}\n`);
    app = await startApp(
      { ...env.config, role: "web" },
      { Octokit: TestOctokit, log: pino({ level: "silent" }), env: { CREDENTIALS_CONFIG: join(dir, "no-key.yml"), SID: "sid-1" } },
    );
    const ready = async () => {
      const res = await fetch(`http://127.0.0.1:${app!.port}/readyz`);
      return { status: res.status, body: (await res.json()) as { ok: boolean; checks: Record<string, string> } };
    };
    const down = await ready();
    expect(down.status).toBe(503);
    expect(down.body.checks).toEqual({ postgres: "ok", redis: "ok", vault: `down: Vault at ${DOWN} is unreachable during AppRole login: ECONNREFUSED` });
    expect((await fetch(`http://127.0.0.1:${app.port}/healthz`)).status).toBe(200);
  });

  it("refuses to start when the secret has no such field, naming the path and the field", async () => {
    login();
    nock(VAULT).get("/v1/secret/data/github-app").reply(200, { data: { data: { other: "x" }, metadata: { version: 1 } } });
    await expect(start()).rejects.toThrow('the secret secret/data/github-app has no string field "private_key"');
  });

  it("refuses a value that is not a PEM key", async () => {
    login();
    nock(VAULT).get("/v1/secret/data/github-app").reply(200, { data: { data: { private_key: "not a key at all" }, metadata: { version: 1 } } });
    await expect(start()).rejects.toThrow("is not a PEM private key");
  });
});
