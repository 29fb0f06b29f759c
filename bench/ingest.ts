/**
 * Webhook ingest: signed `issue_comment` deliveries per second through three servers, measured
 * in the same run with the same client, payload and settings:
 *
 * - `app`: the app's real web tier (`startApp`, ROLE=web): verify the signature, dedupe and
 *   record the delivery in PostgreSQL (a fresh, migrated database), enqueue it on BullMQ
 *   (a unique prefix in Redis), answer 202; concurrent deliveries share one INSERT and one
 *   addBulk (src/web/ingest-batch.ts);
 * - `probot`: a plain Probot app with a no-op `issue_comment` handler (`createNodeMiddleware`);
 * - `ceiling`: a bare `@octokit/webhooks` verify-and-200 node:http server.
 *
 * Each server runs in a process of its own (bench/ingest-target.ts); the client is autocannon
 * in this process, on 127.0.0.1 only, at a fixed concurrency, for a bounded number of requests
 * after a warm-up, every request with its own X-GitHub-Delivery id. Latency is per request
 * (autocannon's own, in full precision); throughput is requests ÷ wall time of the timed run.
 *
 * Env: BENCH_INGEST_COUNT (timed requests per target, default 3000), BENCH_INGEST_WARMUP
 * (default 500), BENCH_INGEST_CONNECTIONS (default 32).
 *
 * A benchmark, not a test: the targets are printed as PASS/MISS for information only.
 */
import { fork, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:net";
import { availableParallelism, loadavg } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import autocannon from "autocannon";
import { Queue } from "bullmq";
import { createRedis, WEBHOOK_QUEUE } from "../src/connectors/queues.js";
import { WEBHOOK_PATH } from "../src/web/server.js";
import { issueCommentPayload, migratedTestDb, sign, TEST_REDIS_URL, WEBHOOK_SECRET } from "../test/helpers/harness.js";
import { fmt, percentile, targetTable, saveResult, intFromEnv, type TargetCheck, progressFor } from "./stats.js";
import type { IngestTargetKind } from "./ingest-target.js";
import { deleteQueueKeys } from "./app-stack.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULT_FILE = join(ROOT, ".cache", "bench", "ingest-latest.json");
const TARGET_SCRIPT = join(ROOT, "bench", "ingest-target.ts");
const READY_TIMEOUT_MS = 60_000;
const TARGETS = { appOverProbotMin: 1.2 };

const LABELS: Record<IngestTargetKind, string> = {
  ceiling: "ceiling: @octokit/webhooks verify + 200",
  probot: "plain Probot, no-op issue_comment handler",
  app: "app web tier (verify, dedupe + record in PG, enqueue, 202)",
};
const ORDER: IngestTargetKind[] = ["ceiling", "probot", "app"];

export interface IngestRow {
  key: IngestTargetKind;
  label: string;
  requests: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Wall time of the timed runs, added up. */
  seconds: number;
  /** Timed requests ÷ wall time of the timed runs. */
  perSecond: number;
  /** Deliveries/s of each round. */
  roundsPerSecond: number[];
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

export type { TargetCheck };

export interface IngestResult {
  benchmark: "ingest";
  date: string;
  /** Load averages (1, 5, 15 min) before and after: the machine may be shared. */
  environment: { node: string; cpus: number; loadBefore: number[]; loadAfter: number[] };
  settings: { count: number; warmup: number; connections: number; rounds: number; payloadBytes: number; logLevel: string; client: string };
  rows: IngestRow[];
  ratios: { appOverProbot: number; appOverCeiling: number; probotOverCeiling: number; appOverProbotPerRound: number[] };
  /** What the app's run left behind: one row in `deliveries` and one queued job per request. */
  verification: { requestsToApp: number; deliveriesRecorded: number; jobsQueued: number; ok: boolean };
  /** Figures without a target, for the summary of bench/run.ts. */
  headlines: Array<{ name: string; measured: string }>;
  targets: TargetCheck[];
}

const progress = progressFor("ingest");


/** A 127.0.0.1 port nothing listens on (bound, then released): where "GitHub" is, so no call can leave. */
export async function unusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Only what a server needs from this environment, so a developer's .env or shell cannot leak in. */
export function baseEnv(): NodeJS.ProcessEnv {
  const keep = ["PATH", "HOME", "TMPDIR", "LANG", "TZ"];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
}

export function generatePrivateKey(): string {
  return generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  }).privateKey;
}

