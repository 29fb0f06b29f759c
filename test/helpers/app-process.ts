import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Docker from "dockerode";
import { pino } from "pino";
import { startApp, type RunningApp } from "../../src/app.js";
import { loadServerConfig, type ServerConfig } from "../../src/config/server-config.js";
import { ROOT_LABEL, SANDBOX_LABEL } from "../../src/connectors/sandbox.js";
import { createRedis } from "../../src/connectors/queues.js";
import { GitHttpServer } from "./git-server.js";
import { GitHubServer } from "./github-server.js";
import { migratedTestDb, TEST_IMAGE, TEST_REDIS_URL, WEBHOOK_SECRET } from "./harness.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** One JSON log line of an app process (pino). */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

const privateKey = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
}).privateKey;

/**
 * A real app process: `node --import tsx src/main.ts` with ROLE and the given environment (the
 * way scripts/start.sh runs the built app, without the build). Its JSON log lines are kept, so
 * tests can await what it did and know which process did it.
 */
export class AppProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly events = new EventEmitter();
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  private constructor(
    readonly name: string,
    readonly role: "web" | "worker" | "all",
    private readonly child: ChildProcess,
  ) {
    this.events.setMaxListeners(100);
    let buffered = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!text.trim()) continue;
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { msg: text, raw: true };
        }
        this.lines.push(line);
        this.events.emit("line", line);
      }
    });
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => void this.stderr.push(chunk));
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        this.events.emit("exit");
        resolve(this.exitInfo);
      });
    });
  }

  static async start(name: string, role: "web" | "worker" | "all", vars: Record<string, string>, readyTimeoutMs = 45_000): Promise<AppProcess> {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/tmp",
        ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
        // Never a developer's .env: the test decides every setting.
        ENV_FILE: join(ROOT, ".env.fault-test-does-not-exist"),
        ...vars,
        ROLE: role,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const p = new AppProcess(name, role, child);
    const ready = role === "web" ? "web tier listening" : "workers started";
    try {
      await p.waitForLog((l) => l.msg === ready, `${name} to start`, readyTimeoutMs);
    } catch (err) {
      p.child.kill("SIGKILL");
      throw err;
    }
    return p;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(pred: (l: LogLine) => boolean, what = "a matching log line", timeoutMs = 45_000): Promise<LogLine> {
    const hit = this.lines.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.events.off("line", on);
        this.events.off("exit", onExit);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name}: timed out waiting for ${what}; last lines:\n${this.tail()}`));
      }, timeoutMs);
      const on = (l: LogLine) => {
        if (!pred(l)) return;
        cleanup();
        resolve(l);
      };
      const onExit = () => {
        cleanup();
        reject(new Error(`${this.name} exited (${JSON.stringify(this.exitInfo)}) while waiting for ${what}; last lines:\n${this.tail()}`));
      };
      this.events.on("line", on);
      this.events.on("exit", onExit);
    });
  }

  /** The last log lines and stderr, for failure messages. */
  tail(n = 15): string {
    const out = this.lines.slice(-n).map((l) => JSON.stringify(l).slice(0, 400));
    const err = this.stderr.join("").slice(-2000);
    return [...out, ...(err ? [`stderr: ${err}`] : [])].join("\n");
  }

  /** SIGKILL: no shutdown code runs, as when a machine or container dies. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM (graceful stop), then SIGKILL if it has not exited within `timeoutMs`. */
  async stop(timeoutMs = 20_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Sandbox containers (running or not) labelled with `workspaceRoot` (ROOT_LABEL): this test's, no one else's. */
export async function sandboxesUnder(workspaceRoot: string, docker: Docker = new Docker()): Promise<Array<{ id: string; owner: string; state: string }>> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${ROOT_LABEL}=${resolve(workspaceRoot)}`] } });
  return list.map((c) => ({ id: c.Id, owner: c.Labels[`${SANDBOX_LABEL}.owner`] ?? "", state: c.State }));
}

