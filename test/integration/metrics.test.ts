/**
 * `GET /metrics` and the queue dashboard `/admin/queues` against the running app: real Redis,
 * Postgres and Docker; GitHub is the nock fake. A preview and a deploy move the counters and
 * histograms; the tokens guard what they should.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, destroyTestEnv, issueCommentPayload, makeTestEnv, startAppFixture, startTestApp, type AppFixture, type TestEnv } from "../helpers/harness.js";

const REPO = "octo-org/metrics";
const TOKEN = "ghs_metricsInstallationToken000000000031";
const METRICS_TOKEN = "metrics-token-0123456789abcdef";
const ADMIN_TOKEN = "admin-token-0123456789abcdef0123456789";
const CONFIG = `version: 1
stacks:
  - name: app
    dir: app
    gate: { approvals: 1, require: { lock: false } }
    steps:
      preview: ["cat", "plan.txt"]
      deploy: ["./deploy.sh"]
`;
const TREE = {
  "app/plan.txt": "plan: release v1\n",
  "app/deploy.sh": exe("#!/bin/sh\necho deploying v1\n"),
};

/** The value of one sample line (`name{labels} value`), or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

describe("metrics and the queue dashboard on a running app (METRICS_TOKEN and ADMIN_TOKEN set)", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let base: string;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { env: { METRICS_TOKEN, ADMIN_TOKEN, SANDBOX_POOL_SIZE: "1" }, credentials: staticCredentials(() => ({})) });
    base = `http://127.0.0.1:${f.app.port}`;
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.permissions.set("bob", "write");
    gh.files.set("main:.github/agent.yml", CONFIG);
  });
  afterAll(async () => {
    gh?.stop();
    await f?.stop();
  });

  const scrape = async () => {
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(f.app.deps.metrics!.registry.contentType);
    return res.text();
  };
  const say = async (number: number, body: string, login: string) => {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    expect(res.status).toBe(202);
    await f.watcher.handled(res.id);
    return res;
  };
  const checkRunOf = (c: RecordedCall) => gh.checkRuns.get(Number(c.path.split("/").pop()));
  const completed = (from: number, name: string) =>
    gh.waitFor((c) => gh.calls.indexOf(c) >= from && isCheckRunCompleted(c) && checkRunOf(c)?.name === name, name, 45_000);

  it("counts deliveries by outcome, times accepted ones, and times a preview and a deploy", async () => {
    const before = await scrape();
    expect(sample(before, 'agent_webhook_deliveries_total{event="issue_comment",outcome="accepted"}')).toBeUndefined();
    expect(sample(before, "agent_ingest_seconds_count")).toBe(0);

    const sha = await f.git.commit(REPO, TREE, "pr head");
    gh.pulls.set(1, { headSha: sha, author: "alice" });
    const from = gh.calls.length;
    const preview = await say(1, "/agent preview app", "alice");
    const previewDone = await completed(from, "agent/preview (app)");
    expect(previewDone.body).toMatchObject({ conclusion: "success" });

    // The same delivery again is a duplicate; a bad signature and an event we do not handle are counted apart.
    const again = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 1, body: "/agent preview app", login: "alice" }), { id: preview.id });
    expect(again.json).toEqual({ ok: true, duplicate: true });
    expect((await deliver(f.app.port!, "issue_comment", { zen: "x" }, { signature: "sha256=" + "0".repeat(64) })).status).toBe(401);
    expect((await deliver(f.app.port!, "star", { action: "created" })).status).toBe(202);

    let text = await scrape();
    expect(sample(text, 'agent_webhook_deliveries_total{event="issue_comment",outcome="accepted"}')).toBe(1);
    expect(sample(text, 'agent_webhook_deliveries_total{event="issue_comment",outcome="duplicate"}')).toBe(1);
    expect(sample(text, 'agent_webhook_deliveries_total{event="unverified",outcome="bad_signature"}')).toBe(1);
    expect(sample(text, 'agent_webhook_deliveries_total{event="star",outcome="unhandled_event"}')).toBe(1);
    // Only accepted deliveries are timed.
    expect(sample(text, "agent_ingest_seconds_count")).toBe(1);
    expect(sample(text, "agent_ingest_seconds_sum")).toBeGreaterThan(0);
    expect(sample(text, 'agent_task_duration_seconds_count{kind="preview",outcome="succeeded"}')).toBe(1);
    expect(sample(text, 'agent_task_duration_seconds_sum{kind="preview",outcome="succeeded"}')).toBeGreaterThan(0);
    expect(sample(text, 'agent_task_duration_seconds_count{kind="preview",outcome="failed"}')).toBeUndefined();
    expect(sample(text, 'agent_step_duration_seconds_count{step="preview",outcome="succeeded"}')).toBe(1);

    // Approved, then deployed: the deploy counter, its duration and the approval wait move.
    const fromDeploy = gh.calls.length;
    await say(1, "/approve", "bob");
    await say(1, "/agent deploy app", "alice");
    const deployDone = await completed(fromDeploy, "agent/deploy (app)");
    expect(deployDone.body).toMatchObject({ conclusion: "success" });
    text = await scrape();
    expect(sample(text, 'agent_deploys_total{outcome="succeeded"}')).toBe(1);
    expect(sample(text, 'agent_deploys_total{outcome="failed"}')).toBe(0);
    expect(sample(text, 'agent_task_duration_seconds_count{kind="deploy",outcome="succeeded"}')).toBe(1);
    expect(sample(text, 'agent_step_duration_seconds_count{step="deploy",outcome="succeeded"}')).toBe(1);
    expect(sample(text, "agent_approval_wait_seconds_count")).toBe(1);
    expect(sample(text, "agent_approval_wait_seconds_sum")).toBeGreaterThan(0);
  });

  it("reads the queues, the pool, running tasks and the time limit at scrape time; no Vault, no agent_vault_up", async () => {
    await f.app.deps.sandboxes.settled();
    const text = await scrape();
    for (const queue of ["webhooks", "tasks"]) {
      for (const state of ["waiting", "active", "delayed", "failed"]) expect(sample(text, `agent_queue_jobs{queue="${queue}",state="${state}"}`), `${queue} ${state}`).toBeGreaterThanOrEqual(0);
      expect(sample(text, `agent_queue_oldest_waiting_seconds{queue="${queue}"}`)).toBe(0);
    }
    expect(sample(text, "agent_tasks_running_oldest_seconds")).toBe(0);
    expect(sample(text, "agent_task_timeout_seconds")).toBe(120);
    expect(sample(text, "agent_sandbox_pool_idle")).toBe(f.app.deps.sandboxes.idleIds.length);
    expect(text).not.toContain("agent_vault_up");
    expect(text).toMatch(/^agent_process_cpu_seconds_total /m);
  });

  it("shows the age of the oldest RUNNING task from Postgres", async () => {
    const { rows } = await f.db.query("SELECT id FROM tasks ORDER BY created_at LIMIT 1");
    await f.db.query("UPDATE tasks SET state = 'RUNNING', started_at = now() - interval '300 seconds' WHERE id = $1", [rows[0].id]);
    try {
      const age = sample(await scrape(), "agent_tasks_running_oldest_seconds")!;
      expect(age).toBeGreaterThanOrEqual(300);
      expect(age).toBeLessThan(330);
    } finally {
      await f.db.query("UPDATE tasks SET state = 'SUCCEEDED' WHERE id = $1", [rows[0].id]);
    }
  });

  it("requires the metrics token when METRICS_TOKEN is set", async () => {
    const none = await fetch(`${base}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await none.text()).not.toContain("agent_");
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } })).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: basic("admin", METRICS_TOKEN) } })).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status).toBe(200);
  });

  it("serves the queue dashboard only with admin credentials (Basic admin:ADMIN_TOKEN or Bearer), read-only", async () => {
    const none = await fetch(`${base}/admin/queues`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
    expect(await none.text()).not.toContain("<html");
    for (const authorization of [basic("admin", `${ADMIN_TOKEN}x`), basic("root", ADMIN_TOKEN), `Bearer ${METRICS_TOKEN}`, basic("admin", "")]) {
      expect((await fetch(`${base}/admin/queues`, { headers: { authorization } })).status, authorization).toBe(401);
    }
    expect((await fetch(`${base}/admin/queues/api/queues`)).status).toBe(401);

    const page = await fetch(`${base}/admin/queues`, { headers: { authorization: basic("admin", ADMIN_TOKEN) } });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toMatch(/<html/i);
    expect(html).toContain('<base href="/admin/queues/"');
    // Its assets come through the same prefix and the same check.
    const css = /href="(static\/css\/[^"]+\.css)"/.exec(html)![1]!;
    expect((await fetch(`${base}/admin/queues/${css}`)).status).toBe(401);
    const asset = await fetch(`${base}/admin/queues/${css}`, { headers: { authorization: basic("admin", ADMIN_TOKEN) } });
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toMatch(/^text\/css/);
    expect((await fetch(`${base}/admin/queues`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(200);

    const api = await fetch(`${base}/admin/queues/api/queues?activeQueue=tasks&status=latest&page=1`, { headers: { authorization: basic("admin", ADMIN_TOKEN) } });
    expect(api.status).toBe(200);
    const { queues } = (await api.json()) as { queues: Array<{ name: string; readOnlyMode: boolean }> };
    expect(queues.map((q) => q.name).sort()).toEqual(["diagnostics", "tasks", "webhooks"]);
    expect(queues.every((q) => q.readOnlyMode)).toBe(true);

    // Nothing but reading: pausing (or anything else) is refused even with the token.
    const pause = await fetch(`${base}/admin/queues/api/queues/tasks/pause`, { method: "PUT", headers: { authorization: basic("admin", ADMIN_TOKEN) } });
    expect(pause.status).toBe(405);
    expect(await f.app.deps.queues.tasks.isPaused()).toBe(false);
  });
});

describe("metrics and the queue dashboard without tokens (web role)", () => {
  let env: TestEnv;
  let web: RunningApp;

  beforeAll(async () => {
    env = await makeTestEnv();
    web = await startTestApp(env, "web");
  });
  afterAll(async () => {
    await web?.stop();
    if (env) await destroyTestEnv(env);
  });

  it("serves /metrics openly and shows a delivery waiting in the webhooks queue (no worker here)", async () => {
    const res = await deliver(web.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: "https://github.com/octo-org/metrics.git", prNumber: 1, body: "/agent preview" }));
    expect(res.status).toBe(202);
    await new Promise((r) => setTimeout(r, 1100));
    const scraped = await fetch(`http://127.0.0.1:${web.port}/metrics`);
    expect(scraped.status).toBe(200);
    const text = await scraped.text();
    expect(sample(text, 'agent_queue_jobs{queue="webhooks",state="waiting"}')).toBe(1);
    expect(sample(text, 'agent_queue_jobs{queue="tasks",state="waiting"}')).toBe(0);
    expect(sample(text, 'agent_queue_oldest_waiting_seconds{queue="webhooks"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'agent_webhook_deliveries_total{event="issue_comment",outcome="accepted"}')).toBe(1);
  });

  it("has no queue dashboard without ADMIN_TOKEN: 404, with or without credentials", async () => {
    expect((await fetch(`http://127.0.0.1:${web.port}/admin/queues`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${web.port}/admin/queues/api/queues`, { headers: { authorization: basic("admin", ADMIN_TOKEN) } })).status).toBe(404);
  });
});

describe("a worker-only process serves its metrics on METRICS_PORT", () => {
  it("answers /metrics there (with METRICS_TOKEN) and nothing else", async () => {
    const env = await makeTestEnv({ METRICS_PORT: "0", METRICS_TOKEN, SANDBOX_POOL_SIZE: "0" });
    const logs: string[] = [];
    const worker = await startTestApp(env, "worker", logs);
    try {
      expect(worker.port).toBeNull();
      const line = logs.map((l) => JSON.parse(l) as { msg: string; port?: number }).find((l) => l.msg === "metrics listening");
      expect(line?.port).toBeGreaterThan(0);
      const url = `http://127.0.0.1:${line!.port}`;
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^# TYPE agent_task_duration_seconds histogram$/m);
      expect((await fetch(`${url}/api/github/webhooks`, { method: "POST" })).status).toBe(404);
    } finally {
      await worker.stop();
      await destroyTestEnv(env);
    }
  });
});
