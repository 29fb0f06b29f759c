import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nock from "nock";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  CredentialsConfigError,
  credentialsConfigFromEnv,
  loadCredentialsConfig,
  parseCredentialsConfig,
  type CredentialsConfig,
} from "../../src/config/credentials-config.js";
import { ENV_CREDENTIALS_WARNING } from "../../src/connectors/env-credentials.js";
import type { Db } from "../../src/connectors/store/db.js";
import { leasesOfTask, recordLease, type CredentialLease } from "../../src/connectors/store/leases.js";
import {
  CredentialError,
  VaultAuthError,
  VaultUnavailableError,
  credentialSourceFromConfig,
  type CredentialsRuntime,
} from "../../src/connectors/vault/index.js";
import { migratedTestDb } from "../helpers/harness.js";

const VAULT = "https://vault.test:8200";
const TOKEN = "hvs.agent-token-1";
const SECRET_ID = "approle-secret-id-1";

/** Every secret value the fake Vault hands out: none may ever reach a log line. */
const SECRETS = {
  prodRead: "pul-prod-read-VALUE",
  prodWrite: "pul-prod-write-VALUE",
  defaultRead: "pul-default-read-VALUE",
  roUser: "v-ro-user-VALUE",
  roPass: "v-ro-pass-VALUE",
  ownerUser: "v-owner-user-VALUE",
  ownerPass: "v-owner-pass-VALUE",
  lambda: "lambda-probe-key-VALUE",
  probeUser: "v-probe-user-VALUE",
};

const CONFIG_DOC = {
  vault: { address: VAULT, approle: { role_id: "role-agent", secret_id_env: "TEST_VAULT_SECRET_ID" } },
  stacks: {
    prod: {
      preview: {
        PULUMI_ACCESS_TOKEN: { kv: "secret/data/pulumi/prod-read", key: "token" },
        DATABASE_URL: { dynamic: "database/creds/prod-readonly", key: "username" },
      },
      deploy: {
        PULUMI_ACCESS_TOKEN: { kv: "secret/data/pulumi/prod-write", key: "token" },
        PGUSER: { dynamic: "database/creds/prod-owner", key: "username" },
        PGPASSWORD: { dynamic: "database/creds/prod-owner", key: "password" },
      },
      diagnose: {
        LAMBDA_API_KEY: { kv: "secret/data/probes/lambda", key: "api_key" },
        PROBE_DATABASE_URL: { dynamic: "database/creds/prod-probe", key: "username" },
      },
    },
    "*": {
      preview: { PULUMI_ACCESS_TOKEN: { kv: "secret/data/pulumi/default-read", key: "token" } },
      deploy: { PGUSER: { dynamic: "database/creds/default-owner", key: "username" } },
    },
  },
};

// Vault's documented response shapes.
const kvReply = (data: Record<string, string>) => ({
  request_id: "r",
  lease_id: "",
  renewable: false,
  lease_duration: 0,
  data: { data, metadata: { version: 4, created_time: "2024-05-01T10:00:00.000Z", deletion_time: "", destroyed: false } },
});
const dynReply = (role: string, id: string, data: Record<string, string>) => ({
  request_id: "r",
  lease_id: `database/creds/${role}/${id}`,
  lease_duration: 3600,
  renewable: true,
  data,
});
const loginReply = {
  auth: { client_token: TOKEN, accessor: "acc-1", policies: ["default", "agent"], token_policies: ["default", "agent"], lease_duration: 3600, renewable: true },
};

/** Authenticated Vault calls must carry the app's token. */
const vault = () => nock(VAULT, { reqheaders: { "x-vault-token": TOKEN } });
const mockLogin = () => nock(VAULT, { badheaders: ["x-vault-token"] }).post("/v1/auth/approle/login", { role_id: "role-agent", secret_id: SECRET_ID }).reply(200, loginReply);

let testDb: Awaited<ReturnType<typeof migratedTestDb>> | undefined;
let db: Db;
let logs: string[];
let runtimes: CredentialsRuntime[];
const log = () => pino({ level: "info" }, { write: (l: string) => void logs.push(l) });

async function start(doc: unknown = CONFIG_DOC, env: NodeJS.ProcessEnv = { TEST_VAULT_SECRET_ID: SECRET_ID }): Promise<CredentialsRuntime> {
  const rt = await credentialSourceFromConfig(parseCredentialsConfig(doc, "test config"), { db, log: log(), env });
  runtimes.push(rt);
  return rt;
}

