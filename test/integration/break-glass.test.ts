import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nock from "nock";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { main, USAGE } from "../../src/cli.js";
import { loadServerConfig, ServerConfigError } from "../../src/config/server-config.js";
import type { Db } from "../../src/connectors/store/db.js";
import { recordLease } from "../../src/connectors/store/leases.js";
import { VaultUnavailableError } from "../../src/connectors/vault/index.js";
import { BreakGlassError, BreakGlassInputError, NO_VAULT_REASON, breakGlass, type BreakGlassResult } from "../../src/ops/break-glass.js";
import { BREAK_GLASS_PATH, createWebServer, type AdminOptions } from "../../src/web/server.js";
import { RotationInputError, ROTATE_PATH } from "../../src/web/routes/admin.js";
import { migratedTestDb } from "../helpers/harness.js";

const VAULT = "https://vault.test:8200";
const TOKEN = "hvs.break-glass-token-1";
const SECRET_ID = "approle-secret-id-bg";
const ADMIN_TOKEN = "admin-token-0123456789abcdef0123456789abcdef";

const CONFIG_DOC = {
  vault: { address: VAULT, approle: { role_id: "role-agent", secret_id_env: "TEST_VAULT_SECRET_ID" } },
  stacks: {
    prod: { deploy: { PGUSER: { dynamic: "database/creds/prod-owner", key: "username" } } },
    "*": { deploy: { PGUSER: { dynamic: "database/creds/default-owner", key: "username" } } },
  },
};

const loginReply = { auth: { client_token: TOKEN, accessor: "acc-1", policies: ["agent"], lease_duration: 3600, renewable: true } };
const vault = () => nock(VAULT, { reqheaders: { "x-vault-token": TOKEN } });
const mockLogin = () => nock(VAULT, { badheaders: ["x-vault-token"] }).post("/v1/auth/approle/login", { role_id: "role-agent", secret_id: SECRET_ID }).reply(200, loginReply);

let dbUrl: string;
let testDb: Awaited<ReturnType<typeof migratedTestDb>> | undefined;
let db: Db;
let dir: string;
let configFile: string;
let logs: string[];
let auditMark: string;
const log = () => pino({ level: "info" }, { write: (l: string) => void logs.push(l) });

interface Io {
  out: string[];
  err: string[];
  io: { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean } };
}
function captureIo(): Io {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (s) => out.push(s) > 0 }, stderr: { write: (s) => err.push(s) > 0 } } };
}

