import { randomBytes, randomUUID } from "node:crypto";
import type { Server } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createRedis, jobIdFrom, WEBHOOK_QUEUE, type WebhookJobData } from "../../src/connectors/queues.js";
import { createDb, type Db } from "../../src/connectors/store/db.js";
import { HANDLED_EVENTS } from "../../src/domain/events.js";
import { createIngestBatcher, IngestUnavailableError, type IngestBatcherOptions, type IngestDelivery } from "../../src/web/ingest-batch.js";
import { createWebServer } from "../../src/web/server.js";
import { deliver, issueCommentPayload, migratedTestDb, TEST_REDIS_URL, WEBHOOK_SECRET } from "../helpers/harness.js";

const REPO = "octo-org/batch";
const log = pino({ level: "silent" });

function delivery(event = "issue_comment", id: string = randomUUID()): IngestDelivery {
  const payload = event === "ping" ? { zen: "Design for failure.", hook_id: 1, installation: { id: 4242 } } : issueCommentPayload({ repo: REPO, cloneUrl: "https://github.com/octo-org/batch.git", prNumber: 3, body: "/agent preview" });
  return {
    record: { id, event, action: typeof payload.action === "string" ? payload.action : null, installationId: 4242, repo: event === "ping" ? null : REPO },
    data: { id, name: event, payload },
  };
}

/** A 127.0.0.1 port nothing listens on (bound, then released). */
async function unusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A queue whose Redis connection never gets ready: nothing listens on its port. */
function queueOnClosedPort(port: number, prefix: string): { queue: Queue<WebhookJobData>; connection: Redis } {
  const connection = createRedis(`redis://127.0.0.1:${port}`);
  connection.on("error", () => {});
  const queue = new Queue<WebhookJobData>(WEBHOOK_QUEUE, { connection, prefix });
  queue.on("error", () => {});
  return { queue, connection };
}

/**
 * The web tier's group commit (src/web/ingest-batch.ts) against real PostgreSQL and Redis:
 * deliveries arriving together are recorded and queued exactly once each, and a batch that
 * cannot be committed is refused whole, leaving nothing marked as seen.
 */