/** Logs in (nock) and builds the Vault-backed source from CONFIG_DOC. */
async function startVault(): Promise<CredentialsRuntime> {
  const login = mockLogin();
  const rt = await start();
  expect(login.isDone()).toBe(true);
  return rt;
}

const req = (over: Partial<{ stack: string; kind: "preview" | "deploy" | "diagnose"; taskId: string }> = {}) => ({
  repo: "acme/infra",
  stack: "prod",
  kind: "preview" as const,
  taskId: randomUUID(),
  ...over,
});

async function allLeases(): Promise<CredentialLease[]> {
  const { rows } = await db.query<{ task_id: string }>("SELECT DISTINCT task_id FROM credential_leases");
  return (await Promise.all(rows.map((r) => leasesOfTask(db, r.task_id)))).flat().sort((a, b) => a.leaseId.localeCompare(b.leaseId));
}

/** A task row in the given state (with its workflow), as the worker would have left it. */
async function taskIn(state: string): Promise<string> {
  const wf = await db.query<{ id: string }>(
    `INSERT INTO workflows (kind, repo, installation_id, pr_number, head_sha, requested_by, config)
     VALUES ('preview', 'acme/infra', 1, 7, $1, 'alice', '{}'::jsonb) RETURNING id`,
    ["a".repeat(40)],
  );
  const t = await db.query<{ id: string }>(
    `INSERT INTO tasks (workflow_id, kind, stack, state, job_id) VALUES ($1, 'preview', 'prod', $2, $3) RETURNING id`,
    [wf.rows[0]!.id, state, `job-${randomUUID()}`],
  );
  return t.rows[0]!.id;
}

beforeAll(async () => {
  nock.disableNetConnect();
  nock.enableNetConnect(/127\.0\.0\.1|localhost/);
  testDb = await migratedTestDb("v");
  ({ db } = testDb);
});

afterAll(async () => {
  nock.enableNetConnect();
  await testDb?.drop();
});

beforeEach(async () => {
  logs = [];
  runtimes = [];
  await db.query("TRUNCATE credential_leases");
  await db.query("TRUNCATE tasks, workflows CASCADE");
});

afterEach(() => {
  for (const rt of runtimes) rt.close();
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending, "every mocked Vault call was made").toEqual([]);
  const all = logs.join("\n");
  for (const secret of [...Object.values(SECRETS), TOKEN, SECRET_ID]) expect(all).not.toContain(secret);
});