/** Polls `check` every `intervalMs` until it returns a value that is not undefined/false, or the deadline passes. */
export async function until<T>(check: () => Promise<T | undefined | false | null>, what: string, timeoutMs = 30_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface FaultFixture {
  gh: GitHubServer;
  git: GitHttpServer;
  db: Awaited<ReturnType<typeof migratedTestDb>>["db"];
  databaseUrl: string;
  queuePrefix: string;
  workspaceRoot: string;
  /** The environment every app of this fixture runs with (without ROLE). */
  vars: Record<string, string>;
  /** The web tier, in this process (role web). */
  web: RunningApp;
  workers: AppProcess[];
  /** Starts one more worker process. */
  startWorker(name?: string): Promise<AppProcess>;
  /** Stops everything, removes leftover containers, the queue keys, the database and workspaces. */
  stop(): Promise<void>;
}

/**
 * A web tier in this process and `workers` real worker processes on one fresh database, one
 * unique BullMQ prefix, a GitHub stand-in over HTTP and a local git server. `env` adds to (or
 * overrides) the apps' environment.
 */
export async function startFaultFixture(opts: { repo: string; token: string; workers: number; env?: Record<string, string>; redisUrl?: string }): Promise<FaultFixture> {
  const suffix = randomBytes(4).toString("hex");
  const database = await migratedTestDb("fault");
  const workspaceRoot = await mkdtemp(join(tmpdir(), "agent-ws-"));
  const gh = await GitHubServer.start(opts.repo, opts.token);
  const git = await GitHttpServer.start(opts.token);
  const queuePrefix = `f${suffix}`;
  const redisUrl = opts.redisUrl ?? TEST_REDIS_URL;
  const vars: Record<string, string> = {
    HOST: "127.0.0.1",
    PORT: "0",
    APP_ID: "12345",
    PRIVATE_KEY: privateKey,
    WEBHOOK_SECRET,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: queuePrefix,
    DATABASE_URL: database.url,
    SANDBOX_IMAGE: TEST_IMAGE,
    SANDBOX_WORKSPACE_ROOT: workspaceRoot,
    SANDBOX_MEMORY_MB: "256",
    SANDBOX_TIMEOUT_SECONDS: "120",
    SANDBOX_POOL_SIZE: "0",
    SANDBOX_REAP_INTERVAL_SECONDS: "2",
    CHECK_RUN_UPDATE_INTERVAL_MS: "5000",
    SHUTDOWN_GRACE_SECONDS: "10",
    WORKER_LOCK_SECONDS: "5",
    WORKER_STALLED_INTERVAL_SECONDS: "2",
    DRIFT_SYNC_ON_START: "false",
    REVIEW_REAP_ON_START: "false",
    LOG_LEVEL: "info",
    ...gh.env,
    ...opts.env,
  };
  const workers: AppProcess[] = [];
  let web: RunningApp | null = null;
  const f: FaultFixture = {
    gh,
    git,
    db: database.db,
    databaseUrl: database.url,
    queuePrefix,
    workspaceRoot,
    vars,
    get web() {
      return web!;
    },
    workers,
    async startWorker(name = `worker-${workers.length + 1}`) {
      const w = await AppProcess.start(name, "worker", vars);
      workers.push(w);
      return w;
    },
    async stop() {
      // FAULT_DEBUG=1: each process's log, to see what a failing test's processes did.
      if (process.env.FAULT_DEBUG) for (const w of workers) console.info(`--- ${w.name} ---\n${w.tail(10_000)}`);
      await Promise.all(workers.map((w) => w.stop().catch(() => {})));
      await web?.stop().catch(() => {});
      for (const c of await sandboxesUnder(workspaceRoot).catch(() => [])) {
        await new Docker().getContainer(c.id).remove({ force: true, v: true }).catch(() => {});
      }
      await gh.stop();
      await git.stop();
      const redis = createRedis(redisUrl);
      const keys = await redis.keys(`${queuePrefix}:*`).catch(() => [] as string[]);
      if (keys.length) await redis.del(...keys).catch(() => {});
      redis.disconnect();
      await database.drop();
      await rm(workspaceRoot, { recursive: true, force: true });
    },
  };
  try {
    const level = (process.env.TEST_LOG_LEVEL ?? "silent") as ServerConfig["logLevel"];
    web = await startApp(loadServerConfig({ ...vars, ROLE: "web", LOG_LEVEL: level }), { log: pino({ level }) });
    // The processes start in parallel: each pays tsx's start-up once.
    const started = await Promise.allSettled(Array.from({ length: opts.workers }, (_, i) => AppProcess.start(`worker-${i + 1}`, "worker", vars)));
    for (const s of started) if (s.status === "fulfilled") workers.push(s.value);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
  } catch (err) {
    await f.stop();
    throw err;
  }
  return f;
}
