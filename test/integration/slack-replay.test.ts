/**
 * A captured Slack click stays validly signed for Slack's 5-minute window. Replaying it must
 * not act again even after BullMQ's job history of the first click is gone: the web tier keeps
 * the request's signature in Postgres for the window. Real web tier, worker, Redis and
 * Postgres; Slack's Web API is nock.
 */
import { createHmac } from "node:crypto";
import { EventEmitter, once } from "node:events";
import { Job, Queue, QueueEvents } from "bullmq";
import nock from "nock";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { createRedis, WEBHOOK_QUEUE } from "../../src/connectors/queues.js";
import { slackClickJobId } from "../../src/web/server.js";
import { destroyTestEnv, isolateNetwork, makeTestEnv, startTestApp, TEST_REDIS_URL, type TestEnv } from "../helpers/harness.js";

const SLACK = "https://slack.test";
const BOT_TOKEN = "xoxb-1234567890-0987654321-ReplayBotTokenValue0";
const SIGNING_SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
const SHA = "c".repeat(40);
const PLAN = `sha256:${"d".repeat(64)}`;
// A click on a message this app never posted: the worker's whole action is to refuse it
// (audit row + an ephemeral note), which makes "acted on" countable without GitHub.
const VALUE = JSON.stringify({ v: 1, repo: "octo-org/replayed", pr: 3, stack: "prod", sha: SHA, plan: PLAN, kind: "deploy", inst: 4242 });

