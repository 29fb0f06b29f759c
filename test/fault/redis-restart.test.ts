import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningApp, startApp } from "../../src/app.js";
import { loadServerConfig, type ServerConfig } from "../../src/config/server-config.js";
import { jobIdFrom } from "../../src/connectors/queues.js";
import { until } from "../helpers/app-process.js";
import { GitHubServer } from "../helpers/github-server.js";
import { deliver, issueCommentPayload, migratedTestDb, TestOctokit, WEBHOOK_SECRET, type Delivery } from "../helpers/harness.js";
import { pino } from "pino";

const REPO = "octo-org/fault-redis";
const TOKEN = "ghs_faultRedisInstallationToken00000000013";

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A redis-server of the test's own: AOF with fsync on every write, so what it acknowledged survives SIGKILL. */
class TestRedis {
  private proc: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static async start(): Promise<TestRedis> {
    const r = new TestRedis(await freePort(), await mkdtemp(join(tmpdir(), "agent-redis-")));
    await r.up();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    this.proc = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--appendonly", "yes", "--appendfsync", "always", "--dir", this.dir, "--save", "", "--protected-mode", "no"], { stdio: "ignore" });
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => {});
    try {
      await until(async () => probe.connect().then(() => probe.ping().then((p) => p === "PONG"), () => false), "redis-server to answer", 10_000, 50);
    } finally {
      probe.disconnect();
    }
  }

  /** SIGKILL: no shutdown, no final save; only what was fsynced to the AOF is there after `up()`. */
  async crash(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await exited;
    this.proc = null;
  }

  async stop(): Promise<void> {
    await this.crash();
    await rm(this.dir, { recursive: true, force: true });
  }
}

const privateKey = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;

/**
 * Redis dies (SIGKILL) and comes back while GitHub keeps sending. The web tier answers 503 at
 * once for what it cannot enqueue (and forgets it, so GitHub's redelivery gets through); what
 * it answered 2xx for was fsynced to the AOF before the answer, survives the crash, is in the
 * queue once and is handled once by a worker, which itself rides out a second crash.
 */
