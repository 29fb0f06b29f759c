/**
 * Vault credentials inside a real sandbox: a preview gets its stack's preview set only (the
 * deploy variables are absent from the container's environment), every fetched value is masked
 * in whatever the step prints, and the preview's dynamic lease is revoked when the task ends.
 * Vault is nock at its HTTP API; Docker, Postgres and Redis are real.
 */
import nock from "nock";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseCredentialsConfig } from "../../src/config/credentials-config.js";
import type { CredentialSource } from "../../src/connectors/credentials.js";
import { credentialSourceFromConfig, type CredentialsRuntime } from "../../src/connectors/vault/index.js";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/vaulted";
const TOKEN = "ghs_vaultSandboxInstallationToken000000030";
const VAULT = "https://vault.test:8200";
const VAULT_TOKEN = "hvs.CAESIvaultSandboxClientToken00000000";
const PREVIEW_TOKEN = "pul-read-0f9e8d7c6b5a4f3e2d1c";
const DB_PASSWORD = "A1a-readonly-passw0rd-7d1f";
const CONFIG = {
  vault: { address: VAULT, approle: { role_id: "role-agent", secret_id_env: "SID" } },
  stacks: {
    prod: {
      preview: {
        PULUMI_ACCESS_TOKEN: { kv: "secret/data/pulumi/prod-read", key: "token" },
        PGUSER: { dynamic: "database/creds/prod-readonly", key: "username" },
        PGPASSWORD: { dynamic: "database/creds/prod-readonly", key: "password" },
      },
      deploy: {
        DEPLOY_ONLY_TOKEN: { kv: "secret/data/pulumi/prod-write", key: "token" },
      },
    },
  },
};
// Prints the whole environment and the secrets in several encodings, then fails on purpose.
const LEAK = `for (const [k, v] of Object.entries(process.env).sort()) console.log("env", k + "=" + v);
for (const t of [process.env.PULUMI_ACCESS_TOKEN, process.env.PGPASSWORD]) {
  console.log("b64", Buffer.from(t).toString("base64"));
  console.log("url", encodeURIComponent(t));
  console.log("json", JSON.stringify({ t }));
}
process.exit(1);
`;

describe("Vault credentials in a real sandbox", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let runtime: CredentialsRuntime | null = null;
  const lazy: CredentialSource = { forTask: (req) => runtime!.source.forTask(req) };

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials: lazy });
  });
  // Every test is its own PR on the same stacks: the earlier tests' stack locks go first
  // (a preview command takes its stacks' locks; locks have their own test file).
  beforeEach(async () => {
    await f.db.query("DELETE FROM stack_locks");
  });
  afterAll(async () => {
    runtime?.close();
    gh?.stop();
    await f.stop();
  });

  it("a preview gets the preview set only, everything it prints is masked, and its lease is revoked", async () => {
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", 'version: 1\nstacks:\n  - name: prod\nsteps:\n  preview: ["node", "leak.js"]\n');
    const login = nock(VAULT).post("/v1/auth/approle/login", { role_id: "role-agent", secret_id: "secret-id-1" }).reply(200, {
      auth: { client_token: VAULT_TOKEN, accessor: "a", policies: ["agent"], lease_duration: 3600, renewable: true },
    });
    const authed = () => nock(VAULT, { reqheaders: { "x-vault-token": VAULT_TOKEN } });
    const reads = authed()
      .get("/v1/secret/data/pulumi/prod-read")
      .reply(200, { lease_id: "", renewable: false, lease_duration: 0, data: { data: { token: PREVIEW_TOKEN }, metadata: { version: 2, created_time: "2026-11-01T10:00:00Z" } } })
      .get("/v1/database/creds/prod-readonly")
      .reply(200, { lease_id: "database/creds/prod-readonly/abc123", lease_duration: 3600, renewable: true, data: { username: "v-approle-prod-ro-xyz", password: DB_PASSWORD } });
    const revoke = authed().put("/v1/sys/leases/revoke", { lease_id: "database/creds/prod-readonly/abc123" }).reply(204);
    // Were the deploy set ever read, this interceptor would be used (and the test fails below).
    const deployRead = authed().get("/v1/secret/data/pulumi/prod-write").reply(200, { data: { data: { token: "deploy-secret-value-0000" }, metadata: {} } });

    runtime = await credentialSourceFromConfig(parseCredentialsConfig(CONFIG, "test"), { db: f.app.deps.db, log: pino({ level: "silent" }), env: { SID: "secret-id-1" } });
    expect(login.isDone()).toBe(true);

    const sha = await f.git.commit(REPO, { "leak.js": LEAK });
    gh.pulls.set(1, { headSha: sha });
    await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 1, body: "/agent preview", login: "alice" }));
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    const text = String((done.body!.output as { text: string }).text);

    expect(reads.isDone()).toBe(true);
    expect(deployRead.isDone()).toBe(false);
    // Inside the container: the preview variables are set (masked), the deploy one is absent.
    expect(text).toContain("env PULUMI_ACCESS_TOKEN=[redacted]");
    expect(text).toContain("env PGPASSWORD=[redacted]");
    expect(text).not.toContain("DEPLOY_ONLY_TOKEN");
    expect(text).not.toContain("VAULT");
    for (const label of ["b64", "url", "json"]) expect(text).toMatch(new RegExp(`${label} .*\\[redacted\\]`));
    const everything = JSON.stringify(gh.calls.map((c) => c.body)) + JSON.stringify((await f.db.query("SELECT steps, error FROM tasks")).rows);
    for (const secret of [PREVIEW_TOKEN, DB_PASSWORD, VAULT_TOKEN]) {
      for (const form of [secret, Buffer.from(secret).toString("base64"), encodeURIComponent(secret)]) expect(everything).not.toContain(form);
    }
    // The lease was recorded and revoked when the task ended.
    await gh.waitFor(() => revoke.isDone(), "the lease revoke");
    const { rows } = await f.db.query("SELECT lease_id, kind, revoked_at IS NOT NULL AS revoked FROM credential_leases");
    expect(rows).toEqual([{ lease_id: "database/creds/prod-readonly/abc123", kind: "preview", revoked: true }]);
  });

  it("a Vault refusal fails the preview at once with the variable and path named, and no step runs", async () => {
    const denied = nock(VAULT, { reqheaders: { "x-vault-token": VAULT_TOKEN } }).get("/v1/secret/data/pulumi/prod-read").reply(403, { errors: ["1 error occurred:\n\t* permission denied\n\n"] });
    const sha = await f.git.commit(REPO, { "leak.js": LEAK, "README.md": "second\n" });
    gh.pulls.set(2, { headSha: sha });
    const start = gh.calls.length;
    await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 2, body: "/agent preview", login: "alice" }));
    const done = await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c), "the failed check run");
    expect(denied.isDone()).toBe(true);
    expect(done.body).toMatchObject({ conclusion: "failure" });
    const output = done.body!.output as { summary: string; text?: string };
    expect(output.summary).toContain("this task's credentials could not be issued: PULUMI_ACCESS_TOKEN: cannot read secret/data/pulumi/prod-read");
    expect(output.summary).toContain("nothing was run");
    expect(JSON.stringify(output)).not.toContain("env PATH=");
    // Not retried: a refusal does not change by asking again.
    const { rows } = await f.db.query("SELECT t.state, t.attempts FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = 2");
    expect(rows).toEqual([{ state: "FAILED", attempts: 1 }]);
  });
});