describe("Slack click replay", () => {
  let env: TestEnv;
  let app: RunningApp;
  let db: pg.Client;
  let queue: Queue;
  let events: QueueEvents;
  const ephemeral: string[] = [];
  const slackCalls = new EventEmitter();

  beforeAll(async () => {
    isolateNetwork();
    env = await makeTestEnv({
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_CHANNELS: JSON.stringify({ "*": "C0DEPLOYS" }),
      SLACK_USERS: JSON.stringify({ U0BOB: "bob" }),
      SLACK_API_URL: `${SLACK}/api/`,
    });
    app = await startTestApp(env, "all", undefined, { credentials: staticCredentials(() => ({})) });
    db = new pg.Client({ connectionString: env.databaseUrl });
    await db.connect();
    queue = new Queue(WEBHOOK_QUEUE, { connection: createRedis(TEST_REDIS_URL), prefix: env.queuePrefix });
    events = new QueueEvents(WEBHOOK_QUEUE, { connection: createRedis(TEST_REDIS_URL), prefix: env.queuePrefix });
    await events.waitUntilReady();
    nock(SLACK, { reqheaders: { authorization: `Bearer ${BOT_TOKEN}` } })
      .persist()
      .post("/api/chat.postEphemeral")
      .reply(200, { ok: true, message_ts: "1763800001.000100" })
      .on("request", (_req: unknown, _i: unknown, body: unknown) => {
        ephemeral.push(String(new URLSearchParams(String(body)).get("text")));
        setImmediate(() => slackCalls.emit("call"));
      });
  });
  afterAll(async () => {
    nock.cleanAll();
    await events.close();
    await queue.close();
    await db.end();
    await app.stop();
    await destroyTestEnv(env);
  });

  let clicks = 0;
  /** A block_actions request as Slack signs and posts it; each click is a different request (its action_ts). */
  const click = (at = Math.floor(Date.now() / 1000)) => {
    const actionTs = `1763800000.${String(++clicks).padStart(6, "0")}`;
    const payload = {
      type: "block_actions",
      user: { id: "U0BOB", username: "bob", team_id: "T0TEAM" },
      channel: { id: "C0DEPLOYS", name: "deploys" },
      container: { type: "message", message_ts: "1763800000.000100", channel_id: "C0DEPLOYS" },
      message: { type: "message", ts: "1763800000.000100", text: "Approval needed" },
      response_url: "https://hooks.slack.com/actions/T0TEAM/1/abc",
      actions: [{ action_id: "agent_approve", block_id: "agent_approval", value: VALUE, type: "button", action_ts: actionTs }],
    };
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const sig = createHmac("sha256", SIGNING_SECRET).update(`v0:${at}:${body}`).digest("hex");
    return { body, signature: sig, headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": String(at), "x-slack-signature": `v0=${sig}` } };
  };
  const send = async (req: { body: string; headers: Record<string, string> }) => {
    const res = await fetch(`http://127.0.0.1:${app.port}/slack/interactions`, { method: "POST", headers: req.headers, body: req.body });
    return { status: res.status, body: await res.text() };
  };
  const refusals = async () => Number((await db.query("SELECT count(*) AS n FROM audit_log WHERE action = 'slack.refused'")).rows[0].n);
  /** The worker finished the click's job (an event, not a wait). */
  const handled = async (signature: string) => {
    const job = await Job.fromId(queue, slackClickJobId(signature));
    if (!job) throw new Error("the click was not queued");
    await job.waitUntilFinished(events, 30_000);
  };
  const untilEphemeral = async (n: number) => {
    const deadline = AbortSignal.timeout(30_000);
    while (ephemeral.length < n) await once(slackCalls, "call", { signal: deadline });
  };

  it("positive control: the first click is queued and acted on", async () => {
    const first = click();
    expect(await send(first)).toEqual({ status: 200, body: "" });
    await handled(first.signature);
    await untilEphemeral(1);
    expect(ephemeral).toEqual(["Your click did not count: this message does not belong to a deploy request of this app."]);
    expect(await refusals()).toBe(1);
    const { rows } = await db.query("SELECT signature FROM slack_replay_keys");
    expect(rows).toEqual([{ signature: first.signature }]);
  });

  it("ATTACK: the same request replayed after the queue's job history is gone is answered 200 and not acted on", async () => {
    const captured = click();
    expect((await send(captured)).status).toBe(200);
    await handled(captured.signature);
    await untilEphemeral(2);
    expect(await refusals()).toBe(2);

    // BullMQ keeps at most 1,000 completed jobs for an hour; here the history goes at once.
    await queue.clean(0, 10_000, "completed");
    expect(await Job.fromId(queue, slackClickJobId(captured.signature))).toBeUndefined();

    const replay = await send(captured);
    expect(replay).toEqual({ status: 200, body: "" });
    // The web tier queues before it answers: had it taken the replay, its job would be here now.
    expect(await Job.fromId(queue, slackClickJobId(captured.signature))).toBeUndefined();
    const counts = await queue.getJobCounts("waiting", "active", "delayed", "prioritized", "completed", "failed");
    expect(counts).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0, completed: 0, failed: 0 });
    expect(await refusals()).toBe(2);
    expect(ephemeral).toHaveLength(2);
  });

  it("a new click by the same user on the same button (a new request, so a new signature) is acted on", async () => {
    const again = click();
    expect((await send(again)).status).toBe(200);
    await handled(again.signature);
    expect(await refusals()).toBe(3);
  });

  it("keys of requests past the signature window are pruned; a stale request itself is refused with 401", async () => {
    const now = Math.floor(Date.now() / 1000);
    await db.query("INSERT INTO slack_replay_keys (signature, request_ts) VALUES ($1, to_timestamp($2)), ($3, to_timestamp($4))", [
      "e".repeat(64),
      now - 7 * 60, // past the window and its margin: can never pass the timestamp check again
      "f".repeat(64),
      now - 4 * 60, // still replayable for a minute
    ]);
    const fresh = click();
    expect((await send(fresh)).status).toBe(200);
    await handled(fresh.signature);
    const { rows } = await db.query<{ signature: string }>("SELECT signature FROM slack_replay_keys");
    const kept = rows.map((r) => r.signature);
    expect(kept).not.toContain("e".repeat(64));
    expect(kept).toContain("f".repeat(64));
    expect(kept).toContain(fresh.signature);
    expect((await send(click(now - 6 * 60))).status).toBe(401);
  });
});
