/**
 * Rotation of static secrets: Vault (AppRole login, KV v2 data, metadata and destroy) and a
 * provider's generator endpoint at the HTTP boundary with nock, in Vault's documented shapes;
 * the audit log in real PostgreSQL. A rotation writes the next version with check-and-set,
 * verifies it, then destroys the old one; a failure keeps the old value working (a write that
 * does not read back is undone); an emergency rotation (`rotate`) under a running task leaves
 * that task its value and gives the next task the new one.
 */
import nock from "nock";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseCredentialsConfig } from "../../src/config/credentials-config.js";
import type { Db } from "../../src/connectors/store/db.js";
import { credentialSourceFromConfig, type CredentialsRuntime } from "../../src/connectors/vault/index.js";
import { rotateCommand } from "../../src/ops/rotate-cli.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultGenerator, rotateDueSecrets, rotateSecret } from "../../src/ops/rotation.js";
import { migratedTestDb } from "../helpers/harness.js";

const VAULT = "https://vault.test:8200";
const TOKEN = "hvs.rotation-token-1";
const SECRET_ID = "approle-secret-id-rotation";
const OLD = "old-api-key-value-0000000000001";
const CONFIG = {
  vault: { address: VAULT, approle: { role_id: "role-agent", secret_id_env: "TEST_VAULT_SECRET_ID" } },
  stacks: { "*": { preview: { API_KEY: { kv: "secret/data/app/api", key: "api_key" } } } },
  rotation: {
    secrets: [
      { name: "app-api-key", kv: "secret/data/app/api", key: "api_key", every_days: 90 },
      { name: "provider-token", kv: "secret/data/app/provider", key: "token", generator: { http: { url: "https://keys.provider.test/v1/tokens", token_env: "PROVIDER_ADMIN_TOKEN" } } },
    ],
  },
};
const ENV = { TEST_VAULT_SECRET_ID: SECRET_ID, PROVIDER_ADMIN_TOKEN: "provider-admin-0000000001" };

const vault = () => nock(VAULT, { reqheaders: { "x-vault-token": TOKEN } });
const metadata = (version: number, createdDaysAgo: number) => ({ data: { current_version: version, versions: { [String(version)]: { created_time: new Date(Date.now() - createdDaysAgo * 86_400_000).toISOString(), destroyed: false } } } });
const kv = (data: Record<string, string>, version: number) => ({ data: { data, metadata: { version, created_time: new Date().toISOString(), destroyed: false } } });