interface Target {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

async function startTarget(kind: IngestTargetKind, env: NodeJS.ProcessEnv): Promise<Target> {
  const child = fork(TARGET_SCRIPT, [kind], { cwd: ROOT, env, execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = once(child, "exit").then(([code]) => {
    throw new Error(`ingest target ${kind} exited (code ${String(code)}) before it was ready`);
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`ingest target ${kind} not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)));
  try {
    const [msg] = (await Promise.race([once(child, "message"), exited, timeout])) as [{ port: number }];
    return {
      child,
      port: msg.port,
      async stop() {
        if (child.exitCode !== null) return;
        const gone = once(child, "exit");
        child.send("stop");
        const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await gone;
        clearTimeout(t);
      },
    };
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  } finally {
    clearTimeout(timer);
    exited.catch(() => {});
  }
}

interface LoadOutcome {
  latencies: number[];
  seconds: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

/** `amount` POSTs of the same signed body, each with a fresh delivery id, `connections` at a time. */
async function load(port: number, body: string, signature: string, amount: number, connections: number): Promise<LoadOutcome> {
  const latencies: number[] = [];
  let ok2xx = 0;
  let non2xx = 0;
  let settle!: { resolve(r: autocannon.Result): void; reject(e: unknown): void };
  const done = new Promise<autocannon.Result>((resolve, reject) => (settle = { resolve, reject }));
  const started = performance.now();
  const instance = autocannon({
    url: `http://127.0.0.1:${port}${WEBHOOK_PATH}`,
    connections,
    amount,
    timeout: 30,
    requests: [
      {
        method: "POST",
        path: WEBHOOK_PATH,
        headers: {
          "content-type": "application/json",
          "user-agent": "GitHub-Hookshot/bench",
          "x-github-event": "issue_comment",
          "x-hub-signature-256": signature,
        },
        body,
        // Rebuilt per request: a unique X-GitHub-Delivery, as GitHub sends.
        setupRequest: (req) => ({ ...req, headers: { ...req.headers, "x-github-delivery": randomUUID() } }),
      },
    ],
  }, (err, result) => (err ? settle.reject(err) : settle.resolve(result)));
  // autocannon notices that `amount` is reached on its 1-second tick: the wall time is taken
  // from the start to the last response instead.
  let last = started;
  instance.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    last = performance.now();
    if (statusCode >= 200 && statusCode < 300) {
      ok2xx++;
      latencies.push(responseTime);
    } else non2xx++;
  });
  const result = await done;
  const seconds = (last - started) / 1000;
  return { latencies, seconds, ok2xx, non2xx, errors: result.errors, timeouts: result.timeouts };
}

export async function benchIngest(opts: { count?: number; warmup?: number; connections?: number; rounds?: number } = {}): Promise<IngestResult> {
  const count = opts.count ?? intFromEnv("BENCH_INGEST_COUNT", 3000);
  const rounds = Math.min(count, opts.rounds ?? intFromEnv("BENCH_INGEST_ROUNDS", 3));
  const warmup = opts.warmup ?? intFromEnv("BENCH_INGEST_WARMUP", 500);
  const connections = opts.connections ?? intFromEnv("BENCH_INGEST_CONNECTIONS", 32);
  const logLevel = process.env.BENCH_INGEST_LOG_LEVEL ?? "info";

  const payload = issueCommentPayload({ repo: "octo-org/infra", cloneUrl: "https://github.com/octo-org/infra.git", prNumber: 7, body: "/agent preview", commentId: 1001 });
  const body = JSON.stringify(payload);
  const signature = await sign(body);

  progress("creating a migrated database");
  const db = await migratedTestDb("bench_ingest");
  const prefix = `bench${randomBytes(4).toString("hex")}`;
  const githubPort = await unusedPort();
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(),
    APP_ID: "12345",
    PRIVATE_KEY: generatePrivateKey(),
    WEBHOOK_SECRET,
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: prefix,
    GHE_HOST: `127.0.0.1:${githubPort}`,
    GHE_PROTOCOL: "http",
    GITHUB_API_URL: `http://127.0.0.1:${githubPort}/api/v3`,
    LOG_LEVEL: logLevel as NodeJS.ProcessEnv["LOG_LEVEL"],
  };