describe("Redis restarts under the web tier and the worker", () => {
  let redis: TestRedis;
  let gh: GitHubServer;
  let database: Awaited<ReturnType<typeof migratedTestDb>>;
  let config: ServerConfig;
  const apps: RunningApp[] = [];

  beforeAll(async () => {
    redis = await TestRedis.start();
    gh = await GitHubServer.start(REPO, TOKEN);
    database = await migratedTestDb("redis");
    config = loadServerConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      APP_ID: "12345",
      PRIVATE_KEY: privateKey,
      WEBHOOK_SECRET,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: `r${randomUUID().slice(0, 8)}`,
      DATABASE_URL: database.url,
      SANDBOX_POOL_SIZE: "0",
      SANDBOX_WORKSPACE_ROOT: join(redis.dir, "workspaces"),
      LOG_LEVEL: "silent",
      ...gh.env,
    });
  });
  afterAll(async () => {
    for (const a of apps.splice(0).reverse()) await a.stop().catch(() => {});
    await gh?.stop();
    await redis?.stop();
    await database?.drop();
  });

  it("2xx means queued exactly once and handled once; refused deliveries get 503 fast and can be redelivered", async () => {
    gh.fake.permissions.set("alice", "write");
    gh.fake.files.set("main:.github/agent.yml", "version: 1\nstacks:\n  - name: dev\nsteps:\n  preview: [\"true\"]\n");
    const web = await startApp({ ...config, role: "web" }, { log: pino({ level: "silent" }) });
    apps.push(web);
    // Each delivery is `/agent help` on its own PR: handling it posts exactly one reply there.
    let pr = 0;
    const payloads = new Map<string, Record<string, unknown>>();
    const send = async (id: string = randomUUID()): Promise<Delivery & { ms: number; pr: number }> => {
      if (!payloads.has(id)) payloads.set(id, issueCommentPayload({ repo: REPO, cloneUrl: "http://127.0.0.1:9/none.git", prNumber: ++pr, body: "/agent help", login: "alice" }));
      const payload = payloads.get(id)!;
      const started = Date.now();
      const res = await deliver(web.port!, "issue_comment", payload, { id });
      return { ...res, ms: Date.now() - started, pr: (payload.issue as { number: number }).number };
    };
    const accepted = new Map<string, number>(); // delivery id -> PR
    const record = (rs: Array<Awaited<ReturnType<typeof send>>>) => {
      for (const r of rs) if (r.status >= 200 && r.status < 300) accepted.set(r.id, r.pr);
    };

    // 1. Redis up, no worker yet: accepted and waiting.
    const first = await Promise.all([send(), send(), send()]);
    expect(first.map((r) => r.status)).toEqual([202, 202, 202]);
    record(first);

    // 2. Redis killed: refused with 503 at once, and not remembered as seen.
    await redis.crash();
    const down = await Promise.all([send(), send(), send()]);
    expect(down.map((r) => r.status)).toEqual([503, 503, 503]);
    for (const r of down) expect(r.ms).toBeLessThan(6_000);
    const { rows: seen } = await database.db.query("SELECT id FROM deliveries WHERE id = ANY($1)", [down.map((r) => r.id)]);
    expect(seen).toEqual([]);

    // 3. Redis back (from its AOF): what was accepted before the crash is still queued.
    await redis.up();
    await until(async () => (await fetch(`http://127.0.0.1:${web.port}/readyz`)).status === 200, "the web tier to be ready again", 15_000);
    for (const id of accepted.keys()) expect(await web.deps.queues.webhooks.getJob(jobIdFrom(["wh", id])), `job of ${id}`).toBeDefined();
    expect(await web.deps.queues.webhooks.getWaitingCount()).toBe(3);

    // GitHub redelivers the refused ones (same ids) and sends new ones.
    const after = await Promise.all([...down.map((r) => send(r.id)), send(), send()]);
    expect(after.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
    record(after);

    // 4. A worker starts and handles everything once.
    const worker = await startApp({ ...config, role: "worker" }, { Octokit: TestOctokit, log: pino({ level: "silent" }) });
    apps.push(worker);
    const replies = (n: number) => gh.find("POST", new RegExp(`/issues/${n}/comments$`)).length;
    await until(async () => [...accepted.values()].every((n) => replies(n) >= 1), "every accepted delivery to be handled", 30_000);

    // 5. Redis killed again while the worker runs; deliveries during the outage are refused,
    // the worker reconnects on its own and handles what comes after.
    await redis.crash();
    const down2 = await Promise.all([send(), send()]);
    expect(down2.map((r) => r.status)).toEqual([503, 503]);
    await redis.up();
    await until(async () => (await fetch(`http://127.0.0.1:${web.port}/readyz`)).status === 200, "the web tier to be ready again", 15_000);
    const last = await Promise.all([...down2.map((r) => send(r.id)), send()]);
    expect(last.map((r) => r.status)).toEqual([202, 202, 202]);
    record(last);
    await until(async () => [...accepted.values()].every((n) => replies(n) >= 1), "the deliveries after the second crash to be handled", 30_000);

    // Exactly once: 11 distinct deliveries accepted, each in the queue once, each handled once.
    expect(accepted.size).toBe(11);
    const jobs = await web.deps.queues.webhooks.getJobs(["completed", "failed", "waiting", "active", "delayed"]);
    expect(jobs.map((j) => j.id).sort()).toEqual([...accepted.keys()].map((id) => jobIdFrom(["wh", id])).sort());
    expect(jobs.filter((j) => !j.finishedOn || j.failedReason || j.attemptsMade > 1).map((j) => j.id)).toEqual([]);
    for (const n of accepted.values()) expect(replies(n), `replies on #${n}`).toBe(1);
    // Every PR the test used was answered; none more than once.
    expect(gh.find("POST", /\/issues\/\d+\/comments$/)).toHaveLength(11);
    const { rows } = await database.db.query<{ n: number }>("SELECT count(*)::int AS n FROM deliveries");
    expect(rows[0]!.n).toBe(11);
  }, 90_000);
});