describe("secret rotation", () => {
  let testDb: Awaited<ReturnType<typeof migratedTestDb>>;
  let db: Db;
  let rt: CredentialsRuntime;

  beforeAll(async () => {
    testDb = await migratedTestDb("rotation");
    db = testDb.db;
  });
  afterAll(async () => testDb?.drop());
  beforeEach(async () => {
    nock.disableNetConnect();
    nock(VAULT).post("/v1/auth/approle/login").reply(200, { auth: { client_token: TOKEN, accessor: "a", policies: ["agent"], lease_duration: 3600, renewable: true } });
    rt = await credentialSourceFromConfig(parseCredentialsConfig(CONFIG, "test"), { db, log: pino({ level: "silent" }), env: ENV });
  });
  afterEach(() => {
    rt?.close();
    nock.cleanAll();
    nock.enableNetConnect();
  });
  const specs = parseCredentialsConfig(CONFIG, "test").rotation!.secrets;
  const auditOf = async (secret: string) => (await db.query("SELECT action, detail FROM audit_log WHERE action LIKE 'rotation.%' AND detail->>'secret' = $1 ORDER BY id", [secret])).rows;

  it("a due secret: the next version written with check-and-set, read back, then the old one destroyed; every step audited", async () => {
    let written: string | null = null;
    const scope = vault()
      // Read for its age, then again by the rotation itself.
      .get("/v1/secret/metadata/app/api").times(2).reply(200, metadata(4, 91))
      .get("/v1/secret/data/app/api").query({ version: "4" }).reply(200, kv({ api_key: OLD, other: "kept" }, 4))
      .post("/v1/secret/data/app/api", (b: { options?: { cas?: number }; data?: Record<string, string> }) => {
        if (b?.options?.cas !== 4 || !b.data?.api_key) return false;
        written = b.data.api_key;
        return b.data.other === "kept" && written !== OLD && written.length >= 40;
      })
      .reply(200, { data: { version: 5 } })
      .get("/v1/secret/data/app/api").reply(200, () => kv({ api_key: written!, other: "kept" }, 5))
      .put("/v1/secret/destroy/app/api", { versions: [4] }).reply(204)
      // The other secret is not due (10 days old): only its age is read.
      .get("/v1/secret/metadata/app/provider").reply(200, metadata(2, 10));
    const outcomes = await rotateDueSecrets({ vault: rt.session!, db, generate: defaultGenerator(ENV) }, specs);
    expect(outcomes).toEqual([{ secret: "app-api-key", rotated: true, from: 4, to: 5 }]);
    expect(scope.isDone()).toBe(true);
    expect((await auditOf("app-api-key")).map((r) => r.action)).toEqual(["rotation.started", "rotation.written", "rotation.verified", "rotation.completed"]);
    // The new value is never in the audit log.
    expect(JSON.stringify(await auditOf("app-api-key"))).not.toContain(written!);
  });

  it("a failed check-and-set (someone wrote meanwhile) keeps the old value: nothing destroyed, the failure audited", async () => {
    const scope = vault()
      .get("/v1/secret/metadata/app/api").reply(200, metadata(7, 95))
      .get("/v1/secret/data/app/api").query({ version: "7" }).reply(200, kv({ api_key: OLD }, 7))
      .post("/v1/secret/data/app/api").reply(400, { errors: ["check-and-set parameter did not match the current version"] });
    const destroy = vault().put("/v1/secret/destroy/app/api").reply(204);
    const outcome = await rotateSecret({ vault: rt.session!, db, generate: defaultGenerator(ENV) }, specs[0]!, { actor: "agent", reason: "scheduled" });
    expect(outcome).toMatchObject({ rotated: false, step: "write" });
    expect(scope.isDone()).toBe(true);
    expect(destroy.isDone()).toBe(false);
    expect((await auditOf("app-api-key")).at(-1)).toMatchObject({ action: "rotation.failed", detail: { step: "write", reason: "scheduled" } });
  });

  it("a write that does not read back is undone: the old value is written back on top, the old version not destroyed", async () => {
    let restored: Record<string, string> | null = null;
    const scope = vault()
      .get("/v1/secret/metadata/app/api").reply(200, metadata(9, 100))
      .get("/v1/secret/data/app/api").query({ version: "9" }).reply(200, kv({ api_key: OLD }, 9))
      .post("/v1/secret/data/app/api").reply(200, { data: { version: 10 } })
      // A replica behind, or a value mangled on the way: not what was written.
      .get("/v1/secret/data/app/api").reply(200, kv({ api_key: OLD }, 9))
      .post("/v1/secret/data/app/api", (b: { options?: { cas?: number }; data?: Record<string, string> }) => b?.options?.cas === 10 && Boolean((restored = b.data ?? null)))
      .reply(200, { data: { version: 11 } });
    const destroy = vault().put("/v1/secret/destroy/app/api").reply(204);
    const outcome = await rotateSecret({ vault: rt.session!, db, generate: defaultGenerator(ENV) }, specs[0]!, { actor: "agent", reason: "scheduled" });
    expect(outcome).toMatchObject({ rotated: false, step: "verify" });
    expect(scope.isDone()).toBe(true);
    expect(restored).toEqual({ api_key: OLD });
    expect(destroy.isDone()).toBe(false);
    expect((await auditOf("app-api-key")).at(-1)?.detail).toMatchObject({ step: "verify", written: 10, restored: 11 });
  });

  it("emergency rotation under a running task: the task keeps its value, the next task gets the new one; the provider's endpoint makes it", async () => {
    // A task started before: it was given the value current then.
    vault().get("/v1/secret/data/app/api").reply(200, kv({ api_key: OLD }, 4));
    const running = await rt.source.forTask({ repo: "o/r", stack: "prod", kind: "preview", taskId: "11111111-1111-4111-8111-111111111111" });
    expect(running.env.API_KEY).toBe(OLD);

    const NEW = "provider-issued-token-000000000000000009";
    const provider = nock("https://keys.provider.test", { reqheaders: { authorization: "Bearer provider-admin-0000000001" } }).post("/v1/tokens").reply(200, { value: NEW });
    const scope = vault()
      .get("/v1/secret/metadata/app/provider").reply(200, metadata(2, 10))
      .get("/v1/secret/data/app/provider").query({ version: "2" }).reply(200, kv({ token: "old-provider-token-000000000001" }, 2))
      .post("/v1/secret/data/app/provider", { options: { cas: 2 }, data: { token: NEW } }).reply(200, { data: { version: 3 } })
      .get("/v1/secret/data/app/provider").reply(200, kv({ token: NEW }, 3))
      .put("/v1/secret/destroy/app/provider", { versions: [2] }).reply(204);
    // `npm run agent -- rotate --secret provider-token`, with the app's credentials config (and, here, its logged-in Vault session).
    const dir = mkdtempSync(join(tmpdir(), "rotation-"));
    writeFileSync(join(dir, "credentials.json"), JSON.stringify(CONFIG));
    const out: string[] = [];
    const run = (args: string[]) => rotateCommand(args, { db, env: { ...ENV, CREDENTIALS_CONFIG: join(dir, "credentials.json") }, log: pino({ level: "silent" }), vault: rt.session! }, { stdout: (t) => out.push(t), stderr: (t) => out.push(t) });
    expect(await run(["--secret", "nope", "--as", "ops-oncall"])).toBe(2);
    expect(out.join("")).toContain('no rotated secret is named "nope" (configured: app-api-key, provider-token)');
    out.length = 0;
    expect(await run(["--secret", "provider-token", "--as", "ops-oncall"])).toBe(0);
    rmSync(dir, { recursive: true, force: true });
    expect(JSON.parse(out.join(""))).toEqual([{ secret: "provider-token", rotated: true, from: 2, to: 3 }]);
    expect(provider.isDone()).toBe(true);
    expect(scope.isDone()).toBe(true);
    expect(running.env.API_KEY).toBe(OLD);
    expect((await auditOf("provider-token")).map((r) => [r.action, r.detail.reason])).toEqual([["rotation.started", "emergency"], ["rotation.written", "emergency"], ["rotation.verified", "emergency"], ["rotation.completed", "emergency"]]);
    expect((await db.query("SELECT DISTINCT actor FROM audit_log WHERE action LIKE 'rotation.%' AND detail->>'secret' = 'provider-token'")).rows).toEqual([{ actor: "ops-oncall" }]);
    // The next task gets the new value.
    vault().get("/v1/secret/data/app/api").reply(200, kv({ api_key: "rotated-api-key-value-00000000002" }, 5));
    const next = await rt.source.forTask({ repo: "o/r", stack: "prod", kind: "preview", taskId: "22222222-2222-4222-8222-222222222222" });
    expect(next.env.API_KEY).toBe("rotated-api-key-value-00000000002");
    await next.release();
    await running.release();
  });
});
