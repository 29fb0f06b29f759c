/**
 * Break-glass against a deploy that is applying: `POST /admin/break-glass` on the running app
 * signals the worker, which kills the sandbox mid-apply and hands the deploy to a human
 * (NEEDS_ATTENTION, no merge), and the action is audited. Real Docker, Redis and Postgres.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, leftoverSandboxes, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/glass";
const TOKEN = "ghs_breakGlassInstallationToken000000040";
const ADMIN_TOKEN = "admin-token-for-tests-0123456789abcdef";
const CONFIG = `version: 1
stacks:
  - name: prod
    dir: app
    gate: { approvals: 1, require: { lock: false } }
    steps:
      preview: ["echo", "plan: scale to 3"]
      deploy: ["./deploy.sh"]
`;

describe("break-glass during a deploy", () => {
  let f: AppFixture;
  let gh: GitHubFake;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { env: { ADMIN_TOKEN }, credentials: staticCredentials(() => ({})) });
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });

  const say = async (body: string, login: string) => {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 5, body, login }));
    await f.watcher.handled(res.id);
  };
  const glass = (body: unknown, token = ADMIN_TOKEN) =>
    fetch(`http://127.0.0.1:${f.app.port}/admin/break-glass`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });

  it("stops the applying deploy, hands it to a human, never merges, and audits it", async () => {
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
    // The apply prints, then would run for a long time.
    const sha = await f.git.commit(REPO, { "app/deploy.sh": exe("#!/bin/sh\necho applying\nsleep 120\n") });
    gh.pulls.set(5, { headSha: sha, author: "alice" });
    await say("/agent preview prod", "alice");
    await gh.waitFor((c) => isCheckRunCompleted(c) && gh.checkRuns.get(Number(c.path.split("/").pop()))?.name === "agent/preview (prod)", "the preview");
    await say("/approve", "bob");
    await say("/agent deploy prod", "alice");
    await gh.waitFor((c: RecordedCall) => c.method === "POST" && /\/deployments\/\d+\/statuses$/.test(c.path) && c.body?.state === "in_progress", "the deploy in progress");

    expect((await glass({ stack: "prod" }, "wrong-token-wrong-token-wrong-token-00")).status).toBe(401);
    const res = await glass({ stack: "prod", operator: "oncall-carol" });
    expect(res.status).toBe(200);
    const { result: body } = (await res.json()) as { result: { deploys: { running: Array<{ taskId: string }> } } };
    expect(body.deploys.running).toHaveLength(1);

    const done = await gh.waitFor((c) => isCheckRunCompleted(c) && gh.checkRuns.get(Number(c.path.split("/").pop()))?.name === "agent/deploy (prod)", "the deploy's end", 30_000);
    expect(done.body).toMatchObject({ conclusion: "action_required" });
    await gh.waitFor(() => gh.find("POST", /\/issues\/5\/comments$/).some((c) => String(c.body?.body).includes("an operator stopped this deploy with break-glass")), "the needs-attention comment");
    expect(gh.find("PUT", /\/pulls\/5\/merge$/)).toHaveLength(0);
    // The GitHub Deployment says so too.
    expect([...gh.deployments.values()].map((d) => d.statuses)).toEqual([["in_progress", "error"]]);
    const { rows } = await f.db.query("SELECT state FROM deploys");
    expect(rows).toEqual([{ state: "NEEDS_ATTENTION" }]);
    const { rows: audit } = await f.db.query("SELECT actor, detail FROM audit_log WHERE action = 'break_glass.revoke'");
    expect(audit).toHaveLength(1);
    expect(audit[0].actor).toBe("oncall-carol");
    expect(audit[0].detail.stop_signalled).toEqual([body.deploys.running[0]!.taskId]);
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });

  it("the audit log: JSON lines by repo and stack with chained hashes, and the chain verifies (admin token only)", async () => {
    const get = (path: string, token = ADMIN_TOKEN) => fetch(`http://127.0.0.1:${f.app.port}${path}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await get("/admin/audit?stack=prod", "not-the-admin-token-not-the-admin-token")).status).toBe(401);
    expect((await get("/admin/audit?since=yesterday")).status).toBe(400);
    const res = await get(`/admin/audit?repo=${encodeURIComponent(REPO)}&stack=prod`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/x-ndjson");
    const text = (await res.text()).trim();
    if (process.env.SHOW_REPLIES) console.log(text);
    const rows = text.split("\n").map((l) => JSON.parse(l) as { repo: string; action: string; hash: string; prev_hash: string; detail: { stack?: string } });
    expect(rows.length).toBeGreaterThan(3);
    for (const r of rows) {
      expect(r.repo).toBe(REPO);
      expect(r.detail.stack).toBe("prod");
      expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(rows.map((r) => r.action)).toEqual(expect.arrayContaining(["deploy.queued", "deploy.started", "deploy.needs_attention"]));
    const verified = await get("/admin/audit/verify");
    expect(verified.status).toBe(200);
    expect(await verified.json()).toMatchObject({ ok: true, head: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });
});