  const rows: IngestRow[] = [];
  let verification: IngestResult["verification"] = { requestsToApp: 0, deliveriesRecorded: 0, jobsQueued: 0, ok: false };
  const loadBefore = loadavg();
  const servers = new Map<IngestTargetKind, Target>();
  try {
    for (const kind of ORDER) {
      progress(`${kind}: starting`);
      servers.set(kind, await startTarget(kind, env));
    }
    for (const kind of ORDER) {
      progress(`${kind}: warm-up, ${warmup} requests`);
      const w = await load(servers.get(kind)!.port, body, signature, warmup, connections);
      if (w.ok2xx !== warmup) throw new Error(`${kind}: warm-up got ${w.ok2xx}/${warmup} 2xx (${w.non2xx} other, ${w.errors} errors)`);
    }
    // Interleaved rounds, the order rotated each time: a burst of load from elsewhere on the
    // machine falls on every target alike rather than on whichever ran then.
    const perRound = Array.from({ length: rounds }, (_, i) => Math.floor(count / rounds) + (i < count % rounds ? 1 : 0));
    const outcomes = new Map<IngestTargetKind, LoadOutcome[]>(ORDER.map((k) => [k, []]));
    for (let round = 0; round < rounds; round++) {
      const order = ORDER.map((_, i) => ORDER[(i + round) % ORDER.length]!);
      for (const kind of order) {
        progress(`round ${round + 1}/${rounds}: ${kind}, ${perRound[round]} timed requests, ${connections} connections`);
        outcomes.get(kind)!.push(await load(servers.get(kind)!.port, body, signature, perRound[round]!, connections));
      }
    }
    for (const kind of ORDER) {
      const runs = outcomes.get(kind)!;
      const sorted = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
      const seconds = runs.reduce((s, r) => s + r.seconds, 0);
      rows.push({
        key: kind,
        label: LABELS[kind],
        requests: count,
        ok2xx: runs.reduce((s, r) => s + r.ok2xx, 0),
        non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
        errors: runs.reduce((s, r) => s + r.errors, 0),
        timeouts: runs.reduce((s, r) => s + r.timeouts, 0),
        seconds,
        perSecond: count / seconds,
        roundsPerSecond: runs.map((r, i) => perRound[i]! / r.seconds),
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        meanMs: sorted.reduce((s, x) => s + x, 0) / (sorted.length || 1),
        maxMs: sorted[sorted.length - 1] ?? NaN,
      });
    }
    const { rows: c } = await db.db.query<{ n: string }>("SELECT count(*)::text AS n FROM deliveries");
    // BullMQ leaves a connection it was given open: quit it here.
    const connection = createRedis(TEST_REDIS_URL);
    const queue = new Queue(WEBHOOK_QUEUE, { connection, prefix });
    const jobs = await queue.getJobCountByTypes("waiting", "active", "delayed", "prioritized", "completed", "failed");
    await queue.close();
    await connection.quit();
    const requestsToApp = warmup + count;
    verification = { requestsToApp, deliveriesRecorded: Number(c[0]!.n), jobsQueued: jobs, ok: Number(c[0]!.n) === requestsToApp && jobs === requestsToApp };
  } finally {
    await Promise.all([...servers.values()].map((t) => t.stop()));
    await db.drop().catch((err: unknown) => progress(`could not drop the database: ${(err as Error).message}`));
    await deleteQueueKeys(prefix);
  }