describe("Vault credentials: which secrets a task gets", () => {
  it("a preview gets exactly the stack's preview set: KV v2 and a dynamic secret, never a deploy mapping", async () => {
    const rt = await startVault();
    vault().get("/v1/secret/data/pulumi/prod-read").reply(200, kvReply({ token: SECRETS.prodRead }));
    vault().get("/v1/database/creds/prod-readonly").reply(200, dynReply("prod-readonly", "L-ro", { username: SECRETS.roUser, password: SECRETS.roPass }));
    // Deploy paths exist in Vault; a preview must not touch them.
    const deployKv = vault().get("/v1/secret/data/pulumi/prod-write").reply(200, kvReply({ token: SECRETS.prodWrite }));
    const deployDyn = vault().get("/v1/database/creds/prod-owner").reply(200, dynReply("prod-owner", "L-own", { username: SECRETS.ownerUser, password: SECRETS.ownerPass }));

    const r = req();
    const issued = await rt.source.forTask(r);
    expect(issued.env).toEqual({ PULUMI_ACCESS_TOKEN: SECRETS.prodRead, DATABASE_URL: SECRETS.roUser });
    expect(JSON.stringify(issued.env)).not.toMatch(/prod-write|owner/);
    expect(deployKv.isDone() || deployDyn.isDone()).toBe(false);
    expect(nock.pendingMocks().sort()).toEqual([`GET ${VAULT}/v1/database/creds/prod-owner`, `GET ${VAULT}/v1/secret/data/pulumi/prod-write`]);
    nock.cleanAll();

    // The lease was recorded (identifiers only) by the time the credentials were handed out.
    const [lease, ...more] = await leasesOfTask(db, r.taskId);
    expect(more).toEqual([]);
    expect(lease).toMatchObject({ leaseId: "database/creds/prod-readonly/L-ro", repo: "acme/infra", stack: "prod", kind: "preview", path: "database/creds/prod-readonly", revokedAt: null });
    expect(lease!.expiresAt!.getTime() - lease!.issuedAt.getTime()).toBe(3600_000);
    const { rows } = await db.query("SELECT row_to_json(l)::text AS j FROM credential_leases l");
    for (const s of Object.values(SECRETS)) expect(rows[0].j).not.toContain(s);
  });

  it("a deploy reads a dynamic path used twice once: one lease, both keys", async () => {
    const rt = await startVault();
    vault().get("/v1/secret/data/pulumi/prod-write").reply(200, kvReply({ token: SECRETS.prodWrite }));
    // Registered once: a second read would find no interceptor and fail the task.
    vault().get("/v1/database/creds/prod-owner").once().reply(200, dynReply("prod-owner", "L-own", { username: SECRETS.ownerUser, password: SECRETS.ownerPass }));
    const r = req({ kind: "deploy" });
    const issued = await rt.source.forTask(r);
    expect(issued.env).toEqual({ PULUMI_ACCESS_TOKEN: SECRETS.prodWrite, PGUSER: SECRETS.ownerUser, PGPASSWORD: SECRETS.ownerPass });
    expect((await leasesOfTask(db, r.taskId)).map((l) => [l.leaseId, l.kind])).toEqual([["database/creds/prod-owner/L-own", "deploy"]]);
  });

  it("a diagnosis gets the stack's diagnose set only; its lease is kept from the crash sweep while the probes run", async () => {
    const rt = await startVault();
    vault().get("/v1/secret/data/probes/lambda").reply(200, kvReply({ api_key: SECRETS.lambda }));
    vault().get("/v1/database/creds/prod-probe").reply(200, dynReply("prod-probe", "L-probe", { username: SECRETS.probeUser }));
    const r = req({ kind: "diagnose" });
    const issued = await rt.source.forTask(r);
    expect(issued.env).toEqual({ LAMBDA_API_KEY: SECRETS.lambda, PROBE_DATABASE_URL: SECRETS.probeUser });
    expect((await leasesOfTask(db, r.taskId)).map((l) => [l.leaseId, l.kind])).toEqual([["database/creds/prod-probe/L-probe", "diagnose"]]);
    // A diagnosis has no task row: the reaper must not take its fresh lease for a crashed task's.
    expect(await rt.source.recoverLeases!()).toEqual({ revoked: 0, failed: 0 });
    vault().put("/v1/sys/leases/revoke", { lease_id: "database/creds/prod-probe/L-probe" }).reply(204);
    await issued.release();
    expect((await leasesOfTask(db, r.taskId))[0]!.revokedAt).not.toBeNull();
  });

  it("a stack without its own entry gets the \"*\" set; with neither, nothing", async () => {
    const rt = await startVault();
    vault().get("/v1/secret/data/pulumi/default-read").reply(200, kvReply({ token: SECRETS.defaultRead }));
    expect((await rt.source.forTask(req({ stack: "staging" }))).env).toEqual({ PULUMI_ACCESS_TOKEN: SECRETS.defaultRead });

    const noDefault = { ...CONFIG_DOC, stacks: { prod: CONFIG_DOC.stacks.prod } };
    mockLogin();
    const rt2 = await start(noDefault);
    expect((await rt2.source.forTask(req({ stack: "staging", kind: "deploy" }))).env).toEqual({});
  });

  it("a missing key names the variable and the path (not the values); the lease already issued is revoked", async () => {
    const rt = await startVault();
    vault().get("/v1/secret/data/pulumi/prod-read").reply(200, kvReply({ token: SECRETS.prodRead }));
    vault().get("/v1/database/creds/prod-readonly").reply(200, dynReply("prod-readonly", "L-x", { password: SECRETS.roPass }));
    const revoke = vault().put("/v1/sys/leases/revoke", { lease_id: "database/creds/prod-readonly/L-x" }).reply(204);
    const r = req();
    const err = await rt.source.forTask(r).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialError);
    expect((err as CredentialError).message).toBe('DATABASE_URL: key "username" not found in database/creds/prod-readonly');
    expect((err as CredentialError).variable).toBe("DATABASE_URL");
    expect((err as CredentialError).path).toBe("database/creds/prod-readonly");
    expect(revoke.isDone()).toBe(true);
    const [lease] = await leasesOfTask(db, r.taskId);
    expect(lease!.revokedAt).toBeInstanceOf(Date);
  });

  it("a Vault error on a read (403) is a CredentialError naming variable, path and Vault's message", async () => {
    const rt = await startVault();
    vault().get("/v1/secret/data/pulumi/prod-read").reply(403, { errors: ["1 error occurred:\n\t* permission denied\n\n"] });
    const err = await rt.source.forTask(req()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialError);
    expect((err as Error).message).toBe(`PULUMI_ACCESS_TOKEN: cannot read secret/data/pulumi/prod-read: Vault at ${VAULT} refused read secret/data/pulumi/prod-read (403): 1 error occurred: * permission denied`);
  });
});