const cliEnv = (over: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => ({
  CREDENTIALS_CONFIG: configFile,
  DATABASE_URL: dbUrl,
  TEST_VAULT_SECRET_ID: SECRET_ID,
  USER: "root",
  ...over,
});

/** A deploy (workflow, task, deploys row) as enqueueing and the worker would have left it. */
async function deployIn(state: "PENDING" | "RUNNING", repo: string, stack: string, pr: number): Promise<{ taskId: string; workflowId: string }> {
  const wf = await db.query<{ id: string }>(
    `INSERT INTO workflows (kind, state, repo, installation_id, pr_number, head_sha, requested_by, config)
     VALUES ('deploy', $1, $2, 1, $3, $4, 'bob', '{}'::jsonb) RETURNING id`,
    [state === "RUNNING" ? "APPLYING" : "PENDING", repo, pr, "b".repeat(40)],
  );
  const t = await db.query<{ id: string }>(`INSERT INTO tasks (workflow_id, kind, stack, state, job_id) VALUES ($1, 'deploy', $2, $3, $4) RETURNING id`, [
    wf.rows[0]!.id,
    stack,
    state,
    `job-${randomUUID()}`,
  ]);
  const taskId = t.rows[0]!.id;
  await db.query(
    `INSERT INTO deploys (task_id, repo, stack, pr_number, head_sha, plan_hash, state, requested_by, started_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'bob', CASE WHEN $7 = 'RUNNING' THEN now() END)`,
    [taskId, repo, stack, pr, "b".repeat(40), `sha256:${randomBytes(32).toString("hex")}`, state],
  );
  return { taskId, workflowId: wf.rows[0]!.id };
}

async function deployState(taskId: string) {
  const { rows } = await db.query<{ deploy: string; deploy_error: string | null; task: string; task_error: string | null; workflow: string }>(
    `SELECT d.state AS deploy, d.error AS deploy_error, t.state::text AS task, t.error AS task_error, w.state AS workflow
     FROM deploys d JOIN tasks t ON t.id = d.task_id JOIN workflows w ON w.id = t.workflow_id WHERE d.task_id = $1`,
    [taskId],
  );
  return rows[0]!;
}

async function newAuditRows(): Promise<{ actor: string; action: string; repo: string | null; detail: Record<string, any> }[]> {
  return (await db.query("SELECT actor, action, repo, detail FROM audit_log WHERE id > $1 ORDER BY id", [auditMark])).rows;
}

async function leaseStates(): Promise<Record<string, { revoked: boolean; error: string | null }>> {
  const { rows } = await db.query<{ lease_id: string; revoked_at: Date | null; revoke_error: string | null }>("SELECT lease_id, revoked_at, revoke_error FROM credential_leases ORDER BY lease_id");
  return Object.fromEntries(rows.map((r) => [r.lease_id, { revoked: r.revoked_at !== null, error: r.revoke_error }]));
}

/** Two prod leases (a configured path and one only recorded) and one of staging (the "*" path). */
async function recordLeases(): Promise<void> {
  const base = { repo: "acme/infra", kind: "deploy" as const, ttlSeconds: 3600, taskId: randomUUID() };
  await recordLease(db, { ...base, stack: "prod", path: "database/creds/prod-owner", leaseId: "database/creds/prod-owner/1" });
  await recordLease(db, { ...base, stack: "prod", path: "aws/creds/legacy", leaseId: "aws/creds/legacy/2" });
  await recordLease(db, { ...base, stack: "staging", path: "database/creds/default-owner", leaseId: "database/creds/default-owner/3" });
}

beforeAll(async () => {
  nock.disableNetConnect();
  nock.enableNetConnect(/127\.0\.0\.1|localhost/);
  testDb = await migratedTestDb("bg");
  ({ url: dbUrl, db } = testDb);
  dir = mkdtempSync(join(tmpdir(), "break-glass-"));
  configFile = join(dir, "credentials.yml");
  writeFileSync(configFile, JSON.stringify(CONFIG_DOC));
});

afterAll(async () => {
  nock.cleanAll();
  nock.enableNetConnect();
  await testDb?.drop();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  logs = [];
  await db.query("TRUNCATE credential_leases");
  await db.query("TRUNCATE deploys, tasks, workflows CASCADE");
  // audit_log is append-only (no TRUNCATE): each test looks at the rows after this mark.
  auditMark = (await db.query<{ m: string }>("SELECT coalesce(max(id), 0)::text AS m FROM audit_log")).rows[0]!.m;
});

afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending, "every mocked Vault call was made").toEqual([]);
  for (const secret of [TOKEN, SECRET_ID, ADMIN_TOKEN]) expect(logs.join("\n")).not.toContain(secret);
});

