/**
 * Service probes of the incident report: redis and postgres against the real services, the HTTP
 * probes (Neon, Qdrant, Lambda Cloud, Estuary, Pulumi Cloud) against nock (which intercepts
 * fetch), the runner's timeout/throw handling, and buildProbes' credential handling. No result
 * may ever carry a secret.
 */
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import nock from "nock";
import pg from "pg";
import { randomUUID } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { sanitize } from "../../src/diagnose/probes/common.js";
import { ProbesConfigSchema } from "../../src/config/diagnose-probes.js";
import { parseOpenMetrics, estuaryProbe } from "../../src/diagnose/probes/estuary.js";
import { buildProbes } from "../../src/diagnose/probes/index.js";
import { lambdaLabsProbe } from "../../src/diagnose/probes/lambda-labs.js";
import { neonProbe } from "../../src/diagnose/probes/neon.js";
import { postgresProbe } from "../../src/diagnose/probes/postgres.js";
import { pulumiProbe } from "../../src/diagnose/probes/pulumi.js";
import { qdrantProbe } from "../../src/diagnose/probes/qdrant.js";
import { redisProbe } from "../../src/diagnose/probes/redis.js";
import { runProbes } from "../../src/diagnose/probes/run.js";
import type { Probe, ProbeResult } from "../../src/domain/diagnose.js";
import { TEST_DB_BASE, TEST_REDIS_URL } from "../helpers/harness.js";

const NEON_KEY = "neon_api_key_secret_0123456789abcdefABCDEF";
const QDRANT_KEY = "qdrant_api_key_secret_9876543210zyxw";
const LAMBDA_KEY = "secret_lambda_key_0123456789abcdef01234567";
const ESTUARY_TOKEN = "estuary_refresh_token_c2VjcmV0LXJlZnJlc2gtdG9rZW4=";
const PULUMI_TOKEN = "pul-0123456789abcdef0123456789abcdef01234567";
const PG_PASSWORD = "pg-probe-password-s3cr3t";
const SECRETS = [NEON_KEY, QDRANT_KEY, LAMBDA_KEY, ESTUARY_TOKEN, PULUMI_TOKEN, PG_PASSWORD];

const NEON = "https://console.neon.tech";
const QDRANT = "http://qdrant.probe.test:6333";
const LAMBDA = "https://cloud.lambdalabs.com";
const ESTUARY = "https://agent-api-1084703453822.us-central1.run.app";
const PULUMI = "https://api.pulumi.com";

/** Every result produced here, checked for secrets at the end (and in the cases that invite a leak). */
const seen: ProbeResult[] = [];

async function run(probe: Probe, timeoutMs = 3000): Promise<ProbeResult> {
  const [r] = await runProbes([probe], { timeoutMs });
  seen.push(r!);
  return r!;
}

function expectNoSecret(results: ProbeResult | ProbeResult[]) {
  const text = JSON.stringify(results);
  for (const s of SECRETS) expect(text).not.toContain(s);
}

/**
 * A reply that comes 3 s late (longer than the 300 ms timeouts used with it). Not nock's
 * `.delay()`: with fetch, nock 15 delays only the body, and once the request is aborted its mocked
 * socket still completes the message, which trips undici's `assert(!this.aborted)` as an uncaught
 * exception. A reply callback that resolves late delays the whole response and aborts cleanly.
 */
function slow(status: number, body: unknown): () => Promise<[number, unknown]> {
  return () => new Promise((resolve) => setTimeout(() => resolve([status, body]), 3000).unref());
}

const detail = (r: ProbeResult, label: string) => r.details.find((d) => d.label === label)?.value;

