import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { deliver, destroyTestEnv, isolateNetwork, issueCommentPayload, makeTestEnv, sign, startTestApp, type TestEnv } from "../helpers/harness.js";

const REPO = "octo-org/web";

/** The web role alone: what GitHub's webhook POST gets back for good and bad requests. */
describe("web tier: verify, dedupe, record, enqueue, answer", () => {
  let env: TestEnv;
  let web: RunningApp;
  let db: pg.Client;
  let url: string;

  beforeAll(async () => {
    isolateNetwork();
    env = await makeTestEnv();
    web = await startTestApp(env, "web");
    url = `http://127.0.0.1:${web.port}/api/github/webhooks`;
    db = new pg.Client({ connectionString: env.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await web.stop();
    await destroyTestEnv(env);
  });

  const payload = () => issueCommentPayload({ repo: REPO, cloneUrl: "https://github.com/octo-org/web.git", prNumber: 1, body: "/agent preview" });

  async function post(headers: Record<string, string>, body: string | Buffer) {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  it("records and enqueues a signed delivery, keyed by X-GitHub-Delivery", async () => {
    const res = await deliver(web.port!, "issue_comment", payload());
    expect(res.status).toBe(202);
    const { rows } = await db.query("SELECT event, action, installation_id, repo FROM deliveries WHERE id = $1", [res.id]);
    expect(rows).toEqual([{ event: "issue_comment", action: "created", installation_id: "4242", repo: REPO }]);
    const job = await web.deps.queues.webhooks.getJob(`wh__${res.id}`);
    expect(job?.data.name).toBe("issue_comment");
    expect((job?.data.payload as { comment: { body: string } }).comment.body).toBe("/agent preview");
  });

  it("answers a redelivery of the same X-GitHub-Delivery without enqueuing it again", async () => {
    const first = await deliver(web.port!, "issue_comment", payload());
    const before = await web.deps.queues.webhooks.count();
    const again = await deliver(web.port!, "issue_comment", payload(), { id: first.id });
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ ok: true, duplicate: true });
    expect(await web.deps.queues.webhooks.count()).toBe(before);
  });

  it("records and enqueues a burst of concurrent deliveries exactly once each (they share batches)", async () => {
    const answers = await Promise.all(Array.from({ length: 40 }, () => deliver(web.port!, "issue_comment", payload())));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));
    const ids = answers.map((a) => a.id);
    const { rows } = await db.query("SELECT id FROM deliveries WHERE id = ANY($1)", [ids]);
    expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
    const jobs = await web.deps.queues.webhooks.getJobs(["waiting"]);
    expect(jobs.filter((j) => ids.includes(j.data.id)).map((j) => j.id).sort()).toEqual(ids.map((id) => `wh__${id}`).sort());
  });

  it("answers the same X-GitHub-Delivery sent twice at once with one 202 and one duplicate", async () => {
    const body = payload();
    const id = randomUUID();
    const both = await Promise.all([deliver(web.port!, "issue_comment", body, { id }), deliver(web.port!, "issue_comment", body, { id })]);
    expect(both.map((a) => a.status).sort()).toEqual([200, 202]);
    expect(both.map((a) => a.json)).toEqual(expect.arrayContaining([{ ok: true, queued: true }, { ok: true, duplicate: true }]));
    expect((await web.deps.queues.webhooks.getJobs(["waiting"])).filter((j) => j.data.id === id)).toHaveLength(1);
  });

  it("rejects missing or malformed headers with 4xx and records nothing", async () => {
    const body = JSON.stringify(payload());
    const sig = await sign(body);
    const cases: Array<[Record<string, string>, number, RegExp]> = [
      [{ "x-github-event": "issue_comment", "x-hub-signature-256": sig }, 400, /X-GitHub-Delivery/],
      [{ "x-github-delivery": "bad id with spaces", "x-github-event": "issue_comment", "x-hub-signature-256": sig }, 400, /X-GitHub-Delivery/],
      [{ "x-github-delivery": "abc-1", "x-hub-signature-256": sig }, 400, /X-GitHub-Event/],
      [{ "x-github-delivery": "abc-2", "x-github-event": "issue_comment" }, 401, /signature/i],
      [{ "x-github-delivery": "abc-3", "x-github-event": "issue_comment", "x-hub-signature-256": "sha1=deadbeef" }, 401, /signature/],
    ];
    for (const [headers, status, message] of cases) {
      const res = await post(headers, body);
      expect(res.status, JSON.stringify(headers)).toBe(status);
      expect(String(res.json.error)).toMatch(message);
    }
    const { rows } = await db.query("SELECT count(*)::int AS n FROM deliveries WHERE id LIKE 'abc-%'");
    expect(rows[0].n).toBe(0);
  });

  it("rejects a signed body that is not JSON with 400", async () => {
    const body = "not json {";
    const res = await post({ "x-github-delivery": "nj-1", "x-github-event": "issue_comment", "x-hub-signature-256": await sign(body) }, body);
    expect(res.status).toBe(400);
  });

  it("rejects a body over GitHub's 25 MB cap with 413 without buffering it all", async () => {
    const body = Buffer.alloc(26 * 1024 * 1024, 0x20);
    const res = await fetch(url, {
      method: "POST",
      headers: { "x-github-delivery": "big-1", "x-github-event": "issue_comment", "x-hub-signature-256": "sha256=" + "0".repeat(64) },
      body,
    }).catch((e: Error) => e);
    // The server answers 413 and drops the connection; either is a refusal.
    if (res instanceof Error) expect(res.message).toMatch(/fetch failed|socket|reset|closed/i);
    else expect(res.status).toBe(413);
  });

  it("records events it does not handle but does not enqueue them", async () => {
    const ping = { zen: "Keep it logically awesome.", hook_id: 1, installation: { id: 4242 } };
    const res = await deliver(web.port!, "ping", ping);
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ ok: true, queued: false });
    expect(await web.deps.queues.webhooks.getJob(`wh__${res.id}`)).toBeUndefined();
  });

  it("serves a health check and 404s elsewhere", async () => {
    expect((await fetch(`http://127.0.0.1:${web.port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${web.port}/api/github/other`, { method: "POST" })).status).toBe(404);
    expect((await fetch(url, { method: "GET" })).status).toBe(404);
  });
});