describe("Vault credentials: Vault unavailable", () => {
  it("Vault down: forTask throws a CredentialError caused by VaultUnavailableError, and reachable turns false", async () => {
    const rt = await startVault();
    expect(rt.session!.reachable).toBe(true);
    vault().get("/v1/secret/data/pulumi/prod-read").replyWithError(Object.assign(new Error("connect ECONNREFUSED 10.1.2.3:8200"), { code: "ECONNREFUSED" }));
    const err = await rt.source.forTask(req()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialError);
    expect((err as Error).cause).toBeInstanceOf(VaultUnavailableError);
    expect((err as Error).message).toBe(`PULUMI_ACCESS_TOKEN: cannot read secret/data/pulumi/prod-read: Vault at ${VAULT} is unreachable during read secret/data/pulumi/prod-read: ECONNREFUSED`);
    expect(rt.session!.reachable).toBe(false);
  });

  it("a sealed Vault (503) is a CredentialError naming every variable of the path", async () => {
    const rt = await startVault();
    vault().get("/v1/secret/data/pulumi/prod-write").reply(200, kvReply({ token: SECRETS.prodWrite }));
    vault().get("/v1/database/creds/prod-owner").reply(503, { errors: ["Vault is sealed"] });
    const err = await rt.source.forTask(req({ kind: "deploy" })).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`PGUSER, PGPASSWORD: cannot read database/creds/prod-owner: Vault at ${VAULT} is sealed or unavailable (503) during read database/creds/prod-owner: Vault is sealed`);
    expect((err as CredentialError).cause).toBeInstanceOf(VaultUnavailableError);
    expect(rt.session!.reachable).toBe(false);
  });

  it("Vault down at start-up does not stop the app: the session logs in on first use", async () => {
    nock(VAULT).post("/v1/auth/approle/login").replyWithError(Object.assign(new Error("getaddrinfo ENOTFOUND vault.test"), { code: "ENOTFOUND" }));
    const rt = await start();
    expect(rt.session!.reachable).toBe(false);
    expect(logs.join("\n")).toMatch(/Vault is unavailable at start-up/);
    mockLogin();
    vault().get("/v1/secret/data/pulumi/default-read").reply(200, kvReply({ token: SECRETS.defaultRead }));
    expect((await rt.source.forTask(req({ stack: "dev" }))).env).toEqual({ PULUMI_ACCESS_TOKEN: SECRETS.defaultRead });
    expect(rt.session!.reachable).toBe(true);
  });

  it("a Vault that refuses the app's identity stops start-up with a VaultAuthError", async () => {
    nock(VAULT).post("/v1/auth/approle/login").reply(400, { errors: ["invalid role or secret ID"] });
    await expect(start()).rejects.toBeInstanceOf(VaultAuthError);
  });
});

