/**
 * Signed links to a task's full log expire: the web tier serves a link while it is valid,
 * answers 410 once it expired, and 403 when its expiry (or anything else) was changed. Real
 * web tier and Postgres; the link is the one the app puts on check runs.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { saveStepLog } from "../../src/connectors/store/logs.js";
import { logSignature, taskLogUrl } from "../../src/web/log-links.js";
import { destroyTestEnv, isolateNetwork, makeTestEnv, startTestApp, WEBHOOK_SECRET, type TestEnv } from "../helpers/harness.js";

const PUBLIC_URL = "https://agent.example.test";
const DAY_MS = 86_400_000;

describe("log links expire", () => {
  let env: TestEnv;
  let web: RunningApp;
  let db: pg.Client;
  let taskId: string;

  beforeAll(async () => {
    isolateNetwork();
    env = await makeTestEnv({ PUBLIC_URL, LOG_LINK_TTL_SECONDS: String(14 * 86_400) });
    web = await startTestApp(env, "web");
    db = new pg.Client({ connectionString: env.databaseUrl });
    await db.connect();
    const wf = await db.query<{ id: string }>(
      "INSERT INTO workflows (kind, repo, installation_id, pr_number, head_sha, requested_by, config) VALUES ('preview', 'octo-org/logs', 1, 1, $1, 'alice', '{}') RETURNING id",
      ["a".repeat(40)],
    );
    const task = await db.query<{ id: string }>("INSERT INTO tasks (workflow_id, kind, stack, job_id) VALUES ($1, 'preview', 'dev', 'job-1') RETURNING id", [wf.rows[0]!.id]);
    taskId = task.rows[0]!.id;
    await saveStepLog(web.deps.db, taskId, { step: "preview", content: "plan: 1 to add", truncated: false });
  });
  afterAll(async () => {
    await db.end();
    await web.stop();
    await destroyTestEnv(env);
  });

  /** GETs a link's path and query from the running web tier. */
  const open = async (link: string) => {
    const { pathname, search } = new URL(link);
    const res = await fetch(`http://127.0.0.1:${web.port}${pathname}${search}`);
    return { status: res.status, text: await res.text() };
  };
  const withExp = (link: string, exp: number) => {
    const u = new URL(link);
    u.searchParams.set("exp", String(exp));
    return u.toString();
  };

  it("serves a link made now (positive control)", async () => {
    const link = taskLogUrl(env.config, taskId)!;
    expect(link).toMatch(new RegExp(`^${PUBLIC_URL}/logs/${taskId}\\?exp=\\d{10}&sig=[0-9a-f]{64}$`));
    // Valid for at least the TTL, at most a day longer (rounded up to whole days).
    const exp = Number(new URL(link).searchParams.get("exp"));
    expect(exp * 1000).toBeGreaterThanOrEqual(Date.now() + 14 * DAY_MS - 1000);
    expect(exp * 1000).toBeLessThanOrEqual(Date.now() + 15 * DAY_MS);
    const res = await open(link);
    expect(res.status).toBe(200);
    expect(res.text).toBe("==> preview <==\nplan: 1 to add");
  });

  it("ATTACK: a link the app made 15 days ago (TTL 14 days) is refused with 410 and a way to a fresh one", async () => {
    const old = taskLogUrl(env.config, taskId, Date.now() - 15 * DAY_MS)!;
    const res = await open(old);
    expect(res.status).toBe(410);
    expect(JSON.parse(res.text)).toEqual({ ok: false, error: expect.stringMatching(/^this log link expired; the pull request's agent comment links the latest logs/) });
  });

  it("ATTACK: an expired link with its exp moved into the future is refused with 403", async () => {
    const old = taskLogUrl(env.config, taskId, Date.now() - 15 * DAY_MS)!;
    const res = await open(withExp(old, Math.floor(Date.now() / 1000) + 3600));
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toEqual({ ok: false, error: "invalid log link" });
    // A valid link with any other exp does not verify either; nor one without exp (the old format).
    const now = taskLogUrl(env.config, taskId)!;
    const exp = Number(new URL(now).searchParams.get("exp"));
    expect((await open(withExp(now, exp + 1))).status).toBe(403);
    expect((await open(withExp(now, exp - 1))).status).toBe(403);
    const noExp = new URL(now);
    noExp.searchParams.delete("exp");
    expect((await open(noExp.toString())).status).toBe(403);
    expect((await open(withExp(now, 1e13))).status).toBe(403);
    expect((await open(`${now.split("?")[0]}?exp=abc&sig=${"0".repeat(64)}`)).status).toBe(403);
  });

  it("a link for another task, or signed with another secret, is refused with 403", async () => {
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const other = "00000000-0000-4000-8000-000000000000";
    expect((await open(`${PUBLIC_URL}/logs/${other}?exp=${exp}&sig=${logSignature(WEBHOOK_SECRET, taskId, exp)}`)).status).toBe(403);
    expect((await open(`${PUBLIC_URL}/logs/${taskId}?exp=${exp}&sig=${logSignature("another-secret", taskId, exp)}`)).status).toBe(403);
    expect((await open(`${PUBLIC_URL}/logs/${taskId}?exp=${exp}&sig=${logSignature(WEBHOOK_SECRET, taskId, exp)}`)).status).toBe(200);
  });
});
