import nock from "nock";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { GitHubFake, isCheckRunCompleted as completed, isCheckRunInProgress as inProgress } from "../helpers/github-fake.js";
import { executable as exe, GitHttpServer } from "../helpers/git-server.js";
import {
  deliver,
  destroyTestEnv,
  isolateNetwork,
  issueCommentPayload,
  leftoverSandboxes,
  makeTestEnv,
  startTestApp,
  type TestEnv,
} from "../helpers/harness.js";

const REPO = "octo-org/roles";
const TOKEN = "ghs_rolesInstallationToken0000000000000002";
const CONFIG = `version: 1
stacks:
  - name: dev
steps:
  preview: ["./preview.sh"]
`;

describe("separate web and worker roles, graceful shutdown", () => {
  let env: TestEnv;
  let git: GitHttpServer;
  let gh: GitHubFake;
  let db: pg.Client;
  const running: RunningApp[] = [];
  let pr = 100;

  beforeAll(async () => {
    isolateNetwork();
    env = await makeTestEnv({ SHUTDOWN_GRACE_SECONDS: "2" });
    git = await GitHttpServer.start(TOKEN);
    db = new pg.Client({ connectionString: env.databaseUrl });
    // The database is created by the first app start; connect lazily.
  });
  afterEach(async () => {
    for (const a of running.splice(0)) await a.stop();
    gh?.stop();
  });
  afterAll(async () => {
    await db.end().catch(() => {});
    await git.stop();
    await destroyTestEnv(env);
  });

  async function setup(previewScript: string) {
    // Each test is another PR on the same stack: earlier tests' locks must not refuse it.
    if (connected) await db.query("DELETE FROM stack_locks");
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "admin");
    gh.files.set("main:.github/agent.yml", CONFIG);
    const sha = await git.commit(REPO, { "preview.sh": exe(previewScript) });
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha });
    return { number, payload: issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: number, body: "/agent preview", login: "alice" }) };
  }

  let connected = false;
  async function start(role: "web" | "worker") {
    const app = await startTestApp(env, role);
    running.push(app);
    if (!connected) {
      await db.connect();
      connected = true;
    }
    return app;
  }

  it("the web role only verifies and enqueues; a separate worker process does the rest", async () => {
    const web = await start("web");
    const { payload } = await setup("#!/bin/sh\necho planned\n");
    const nockCalls: string[] = [];
    // Every outgoing HTTP request passes nock; only loopback (this test's own POST) may leave.
    const onRequest = (req: Request) => {
      if (!new URL(req.url).hostname.match(/^(127\.0\.0\.1|localhost)$/)) nockCalls.push(req.url);
    };
    nock.emitter.on("no match", onRequest);
    const res = await deliver(web.port!, "issue_comment", payload);
    nock.emitter.off("no match", onRequest);
    expect(res.status).toBe(202);
    // Nothing talked to GitHub on the request path.
    expect(gh.calls).toEqual([]);
    expect(nockCalls).toEqual([]);
    expect(await web.deps.queues.webhooks.getWaitingCount()).toBe(1);

    const worker = await start("worker");
    expect(worker.port).toBeNull();
    const done = await gh.waitFor(completed, "the completed check run");
    expect(done.body).toMatchObject({ conclusion: "success" });
  });

  it("SIGTERM-style stop lets a running task finish within the grace period", async () => {
    const web = await start("web");
    const worker = await start("worker");
    const { number, payload } = await setup("#!/bin/sh\necho started\nsleep 1\necho finished\n");
    await deliver(web.port!, "issue_comment", payload);
    await gh.waitFor(inProgress, "the task to start");
    await worker.stop();
    const { rows } = await db.query("SELECT t.state, t.steps FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1", [number]);
    expect(rows[0].state).toBe("SUCCEEDED");
    const done = gh.calls.find(completed);
    expect(done?.body).toMatchObject({ conclusion: "success" });
    expect(String((done!.body!.output as { text: string }).text)).toContain("finished");
    expect(await leftoverSandboxes()).toBe(0);
  });

  it("past the grace period a running task is killed and handed back to the queue, not lost", async () => {
    const web = await start("web");
    const first = await start("worker");
    const { number, payload } = await setup("#!/bin/sh\necho attempt\nsleep 60\necho finished\n");
    await deliver(web.port!, "issue_comment", payload);
    await gh.waitFor(inProgress, "the task to start");
    const stopped = Date.now();
    await first.stop();
    expect(Date.now() - stopped).toBeLessThan(30_000);
    const { rows } = await db.query("SELECT t.state, t.attempts FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1", [number]);
    expect(rows[0]).toMatchObject({ state: "PENDING", attempts: 1 });
    expect(gh.calls.find(completed)).toBeUndefined();
    expect(await leftoverSandboxes()).toBe(0);
    const waiting = await web.deps.queues.tasks.getWaitingCount();
    expect(waiting).toBe(1);
  });
});