describe("Vault credentials: leases", () => {
  async function issuePreview(rt: CredentialsRuntime, id: string) {
    vault().get("/v1/secret/data/pulumi/prod-read").reply(200, kvReply({ token: SECRETS.prodRead }));
    vault().get("/v1/database/creds/prod-readonly").reply(200, dynReply("prod-readonly", id, { username: SECRETS.roUser }));
    const r = req();
    return { r, issued: await rt.source.forTask(r) };
  }

  it("release() revokes the task's leases and marks them; a second release revokes nothing more", async () => {
    const rt = await startVault();
    const { r, issued } = await issuePreview(rt, "L-1");
    let revokes = 0;
    const revoke = vault()
      .put("/v1/sys/leases/revoke", { lease_id: "database/creds/prod-readonly/L-1" })
      .times(2)
      .reply(204, () => {
        revokes++;
        return "";
      });
    await issued.release();
    await issued.release();
    expect(revokes).toBe(1);
    expect(revoke.isDone()).toBe(false);
    nock.cleanAll();
    const [lease] = await leasesOfTask(db, r.taskId);
    expect(lease!.revokedAt).toBeInstanceOf(Date);
    expect(lease!.revokeError).toBeNull();
  });

  it("a failed revocation never throws: logged, row left unrevoked with the error for recovery", async () => {
    const rt = await startVault();
    const { r, issued } = await issuePreview(rt, "L-2");
    vault().put("/v1/sys/leases/revoke").reply(500, { errors: ["internal error"] });
    await expect(issued.release()).resolves.toBeUndefined();
    const [lease] = await leasesOfTask(db, r.taskId);
    expect(lease!.revokedAt).toBeNull();
    expect(lease!.revokeError).toBe(`Vault at ${VAULT} answered 500 during revoke lease database/creds/prod-readonly/L-2: internal error`);
    expect(logs.join("\n")).toMatch(/credential lease revocation failed; left for recovery/);
  });

  it("recoverLeases revokes leases of tasks that are not RUNNING (crash), and leaves RUNNING tasks' leases alone", async () => {
    const rt = await startVault();
    const running = await taskIn("RUNNING");
    const failed = await taskIn("FAILED");
    const succeeded = await taskIn("SUCCEEDED");
    const base = { repo: "acme/infra", stack: "prod", kind: "preview" as const, path: "database/creds/prod-readonly", ttlSeconds: 3600 };
    // The worker died between forTask and release: rows present, tasks since finished.
    await recordLease(db, { ...base, leaseId: "database/creds/prod-readonly/run", taskId: running });
    await recordLease(db, { ...base, leaseId: "database/creds/prod-readonly/fail", taskId: failed });
    await recordLease(db, { ...base, leaseId: "database/creds/prod-readonly/ok", taskId: succeeded });
    await recordLease(db, { ...base, leaseId: "database/creds/prod-readonly/norow", taskId: randomUUID() });
    for (const id of ["fail", "ok", "norow"]) vault().put("/v1/sys/leases/revoke", { lease_id: `database/creds/prod-readonly/${id}` }).reply(204);

    expect(await rt.source.recoverLeases!()).toEqual({ revoked: 3, failed: 0 });
    const state = Object.fromEntries((await allLeases()).map((l) => [l.leaseId.split("/").pop(), l.revokedAt !== null]));
    expect(state).toEqual({ fail: true, ok: true, norow: true, run: false });
    // Nothing left to recover: a second run makes no Vault call.
    expect(await rt.source.recoverLeases!()).toEqual({ revoked: 0, failed: 0 });
  });

  it("recoverLeases stops at an unavailable Vault and leaves the rest for next time", async () => {
    const rt = await startVault();
    const done = await taskIn("CANCELLED");
    const base = { repo: "acme/infra", stack: "prod", kind: "deploy" as const, path: "database/creds/prod-owner", ttlSeconds: 3600, taskId: done };
    await recordLease(db, { ...base, leaseId: "database/creds/prod-owner/a" });
    await recordLease(db, { ...base, leaseId: "database/creds/prod-owner/b" });
    vault().put("/v1/sys/leases/revoke").reply(503, { errors: ["Vault is sealed"] });
    expect(await rt.source.recoverLeases!()).toEqual({ revoked: 0, failed: 2 });
    expect((await allLeases()).every((l) => l.revokedAt === null)).toBe(true);
  });

  it("revokeAll for a stack revokes by prefix (configured and recorded dynamic paths) and marks that stack's rows", async () => {
    const rt = await startVault();
    const t = randomUUID();
    const base = { repo: "acme/infra", kind: "deploy" as const, ttlSeconds: 3600, taskId: t };
    await recordLease(db, { ...base, stack: "prod", path: "database/creds/prod-owner", leaseId: "database/creds/prod-owner/1" });
    await recordLease(db, { ...base, stack: "prod", path: "database/creds/prod-readonly", leaseId: "database/creds/prod-readonly/2" });
    await recordLease(db, { ...base, stack: "prod", path: "aws/creds/legacy", leaseId: "aws/creds/legacy/3" });
    await recordLease(db, { ...base, stack: "staging", path: "database/creds/default-owner", leaseId: "database/creds/default-owner/4" });
    const prefixes = ["aws/creds/legacy", "database/creds/prod-owner", "database/creds/prod-readonly"].map((p) =>
      vault().put(`/v1/sys/leases/revoke-prefix/${p}/`).reply(204),
    );

    const res = await rt.source.revokeAll!({ stack: "prod" });
    expect(prefixes.every((s) => s.isDone())).toBe(true);
    expect(res).toEqual({ leasesRevoked: 3, leasesFailed: 0, prefixesRevoked: ["aws/creds/legacy", "database/creds/prod-owner", "database/creds/prod-readonly"], prefixesFailed: [] });
    const state = Object.fromEntries((await allLeases()).map((l) => [l.leaseId, l.revokedAt !== null]));
    expect(state).toEqual({
      "aws/creds/legacy/3": true,
      "database/creds/default-owner/4": false,
      "database/creds/prod-owner/1": true,
      "database/creds/prod-readonly/2": true,
    });
  });

  it("revokeAll without a stack covers every configured dynamic path; a refused prefix falls back to revoking leases one by one", async () => {
    const rt = await startVault();
    const base = { repo: "acme/infra", kind: "deploy" as const, ttlSeconds: 3600, taskId: randomUUID() };
    await recordLease(db, { ...base, stack: "prod", path: "database/creds/prod-owner", leaseId: "database/creds/prod-owner/1" });
    await recordLease(db, { ...base, stack: "qa", path: "database/creds/default-owner", leaseId: "database/creds/default-owner/2" });
    vault().put("/v1/sys/leases/revoke-prefix/database/creds/prod-owner/").reply(403, { errors: ["permission denied"] });
    vault().put("/v1/sys/leases/revoke-prefix/database/creds/prod-readonly/").reply(204);
    vault().put("/v1/sys/leases/revoke-prefix/database/creds/default-owner/").reply(204);
    vault().put("/v1/sys/leases/revoke", { lease_id: "database/creds/prod-owner/1" }).reply(204);

    const res = await rt.source.revokeAll!();
    expect(res).toEqual({
      leasesRevoked: 2,
      leasesFailed: 0,
      prefixesRevoked: ["database/creds/default-owner", "database/creds/prod-readonly"],
      prefixesFailed: ["database/creds/prod-owner"],
    });
    expect((await allLeases()).every((l) => l.revokedAt !== null)).toBe(true);
  });
});