describe("CLI: npm run agent -- revoke", () => {
  it("revoke --stack prod revokes prod's leases (not staging's), cancels prod's queued deploy, reports the applying one, audits once", async () => {
    await recordLeases();
    const pendingProd = await deployIn("PENDING", "acme/infra", "prod", 7);
    const runningProd = await deployIn("RUNNING", "acme/web", "prod", 12);
    const pendingStaging = await deployIn("PENDING", "acme/infra", "staging", 8);
    const login = mockLogin();
    // Only prod's paths: the configured one and the one only recorded for prod. No interceptor
    // for database/creds/default-owner: revoking it would fail the run.
    const prefixes = ["aws/creds/legacy", "database/creds/prod-owner"].map((p) => vault().put(`/v1/sys/leases/revoke-prefix/${p}/`).reply(204));

    const { out, err, io } = captureIo();
    const code = await main(["revoke", "--stack", "prod", "--as", "alice"], cliEnv(), io);
    expect(code, err.join("")).toBe(0);
    expect(login.isDone()).toBe(true);
    expect(prefixes.every((p) => p.isDone())).toBe(true);

    const summary = JSON.parse(out.join("")) as BreakGlassResult;
    expect(summary).toMatchObject({ ok: true, stack: "prod", actor: "alice", via: "cli", audited: true, errors: [] });
    expect(summary.credentials).toEqual({
      status: "revoked",
      leasesRevoked: 2,
      leasesFailed: 0,
      prefixesRevoked: ["aws/creds/legacy", "database/creds/prod-owner"],
      prefixesFailed: [],
    });
    expect(summary.deploys).toMatchObject({
      status: "done",
      cancelled: [{ taskId: pendingProd.taskId, repo: "acme/infra", prNumber: 7, stack: "prod" }],
      running: [{ taskId: runningProd.taskId, repo: "acme/web", prNumber: 12, stack: "prod" }],
    });
    expect(summary.deploys.status === "done" && summary.deploys.running[0]!.startedAt).toMatch(/^\d{4}-/);

    expect(await leaseStates()).toEqual({
      "aws/creds/legacy/2": { revoked: true, error: null },
      "database/creds/default-owner/3": { revoked: false, error: null },
      "database/creds/prod-owner/1": { revoked: true, error: null },
    });
    expect(await deployState(pendingProd.taskId)).toEqual({
      deploy: "FAILED",
      deploy_error: "stopped by break-glass (@alice)",
      task: "CANCELLED",
      task_error: "stopped by break-glass (@alice)",
      workflow: "CANCELLED",
    });
    // Applying: left alone (stopping `pulumi up` half-way leaves the stack unknown), only reported.
    expect(await deployState(runningProd.taskId)).toMatchObject({ deploy: "RUNNING", deploy_error: null, task: "RUNNING", workflow: "APPLYING" });
    expect(await deployState(pendingStaging.taskId)).toMatchObject({ deploy: "PENDING", task: "PENDING", workflow: "PENDING" });

    const audit = await newAuditRows();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: "alice", action: "break_glass.revoke", repo: null });
    expect(audit[0]!.detail).toMatchObject({
      stack: "prod",
      via: "cli",
      credentials: { status: "revoked", leasesRevoked: 2, leasesFailed: 0, prefixesFailed: [] },
      cancelled: [{ task_id: pendingProd.taskId, repo: "acme/infra", pr: 7, stack: "prod" }],
      running: [{ task_id: runningProd.taskId, repo: "acme/web", pr: 12, stack: "prod" }],
    });
    expect(audit[0]!.detail).not.toHaveProperty("error");
    expect(err.join("")).not.toContain(TOKEN);
    expect(err.join("")).not.toContain(SECRET_ID);
  });

  it("without --as the operator is $USER", async () => {
    mockLogin();
    vault().put("/v1/sys/leases/revoke-prefix/database/creds/prod-owner/").reply(204);
    const { io } = captureIo();
    expect(await main(["revoke", "--stack", "prod"], cliEnv({ USER: "carol" }), io)).toBe(0);
    expect((await newAuditRows()).map((r) => r.actor)).toEqual(["carol"]);
  });

  it.each([
    ["an unknown subcommand", ["revokee"], /unknown command: "revokee"/],
    ["no subcommand", [], /no command given/],
    ["an unknown flag", ["revoke", "--stak", "prod"], /Unknown option '--stak'/],
    ["a flag without its value", ["revoke", "--stack"], /--stack/],
    ["a bad stack name", ["revoke", "--stack", "../prod"], /--stack: not a stack name/],
    ["a bad operator name", ["revoke", "--as", "$(whoami)"], /--as: must be a name/],
    ["an extra argument", ["revoke", "prod"], /unexpected argument: "prod"/],
  ])("%s: exit 2 with the usage, nothing done, nothing audited", async (_what, argv, message) => {
    const pending = await deployIn("PENDING", "acme/infra", "prod", 7);
    const { out, err, io } = captureIo();
    expect(await main(argv, cliEnv(), io)).toBe(2);
    expect(err.join("")).toMatch(message);
    expect(err.join("")).toContain(USAGE);
    expect(out.join("")).toBe("");
    expect(await newAuditRows()).toEqual([]);
    expect((await deployState(pending.taskId)).deploy).toBe("PENDING");
  });

  it("--help prints the usage and exits 0", async () => {
    const { out, io } = captureIo();
    expect(await main(["--help"], cliEnv(), io)).toBe(0);
    expect(out.join("")).toBe(USAGE);
  });

  it("without CREDENTIALS_CONFIG: a clear error, exit 2, nothing done", async () => {
    const pending = await deployIn("PENDING", "acme/infra", "prod", 7);
    const { out, err, io } = captureIo();
    expect(await main(["revoke", "--stack", "prod"], cliEnv({ CREDENTIALS_CONFIG: undefined }), io)).toBe(2);
    expect(err.join("")).toMatch(/^error: CREDENTIALS_CONFIG is not set/);
    expect(out.join("")).toBe("");
    expect(await newAuditRows()).toEqual([]);
    expect((await deployState(pending.taskId)).deploy).toBe("PENDING");
  });

  it("an invalid credentials config: exit 2, nothing done", async () => {
    const bad = join(dir, "bad.yml");
    writeFileSync(bad, "vault: {address: 12}\n");
    const { err, io } = captureIo();
    expect(await main(["revoke"], cliEnv({ CREDENTIALS_CONFIG: bad }), io)).toBe(2);
    expect(err.join("")).toMatch(/invalid credentials config/);
    expect(await newAuditRows()).toEqual([]);
  });

  it("Vault down: queued deploys still stopped, leases left for recovery, the failure audited, exit 1", async () => {
    await recordLeases();
    const pendingProd = await deployIn("PENDING", "acme/infra", "prod", 7);
    const down = nock(VAULT)
      .persist()
      .post("/v1/auth/approle/login")
      .replyWithError(Object.assign(new Error("connect ECONNREFUSED 10.1.2.3:8200"), { code: "ECONNREFUSED" }));

    const { out, err, io } = captureIo();
    expect(await main(["revoke", "--stack", "prod", "--as", "alice"], cliEnv(), io)).toBe(1);
    expect(down.isDone()).toBe(true);
    nock.cleanAll();

    expect(err.join("")).toMatch(/error: break-glass did not complete: credential revocation incomplete: 2 lease\(s\) and 2 prefix\(es\) failed/);
    const summary = JSON.parse(out.join("")) as BreakGlassResult;
    expect(summary).toMatchObject({
      ok: false,
      audited: true,
      credentials: { status: "incomplete", leasesRevoked: 0, leasesFailed: 2, prefixesRevoked: [], prefixesFailed: ["aws/creds/legacy", "database/creds/prod-owner"] },
      deploys: { status: "done", cancelled: [{ taskId: pendingProd.taskId }], running: [] },
    });
    const leases = await leaseStates();
    expect(leases["database/creds/prod-owner/1"]).toMatchObject({ revoked: false, error: expect.stringMatching(/ECONNREFUSED/) });
    expect(leases["aws/creds/legacy/2"]).toMatchObject({ revoked: false, error: expect.stringMatching(/ECONNREFUSED/) });
    expect((await deployState(pendingProd.taskId)).deploy).toBe("FAILED");

    const audit = await newAuditRows();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: "alice", action: "break_glass.revoke" });
    expect(audit[0]!.detail).toMatchObject({ stack: "prod", via: "cli", credentials: { status: "incomplete", leasesFailed: 2 } });
    expect(audit[0]!.detail.error).toMatch(/credential revocation incomplete/);
  });

  it("Vault refusing the app's identity at start-up: deploys stopped, the error audited, exit 1", async () => {
    const pendingProd = await deployIn("PENDING", "acme/infra", "prod", 7);
    nock(VAULT).post("/v1/auth/approle/login").reply(400, { errors: ["invalid role or secret ID"] });
    const { out, err, io } = captureIo();
    expect(await main(["revoke", "--stack", "prod", "--as", "alice"], cliEnv(), io)).toBe(1);
    expect(err.join("")).toMatch(/credential revocation failed: Vault at https:\/\/vault.test:8200 refused AppRole login \(400\)/);
    expect(JSON.parse(out.join(""))).toMatchObject({ ok: false, credentials: { status: "failed" }, deploys: { status: "done" } });
    expect((await deployState(pendingProd.taskId)).deploy).toBe("FAILED");
    const audit = await newAuditRows();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.detail.credentials).toEqual({ status: "failed", error: expect.stringMatching(/refused AppRole login/) });
  });
});

