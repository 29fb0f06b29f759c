import Docker from "dockerode";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STICKY_MARKER } from "../../src/render/sticky-comment.js";
import { createDb } from "../../src/connectors/store/db.js";
import { withPrLock } from "../../src/connectors/store/workflows.js";
import { isCheckRunCompleted } from "../helpers/github-fake.js";
import { primaryRateLimit } from "../helpers/github-server.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload } from "../helpers/harness.js";
import { sandboxesUnder, startFaultFixture, until, type AppProcess, type FaultFixture } from "../helpers/app-process.js";

const REPO = "octo-org/fault-github";
const TOKEN = "ghs_faultGitHubInstallationToken0000000014";
const CONFIG = `version: 1
stacks:
  - name: dev
steps:
  preview: ["./preview.sh"]
`;

/**
 * A real worker process (src/main.ts, so Probot's own Octokit with its retry and throttling
 * plugins, not the tests' TestOctokit) against a GitHub that errs, and a Postgres that drops
 * every connection in the middle of a task.
 */
describe("transient GitHub errors and dropped Postgres connections", () => {
  let f: FaultFixture;
  let worker: AppProcess;
  let pr = 20;

  beforeAll(async () => {
    f = await startFaultFixture({ repo: REPO, token: TOKEN, workers: 1 });
    worker = f.workers[0]!;
    f.gh.fake.permissions.set("alice", "write");
    f.gh.fake.files.set("main:.github/agent.yml", CONFIG);
  });
  afterAll(() => f?.stop());

  async function preview(script: string) {
    // Each test is another PR on the same stack: the previous one's lock must not refuse it.
    await f.db.query("DELETE FROM stack_locks");
    const sha = await f.git.commit(REPO, { "preview.sh": exe(script) });
    const number = ++pr;
    f.gh.fake.pulls.set(number, { headSha: sha });
    const res = await deliver(f.web.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body: "/agent preview", login: "alice" }));
    expect(res.status).toBe(202);
    return number;
  }

  async function settled(number: number) {
    const { gh } = f;
    // The check run's last write says completed: an update (PATCH), or its creation when the
    // outbox merged queued → in_progress → completed into one write (a quick task).
    const headSha = gh.fake.pulls.get(number)!.headSha;
    const completedRun = () => [...gh.fake.checkRuns.values()].find((r) => r.head_sha === headSha && r.status === "completed");
    await gh.waitFor(() => completedRun() !== undefined, `#${number}'s completed check run`, 50_000);
    const done = { body: completedRun()! };
    // Created with the result (the "queued" render waited in the outbox and was replaced) or updated to it.
    await gh.waitFor((c) => {
      if (!String(c.body?.body).includes("✅ succeeded")) return false;
      if (c.method === "POST") return c.path.endsWith(`/issues/${number}/comments`);
      const id = Number(/\/issues\/comments\/(\d+)$/.exec(c.path)?.[1]);
      return c.method === "PATCH" && gh.fake.comments.get(id)?.issue === number;
    }, `the sticky comment of #${number} to settle`, 30_000);
    return done;
  }

  const stickyPosts = (number: number) => f.gh.find("POST", new RegExp(`/issues/${number}/comments$`)).filter((c) => String(c.body?.body).includes(STICKY_MARKER));

  it("502s and 429/403 rate limits with retry-after are sent again: the preview completes, nothing is duplicated", async () => {
    const { gh, db } = f;
    const is = (method: string, re: RegExp) => (c: { method: string; path: string }) => c.method === method && re.test(c.path);
    // 502s: plugin-retry. Rate limits answering a write (429, 403 with GitHub's "secondary rate
    // limit" message, 403 with the primary quota used up): handed back to the outbox, which
    // pauses the installation's writes until retry-after (or the reset) and sends them again.
    gh.failNext(1, 502, { match: is("POST", /\/check-runs$/) });
    gh.failNext(1, 502, { match: is("POST", /\/issues\/\d+\/comments$/) });
    gh.failNext(1, 429, { match: is("PATCH", /\/check-runs\/\d+$/), retryAfterSeconds: 1 });
    gh.failNext(1, 403, { match: is("PATCH", /\/check-runs\/\d+$/), ...primaryRateLimit(1) });
    gh.failNext(1, 403, { match: is("POST", /\/reactions$/), retryAfterSeconds: 1 });

    // Long enough that the queued check run is created before the result, so the faults on
    // its update (PATCH) are met (a quick task's check run is one write, created completed).
    const number = await preview("#!/bin/sh\necho planned\nsleep 4\n");
    const done = await settled(number);
    expect(done.body).toMatchObject({ conclusion: "success" });

    // Every fault was served, and each failed call was made again and then succeeded.
    expect(gh.pendingFaults).toBe(0);
    expect(gh.faulted.map((c) => `${c.method} ${c.path.replace(/\d+/g, "N")}`)).toEqual(
      expect.arrayContaining([`POST /repos/${REPO}/issues/comments/N/reactions`, `POST /repos/${REPO}/check-runs`, "POST /repos/octo-org/fault-github/issues/N/comments", "PATCH /repos/octo-org/fault-github/check-runs/N"]),
    );
    for (const failed of gh.faulted) {
      expect(gh.calls.some((c) => c.method === failed.method && c.path === failed.path), `${failed.method} ${failed.path} retried`).toBe(true);
    }
    // The three rate limits each paused the installation's outbox sender, which sent the write again.
    expect(worker.lines.filter((l) => /GitHub asked to slow down/.test(String(l.msg)))).toHaveLength(3);

    // Once each: one check run, completed once; one sticky comment.
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(1);
    expect(gh.calls.filter(isCheckRunCompleted)).toHaveLength(1);
    expect(stickyPosts(number)).toHaveLength(1);
    // And the outbox holds each write as sent, none failed or left behind.
    // (A write the sender paused may still be on its way when the sticky comment settles: wait
    // for the outbox to drain; a failed write would stay `failed` and fail this.)
    const drained = await until(async () => {
      const { rows: writes } = await db.query<{ state: string; n: number }>("SELECT state, count(*)::int AS n FROM github_outbox GROUP BY state");
      return writes.every((w) => w.state === "sent" || w.state === "superseded") ? writes : undefined;
    }, "the outbox to drain", 20_000, 200).catch(async () => (await db.query<{ state: string; n: number }>("SELECT state, count(*)::int AS n FROM github_outbox GROUP BY state")).rows);
    expect(drained.filter((w) => w.state !== "sent" && w.state !== "superseded")).toEqual([]);
    const { rows } = await db.query("SELECT t.state, t.attempts FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1", [number]);
    expect(rows).toEqual([{ state: "SUCCEEDED", attempts: 1 }]);
    // No attempt failed on the way.
    expect(worker.lines.filter((l) => Number(l.level) >= 50 || /attempt failed|job failed/.test(String(l.msg)))).toEqual([]);
  }, 60_000);

  it("every Postgres connection of the app terminated while a task runs: the workflow still finishes", async () => {
    const { gh, db } = f;
    const before = gh.calls.length;
    const number = await preview("#!/bin/sh\necho started\nsleep 3\necho finished\n");
    const [box] = await until(async () => {
      const running = (await sandboxesUnder(f.workspaceRoot)).filter((c) => c.state === "running");
      return running.length === 1 ? running : undefined;
    }, "the task's sandbox", 30_000);
    await until(async () => {
      const top = await new Docker().getContainer(box!.id).top().catch(() => ({ Processes: [] as string[][] }));
      return top.Processes.some((p: string[]) => p.join(" ").includes("sleep 3"));
    }, "the step to be running", 20_000, 100);

    // Cut the worker's (and the web tier's) connections, from a connection of our own.
    const admin = new pg.Client({ connectionString: f.databaseUrl });
    await admin.connect();
    const dbName = new URL(f.databaseUrl).pathname.slice(1);
    const { rows: killed } = await admin.query<{ ok: boolean }>("SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [dbName]);
    await admin.end();
    expect(killed.length).toBeGreaterThan(0);

    const done = await settled(number);
    expect(done.body).toMatchObject({ conclusion: "success" });
    expect(String((done.body!.output as { text: string }).text)).toContain("finished");
    const { rows } = await db.query("SELECT t.state, w.state AS wstate FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1", [number]);
    expect(rows).toEqual([{ state: "SUCCEEDED", wstate: "READY_FOR_APPLY" }]);
    expect(stickyPosts(number)).toHaveLength(1);
    expect(gh.calls.slice(before).filter(isCheckRunCompleted)).toHaveLength(1);
    expect(worker.alive).toBe(true);
    await until(async () => (await sandboxesUnder(f.workspaceRoot)).length === 0, "the sandbox to be removed", 10_000);
  }, 60_000);

  it("a connection dropped while withPrLock holds it (across GitHub calls) neither crashes the process nor keeps the lock", async () => {
    const db = createDb(f.databaseUrl);
    try {
      const result = await withPrLock(db, REPO, 999, async () => {
        const { rows } = await db.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted");
        expect(rows).toHaveLength(1);
        await f.db.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
        // The checked-out client learns of it while idle, as it would during a GitHub call.
        await new Promise((r) => setTimeout(r, 200));
        return "rendered";
      });
      expect(result).toBe("rendered");
      // The session's lock went with it: the PR can be locked again at once.
      expect(await withPrLock(db, REPO, 999, async () => "again")).toBe("again");
    } finally {
      await db.end();
    }
  });
});