describe("Vault credentials: start-up wiring", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "vault-cfg-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("a wrapped secret id from a file is unwrapped once with the wrapping token, then used to log in", async () => {
    const file = join(dir, "secret-id");
    writeFileSync(file, "hvs.wrapping-token\n");
    const doc = { ...CONFIG_DOC, vault: { address: VAULT, approle: { role_id: "role-agent", secret_id_file: file, wrapped: true } } };
    const unwrap = nock(VAULT)
      .post("/v1/sys/wrapping/unwrap")
      .once()
      .matchHeader("x-vault-token", "hvs.wrapping-token")
      .reply(200, { data: { secret_id: SECRET_ID, secret_id_accessor: "sid-acc" } });
    mockLogin();
    const rt = await start(doc, {});
    expect(unwrap.isDone()).toBe(true);
    // Re-login after a failed renewal does not unwrap again (the wrapping token is spent).
    vault().post("/v1/auth/token/renew-self").reply(403, { errors: ["permission denied"] });
    mockLogin();
    await rt.session!.renew();
  });

  it("without a vault section: the env fallback maps the app's variables and warns once", async () => {
    const doc = { stacks: { "*": { env: { PULUMI_CONFIG_PASSPHRASE: "AGENT_DEV_PASSPHRASE" } }, prod: { env: { TOKEN: "MISSING_VAR" } } } };
    const rt = await start(doc, { AGENT_DEV_PASSPHRASE: "dev-passphrase-VALUE" });
    expect(rt.session).toBeNull();
    expect(rt.source.recoverLeases).toBeUndefined();
    const a = await rt.source.forTask(req({ stack: "dev", kind: "deploy" }));
    await rt.source.forTask(req({ stack: "dev" }));
    expect(a.env).toEqual({ PULUMI_CONFIG_PASSPHRASE: "dev-passphrase-VALUE" });
    await expect(a.release()).resolves.toBeUndefined();
    await expect(rt.source.forTask(req({ stack: "prod" }))).rejects.toThrow("TOKEN: the app's environment variable MISSING_VAR is not set");
    const warnings = logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40);
    expect(warnings.map((w) => w.msg)).toEqual([ENV_CREDENTIALS_WARNING]);
    expect(ENV_CREDENTIALS_WARNING).toBe("credentials come from environment variables: not for production");
    expect(logs.join("\n")).not.toContain("dev-passphrase-VALUE");
  });
});