describe("breakGlass()", () => {
  const deps = (credentials: Parameters<typeof breakGlass>[0]["credentials"]) => ({ db, log: log(), credentials });

  it("revokeAll throwing: audited with the error message, rethrown as a BreakGlassError; queued deploys stopped anyway", async () => {
    const pending = await deployIn("PENDING", "acme/infra", "prod", 7);
    const cause = new VaultUnavailableError(`Vault at ${VAULT} is sealed or unavailable (503) during revoke prefix x`, 503);
    const revokeAll = vi.fn(async () => {
      throw cause;
    });
    const err = await breakGlass(deps({ revokeAll }), { stack: "prod", actor: "alice", via: "cli" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BreakGlassError);
    expect((err as BreakGlassError).cause).toBe(cause);
    expect((err as BreakGlassError).result).toMatchObject({ ok: false, audited: true, credentials: { status: "failed", error: cause.message } });
    expect(revokeAll).toHaveBeenCalledWith({ stack: "prod" });
    expect((await deployState(pending.taskId)).deploy).toBe("FAILED");
    const audit = await newAuditRows();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.detail).toMatchObject({ stack: "prod", credentials: { status: "failed", error: cause.message }, error: `credential revocation failed: ${cause.message}` });
  });

  it("without a stack: every stack's queued deploys, revokeAll without a filter", async () => {
    const prod = await deployIn("PENDING", "acme/infra", "prod", 7);
    const staging = await deployIn("PENDING", "acme/infra", "staging", 8);
    const revokeAll = vi.fn(async () => ({ leasesRevoked: 0, leasesFailed: 0, prefixesRevoked: [], prefixesFailed: [] }));
    const res = await breakGlass(deps({ revokeAll }), { actor: "alice", via: "http" });
    expect(revokeAll).toHaveBeenCalledWith({});
    expect(res.stack).toBeNull();
    expect(res.deploys.status === "done" && res.deploys.cancelled.map((d) => d.taskId).sort()).toEqual([prod.taskId, staging.taskId].sort());
    expect((await deployState(staging.taskId)).deploy).toBe("FAILED");
    expect((await newAuditRows())[0]!.detail).toMatchObject({ stack: "*", via: "http" });
  });

  it("the env fallback (no revokeAll): says so, not an error; deploys still stopped and audited", async () => {
    const prod = await deployIn("PENDING", "acme/infra", "prod", 7);
    const res = await breakGlass(deps({}), { stack: "prod", actor: "alice", via: "cli" });
    expect(res).toMatchObject({ ok: true, credentials: { status: "unsupported", reason: NO_VAULT_REASON }, errors: [] });
    expect((await deployState(prod.taskId)).deploy).toBe("FAILED");
    expect((await newAuditRows())[0]!.detail.credentials).toEqual({ status: "unsupported", reason: NO_VAULT_REASON });
  });

  it("a bad stack or operator name: BreakGlassInputError before anything is done", async () => {
    const revokeAll = vi.fn();
    await expect(breakGlass(deps({ revokeAll }), { stack: "prod;drop", actor: "alice", via: "cli" })).rejects.toBeInstanceOf(BreakGlassInputError);
    await expect(breakGlass(deps({ revokeAll }), { stack: "prod", actor: "", via: "cli" })).rejects.toBeInstanceOf(BreakGlassInputError);
    expect(revokeAll).not.toHaveBeenCalled();
    expect(await newAuditRows()).toEqual([]);
  });
});

