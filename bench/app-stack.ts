/**
 * What bench/ack.ts, bench/pipeline.ts and bench/fanout.ts drive previews through: a fresh migrated database, a
 * unique BullMQ prefix, a workspace root of their own, GitHub's REST API as a real local HTTP
 * server (test/helpers/github-server.ts, recording every call), a local git server holding a
 * repository whose default-branch config declares one stack per PR (a successful preview takes
 * its stack's lock, so PRs must not share one), and real app processes (bench/app-target.ts)
 * pointed at all of it (GHE_HOST/GHE_PROTOCOL, as test/helpers/app-process.ts does).
 * `contentLimit` turns on the stand-in's content-creation limit (GitHub's 80 writes a minute).
 *
 * `cleanup()` stops the processes, removes every sandbox container whose workspace is under this
 * run's root, the database, the queue keys and the directories.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Docker from "dockerode";
import { createRedis } from "../src/connectors/queues.js";
import { sandboxesUnder } from "../test/helpers/app-process.js";
import { GitHttpServer } from "../test/helpers/git-server.js";
import type { ContentLimitOptions } from "../test/helpers/github-fake.js";
import { GitHubServer } from "../test/helpers/github-server.js";
import { issueCommentPayload, migratedTestDb, sign, TEST_IMAGE, TEST_REDIS_URL, WEBHOOK_SECRET } from "../test/helpers/harness.js";
import { WEBHOOK_PATH } from "../src/web/server.js";
import { baseEnv, generatePrivateKey } from "./ingest.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TARGET_SCRIPT = join(ROOT, "bench", "app-target.ts");
export const LOG_DIR = join(ROOT, ".cache", "bench", "logs");
const READY_TIMEOUT_MS = 60_000;

export const BENCH_REPO = "octo-org/bench-infra";
const TOKEN = "ghs_benchInstallationToken000000000000001";
/** The trivial step every preview runs. */
export const STEP = ["sh", "-c", "echo ok"];
export const stackName = (pr: number) => `b${pr}`;

export interface AppTarget {
  name: string;
  role: "web" | "worker" | "all";
  pid: number;
  port: number | null;
  logFile: string;
  stop(): Promise<void>;
}

export interface BenchStack {
  gh: GitHubServer;
  git: GitHttpServer;
  db: Awaited<ReturnType<typeof migratedTestDb>>["db"];
  queuePrefix: string;
  workspaceRoot: string;
  headSha: string;
  vars: Record<string, string>;
  /** Starts an app process (web, worker or all) with this stack's environment plus `env`. */
  start(name: string, role: AppTarget["role"], env?: Record<string, string>): Promise<AppTarget>;
  /** Rewrites the default branch's config to declare one stack per number in `prs` (`b<n>`; at most 500, the config's limit). */
  declareStacks(prs: number[]): void;
  /** A signed `/agent preview b<pr>` comment (or `text`) on PR `pr`, ready to post. */
  comment(pr: number, commentId: number, text?: string): Promise<{ body: string; signature: string; commentId: number }>;
  cleanup(): Promise<{ containersRemoved: number }>;
}