/** A local port nothing listens on (fetch refuses "bad ports" such as 1). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(() => {
  nock.disableNetConnect();
  nock.enableNetConnect(/127\.0\.0\.1|localhost/);
});
afterEach(() => {
  nock.cleanAll();
});
afterAll(() => {
  nock.enableNetConnect();
  expect(seen.length).toBeGreaterThan(0);
  expectNoSecret(seen);
});

describe("config", () => {
  it("fills defaults and keeps only what is configured", () => {
    const c = ProbesConfigSchema.parse({ redis: {}, postgres: {}, neon: { project_id: "shiny-pond-123", api_key_env: "NEON_API_KEY" } });
    expect(c.timeout_ms).toBe(5000);
    expect(c.redis).toEqual({ max_waiting: 100, max_failed: 50 });
    expect(c.postgres).toEqual({ slow_ms: 500 });
    expect(c.neon).toEqual({ api_url: "https://console.neon.tech/api/v2", project_id: "shiny-pond-123", api_key_env: "NEON_API_KEY" });
    expect(c.qdrant).toBeUndefined();
    expect(ProbesConfigSchema.parse({ qdrant: { url: "http://q:6333/" } }).qdrant).toEqual({ url: "http://q:6333", collections: [] });
    const p = ProbesConfigSchema.parse({ pulumi: { organization: "acme", project: "infra", access_token_env: "PULUMI_ACCESS_TOKEN" } }).pulumi!;
    expect(p.api_url).toBe("https://api.pulumi.com");
    expect(p.in_progress_max_s).toBe(1800);
    expect(ProbesConfigSchema.parse({ lambda_labs: { api_key_env: "K" } }).lambda_labs!.api_url).toBe("https://cloud.lambdalabs.com/api/v1");
    expect(ProbesConfigSchema.parse({ estuary: { prefix: "acmeCo/", refresh_token_env: "T" } }).estuary).toMatchObject({ stale_after_s: 900 });
  });

  it("rejects unknown keys, out-of-range timeouts, secrets in URLs and bad names", () => {
    const bad = [
      { timeout_ms: 50 },
      { timeout_ms: 60_001 },
      { redis: { url: "redis://x" } },
      { neon: { project_id: "p", api_key: NEON_KEY } },
      { qdrant: { url: "https://admin:hunter2@qdrant.example.com" } },
      { qdrant: { url: "ftp://qdrant.example.com" } },
      { lambda_labs: { api_key_env: "not a var" } },
      { estuary: { prefix: "acmeCo", refresh_token_env: "T" } },
      { pulumi: { organization: "a/b", project: "p", access_token_env: "T" } },
      { something_else: {} },
    ];
    for (const doc of bad) expect(ProbesConfigSchema.safeParse(doc).success, JSON.stringify(doc)).toBe(false);
  });
});

describe("runProbes", () => {
  it("turns a throw into DOWN, times out a probe that never resolves, keeps order and never rejects", async () => {
    const ok: Probe = { name: "ok", run: async () => ({ status: "OK", reason: "fine", details: [{ label: "x", value: "1" }] }) };
    const throws: Probe = {
      name: "throws",
      run: async () => {
        throw new Error("connect ECONNREFUSED postgres://app:hunter2hunter2@db.internal:5432/app\n  at stack line");
      },
    };
    const syncThrow: Probe = {
      name: "sync-throw",
      run: () => {
        throw new TypeError("not a function");
      },
    };
    const never: Probe = { name: "never", run: () => new Promise(() => {}) };
    const invalid: Probe = { name: "invalid", run: async () => ({ status: "GREEN", reason: 1 }) as never };
    const rejectsLate: Probe = { name: "late", run: () => new Promise((_, reject) => setTimeout(() => reject(new Error("late")), 400)) };
    const t0 = Date.now();
    const results = await runProbes([ok, throws, never, syncThrow, invalid, rejectsLate], { timeoutMs: 250 });
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(1500);
    expect(results.map((r) => r.name)).toEqual(["ok", "throws", "never", "sync-throw", "invalid", "late"]);
    expect(results.map((r) => r.status)).toEqual(["OK", "DOWN", "DOWN", "DOWN", "DOWN", "DOWN"]);
    expect(results[0]).toMatchObject({ reason: "fine", details: [{ label: "x", value: "1" }] });
    expect(results[1]!.reason).toMatch(/^probe failed: connect ECONNREFUSED postgres:\/\/\*\*\*@db\.internal:5432\/app at stack line$/);
    expect(results[1]!.reason).not.toContain("hunter2");
    expect(results[2]!.reason).toBe("timed out after 250 ms");
    expect(results[2]!.durationMs).toBeGreaterThanOrEqual(240);
    expect(results[3]!.reason).toBe("probe failed: not a function");
    expect(results[4]!.reason).toBe("probe returned an invalid result");
    expect(results[5]!.reason).toBe("timed out after 250 ms");
    for (const r of results) expect(Number.isInteger(r.durationMs)).toBe(true);
    expect(results[0]!.durationMs).toBeLessThan(200);
    seen.push(...results);
  });

  it("sanitises reasons: secrets, URL userinfo, token query values, bearer values, newlines, length", () => {
    expect(sanitize(`failed with ${NEON_KEY}\n  at x`, [NEON_KEY])).toBe("failed with *** at x");
    expect(sanitize("GET https://u:p4ss@h.example/x?api_key=abc123&page=1 sent Authorization: Bearer abcdefghijklmnop")).toBe(
      "GET https://***@h.example/x?api_key=***&page=1 sent Authorization: Bearer ***",
    );
    expect(sanitize("x".repeat(1000))).toHaveLength(240);
  });

  it("hands each probe its own signal, aborted at the deadline", async () => {
    let aborted: boolean | undefined;
    let mine: AbortSignal | undefined;
    let other: AbortSignal | undefined;
    const waits: Probe = {
      name: "waits",
      run: (signal) =>
        new Promise((_, reject) => {
          mine = signal;
          signal.addEventListener("abort", () => {
            aborted = true;
            reject(signal.reason as Error);
          });
        }),
    };
    const quick: Probe = {
      name: "quick",
      run: async (signal) => {
        other = signal;
        return { status: "OK", reason: "quick", details: [] };
      },
    };
    const results = await runProbes([waits, quick], { timeoutMs: 150 });
    expect(results.map((r) => `${r.name}:${r.status}:${r.reason}`)).toEqual(["waits:DOWN:timed out after 150 ms", "quick:OK:quick"]);
    await expect.poll(() => aborted).toBe(true);
    expect(mine!.reason).toMatchObject({ name: "TimeoutError" });
    expect(other).not.toBe(mine); // its own timeout signal
    expect(await runProbes([], { timeoutMs: 100 })).toEqual([]);
  });
});

describe("redis", () => {
  const prefix = `probe-test-${randomUUID()}`;
  let redis: Redis;
  let work: Queue;
  let broken: Queue;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    work = new Queue("work", { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix });
    broken = new Queue("broken", { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix });
  });
  afterAll(async () => {
    for (const q of [work, broken]) {
      await q.obliterate({ force: true });
      await q.close();
    }
    const left = await redis.keys(`${prefix}:*`);
    if (left.length) await redis.del(...left);
    expect(await redis.keys(`${prefix}:*`)).toEqual([]);
    redis.disconnect();
  });

  it("OK on the app's connection: PING, memory, noeviction, empty queues", async () => {
    const r = await run(redisProbe({ connection: redis, queues: [work, broken], maxWaiting: 2, maxFailed: 1 }));
    expect(r.status).toBe("OK");
    expect(r.reason).toMatch(/^PING \d+ ms, .+ used, noeviction, 2 queue\(s\) within limits$/);
    expect(detail(r, "maxmemory_policy")).toBe("noeviction");
    expect(detail(r, "memory")).toMatch(/^[\d.]+[KMG]?$/);
    expect(detail(r, "queue work")).toBe("0 waiting · 0 active · 0 delayed · 0 failed");
  });

  it("counts BullMQ jobs and is DEGRADED above the waiting and failed thresholds", async () => {
    await work.addBulk([{ name: "a", data: {} }, { name: "b", data: {} }, { name: "c", data: {} }, { name: "d", data: {}, opts: { delay: 3_600_000 } }]);
    await work.add("p", {}, { priority: 5 });
    const worker = new Worker(
      "broken",
      async () => {
        throw new Error("job blew up");
      },
      { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix, autorun: false },
    );
    const failedTwice = new Promise<void>((resolve) => {
      let n = 0;
      worker.on("failed", () => {
        if (++n === 2) resolve();
      });
    });
    await broken.addBulk([{ name: "x", data: {} }, { name: "y", data: {} }]);
    void worker.run();
    await failedTwice;
    await worker.close();

    const r = await run(redisProbe({ connection: redis, queues: [work, broken], maxWaiting: 3, maxFailed: 1 }));
    expect(r.status).toBe("DEGRADED");
    expect(r.reason).toBe("queue work has 4 waiting jobs (> 3); queue broken has 2 failed jobs (> 1)");
    expect(detail(r, "queue work")).toBe("4 waiting · 0 active · 1 delayed · 0 failed");
    expect(detail(r, "queue broken")).toBe("0 waiting · 0 active · 0 delayed · 2 failed");
    // Within limits once the thresholds allow it.
    expect((await run(redisProbe({ connection: redis, queues: [work, broken], maxWaiting: 4, maxFailed: 2 }))).status).toBe("OK");
  });

  it("DEGRADED when the eviction policy is not noeviction", async () => {
    const evicting = new Redis(TEST_REDIS_URL);
    try {
      const realInfo = evicting.info.bind(evicting) as (section: string) => Promise<string>;
      Object.assign(evicting, { info: async (section: string) => (await realInfo(section)).replace(/maxmemory_policy:\w+/, "maxmemory_policy:allkeys-lru") });
      const r = await run(redisProbe({ connection: evicting, queues: [], maxWaiting: 100, maxFailed: 100 }));
      expect(r.status).toBe("DEGRADED");
      expect(r.reason).toBe("maxmemory_policy is allkeys-lru; BullMQ needs noeviction (jobs may be evicted)");
    } finally {
      evicting.disconnect();
    }
  });

  it("a dedicated URL connection: OK when up, DOWN on a closed port, without the password", async () => {
    const up = await run(redisProbe({ connection: { url: TEST_REDIS_URL }, queues: [], maxWaiting: 1, maxFailed: 1 }));
    expect(up.status).toBe("OK");
    const down = await run(redisProbe({ connection: { url: `redis://:${PG_PASSWORD}@127.0.0.1:1` }, queues: [], maxWaiting: 1, maxFailed: 1 }));
    expect(down).toMatchObject({ status: "DOWN", reason: "cannot connect to Redis: ECONNREFUSED" });
  });
});

describe("postgres", () => {
  const appName = `probe-test-${randomUUID().slice(0, 8)}`;
  const sessions = async () => {
    const c = new pg.Client({ connectionString: TEST_DB_BASE });
    await c.connect();
    try {
      return Number((await c.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [appName])).rows[0].n);
    } finally {
      await c.end();
    }
  };

  it("OK against the real server: SELECT 1 latency and version; the client is ended", async () => {
    const r = await run(postgresProbe({ url: TEST_DB_BASE, slowMs: 5000, applicationName: appName }));
    expect(r.status).toBe("OK");
    expect(r.reason).toMatch(/^SELECT 1 in \d+ ms on 127\.0\.0\.1:5432\/test \(PostgreSQL \d+/);
    expect(detail(r, "version")).toMatch(/^\d+(\.\d+)?/);
    expect(detail(r, "SELECT 1")).toMatch(/^\d+ ms$/);
    await expect.poll(sessions).toBe(0);
  });

  it("DEGRADED above slow_ms", async () => {
    const r = await run(postgresProbe({ url: TEST_DB_BASE, slowMs: 0, applicationName: appName }));
    expect(r.status).toBe("DEGRADED");
    expect(r.reason).toMatch(/^SELECT 1 took \d+ ms \(> 0 ms\) on 127\.0\.0\.1:5432\/test$/);
    await expect.poll(sessions).toBe(0);
  });

  it("DOWN against a closed port, without the password", async () => {
    const r = await run(postgresProbe({ url: `postgres://app:${PG_PASSWORD}@127.0.0.1:1/test`, slowMs: 500 }));
    expect(r.status).toBe("DOWN");
    expect(r.reason).toMatch(/^cannot connect to 127\.0\.0\.1:1\/test: .*ECONNREFUSED/);
    expectNoSecret(r);
  });

  it("DOWN when the server refuses the login (no such database)", async () => {
    const url = new URL(TEST_DB_BASE);
    url.pathname = `/no_such_db_${randomUUID().slice(0, 8).replace(/-/g, "")}`;
    const r = await run(postgresProbe({ url: url.toString(), slowMs: 500, applicationName: appName }));
    expect(r.status).toBe("DOWN");
    expect(r.reason).toMatch(/^cannot connect to .*: database "no_such_db_\w+" does not exist$/);
  });
});

describe("neon", () => {
  const probe = (opts: { branchId?: string } = { branchId: "br-main-123" }) =>
    neonProbe({ apiUrl: `${NEON}/api/v2`, projectId: "shiny-pond-123", branchId: opts.branchId, apiKey: NEON_KEY, now: () => Date.parse("2026-11-20T12:00:00Z") });
  const branch = (over: object = {}) => ({ id: "br-main-123", project_id: "shiny-pond-123", name: "main", current_state: "ready", default: true, ...over });
  const endpoint = (over: object = {}) => ({
    id: "ep-cool-123",
    host: "ep-cool-123.us-east-2.aws.neon.tech",
    branch_id: "br-main-123",
    type: "read_write",
    current_state: "active",
    disabled: false,
    ...over,
  });
  function neon(b: unknown, eps: unknown, status = 200) {
    const scope = nock(NEON).matchHeader("authorization", `Bearer ${NEON_KEY}`);
    scope.get("/api/v2/projects/shiny-pond-123/branches/br-main-123").reply(status, { branch: b });
    scope.get("/api/v2/projects/shiny-pond-123/endpoints").reply(200, { endpoints: eps });
    return scope;
  }

  it("OK: ready branch, active endpoint (Bearer auth)", async () => {
    const scope = neon(branch(), [endpoint(), endpoint({ id: "ep-other", branch_id: "br-dev" , disabled: true })]);
    const r = await run(probe());
    expect(scope.isDone()).toBe(true);
    expect(r).toMatchObject({ status: "OK", reason: "branch main ready; endpoint ep-cool-123 active" });
    expect(detail(r, "endpoint ep-cool-123")).toBe("active · read_write");
    expect(detail(r, "endpoint ep-other")).toBeUndefined();
  });

  it("OK but explained: idle endpoint scaled to zero since suspended_at", async () => {
    neon(branch(), [endpoint({ current_state: "idle", suspended_at: "2026-11-20T10:00:00Z" })]);
    const r = await run(probe());
    expect(r.status).toBe("OK");
    expect(r.reason).toBe("branch main ready; endpoint ep-cool-123 idle (scaled to zero since 2 h ago; the next connection wakes it with a cold start)");
  });

  it("DEGRADED: endpoint starting, or branch archived", async () => {
    neon(branch(), [endpoint({ current_state: "init", pending_state: "active" })]);
    const starting = await run(probe());
    expect(starting).toMatchObject({ status: "DEGRADED", reason: "endpoint ep-cool-123 is starting (init) (changing to active); branch main ready" });
    neon(branch({ current_state: "archived" }), [endpoint({ current_state: "idle" })]);
    const archived = await run(probe());
    expect(archived.status).toBe("DEGRADED");
    expect(archived.reason).toMatch(/^branch main is archived: the first connection restores it/);
  });

  it("DOWN: disabled endpoint, or no endpoint on the branch", async () => {
    neon(branch(), [endpoint({ disabled: true, current_state: "idle" })]);
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "endpoint ep-cool-123 is disabled: connections are refused; branch main ready" });
    neon(branch(), []);
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "branch main has no compute endpoint; branch main ready" });
  });

  it("without branch_id: the project's default branch from /branches", async () => {
    const scope = nock(NEON)
      .matchHeader("authorization", `Bearer ${NEON_KEY}`)
      .get("/api/v2/projects/shiny-pond-123/branches")
      .reply(200, { branches: [branch({ id: "br-dev", name: "dev", default: false, current_state: "init" }), branch()] })
      .get("/api/v2/projects/shiny-pond-123/endpoints")
      .reply(200, { endpoints: [endpoint(), endpoint({ id: "ep-dev", branch_id: "br-dev", disabled: true })] });
    const r = await run(probe({}));
    expect(scope.isDone()).toBe(true);
    expect(r).toMatchObject({ status: "OK", reason: "branch main ready; endpoint ep-cool-123 active" });
  });

  it("DOWN on 401, 404, 500 and malformed bodies; never shows the key", async () => {
    nock(NEON).get("/api/v2/projects/shiny-pond-123/branches/br-main-123").reply(401, { message: `invalid API key ${NEON_KEY}` });
    nock(NEON).get("/api/v2/projects/shiny-pond-123/endpoints").reply(401, { message: "invalid API key" });
    const unauthorized = await run(probe());
    expect(unauthorized).toMatchObject({ status: "DOWN", reason: "HTTP 401 from the Neon API: the credential was rejected" });
    expectNoSecret(unauthorized);

    neon(branch(), [endpoint()], 404);
    expect((await run(probe())).reason).toBe("branch br-main-123 of project shiny-pond-123 not found (HTTP 404)");

    nock(NEON).get("/api/v2/projects/shiny-pond-123/branches/br-main-123").reply(500, "oops");
    nock(NEON).get("/api/v2/projects/shiny-pond-123/endpoints").reply(200, { endpoints: [] });
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "HTTP 500 from the Neon API: server error" });

    neon({ id: "br-main-123", name: "main" }, [endpoint()]);
    const malformed = await run(probe());
    expect(malformed.status).toBe("DOWN");
    expect(malformed.reason).toMatch(/^unexpected response from the Neon API \(branch\.current_state: /);

    nock(NEON).get("/api/v2/projects/shiny-pond-123/branches/br-main-123").reply(200, "<html>maintenance</html>");
    nock(NEON).get("/api/v2/projects/shiny-pond-123/endpoints").reply(200, { endpoints: [] });
    expect((await run(probe())).reason).toBe("unexpected response from the Neon API (not JSON)");
  });

  it("DOWN when the API does not answer in time", async () => {
    nock(NEON).get("/api/v2/projects/shiny-pond-123/branches/br-main-123").reply(slow(200, { branch: branch() }));
    nock(NEON).get("/api/v2/projects/shiny-pond-123/endpoints").reply(200, { endpoints: [endpoint()] });
    const t0 = Date.now();
    const r = await run(probe(), 300);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r).toMatchObject({ status: "DOWN", reason: "timed out after 300 ms" });
  });
});

describe("qdrant", () => {
  const probe = (collections = ["knowledge", "runbooks"], apiKey: string | null = QDRANT_KEY) => qdrantProbe({ url: QDRANT, apiKey: apiKey ?? undefined, collections });
  const collection = (status: string, points = 42) => ({ result: { status, optimizer_status: "ok", points_count: points, segments_count: 2, config: {} }, status: "ok", time: 0.001 });
  function qdrant(statuses: Record<string, string>) {
    const scope = nock(QDRANT).matchHeader("api-key", QDRANT_KEY).get("/healthz").reply(200, "healthz check passed", { "content-type": "text/plain" });
    for (const [name, status] of Object.entries(statuses)) scope.get(`/collections/${name}`).reply(200, collection(status));
    return scope;
  }

  it("OK: healthz passes and every collection is green (api-key header)", async () => {
    const scope = qdrant({ knowledge: "green", runbooks: "green" });
    const r = await run(probe());
    expect(scope.isDone()).toBe(true);
    expect(r.status).toBe("OK");
    expect(r.reason).toMatch(/^healthz passed in \d+ ms; 2 collection\(s\) green$/);
    expect(detail(r, "collection knowledge")).toBe("green · 42 points");
  });

  it("no api-key header when none is configured", async () => {
    const scope = nock(QDRANT, { badheaders: ["api-key"] }).get("/healthz").reply(200, "healthz check passed");
    const r = await run(probe([], null));
    expect(scope.isDone()).toBe(true);
    expect(r.status).toBe("OK");
  });

  it("DEGRADED for yellow/grey, DOWN for red", async () => {
    qdrant({ knowledge: "yellow", runbooks: "green" });
    expect(await run(probe())).toMatchObject({ status: "DEGRADED", reason: "collection knowledge is yellow (optimising)" });
    qdrant({ knowledge: "grey", runbooks: "red" });
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "collection runbooks is red (an operation failed); collection knowledge is grey (optimisations pending)" });
  });

  it("DOWN on a failing healthz, a missing collection, 401, malformed bodies and timeouts", async () => {
    nock(QDRANT).get("/healthz").reply(500, "boom");
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "HTTP 500 from Qdrant: server error" });

    nock(QDRANT).get("/healthz").reply(401, `bad api-key ${QDRANT_KEY}`);
    const unauthorized = await run(probe());
    expect(unauthorized).toMatchObject({ status: "DOWN", reason: "HTTP 401 from Qdrant: the credential was rejected" });
    expectNoSecret(unauthorized);

    nock(QDRANT).get("/healthz").reply(200, "ok").get("/collections/knowledge").reply(404, { status: { error: "Not found: Collection `knowledge` doesn't exist!" } });
    expect(await run(probe(["knowledge"]))).toMatchObject({ status: "DOWN", reason: "collection knowledge not found (HTTP 404)" });

    nock(QDRANT).get("/healthz").reply(200, "ok").get("/collections/knowledge").reply(200, { result: { status: "blue" } });
    const malformed = await run(probe(["knowledge"]));
    expect(malformed.status).toBe("DOWN");
    expect(malformed.reason).toMatch(/^unexpected response from Qdrant \(result\.status: /);

    nock(QDRANT).get("/healthz").reply(slow(200, "ok"));
    const t0 = Date.now();
    expect(await run(probe([]), 300)).toMatchObject({ status: "DOWN", reason: "timed out after 300 ms" });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("DOWN when the server cannot be reached", async () => {
    const port = await closedPort();
    const r = await run(qdrantProbe({ url: `http://127.0.0.1:${port}`, collections: [] }));
    expect(r).toMatchObject({ status: "DOWN", reason: "cannot reach Qdrant: ECONNREFUSED" });
  });
});

describe("lambda-labs", () => {
  const probe = (instanceNames?: string[]) => lambdaLabsProbe({ apiUrl: `${LAMBDA}/api/v1`, apiKey: LAMBDA_KEY, instanceNames });
  const inst = (name: string | null, status: string, id = randomUUID().replace(/-/g, "")) => ({
    id,
    name,
    status,
    ip: "198.51.100.2",
    region: { name: "us-east-1", description: "Virginia, USA" },
    instance_type: { name: "gpu_1x_a10", description: "1x A10 (24 GB PCIe)" },
  });
  const lambda = (data: unknown[]) =>
    nock(LAMBDA).get("/api/v1/instances").matchHeader("authorization", `Bearer ${LAMBDA_KEY}`).reply(200, { data });

  it("OK when the named instances are active (Bearer auth); others are ignored", async () => {
    const scope = lambda([inst("gpu-trainer-1", "active"), inst("scratch", "unhealthy")]);
    const r = await run(probe(["gpu-trainer-1"]));
    expect(scope.isDone()).toBe(true);
    expect(r).toMatchObject({ status: "OK", reason: "1 instance(s) active" });
    expect(detail(r, "gpu-trainer-1")).toBe("active · gpu_1x_a10 · us-east-1");
  });

  it("DEGRADED while booting; DOWN when unhealthy, missing or terminated", async () => {
    lambda([inst("gpu-trainer-1", "booting")]);
    expect(await run(probe(["gpu-trainer-1"]))).toMatchObject({ status: "DEGRADED", reason: "gpu-trainer-1 is booting" });
    lambda([inst("gpu-trainer-1", "unhealthy"), inst("gpu-trainer-2", "booting")]);
    expect(await run(probe(["gpu-trainer-1", "gpu-trainer-2"]))).toMatchObject({ status: "DOWN", reason: "gpu-trainer-1 is unhealthy; gpu-trainer-2 is booting" });
    lambda([inst("gpu-trainer-2", "active")]);
    expect(await run(probe(["gpu-trainer-1", "gpu-trainer-2"]))).toMatchObject({ status: "DOWN", reason: "gpu-trainer-1 not found" });
    lambda([inst("gpu-trainer-1", "terminated")]);
    expect(await run(probe(["gpu-trainer-1"]))).toMatchObject({ status: "DOWN", reason: "gpu-trainer-1 is terminated" });
  });

  it("without names: every live instance is judged, terminated ones only counted", async () => {
    lambda([inst("a", "active"), inst(null, "preempted", "id-preempted"), inst("old", "terminated")]);
    const r = await run(probe());
    expect(r).toMatchObject({ status: "DEGRADED", reason: "id-preempted was preempted" });
    expect(detail(r, "terminated")).toBe("1");
    lambda([inst("old", "terminated")]);
    expect(await run(probe())).toMatchObject({ status: "OK", reason: "no running instances on the account" });
  });

  it("DOWN on 401/500, malformed bodies and timeouts; the key never shows", async () => {
    nock(LAMBDA).get("/api/v1/instances").reply(401, { error: { code: "global/invalid-api-key", message: `API key ${LAMBDA_KEY} was invalid` } });
    const unauthorized = await run(probe(["gpu-trainer-1"]));
    expect(unauthorized).toMatchObject({ status: "DOWN", reason: "HTTP 401 from the Lambda Cloud API: the credential was rejected" });
    expectNoSecret(unauthorized);
    nock(LAMBDA).get("/api/v1/instances").reply(503, "upstream unavailable");
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "HTTP 503 from the Lambda Cloud API: server error" });
    nock(LAMBDA).get("/api/v1/instances").reply(200, { instances: [] });
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: expect.stringMatching(/^unexpected response from the Lambda Cloud API \(data: /) });
    nock(LAMBDA).get("/api/v1/instances").reply(slow(200, { data: [] }));
    const t0 = Date.now();
    expect(await run(probe(), 300)).toMatchObject({ status: "DOWN", reason: "timed out after 300 ms" });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe("estuary", () => {
  const NOW = Date.parse("2026-11-20T12:00:00Z");
  const probe = (tasks?: string[]) =>
    estuaryProbe({ apiUrl: ESTUARY, prefix: "acmeCo/prod/", refreshToken: ESTUARY_TOKEN, tasks, staleAfterS: 900, now: () => NOW });
  const metrics = (materializedAgoS: number) => `# HELP logged_warnings_total Total log lines at level WARN, by task
# TYPE logged_warnings_total counter
logged_warnings_total{task="acmeCo/prod/source-postgres"} 12
logged_warnings_total{task="acmeCo/prod/materialize-snowflake"} 5
# HELP logged_failures_total Total log lines indicating task failure, by task
# TYPE logged_failures_total counter
logged_failures_total{task="acmeCo/prod/source-postgres"} 3
# HELP captured_out_docs_total Total number of post-combine documents captured by the connector, by task and target collection
# TYPE captured_out_docs_total counter
captured_out_docs_total{task="acmeCo/prod/source-postgres",collection="acmeCo/prod/orders"} 1580
# HELP materialized_last_source_published_at_time_seconds Publication timestamp of the most recent source collection document that was materialized
# TYPE materialized_last_source_published_at_time_seconds gauge
materialized_last_source_published_at_time_seconds{task="acmeCo/prod/materialize-snowflake",collection="acmeCo/prod/orders"} ${NOW / 1000 - materializedAgoS}
# EOF
`;
  const estuary = (body: string, status = 200) =>
    nock(ESTUARY)
      .get("/api/v1/metrics/acmeCo/prod/")
      .matchHeader("authorization", `Bearer ${ESTUARY_TOKEN}`)
      .reply(status, body, { "content-type": "application/openmetrics-text; version=1.0.0; charset=utf-8" });

  it("parses OpenMetrics text and rejects anything else", () => {
    expect(parseOpenMetrics('a_total{task="x/y",collection="c\\"q"} 2\n# EOF\nb 1.5e3 1700000000')).toEqual([
      { name: "a_total", labels: { task: "x/y", collection: 'c"q' }, value: 2 },
      { name: "b", labels: {}, value: 1500 },
    ]);
    expect(parseOpenMetrics("<html><body>Sign in</body></html>")).toBeNull();
    expect(parseOpenMetrics('{"metrics": []}')).toBeNull();
    expect(parseOpenMetrics("a_total{task=x} 1")).toBeNull();
    expect(parseOpenMetrics("a_total one")).toBeNull();
    expect(parseOpenMetrics("")).toEqual([]);
  });

  it("OK when the tasks report and materializations are fresh (Bearer refresh token, prefix path)", async () => {
    const scope = estuary(metrics(60));
    const r = await run(probe(["acmeCo/prod/source-postgres", "acmeCo/prod/materialize-snowflake"]));
    expect(scope.isDone()).toBe(true);
    expect(r).toMatchObject({ status: "OK", reason: "2 task(s) reporting under acmeCo/prod/; data fresh" });
    expect(detail(r, "acmeCo/prod/materialize-snowflake")).toBe("last source document 60 s ago");
    expect(detail(r, "acmeCo/prod/source-postgres log")).toBe("3 failures · 0 errors (cumulative)");
  });

  it("DEGRADED when a materialization has stalled or nothing reports", async () => {
    estuary(metrics(7200));
    expect(await run(probe())).toMatchObject({
      status: "DEGRADED",
      reason: "acmeCo/prod/materialize-snowflake: last source document 2 h ago (stale after 900 s)",
    });
    estuary("# EOF\n");
    expect(await run(probe())).toMatchObject({ status: "DEGRADED", reason: "no task reports metrics under acmeCo/prod/" });
  });

  it("DOWN when a configured task reports no metrics", async () => {
    estuary(metrics(7200));
    expect(await run(probe(["acmeCo/prod/source-postgres", "acmeCo/prod/derive-totals"]))).toMatchObject({
      status: "DOWN",
      reason: "task acmeCo/prod/derive-totals reports no metrics",
    });
  });

  it("DOWN on 401/500, non-OpenMetrics bodies and timeouts; the token never shows", async () => {
    estuary(`invalid refresh token ${ESTUARY_TOKEN}`, 401);
    const unauthorized = await run(probe());
    expect(unauthorized).toMatchObject({ status: "DOWN", reason: "HTTP 401 from the Estuary metrics API: the credential was rejected" });
    expectNoSecret(unauthorized);
    estuary("internal error", 500);
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "HTTP 500 from the Estuary metrics API: server error" });
    estuary("<!doctype html><title>Login</title>");
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "unexpected response from the Estuary metrics API (not OpenMetrics text)" });
    nock(ESTUARY).get("/api/v1/metrics/acmeCo/prod/").reply(slow(200, "# EOF\n"));
    const t0 = Date.now();
    expect(await run(probe(), 300)).toMatchObject({ status: "DOWN", reason: "timed out after 300 ms" });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe("pulumi", () => {
  const NOW_S = 1_790_000_000;
  const probe = (stack = "prod") =>
    pulumiProbe({ apiUrl: PULUMI, organization: "acme", project: "infra", stack, accessToken: PULUMI_TOKEN, inProgressMaxS: 1800, now: () => NOW_S * 1000 });
  const info = (over: object) => ({ kind: "update", startTime: NOW_S - 600, message: "deploy #41", environment: {}, config: {}, result: "succeeded", endTime: NOW_S - 300, version: 17, resourceChanges: { same: 12, update: 1 }, resourceCount: 13, ...over });
  const pulumi = (body: unknown, status = 200, stack = "prod") =>
    nock(PULUMI)
      .get(`/api/stacks/acme/infra/${stack}/updates`)
      .query({ "output-type": "service", pageSize: "1", page: "1" })
      .matchHeader("authorization", `token ${PULUMI_TOKEN}`)
      .matchHeader("accept", "application/vnd.pulumi+8")
      .reply(status, body);

  it("OK when the last update succeeded (service shape; token auth, vnd.pulumi+8)", async () => {
    const scope = pulumi({ updates: [{ info: info({}), updateID: "7a1f", version: 17, latestVersion: 17, requestedBy: { name: "bot" } }], itemsPerPage: 1, total: 17 });
    const r = await run(probe());
    expect(scope.isDone()).toBe(true);
    expect(r).toMatchObject({ status: "OK", reason: "last update on acme/infra/prod succeeded 5 min ago (version 17)" });
    expect(detail(r, "last update")).toBe("update · succeeded · v17");
    expect(detail(r, "started")).toBe(new Date((NOW_S - 600) * 1000).toISOString());
  });

  it("accepts the default (cli) shape too", async () => {
    pulumi({ updates: [info({ kind: "refresh" })] });
    expect(await run(probe())).toMatchObject({ status: "OK", reason: "last refresh on acme/infra/prod succeeded 5 min ago (version 17)" });
  });

  it("DOWN when the last update failed", async () => {
    pulumi({ updates: [{ info: info({ result: "failed", endTime: NOW_S - 7200 }), version: 18 }] });
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "last update on acme/infra/prod failed 2 h ago (version 17)" });
  });

  it("in progress: OK while short, DEGRADED when long; DEGRADED with no update at all", async () => {
    pulumi({ updates: [{ info: info({ result: "in-progress", startTime: NOW_S - 120, endTime: 0 }) }] });
    expect(await run(probe())).toMatchObject({ status: "OK", reason: "update on acme/infra/prod in progress for 2 min (version 17)" });
    pulumi({ updates: [{ info: info({ result: "in-progress", startTime: NOW_S - 3 * 3600, endTime: 0, version: null }) }] });
    expect(await run(probe())).toMatchObject({ status: "DEGRADED", reason: "update on acme/infra/prod in progress for 3 h (> 30 min)" });
    pulumi({ updates: [], itemsPerPage: 1, total: 0 });
    expect(await run(probe())).toMatchObject({ status: "DEGRADED", reason: "stack acme/infra/prod has no updates yet" });
  });

  it("DOWN on 404/401/500, malformed bodies and timeouts; the token never shows", async () => {
    pulumi({ code: 404, message: "Stack 'acme/infra/prod' not found" }, 404);
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "stack acme/infra/prod not found (HTTP 404)" });
    pulumi({ code: 401, message: `Unauthorized: bad token ${PULUMI_TOKEN}` }, 401);
    const unauthorized = await run(probe());
    expect(unauthorized).toMatchObject({ status: "DOWN", reason: "HTTP 401 from Pulumi Cloud: the credential was rejected" });
    expectNoSecret(unauthorized);
    pulumi({ code: 500, message: "internal" }, 500);
    expect(await run(probe())).toMatchObject({ status: "DOWN", reason: "HTTP 500 from Pulumi Cloud: server error" });
    pulumi({ updates: [{ info: { kind: "update", result: "exploded", startTime: 1 } }] });
    expect((await run(probe())).reason).toMatch(/^unexpected response from Pulumi Cloud \(updates\.0/);
    pulumi({ stacks: [] });
    expect((await run(probe())).reason).toMatch(/^unexpected response from Pulumi Cloud \(updates: /);
    nock(PULUMI).get("/api/stacks/acme/infra/prod/updates").query(true).reply(slow(200, { updates: [] }));
    const t0 = Date.now();
    expect(await run(probe(), 300)).toMatchObject({ status: "DOWN", reason: "timed out after 300 ms" });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe("buildProbes", () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  });
  afterAll(() => redis.disconnect());

  const config = ProbesConfigSchema.parse({
    timeout_ms: 2000,
    redis: {},
    postgres: { url_env: "PROBE_DATABASE_URL" },
    neon: { project_id: "shiny-pond-123", branch_id: "br-main-123", api_key_env: "NEON_API_KEY" },
    qdrant: { url: QDRANT, api_key_env: "QDRANT_API_KEY", collections: ["knowledge"] },
    lambda_labs: { api_key_env: "LAMBDA_API_KEY", instance_names: ["gpu-trainer-1"] },
    estuary: { prefix: "acmeCo/prod/", refresh_token_env: "ESTUARY_REFRESH_TOKEN" },
    pulumi: { organization: "acme", project: "infra", access_token_env: "PULUMI_ACCESS_TOKEN", stacks: { prod: "production" } },
  });

  it("a probe whose credential is missing does not run and is DOWN in problems", () => {
    const { probes, problems } = buildProbes(config, { secrets: { NEON_API_KEY: NEON_KEY, LAMBDA_API_KEY: "" }, redis, queues: [], stack: "prod" });
    expect(probes.map((p) => p.name)).toEqual(["redis", "neon"]);
    expect(problems.map((p) => `${p.name}:${p.status}:${p.reason}`)).toEqual([
      "postgres:DOWN:credential PROBE_DATABASE_URL is not configured",
      "qdrant:DOWN:credential QDRANT_API_KEY is not configured",
      "lambda-labs:DOWN:credential LAMBDA_API_KEY is not configured",
      "estuary:DOWN:credential ESTUARY_REFRESH_TOKEN is not configured",
      "pulumi:DOWN:credential PULUMI_ACCESS_TOKEN is not configured",
    ]);
    for (const p of problems) expect(p).toMatchObject({ details: [], durationMs: 0 });
    seen.push(...problems);
  });

  it("postgres defaults to DATABASE_URL; pulumi is skipped without a stack; nothing configured, nothing built", () => {
    const pgOnly = ProbesConfigSchema.parse({ postgres: {}, pulumi: { organization: "acme", project: "infra", access_token_env: "PULUMI_ACCESS_TOKEN" } });
    const none = buildProbes(pgOnly, { secrets: { PULUMI_ACCESS_TOKEN: PULUMI_TOKEN }, redis, queues: [], stack: null });
    expect(none.probes).toEqual([]);
    expect(none.problems.map((p) => p.reason)).toEqual(["credential DATABASE_URL is not configured"]);
    expect(buildProbes(ProbesConfigSchema.parse({}), { secrets: {}, redis, queues: [], stack: "prod" })).toEqual({ probes: [], problems: [] });
  });

  it("runs every configured probe with the secrets of the credentials layer, the stack mapped to its Pulumi name", async () => {
    const secrets = {
      PROBE_DATABASE_URL: TEST_DB_BASE,
      NEON_API_KEY: NEON_KEY,
      QDRANT_API_KEY: QDRANT_KEY,
      LAMBDA_API_KEY: LAMBDA_KEY,
      ESTUARY_REFRESH_TOKEN: ESTUARY_TOKEN,
      PULUMI_ACCESS_TOKEN: PULUMI_TOKEN,
    };
    const scopes = [
      nock(NEON)
        .matchHeader("authorization", `Bearer ${NEON_KEY}`)
        .get("/api/v2/projects/shiny-pond-123/branches/br-main-123")
        .reply(200, { branch: { id: "br-main-123", name: "main", current_state: "ready" } })
        .get("/api/v2/projects/shiny-pond-123/endpoints")
        .reply(200, { endpoints: [{ id: "ep-1", branch_id: "br-main-123", current_state: "active", disabled: false }] }),
      nock(QDRANT).matchHeader("api-key", QDRANT_KEY).get("/healthz").reply(200, "ok").get("/collections/knowledge").reply(200, { result: { status: "red" } }),
      nock(LAMBDA).matchHeader("authorization", `Bearer ${LAMBDA_KEY}`).get("/api/v1/instances").reply(200, { data: [{ id: "i1", name: "gpu-trainer-1", status: "booting" }] }),
      // The server echoes the token in an odd body: it must not reach the report.
      nock(ESTUARY).matchHeader("authorization", `Bearer ${ESTUARY_TOKEN}`).get("/api/v1/metrics/acmeCo/prod/").reply(200, `weird ${ESTUARY_TOKEN}`),
      nock(PULUMI)
        .matchHeader("authorization", `token ${PULUMI_TOKEN}`)
        .get("/api/stacks/acme/infra/production/updates")
        .query(true)
        .reply(200, { updates: [{ info: { kind: "update", startTime: 1, endTime: 2, result: "failed", version: 3 } }] }),
    ];
    const { probes, problems } = buildProbes(config, { secrets, redis, queues: [], stack: "prod" });
    expect(problems).toEqual([]);
    const results = await runProbes(probes, { timeoutMs: config.timeout_ms });
    seen.push(...results);
    for (const s of scopes) expect(s.isDone()).toBe(true);
    expect(results.map((r) => `${r.name}:${r.status}`)).toEqual(["redis:OK", "postgres:OK", "neon:OK", "qdrant:DOWN", "lambda-labs:DEGRADED", "estuary:DOWN", "pulumi:DOWN"]);
    expect(results.find((r) => r.name === "pulumi")!.reason).toMatch(/^last update on acme\/infra\/production failed/);
    expectNoSecret(results);
  });

  it("scrubs a probe's secrets from whatever it throws", async () => {
    // A redis URL with a password, pointing at a closed port: the probe fails and must not show it.
    const cfg = ProbesConfigSchema.parse({ redis: { url_env: "PROBE_REDIS_URL" } });
    const { probes } = buildProbes(cfg, { secrets: { PROBE_REDIS_URL: `redis://default:${PG_PASSWORD}@127.0.0.1:1/0` }, redis, queues: [], stack: null });
    const [r] = await runProbes(probes, { timeoutMs: 2000 });
    seen.push(r!);
    expect(r).toMatchObject({ name: "redis", status: "DOWN" });
    expectNoSecret(r!);
  });
});
