/**
 * The GitHub App key's rotation (issue 20): the key lives in Vault (KV v2) and is rotated by a
 * person, since GitHub lets only a person generate one. The app picks a new version up without
 * a restart once GitHub accepts it, never takes a key GitHub refuses (or another app's), keeps
 * working when GitHub drops the key in use before the app's next check (old and new both work
 * during the switch), and opens an issue with the steps before the key is due, closed once the
 * new key is in use.
 *
 * Vault and GitHub are stand-ins at the HTTP boundary (nock) that hold real state: Vault's KV v2
 * versions and metadata; GitHub's set of the app's registered public keys, against which every
 * JWT's RS256 signature is verified, as GitHub does. PostgreSQL (the audit log) and Redis are real.
 */
import { generateKeyPairSync, verify } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nock from "nock";
import pg from "pg";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startApp, type RunningApp } from "../../src/app.js";
import { keyFingerprint } from "../../src/connectors/github-app-key.js";
import { until } from "../helpers/app-process.js";
import { destroyTestEnv, isolateNetwork, makeTestEnv, TestOctokit, type TestEnv } from "../helpers/harness.js";

const VAULT = "https://vault.test:8200";
const VAULT_TOKEN = "hvs.CAESIgithubKeyRotation0000000000000";
const APP_ID = 12345;
const newKey = () => generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } });
const keyA = newKey();
const keyB = newKey();
const keyC = newKey(); // never registered with the app: GitHub refuses it
const keyOther = newKey(); // another app's key: GitHub accepts it, as that app's
const DAY = 86_400_000;

/** Vault's KV v2 secret `secret/data/github-app`: versions, each with its value and write time. */
class VaultKv {
  versions = new Map<number, { pem: string; created: Date }>();
  current = 0;
  write(pem: string, created = new Date()): number {
    this.versions.set(++this.current, { pem, created });
    return this.current;
  }
  data(version: number) {
    const v = this.versions.get(version)!;
    return { data: { data: { private_key: v.pem, other: "kept" }, metadata: { version, created_time: v.created.toISOString(), destroyed: false } } };
  }
  metadata() {
    return {
      data: {
        current_version: this.current,
        versions: Object.fromEntries([...this.versions].map(([n, v]) => [String(n), { created_time: v.created.toISOString(), destroyed: false, deletion_time: "" }])),
      },
    };
  }
}

/** GitHub's side: the public keys each app has registered; a JWT counts when one of them verifies it. */
class GitHubApps {
  registered = new Map<number, Set<string>>();
  /** Fingerprints of the keys that signed each accepted JWT, in order, per route. */
  signedBy: { route: string; fingerprint: string }[] = [];
  refused: string[] = [];
  register(appId: number, publicKey: string) {
    (this.registered.get(appId) ?? this.registered.set(appId, new Set()).get(appId)!).add(publicKey);
  }
  unregister(appId: number, publicKey: string) {
    this.registered.get(appId)?.delete(publicKey);
  }
  /** The app and key a bearer JWT is signed by, as GitHub checks it (iss names the app). */
  check(route: string, authorization: string | undefined): number | null {
    const jwt = String(authorization ?? "").replace(/^bearer /i, "");
    const [header, payload, signature] = jwt.split(".");
    if (!header || !payload || !signature) return null;
    const iss = Number(JSON.parse(Buffer.from(payload, "base64url").toString()).iss);
    for (const [appId, keys] of this.registered) {
      for (const pub of keys) {
        if (appId === iss && verify("RSA-SHA256", Buffer.from(`${header}.${payload}`), pub, Buffer.from(signature, "base64url"))) {
          this.signedBy.push({ route, fingerprint: keyFingerprint(pub) });
          return appId;
        }
      }
    }
    // A JWT of a key registered with another app: GitHub answers as that app when iss says so.
    for (const [appId, keys] of this.registered) {
      for (const pub of keys) {
        if (verify("RSA-SHA256", Buffer.from(`${header}.${payload}`), pub, Buffer.from(signature, "base64url")) && appId !== APP_ID) {
          this.signedBy.push({ route, fingerprint: keyFingerprint(pub) });
          return appId;
        }
      }
    }
    this.refused.push(route);
    return null;
  }
}