export async function startBenchStack(opts: { label: string; prs: number[]; env?: Record<string, string>; contentLimit?: ContentLimitOptions }): Promise<BenchStack> {
  const database = await migratedTestDb(opts.label);
  const workspaceRoot = await mkdtemp(join(tmpdir(), `agent-bench-${opts.label}-`));
  const queuePrefix = `b${opts.label}${randomBytes(4).toString("hex")}`;
  const targets: AppTarget[] = [];
  let gh: GitHubServer | null = null;
  let git: GitHttpServer | null = null;

  const cleanup = async (): Promise<{ containersRemoved: number }> => {
    await Promise.all(targets.map((t) => t.stop().catch(() => {})));
    let containersRemoved = 0;
    for (const c of await sandboxesUnder(workspaceRoot).catch(() => [])) {
      await new Docker()
        .getContainer(c.id)
        .remove({ force: true, v: true })
        .then(() => containersRemoved++)
        .catch(() => {});
    }
    await gh?.stop().catch(() => {});
    await git?.stop().catch(() => {});
    await deleteQueueKeys(queuePrefix);
    await database.drop().catch(() => {});
    await rm(workspaceRoot, { recursive: true, force: true });
    return { containersRemoved };
  };

  try {
    gh = await GitHubServer.start(BENCH_REPO, TOKEN, opts.contentLimit ? { contentLimit: opts.contentLimit } : {});
    git = await GitHttpServer.start(TOKEN);
    const declareStacks = (prs: number[]) =>
      gh!.fake.files.set("main:.github/agent.yml", ["version: 1", "stacks:", ...prs.map((n) => `  - name: ${stackName(n)}`), "steps:", `  preview: ${JSON.stringify(STEP)}`, ""].join("\n"));
    declareStacks(opts.prs.slice(0, 500));
    gh.fake.permissions.set("alice", "write");
    const headSha = await git.commit(BENCH_REPO, { "README.md": "bench\n" });
    for (const n of opts.prs) gh.fake.pulls.set(n, { headSha });
    await mkdir(LOG_DIR, { recursive: true });
    const vars: Record<string, string> = {
      ...(baseEnv() as Record<string, string>),
      ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
      HOST: "127.0.0.1",
      PORT: "0",
      APP_ID: "12345",
      PRIVATE_KEY: generatePrivateKey(),
      WEBHOOK_SECRET,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: queuePrefix,
      DATABASE_URL: database.url,
      SANDBOX_IMAGE: process.env.BENCH_IMAGE ?? TEST_IMAGE,
      SANDBOX_WORKSPACE_ROOT: workspaceRoot,
      SANDBOX_MEMORY_MB: "256",
      SANDBOX_TIMEOUT_SECONDS: "120",
      SHUTDOWN_GRACE_SECONDS: "20",
      LOG_LEVEL: "info",
      ...gh.env,
      ...opts.env,
    };
    const stack: BenchStack = {
      gh,
      git,
      db: database.db,
      queuePrefix,
      workspaceRoot,
      headSha,
      vars,
      async start(name, role, env = {}) {
        const t = await startTarget(name, role, { ...vars, ...env });
        targets.push(t);
        return t;
      },
      async comment(pr, commentId, text) {
        const payload = issueCommentPayload({ repo: BENCH_REPO, cloneUrl: git!.cloneUrl(BENCH_REPO), prNumber: pr, body: text ?? `/agent preview ${stackName(pr)}`, login: "alice", commentId });
        const body = JSON.stringify(payload);
        return { body, signature: await sign(body), commentId };
      },
      declareStacks,
      cleanup,
    };
    return stack;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function startTarget(name: string, role: AppTarget["role"], env: Record<string, string>): Promise<AppTarget> {
  const logFile = join(LOG_DIR, `${name}.log`);
  await rm(logFile, { force: true });
  const child: ChildProcess = fork(TARGET_SCRIPT, [role], {
    cwd: ROOT,
    env: { ...env, BENCH_LOG_FILE: logFile },
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = once(child, "exit").then(([code]) => {
    throw new Error(`${name} exited (code ${String(code)}) before it was ready; log: ${logFile}`);
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${name} not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)));
  try {
    const [msg] = (await Promise.race([once(child, "message"), exited, timeout])) as [{ port: number | null; pid: number }];
    return {
      name,
      role,
      pid: msg.pid,
      port: msg.port,
      logFile,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const gone = once(child, "exit");
        child.send("stop");
        const t = setTimeout(() => child.kill("SIGKILL"), 40_000);
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

/** POSTs a signed issue_comment delivery to the web tier; resolves with the status once the body is read. */
export async function postComment(port: number, c: { body: string; signature: string }, deliveryId: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${WEBHOOK_PATH}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "user-agent": "GitHub-Hookshot/bench",
      "x-github-event": "issue_comment",
      "x-github-delivery": deliveryId,
      "x-hub-signature-256": c.signature,
    },
    body: c.body,
  });
  await res.arrayBuffer();
  return res.status;
}

/** Removes every Redis key of a benchmark's queue prefix (SCAN, so a busy Redis is not blocked). */
export async function deleteQueueKeys(prefix: string): Promise<void> {
  const redis = createRedis(TEST_REDIS_URL);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

/** A bench's clean-up that never throws: a failure is reported and counted as -1 containers removed. */
export async function cleanupQuietly(stack: BenchStack, progress: (msg: string) => void): Promise<{ containersRemoved: number }> {
  return stack.cleanup().catch((err: unknown) => {
    progress(`cleanup failed: ${(err as Error).message}`);
    return { containersRemoved: -1 };
  });
}