  const row = (k: IngestTargetKind) => rows.find((r) => r.key === k)!;
  const ratios = {
    appOverProbot: row("app").perSecond / row("probot").perSecond,
    appOverCeiling: row("app").perSecond / row("ceiling").perSecond,
    probotOverCeiling: row("probot").perSecond / row("ceiling").perSecond,
    appOverProbotPerRound: row("app").roundsPerSecond.map((x, i) => x / row("probot").roundsPerSecond[i]!),
  };
  const targets: TargetCheck[] = [
    { name: "ingest: app ÷ probot deliveries/s", measured: `${fmt(ratios.appOverProbot, 2)}×`, limit: `≥ ${fmt(TARGETS.appOverProbotMin, 1)}×`, pass: ratios.appOverProbot >= TARGETS.appOverProbotMin },
    {
      name: "ingest: every app delivery recorded and queued",
      measured: `${verification.deliveriesRecorded} rows, ${verification.jobsQueued} jobs`,
      limit: `${verification.requestsToApp} each`,
      pass: verification.ok,
    },
    ...rows.map((r) => ({ name: `ingest: ${r.key} requests answered 2xx`, measured: `${r.ok2xx}/${r.requests}`, limit: `${r.requests}/${r.requests}`, pass: r.ok2xx === r.requests })),
  ];

  const result: IngestResult = {
    benchmark: "ingest",
    date: new Date().toISOString(),
    environment: { node: process.version, cpus: availableParallelism(), loadBefore, loadAfter: loadavg() },
    settings: { count, warmup, connections, rounds, payloadBytes: Buffer.byteLength(body), logLevel, client: "autocannon (in the bench process; each server in its own process)" },
    rows,
    ratios,
    verification,
    headlines: [
      ...rows.map((r) => ({ name: `ingest: ${r.key} deliveries/s (p50 / p99)`, measured: `${fmt(r.perSecond, 0)}/s (${fmt(r.p50Ms, 1)} / ${fmt(r.p99Ms, 1)} ms)` })),
      { name: "ingest: app ÷ ceiling deliveries/s", measured: `${fmt(ratios.appOverCeiling, 2)}×` },
    ],
    targets,
  };

  const out: string[] = [];
  out.push(`## ingest — signed issue_comment.created (${result.settings.payloadBytes} bytes), ${count} timed requests per target (${rounds} interleaved rounds) after ${warmup} warm-up, ${connections} connections, unique delivery ids, log level ${logLevel}`);
  out.push("");
  out.push("| target | deliveries/s | per round | p50 ms | p99 ms | mean ms | max ms | 2xx | errors |");
  out.push("|---|---:|---|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    out.push(`| ${r.label} | ${fmt(r.perSecond, 0)} | ${r.roundsPerSecond.map((x) => fmt(x, 0)).join(", ")} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.meanMs, 2)} | ${fmt(r.maxMs, 1)} | ${r.ok2xx}/${r.requests} | ${r.errors + r.timeouts} |`);
  }
  out.push("");
  out.push(`Ratios (deliveries/s): app ÷ probot ${fmt(ratios.appOverProbot, 2)}×, app ÷ ceiling ${fmt(ratios.appOverCeiling, 2)}×, probot ÷ ceiling ${fmt(ratios.probotOverCeiling, 2)}×; app ÷ probot per round ${ratios.appOverProbotPerRound.map((x) => `${fmt(x, 2)}×`).join(", ")}`);
  out.push(`Load average (1/5/15 min): ${result.environment.loadBefore.map((x) => fmt(x, 2)).join("/")} before, ${result.environment.loadAfter.map((x) => fmt(x, 2)).join("/")} after (${result.environment.cpus} CPUs).`);
  out.push(`App run: ${verification.deliveriesRecorded} deliveries recorded, ${verification.jobsQueued} jobs queued for ${verification.requestsToApp} requests (warm-up included).`);
  out.push("");
  out.push(...targetTable(targets));
  out.push("");
  out.push(
    "Notes: each server in its own Node process (tsx), all three started before the first request; the client (autocannon) in the bench process; PostgreSQL and Redis on the same machine. " +
      "Throughput = timed requests ÷ the rounds' wall time (first request to last response) added up. " +
      "The app and Probot log at the level shown, to /dev/null. Percentiles interpolated linearly over every 2xx response; targets are informational.",
  );
  out.push(`Results JSON: ${relative(process.cwd(), RESULT_FILE) || RESULT_FILE}`);
  process.stdout.write(out.join("\n") + "\n");

  await saveResult(RESULT_FILE, result);
  return result;
}