describe("credentials config file", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "cred-cfg-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("loads YAML named by CREDENTIALS_CONFIG, with defaults", () => {
    const file = join(dir, "creds.yml");
    writeFileSync(
      file,
      [
        "vault:",
        "  address: https://vault.example:8200/",
        "  approle:",
        '    role_id: "r-1"',
        "    secret_id_file: /run/secrets/vault-secret-id",
        "stacks:",
        "  prod:",
        "    preview:",
        '      PULUMI_ACCESS_TOKEN: { kv: "secret/data/pulumi/prod-read", key: "token" }',
        "    deploy:",
        '      PGPASSWORD: { dynamic: "database/creds/prod-owner", key: "password" }',
      ].join("\n"),
    );
    const c = credentialsConfigFromEnv({ CREDENTIALS_CONFIG: file }) as CredentialsConfig;
    expect(c.vault).toEqual({
      address: "https://vault.example:8200",
      approle: { role_id: "r-1", secret_id_file: "/run/secrets/vault-secret-id", wrapped: false, mount: "approle" },
      renew_before_seconds: 60,
      request_timeout_seconds: 10,
      task_tokens: false,
    });
    expect(c.stacks.prod).toEqual({
      preview: { PULUMI_ACCESS_TOKEN: { source: "kv", path: "secret/data/pulumi/prod-read", key: "token" } },
      deploy: { PGPASSWORD: { source: "dynamic", path: "database/creds/prod-owner", key: "password" } },
      diagnose: {},
      env: {},
    });
    expect(credentialsConfigFromEnv({})).toBeNull();
  });

  it("an invalid file is rejected with the file name and every issue's path", () => {
    const file = join(dir, "bad.json");
    writeFileSync(
      file,
      JSON.stringify({
        vault: { address: "vault.example", approle: { role_id: "r", secret_id_file: "/f", secret_id_env: "V" }, renew_before_seconds: -1 },
        stacks: {
          prod: {
            preview: { TOKEN: { kv: "secret/pulumi/token", key: "t" }, "BAD-NAME": { kv: "secret/data/x", key: "k" }, BOTH: { kv: "secret/data/x", dynamic: "db/creds/x", key: "k" } },
            deploy: { PGUSER: { dynamic: "/database/creds/x", key: "username" } },
            extra: {},
          },
        },
      }),
    );
    let err: unknown;
    try {
      loadCredentialsConfig(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CredentialsConfigError);
    const msg = (err as Error).message;
    expect(msg.split("\n")[0]).toBe(`invalid credentials config ${file}:`);
    for (const path of [
      "vault.address:",
      "vault.approle: give exactly one of secret_id_file or secret_id_env",
      "vault.renew_before_seconds:",
      "stacks.prod.preview.TOKEN.kv: a KV v2 path is the API path <mount>/data/<path>",
      "stacks.prod.preview.BAD-NAME:",
      "stacks.prod.preview.BOTH: give exactly one of `kv`",
      "stacks.prod.deploy.PGUSER.dynamic: must be a Vault API path without a leading slash",
      "stacks.prod.extra: unknown key `extra` (allowed: `preview`, `deploy`, `diagnose`, `env`)",
    ]) {
      expect(msg).toContain(`  ${path}`);
    }
  });

  it("a YAML file's issues name their lines", () => {
    const file = join(dir, "bad-lines.yml");
    writeFileSync(file, ["stacks:", "  prod:", "    preview:", "      TOKEN: { kv: secret/app, key: t }", "    deplyo: {}", ""].join("\n"));
    expect(() => loadCredentialsConfig(file)).toThrow(
      [
        `invalid credentials config ${file}:`,
        "  stacks.prod.preview.TOKEN.kv: a KV v2 path is the API path <mount>/data/<path> (e.g. secret/data/app) (line 4)",
        "  stacks.prod.deplyo: unknown key `deplyo` — did you mean `deploy`? (line 5)",
      ].join("\n"),
    );
  });

  it("unparsable YAML and a missing file name the file", () => {
    const file = join(dir, "broken.yml");
    writeFileSync(file, "stacks: [unclosed");
    expect(() => loadCredentialsConfig(file)).toThrow(new RegExp(`^credentials config ${file} is not valid YAML/JSON`));
    expect(() => loadCredentialsConfig(join(dir, "nope.yml"))).toThrow(`cannot read credentials config ${join(dir, "nope.yml")}: ENOENT`);
  });
});