describe("ingest batches: one INSERT and one addBulk per batch of deliveries", () => {
  let database: Awaited<ReturnType<typeof migratedTestDb>>;
  let connection: Redis;
  let queue: Queue<WebhookJobData>;
  const prefix = `ib${randomBytes(4).toString("hex")}`;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    database = await migratedTestDb("ib");
    connection = createRedis(TEST_REDIS_URL);
    queue = new Queue<WebhookJobData>(WEBHOOK_QUEUE, { connection, prefix });
    await queue.waitUntilReady();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });
  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    await connection.quit();
    await database.drop();
  });

  const batcher = (over: Partial<IngestBatcherOptions> = {}) =>
    createIngestBatcher({ db: database.db, queue, handled: HANDLED_EVENTS, enqueueTimeoutMs: 5000, log, ...over });
  const rows = async (ids: string[]) =>
    (await database.db.query<{ id: string; event: string }>("SELECT id, event FROM deliveries WHERE id = ANY($1) ORDER BY id", [ids])).rows;

  it("records and queues a burst of concurrent deliveries exactly once each, in batches of at most maxBatch", async () => {
    // The real pool and queue, each call counted on its way through.
    const inserts: number[] = [];
    const bulks: number[] = [];
    const db = new Proxy(database.db, {
      get: (t, k) => (k === "query" ? (q: { values?: unknown[][] }) => (inserts.push(q.values?.[0]?.length ?? -1), t.query(q as never)) : Reflect.get(t, k)),
    });
    const q = new Proxy(queue, {
      get: (t, k) => (k === "addBulk" ? (jobs: unknown[]) => (bulks.push(jobs.length), t.addBulk(jobs as never)) : Reflect.get(t, k)),
    });
    const b = batcher({ db, queue: q, maxBatch: 64, maxWaitMs: 50 });
    const ds = Array.from({ length: 150 }, () => delivery());
    const outcomes = await Promise.all(ds.map((d) => b.submit(d)));
    expect(outcomes).toEqual(ds.map(() => "queued"));
    expect(inserts).toEqual([64, 64, 22]);
    expect(bulks).toEqual([64, 64, 22]);
    const ids = ds.map((d) => d.record.id);
    expect((await rows(ids)).map((r) => r.id)).toEqual([...ids].sort());
    const jobs = await queue.getJobs(["waiting"]);
    const ours = jobs.filter((j) => ids.includes(j.data.id));
    expect(ours.map((j) => j.id).sort()).toEqual(ids.map((id) => jobIdFrom(["wh", id])).sort());
    const one = ours.find((j) => j.data.id === ids[0])!;
    expect(one.name).toBe("issue_comment");
    expect(one.data).toEqual(ds[0]!.data);
    expect(one.opts).toMatchObject({ attempts: 3, backoff: { type: "exponential", delay: 1000 } });
  });

  it("answers the second of one delivery id in the same batch as a duplicate, queuing it once", async () => {
    const b = batcher({ maxWaitMs: 1000, maxBatch: 2 }); // both in one batch: it is written when the second arrives
    const d = delivery();
    const outcomes = await Promise.all([b.submit(d), b.submit({ ...d, data: { ...d.data } })]);
    expect(outcomes).toEqual(["queued", "duplicate"]);
    expect(await rows([d.record.id])).toHaveLength(1);
    expect((await queue.getJobs(["waiting"])).filter((j) => j.data.id === d.record.id)).toHaveLength(1);
    // A later redelivery, in a batch of its own, is a duplicate too.
    expect(await batcher().submit(d)).toBe("duplicate");
  });

  it("records an event it does not handle without queuing it, beside one it does in the same batch", async () => {
    const b = batcher({ maxWaitMs: 1000, maxBatch: 2 });
    const [ping, comment] = [delivery("ping"), delivery()];
    expect(await Promise.all([b.submit(ping), b.submit(comment)])).toEqual(["unhandled", "queued"]);
    expect(await rows([ping.record.id, comment.record.id])).toHaveLength(2);
    expect(await queue.getJob(jobIdFrom(["wh", ping.record.id]))).toBeUndefined();
    expect(await queue.getJob(jobIdFrom(["wh", comment.record.id]))).toBeDefined();
  });

  it("Redis unavailable: the whole batch is refused, unhandled event included, and none of it stays recorded; a redelivery then gets through", async () => {
    const dead = queueOnClosedPort(await unusedPort(), prefix);
    cleanups.push(() => dead.queue.close(), async () => dead.connection.disconnect());
    const b = batcher({ queue: dead.queue, maxWaitMs: 1000, maxBatch: 3 });
    const ds = [delivery(), delivery(), delivery("ping")];
    const settled = await Promise.allSettled(ds.map((d) => b.submit(d)));
    for (const s of settled) {
      expect(s.status).toBe("rejected");
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(IngestUnavailableError);
      expect((s as PromiseRejectedResult).reason).toMatchObject({ store: "redis", message: "queue unavailable" });
    }
    const ids = ds.map((d) => d.record.id);
    expect(await rows(ids)).toEqual([]);
    // GitHub redelivers them once Redis is back.
    expect(await Promise.all(ds.map((d) => batcher().submit(d)))).toEqual(["queued", "queued", "unhandled"]);
    expect(await rows(ids)).toHaveLength(3);
  });

  it("Redis not answering within the enqueue timeout: refused, and the rows deleted again", async () => {
    const stalled = createRedis(TEST_REDIS_URL);
    const q = new Queue<WebhookJobData>(WEBHOOK_QUEUE, { connection: stalled, prefix });
    await q.waitUntilReady();
    cleanups.push(async () => stalled.disconnect(), () => q.close());
    // The connection stays "ready" but its replies are no longer read: the addBulk never settles.
    stalled.stream.pause();
    const ds = [delivery(), delivery()];
    const started = Date.now();
    const settled = await Promise.allSettled(ds.map((d) => batcher({ queue: q, enqueueTimeoutMs: 300 }).submit(d)));
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected"]);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await rows(ds.map((d) => d.record.id))).toEqual([]);
  });

  it("Postgres unavailable: the batch is refused and nothing is queued", async () => {
    const deadDb: Db = createDb(`postgres://postgres@127.0.0.1:${await unusedPort()}/none`);
    cleanups.push(() => deadDb.end());
    const ds = [delivery(), delivery()];
    const settled = await Promise.allSettled(ds.map((d) => batcher({ db: deadDb }).submit(d)));
    for (const s of settled) expect((s as PromiseRejectedResult).reason).toMatchObject({ store: "postgres", message: "database unavailable" });
    for (const d of ds) expect(await queue.getJob(jobIdFrom(["wh", d.record.id]))).toBeUndefined();
  });

  describe("over HTTP (the web tier's webhook route)", () => {
    async function serve(deps: { db?: Db; queue?: Queue<WebhookJobData> }): Promise<number> {
      const server: Server = createWebServer({ db: deps.db ?? database.db, queues: { webhooks: deps.queue ?? queue }, webhookSecret: WEBHOOK_SECRET, log });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
      return (server.address() as AddressInfo).port;
    }
    const payload = () => issueCommentPayload({ repo: REPO, cloneUrl: "https://github.com/octo-org/batch.git", prNumber: 4, body: "/agent preview" });

    it("the same X-GitHub-Delivery sent twice at once: one 202, one 200 duplicate, one job", async () => {
      const port = await serve({});
      const id = randomUUID();
      const answers = await Promise.all([deliver(port, "issue_comment", payload(), { id }), deliver(port, "issue_comment", payload(), { id })]);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 202]);
      expect(answers.map((a) => a.json)).toContainEqual({ ok: true, duplicate: true });
      expect(answers.map((a) => a.json)).toContainEqual({ ok: true, queued: true });
      expect((await queue.getJobs(["waiting"])).filter((j) => j.data.id === id)).toHaveLength(1);
    });

    it("Redis unavailable: 503 for every delivery of the burst, and no row left in deliveries", async () => {
      const dead = queueOnClosedPort(await unusedPort(), prefix);
      cleanups.push(() => dead.queue.close(), async () => dead.connection.disconnect());
      const port = await serve({ queue: dead.queue });
      const answers = await Promise.all(Array.from({ length: 10 }, () => deliver(port, "issue_comment", payload())));
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 503));
      expect(answers[0]!.json).toEqual({ ok: false, error: "queue unavailable" });
      expect(await rows(answers.map((a) => a.id))).toEqual([]);
      // An event that is only recorded needs no Redis: alone in its batch it is still answered.
      const ping = await deliver(port, "ping", { zen: "Half measures are as bad as nothing at all.", hook_id: 1 });
      expect(ping).toMatchObject({ status: 202, json: { ok: true, queued: false } });
      expect(await rows([ping.id])).toEqual([{ id: ping.id, event: "ping" }]);
    });

    it("Postgres unavailable: 503", async () => {
      const deadDb: Db = createDb(`postgres://postgres@127.0.0.1:${await unusedPort()}/none`);
      cleanups.push(() => deadDb.end());
      const port = await serve({ db: deadDb });
      const answer = await deliver(port, "issue_comment", payload());
      expect(answer.status).toBe(503);
      expect(answer.json).toEqual({ ok: false, error: "database unavailable" });
    });
  });
});