describe("HTTP: POST /admin/break-glass", () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = null;
  });

  async function startServer(admin?: AdminOptions): Promise<string> {
    server = createWebServer({ db, queues: { webhooks: {} as never }, webhookSecret: "test-webhook-secret", log: log(), admin });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}${BREAK_GLASS_PATH}`;
  }
  const post = (url: string, body: string, token?: string) =>
    fetch(url, { method: "POST", headers: { "content-type": "application/json", ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) }, body });

  it("404 when no admin token is configured", async () => {
    const url = await startServer();
    const res = await post(url, JSON.stringify({ stack: "prod" }), ADMIN_TOKEN);
    expect(res.status).toBe(404);
  });

  it("401 without a token, with a wrong one (same length or not), or another scheme; breakGlass is not called and no token is logged", async () => {
    const bg = vi.fn(async () => ({}));
    const url = await startServer({ token: ADMIN_TOKEN, breakGlass: bg });
    const body = JSON.stringify({ stack: "prod" });
    const wrongSameLength = `${ADMIN_TOKEN.slice(0, -1)}X`;
    for (const res of [
      await post(url, body),
      await post(url, body, wrongSameLength),
      await post(url, body, "short"),
      await post(url, body, ""),
      await fetch(url, { method: "POST", headers: { authorization: `Basic ${ADMIN_TOKEN}` }, body }),
    ]) {
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(await res.json()).toMatchObject({ ok: false });
    }
    expect(bg).not.toHaveBeenCalled();
    expect(logs.join("\n")).not.toContain(wrongSameLength);
    expect(logs.join("\n")).toMatch(/request without a valid admin token refused/);
  });

  it.each([
    ["a bad stack name", JSON.stringify({ stack: "../prod" }), /stack: must be a stack name/],
    ["a bad operator name", JSON.stringify({ operator: "x\n" }), /operator: must be a name/],
    ["an unknown key (a typo must not widen to every stack)", JSON.stringify({ stak: "prod" }), /invalid body/],
    ["a non-object", JSON.stringify(["prod"]), /invalid body/],
    ["bad JSON", "{stack: prod", /body must be JSON/],
  ])("400 on %s; breakGlass not called", async (_what, body, message) => {
    const bg = vi.fn(async () => ({}));
    const url = await startServer({ token: ADMIN_TOKEN, breakGlass: bg });
    const res = await post(url, body, ADMIN_TOKEN);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
    expect(bg).not.toHaveBeenCalled();
  });

  it("413 on a body over 4 KiB; 405 on GET", async () => {
    const bg = vi.fn(async () => ({}));
    const url = await startServer({ token: ADMIN_TOKEN, breakGlass: bg });
    expect((await post(url, JSON.stringify({ stack: "prod", pad: "x".repeat(5000) }), ADMIN_TOKEN)).status).toBe(413);
    const get = await fetch(url, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(get.status).toBe(405);
    expect(bg).not.toHaveBeenCalled();
  });

  it("200: calls breakGlass with the stack and the operator, answers its result", async () => {
    const bg = vi.fn(async (req: { stack?: string; actor: string }) => ({ done: true, ...req }));
    const url = await startServer({ token: ADMIN_TOKEN, breakGlass: bg });
    const res = await post(url, JSON.stringify({ stack: "prod", operator: "alice" }), ADMIN_TOKEN);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, result: { done: true, stack: "prod", actor: "alice" } });
    expect(bg).toHaveBeenCalledTimes(1);
    expect(bg).toHaveBeenCalledWith({ stack: "prod", actor: "alice" });
    // Without a stack: every stack; without an operator: a fixed name, never the token.
    await post(url, "{}", ADMIN_TOKEN);
    expect(bg).toHaveBeenLastCalledWith({ actor: "admin-api" });
  });

  it("200 end to end with the real breakGlass: the deploy is stopped and the audit row says http", async () => {
    const pending = await deployIn("PENDING", "acme/infra", "prod", 7);
    const url = await startServer({ token: ADMIN_TOKEN, breakGlass: (r) => breakGlass({ db, log: log(), credentials: {} }, { ...r, via: "http" }) });
    const res = await post(url, JSON.stringify({ stack: "prod", operator: "alice" }), ADMIN_TOKEN);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, result: { ok: true, stack: "prod", actor: "alice", via: "http", deploys: { cancelled: [{ taskId: pending.taskId }] } } });
    expect(await newAuditRows()).toMatchObject([{ actor: "alice", action: "break_glass.revoke", detail: { via: "http", stack: "prod" } }]);
  });

  it("500 with a short message when breakGlass fails; what happened is in the body for a BreakGlassError", async () => {
    const failing = vi.fn(async () => {
      throw new Error("connection to 10.0.0.5 refused (internal detail)");
    });
    const url = await startServer({ token: ADMIN_TOKEN, breakGlass: failing });
    const res = await post(url, JSON.stringify({ stack: "prod" }), ADMIN_TOKEN);
    expect(res.status).toBe(500);
    const body = (await res.json()) as { ok: boolean; error: string };
    expect(body).toEqual({ ok: false, error: "break-glass failed; see the server log" });
    await new Promise<void>((r) => server!.close(() => r()));

    const partial = { ok: false, errors: ["credential revocation failed: sealed"] } as unknown as BreakGlassResult;
    const url2 = await startServer({ token: ADMIN_TOKEN, breakGlass: async () => Promise.reject(new BreakGlassError("break-glass did not complete: sealed", partial)) });
    const res2 = await post(url2, "{}", ADMIN_TOKEN);
    expect(res2.status).toBe(500);
    expect(await res2.json()).toEqual({ ok: false, error: "break-glass did not complete: sealed", result: partial });
  });

  it("POST /admin/rotate: 401 without the token, 404 without rotation, 400 for a bad body or an unknown secret, 200 with the outcomes", async () => {
    const rotate = vi.fn(async (r: { secret: string | null; actor: string }) => {
      if (r.secret === "nope") throw new RotationInputError('no rotated secret is named "nope"');
      return [{ secret: r.secret ?? "*", rotated: true, from: 1, to: 2, by: r.actor }];
    });
    const rotateUrl = (await startServer({ token: ADMIN_TOKEN, breakGlass: async () => ({}), rotate })).replace(BREAK_GLASS_PATH, ROTATE_PATH);
    expect((await post(rotateUrl, JSON.stringify({ all: true }))).status).toBe(401);
    expect((await post(rotateUrl, JSON.stringify({ secret: "app-key", all: true }), ADMIN_TOKEN)).status).toBe(400);
    expect((await post(rotateUrl, JSON.stringify({}), ADMIN_TOKEN)).status).toBe(400);
    expect((await post(rotateUrl, "not json", ADMIN_TOKEN)).status).toBe(400);
    const unknown = await post(rotateUrl, JSON.stringify({ secret: "nope" }), ADMIN_TOKEN);
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: expect.stringContaining('no rotated secret is named "nope"') });
    const ok = await post(rotateUrl, JSON.stringify({ secret: "app-key", operator: "ops oncall" }), ADMIN_TOKEN);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true, result: [{ secret: "app-key", rotated: true, from: 1, to: 2, by: "ops oncall" }] });
    expect(rotate).toHaveBeenCalledTimes(2);
    await new Promise<void>((r) => server!.close(() => r()));
    const none = (await startServer({ token: ADMIN_TOKEN, breakGlass: async () => ({}) })).replace(BREAK_GLASS_PATH, ROTATE_PATH);
    expect((await post(none, JSON.stringify({ all: true }), ADMIN_TOKEN)).status).toBe(404);
  });

  it("refuses to start with a short admin token", () => {
    expect(() => createWebServer({ db, queues: { webhooks: {} as never }, webhookSecret: "s", log: log(), admin: { token: "short", breakGlass: async () => ({}) } })).toThrow(/at least 32/);
  });
});

describe("ADMIN_TOKEN in the server configuration", () => {
  it("unset (or empty): adminToken is null", () => {
    expect(loadServerConfig({}).adminToken).toBeNull();
    expect(loadServerConfig({ ADMIN_TOKEN: "" }).adminToken).toBeNull();
  });

  it("set: at least 32 characters", () => {
    expect(loadServerConfig({ ADMIN_TOKEN }).adminToken).toBe(ADMIN_TOKEN);
    const short = "too-short-admin-token";
    let err: unknown;
    try {
      loadServerConfig({ ADMIN_TOKEN: short });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ServerConfigError);
    expect((err as Error).message).toMatch(/ADMIN_TOKEN: must be at least 32 characters/);
    expect((err as Error).message).not.toContain(short);
  });
});