const fp = (k: { publicKey: string }) => keyFingerprint(k.publicKey);

describe("the GitHub App key's rotation", () => {
  let env: TestEnv;
  let dir: string;
  let db: pg.Client;
  let connected = false;
  let mark = 0;
  let app: RunningApp | null = null;
  let vault: VaultKv;
  let github: GitHubApps;
  let issues: { method: string; path: string; body: Record<string, unknown> }[];
  const api = () => env.config.github.apiBaseUrl ?? "https://api.github.com";

  beforeAll(async () => {
    isolateNetwork();
    // The key is checked only when a test asks (no timer tick mid-test).
    env = await makeTestEnv({ GITHUB_KEY_CHECK_SECONDS: "3600", ADMIN_TOKEN: "admin-token-for-key-rotation-0001" });
    dir = await mkdtemp(join(tmpdir(), "agent-key-"));
    await writeFile(
      join(dir, "credentials.yml"),
      [
        "vault:",
        `  address: ${VAULT}`,
        "  approle: { role_id: role-agent, secret_id_env: SID }",
        "  github_private_key: { kv: secret/data/github-app, key: private_key }",
        "rotation:",
        "  github_app_key: { every_days: 90, notice_days: 14, issue_repo: octo-org/platform }",
        "stacks: {}",
        "",
      ].join("\n"),
    );
    db = new pg.Client({ connectionString: env.databaseUrl });
  });
  afterAll(async () => {
    if (connected) await db.end();
    await destroyTestEnv(env);
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    vault = new VaultKv();
    github = new GitHubApps();
    issues = [];
    github.register(APP_ID, keyA.publicKey);
    github.register(999, keyOther.publicKey);
    // nock 15 hands a one-argument reply function the fetch Request.
    type Reply = [number, unknown];
    const on = (base: string, respond: (method: string, path: string, auth: string | undefined, body: unknown) => Reply) => {
      const scope = nock(base).persist();
      const reply = async (req: Request): Promise<Reply> => {
        const text = await req.text();
        const url = new URL(req.url);
        return respond(req.method, url.pathname + url.search, req.headers.get("authorization") ?? undefined, text ? JSON.parse(text) : null);
      };
      for (const method of ["GET", "POST", "PATCH"]) scope.intercept(/.*/, method).reply(reply as unknown as () => Reply);
    };
    on(VAULT, (method, path) => {
      if (method === "POST" && path === "/v1/auth/approle/login") return [200, { auth: { client_token: VAULT_TOKEN, accessor: "a", policies: ["agent"], lease_duration: 3600, renewable: true } }];
      if (method === "GET" && path === "/v1/secret/metadata/github-app") return [200, vault.metadata()];
      const data = /^\/v1\/secret\/data\/github-app(?:\?version=(\d+))?$/.exec(path);
      if (method === "GET" && data) {
        const version = Number(data[1] ?? vault.current);
        return vault.versions.has(version) ? [200, vault.data(version)] : [404, { errors: [] }];
      }
      return [404, { errors: [`no route ${method} ${path}`] }];
    });

    let token = 0;
    const refusedJwt: Reply = [401, { message: "A JSON web token could not be decoded", documentation_url: "https://docs.github.com/rest" }];
    on(api(), (method, path, auth, body) => {
      const route = `${method} ${path}`;
      if (route === "GET /app") {
        const id = github.check(route, auth);
        if (id === null) return refusedJwt;
        const slug = id === APP_ID ? "infra-agent" : "other-app";
        return [200, { id, slug, name: slug, html_url: `https://github.com/apps/${slug}`, owner: { login: "octo-org", type: "Organization" } }];
      }
      if (method === "POST" && /^\/app\/installations\/\d+\/access_tokens$/.test(path)) {
        if (github.check(route, auth) === null) return refusedJwt;
        return [201, { token: `ghs_rotation${String(++token).padStart(28, "0")}`, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {}, repository_selection: "all" }];
      }
      if (route === "GET /repos/octo-org/platform/installation") return github.check(route, auth) === null ? refusedJwt : [200, { id: 5, app_id: APP_ID, account: { login: "octo-org" } }];
      if (route === "GET /repos/o/r") return [200, { id: 1, full_name: "o/r" }];
      if (route === "POST /repos/octo-org/platform/issues") return issues.push({ method, path, body: body as Record<string, unknown> }), [201, { number: 12, html_url: "https://github.com/octo-org/platform/issues/12" }];
      if (route === "POST /repos/octo-org/platform/issues/12/comments") return issues.push({ method, path, body: body as Record<string, unknown> }), [201, { id: 901 }];
      if (route === "PATCH /repos/octo-org/platform/issues/12") return issues.push({ method, path, body: body as Record<string, unknown> }), [200, { number: 12, state: "closed" }];
      return [404, { message: `Not Found: ${route}` }];
    });
  });
  afterEach(async () => {
    await app?.stop();
    app = null;
    nock.cleanAll();
  });

  const start = async () => {
    app = await startApp(
      { ...env.config, role: "web", github: { ...env.config.github, privateKey: undefined } },
      { Octokit: TestOctokit, log: pino({ level: "silent" }), env: { CREDENTIALS_CONFIG: join(dir, "credentials.yml"), SID: "sid-1" } },
    );
    // The audit log is append-only: each test reads the rows after this mark.
    if (!connected) await db.connect();
    connected = true;
    mark = Number((await db.query<{ max: string | null }>("SELECT max(id) FROM audit_log")).rows[0]!.max ?? 0);
    await app.githubKey!.watch.check();
    return app;
  };
  /** A GitHub call with a fresh installation (no cached token): a JWT is signed for it. */
  const callAs = async (installation: number) => {
    const gh = await app!.deps.github(installation);
    return gh.request("GET /repos/{owner}/{repo}", { owner: "o", repo: "r" });
  };
  const tokenSigners = () => github.signedBy.filter((s) => s.route.includes("access_tokens")).map((s) => s.fingerprint);
  const audit = async () => {
    return (await db.query<{ action: string; detail: Record<string, unknown> }>("SELECT action, detail FROM audit_log WHERE action LIKE 'rotation.%' AND id > $1 ORDER BY id", [mark])).rows;
  };

  it("the fingerprint is GitHub's: the one `openssl … | openssl sha256 -binary | openssl base64` gives", () => {
    // GitHub's documented way to match a downloaded key with the fingerprint its settings list.
    const der = execFileSync("openssl", ["rsa", "-pubout", "-outform", "DER"], { input: keyA.privateKey, stdio: ["pipe", "pipe", "ignore"] });
    const b64 = execFileSync("openssl", ["base64"], { input: execFileSync("openssl", ["sha256", "-binary"], { input: der }) }).toString().trim();
    expect(keyFingerprint(keyA.privateKey)).toBe(`SHA256:${b64}`);
    expect(keyFingerprint(keyA.privateKey)).toBe(fp(keyA));
  });

  it("a new key in Vault that GitHub accepts is used without a restart; tokens minted with the old one keep working", async () => {
    vault.write(keyA.privateKey, new Date(Date.now() - 80 * DAY));
    await start();
    await callAs(77);
    expect(tokenSigners()).toEqual([fp(keyA)]);

    // The person generated key B in the app's settings (GitHub now has both) and wrote it to Vault.
    github.register(APP_ID, keyB.publicKey);
    vault.write(keyB.privateKey);
    expect(await app!.githubKey!.watch.check()).toEqual({ kind: "loaded", from: 1, to: 2 });
    await callAs(78);
    expect(tokenSigners()).toEqual([fp(keyA), fp(keyB)]);
    // Installation 77's token (minted with A) is still in use: no new token for it.
    await callAs(77);
    expect(tokenSigners()).toEqual([fp(keyA), fp(keyB)]);

    const rows = await audit();
    expect(rows.filter((r) => r.action === "rotation.github_key_loaded").map((r) => r.detail)).toEqual([
      expect.objectContaining({ secret: "github-app-key", from: 1, to: 2, fingerprint_from: fp(keyA), fingerprint_to: fp(keyB), reason: "new version in Vault" }),
    ]);
    // The age is now the new key's (seconds, not 80 days).
    const age = await app!.deps.metrics!.registry.getSingleMetric("agent_secret_age_seconds")!.get();
    const value = age.values.find((v) => v.labels.secret === "github-app-key")?.value;
    expect(value).toBeGreaterThanOrEqual(0);
    expect(value).toBeLessThan(3600);
  });

  it("attack: a key GitHub refuses, or another app's key, written to Vault is never used; the key in use stays (control: the same write of a registered key is used)", async () => {
    vault.write(keyA.privateKey);
    await start();

    // Someone with write access to the secret writes a key GitHub does not know.
    vault.write(keyC.privateKey);
    const refused = await app!.githubKey!.watch.check();
    expect(refused).toMatchObject({ kind: "refused", version: 2 });
    await callAs(79);
    expect(tokenSigners()).toEqual([fp(keyA)]);
    // Checked again: not asked again, not audited again.
    expect(await app!.githubKey!.watch.check()).toMatchObject({ kind: "refused", version: 2 });

    // Another app's key: GitHub accepts the JWT, but as app 999.
    vault.write(keyOther.privateKey);
    expect(await app!.githubKey!.watch.check()).toMatchObject({ kind: "refused", version: 3, error: "it is the key of app 999, not of app 12345" });
    await callAs(80);
    expect(tokenSigners()).toEqual([fp(keyA), fp(keyA)]);
    const failed = (await audit()).filter((r) => r.action === "rotation.failed");
    expect(failed.map((r) => [r.detail.step, r.detail.version, r.detail.fingerprint, r.detail.kept])).toEqual([
      ["verify", 2, fp(keyC), 1],
      ["verify", 3, fp(keyOther), 1],
    ]);
    const failures = await app!.deps.metrics!.registry.getSingleMetric("agent_secret_rotation_failures_total")!.get();
    expect(failures.values.find((v) => v.labels.secret === "github-app-key")?.value).toBe(2);

    // Control: a registered key written the same way is taken into use.
    github.register(APP_ID, keyB.publicKey);
    vault.write(keyB.privateKey);
    expect(await app!.githubKey!.watch.check()).toEqual({ kind: "loaded", from: 1, to: 4 });
    await callAs(81);
    expect(tokenSigners()).toEqual([fp(keyA), fp(keyA), fp(keyB)]);
  });

  it("old and new both work during the switch: GitHub dropping the key in use before the next check costs no failed request", async () => {
    vault.write(keyA.privateKey);
    await start();
    await callAs(82);
    // Control: nothing refused, one token, no recovery.
    expect(github.refused).toEqual([]);

    // Key B is in Vault, and the person deletes A in the settings before the app's next check.
    github.register(APP_ID, keyB.publicKey);
    vault.write(keyB.privateKey);
    github.unregister(APP_ID, keyA.publicKey);
    await expect(callAs(83)).resolves.toMatchObject({ status: 200 });
    // The JWT of A was refused once; the request went out again with B, which GitHub accepted.
    expect(github.refused).toEqual(["POST /app/installations/83/access_tokens"]);
    expect(tokenSigners()).toEqual([fp(keyA), fp(keyB)]);
    expect(app!.githubKey!.ring.current.fingerprint).toBe(fp(keyB));

    // The other way round: the person deleted B by mistake, and A is registered again. The key
    // B replaced is held, and GitHub still accepts it: the app goes back to it.
    github.register(APP_ID, keyA.publicKey);
    github.unregister(APP_ID, keyB.publicKey);
    await expect(callAs(84)).resolves.toMatchObject({ status: 200 });
    expect(tokenSigners()).toEqual([fp(keyA), fp(keyB), fp(keyA)]);
    const loaded = (await audit()).filter((r) => r.action === "rotation.github_key_loaded").map((r) => [r.detail.to, r.detail.reason]);
    expect(loaded).toEqual([
      [2, "new version in Vault"],
      [1, "GitHub refused the key in use; the key it replaced still works"],
    ]);

    // No key works: the request fails with GitHub's 401 (once, no loop), and the next one does
    // not ask Vault and GitHub again straight away.
    github.unregister(APP_ID, keyA.publicKey);
    const before = github.refused.length;
    await expect(callAs(85)).rejects.toMatchObject({ status: 401 });
    const afterFirst = github.refused.length;
    expect(afterFirst - before).toBeLessThanOrEqual(3);
    await expect(callAs(86)).rejects.toMatchObject({ status: 401 });
    expect(github.refused.length - afterFirst).toBe(1);
  });

  it("opens an issue with the steps before the key is due, once; closes it when the new key is in use", async () => {
    const created = new Date(Date.now() - 10 * DAY);
    vault.write(keyA.privateKey, created);
    await start();
    const notice = app!.githubKey!.notice!;
    // Control: 10 days old, due in 80: no issue, no GitHub call.
    expect(await notice()).toEqual({ kind: "none" });
    expect(issues).toEqual([]);

    // 80 days old: due in 10 days, within notice_days (14).
    vault.versions.get(1)!.created = new Date(Date.now() - 80 * DAY);
    expect(await notice()).toEqual({ kind: "opened", issue: 12, version: 1 });
    expect(await notice()).toEqual({ kind: "none" });
    expect(issues).toHaveLength(1);
    const body = String(issues[0]!.body.body);
    const due = new Date(vault.versions.get(1)!.created.getTime() + 90 * DAY);
    expect(issues[0]!.body.title).toBe(`Rotate the GitHub App private key of infra-agent before ${due.toISOString().slice(0, 10)}`);
    expect(issues[0]!.body.labels).toEqual(["agent:key-rotation"]);
    expect(body).toContain(`due for rotation on **${due.toISOString()}**`);
    expect(body).toContain(`Key in use: \`${fp(keyA)}\`, version 1 of \`secret/data/github-app\``);
    expect(body).toContain("https://github.com/organizations/octo-org/settings/apps/infra-agent");
    expect(body).toContain("vault kv patch -mount=secret github-app private_key=@app-private-key.pem");
    expect(body).toContain(`delete the old key \`${fp(keyA)}\``);

    // The person follows the steps: B is generated and written to Vault. The process that takes
    // it into use answers the issue at once (not at the next rotation tick).
    github.register(APP_ID, keyB.publicKey);
    vault.write(keyB.privateKey);
    expect(await app!.githubKey!.watch.check()).toEqual({ kind: "loaded", from: 1, to: 2 });
    await until(async () => issues.length >= 3, "the rotation issue answered and closed");
    expect(issues.slice(1).map((i) => [i.method, i.path])).toEqual([
      ["POST", "/repos/octo-org/platform/issues/12/comments"],
      ["PATCH", "/repos/octo-org/platform/issues/12"],
    ]);
    expect(String(issues[1]!.body.body)).toContain(`The app now signs with the new key \`${fp(keyB)}\` (version 2 in Vault)`);
    expect(String(issues[1]!.body.body)).toContain(`You can now delete the old key \`${fp(keyA)}\` (version 1)`);
    expect(issues[2]!.body).toMatchObject({ state: "closed", state_reason: "completed" });
    expect(await notice()).toEqual({ kind: "none" });
    expect((await audit()).map((r) => r.action)).toEqual(["rotation.github_key_notice", "rotation.github_key_loaded", "rotation.github_key_notice_closed"]);
  });

  it("`rotate --secret github-app-key` (POST /admin/rotate) says the key is rotated by a person, and how", async () => {
    vault.write(keyA.privateKey);
    await start();
    const res = await fetch(`http://127.0.0.1:${app!.port}/admin/rotate`, {
      method: "POST",
      headers: { authorization: "Bearer admin-token-for-key-rotation-0001", "content-type": "application/json" },
      body: JSON.stringify({ secret: "github-app-key", operator: "ops" }),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain("the GitHub App key cannot be rotated by the app: GitHub lets only a person generate one");
  });
});