describe("Vault credentials: a task token per task (vault.task_tokens)", () => {
  const CHILD = "hvs.task-child-token-0001";
  const withTaskTokens = { ...CONFIG_DOC, vault: { ...CONFIG_DOC.vault, task_tokens: true } };
  const startWithTokens = async () => {
    const login = mockLogin();
    const rt = await start(withTaskTokens);
    expect(login.isDone()).toBe(true);
    return rt;
  };
  const audited = async (taskId: string) => (await db.query("SELECT action, detail FROM audit_log WHERE task_id = $1 ORDER BY id", [taskId])).rows;

  it("a task's dynamic secrets are read with a child token that dies at the task's lifetime; release revokes it", async () => {
    const rt = await startWithTokens();
    const r = { ...req({ kind: "deploy" }), ttlSeconds: 900 };
    // The child token: created with the app's token, the tier's lifetime as its hard limit.
    const create = vault()
      .post("/v1/auth/token/create", { ttl: "900s", explicit_max_ttl: "900s", renewable: false, display_name: "task", meta: { task: r.taskId, repo: "acme/infra", stack: "prod", kind: "deploy" } })
      .reply(200, { auth: { client_token: CHILD, accessor: "acc-task-1", policies: ["agent", "default"], lease_duration: 900, renewable: false } });
    // KV values are static: read with the app's token. The lease is taken with the child token, so it is the child's.
    vault().get("/v1/secret/data/pulumi/prod-write").reply(200, kvReply({ token: SECRETS.prodWrite }));
    const dyn = nock(VAULT, { reqheaders: { "x-vault-token": CHILD } }).get("/v1/database/creds/prod-owner").reply(200, dynReply("prod-owner", "L-child", { username: SECRETS.ownerUser, password: SECRETS.ownerPass }));
    const issued = await rt.source.forTask(r);
    expect(create.isDone() && dyn.isDone()).toBe(true);
    expect(issued.env).toEqual({ PULUMI_ACCESS_TOKEN: SECRETS.prodWrite, PGUSER: SECRETS.ownerUser, PGPASSWORD: SECRETS.ownerPass });
    expect((await audited(r.taskId)).find((a) => a.action === "credentials.issued")?.detail).toMatchObject({ token_ttl_seconds: 900, leases: ["database/creds/prod-owner/L-child"] });

    vault().put("/v1/sys/leases/revoke", { lease_id: "database/creds/prod-owner/L-child" }).reply(204);
    const revokeToken = vault().post("/v1/auth/token/revoke-accessor", { accessor: "acc-task-1" }).reply(204);
    await issued.release();
    expect(revokeToken.isDone()).toBe(true);
    for (const l of logs) expect(l).not.toContain(CHILD);
  });

  it("control: without task_tokens (or with KV values only), the app's own token reads, and no token is made", async () => {
    const rt = await startVault();
    vault().get("/v1/secret/data/pulumi/prod-read").reply(200, kvReply({ token: SECRETS.prodRead }));
    vault().get("/v1/database/creds/prod-readonly").reply(200, dynReply("prod-readonly", "L-app", { username: SECRETS.roUser }));
    await rt.source.forTask({ ...req(), ttlSeconds: 1800 });

    const rt2 = await startWithTokens();
    // The `*` preview set is KV only: nothing to bind to a token's life.
    vault().get("/v1/secret/data/pulumi/default-read").reply(200, kvReply({ token: SECRETS.defaultRead }));
    expect((await rt2.source.forTask({ ...req({ stack: "other" }), ttlSeconds: 1800 })).env).toEqual({ PULUMI_ACCESS_TOKEN: SECRETS.defaultRead });
  });

  it("the app's policy refuses auth/token/create: the task gets nothing, and the error says which capability is missing", async () => {
    const rt = await startWithTokens();
    vault().post("/v1/auth/token/create").reply(403, { errors: ["1 error occurred:\n\t* permission denied\n\n"] });
    const dyn = vault().get("/v1/database/creds/prod-owner").reply(200, dynReply("prod-owner", "L-never", { username: SECRETS.ownerUser }));
    await expect(rt.source.forTask({ ...req({ kind: "deploy" }), ttlSeconds: 900 })).rejects.toThrow(/cannot create the task's Vault token \(vault\.task_tokens; the app's policy needs "update" on auth\/token\/create\)/);
    expect(dyn.isDone()).toBe(false);
    nock.cleanAll();
  });
});
