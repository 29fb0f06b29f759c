import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Webhooks } from "@octokit/webhooks";
import { Job, Queue, QueueEvents } from "bullmq";
import Docker from "dockerode";
import nock from "nock";
import pg from "pg";
import { pino } from "pino";
import { ProbotOctokit } from "probot";
import { startApp, type AppOptions, type RunningApp } from "../../src/app.js";
import { loadServerConfig, type ServerConfig } from "../../src/config/server-config.js";
import { ROOT_LABEL } from "../../src/connectors/sandbox.js";
import { createRedis, jobIdFrom, WEBHOOK_QUEUE } from "../../src/connectors/queues.js";
import { GitHttpServer } from "./git-server.js";

export const TEST_DB_BASE = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const TEST_IMAGE = process.env.SANDBOX_TEST_IMAGE ?? "agent-sandbox:test";
export const WEBHOOK_SECRET = "test-webhook-secret-not-for-production";
export const INSTALLATION_ID = 4242;

const privateKey = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
}).privateKey;

/** Only loopback traffic leaves the process; GitHub is answered by nock. */
export function isolateNetwork(): void {
  nock.disableNetConnect();
  nock.enableNetConnect((host) => /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(host));
}

export interface TestEnv {
  config: ServerConfig;
  databaseUrl: string;
  queuePrefix: string;
  workspaceRoot: string;
}

export async function makeTestEnv(overrides: Record<string, string> = {}): Promise<TestEnv> {
  const suffix = randomBytes(4).toString("hex");
  const url = new URL(TEST_DB_BASE);
  url.pathname = `/agent_t_${suffix}`;
  const workspaceRoot = await mkdtemp(join(tmpdir(), "agent-ws-"));
  const queuePrefix = `t${suffix}`;
  const config = loadServerConfig({
    ROLE: "all",
    HOST: "127.0.0.1",
    PORT: "0",
    APP_ID: "12345",
    PRIVATE_KEY: privateKey,
    WEBHOOK_SECRET,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    DATABASE_URL: url.toString(),
    SANDBOX_IMAGE: TEST_IMAGE,
    SANDBOX_WORKSPACE_ROOT: workspaceRoot,
    SANDBOX_MEMORY_MB: "256",
    SANDBOX_TIMEOUT_SECONDS: "120",
    CHECK_RUN_UPDATE_INTERVAL_MS: "0",
    // Tests wait for the sticky comment's last state; its spacing has tests of its own.
    STICKY_UPDATE_INTERVAL_MS: "0",
    // GitHub is a stand-in: the outbox sends without pacing (the pacing has tests of its own).
    GITHUB_WRITES_PER_SECOND: "0",
    // Start-up reads every installed repository's config; a test that wants it says so.
    DRIFT_SYNC_ON_START: "false",
    REVIEW_REAP_ON_START: "false",
    SHUTDOWN_GRACE_SECONDS: "30",
    LOG_LEVEL: (process.env.TEST_LOG_LEVEL ?? "silent") as ServerConfig["logLevel"],
    ...overrides,
  });
  return { config, databaseUrl: url.toString(), queuePrefix, workspaceRoot };
}

/**
 * Probot's Octokit without retries or write throttling (1 write/s, right for GitHub, slow for
 * tests), so each nock reply is seen exactly once. The function form is needed: Probot's own
 * defaults layer would override an object.
 */
export const TestOctokit = ProbotOctokit.defaults((o: Record<string, any>) => ({
  ...o,
  retry: { enabled: false },
  throttle: { ...o.throttle, enabled: false },
}));

/**
 * Starts the real app in-process. With `logs`, every JSON log line is also collected there
 * (at info level), so tests can assert what was logged.
 */
export async function startTestApp(
  env: TestEnv,
  role: "web" | "worker" | "all" = "all",
  logs?: string[],
  extra: Pick<AppOptions, "credentials"> = {},
): Promise<RunningApp> {
  const log = logs
    ? pino({ level: "info" }, { write: (line: string) => void logs.push(line) })
    : pino({ level: env.config.logLevel });
  return startApp({ ...env.config, role }, { Octokit: TestOctokit, log, ...extra });
}

/** Drops the test database and the queue keys; checks no sandbox container was left behind. */
export async function destroyTestEnv(env: TestEnv): Promise<void> {
  const admin = new pg.Client({ connectionString: TEST_DB_BASE });
  await admin.connect();
  const name = new URL(env.databaseUrl).pathname.slice(1);
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
  const redis = createRedis(TEST_REDIS_URL);
  const keys = await redis.keys(`${env.queuePrefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await rm(env.workspaceRoot, { recursive: true, force: true });
}

/**
 * This test's sandbox containers (labelled with its apps' workspace roots) that exist but are
 * not idle in a warm pool: task leftovers. Another app sharing the engine is not counted.
 */
export async function leftoverSandboxes(...apps: RunningApp[]): Promise<number> {
  await Promise.all(apps.map((a) => a.deps.sandboxes.settled()));
  const idle = new Set(apps.flatMap((a) => a.deps.sandboxes.idleIds));
  const roots = [...new Set(apps.map((a) => resolve(a.deps.config.sandbox.workspaceRoot)))];
  const docker = new Docker();
  const lists = await Promise.all(roots.map((root) => docker.listContainers({ all: true, filters: { label: [`${ROOT_LABEL}=${root}`] } })));
  return lists.flat().filter((c) => !idle.has(c.Id)).length;
}

export async function sign(body: string): Promise<string> {
  return new Webhooks({ secret: WEBHOOK_SECRET }).sign(body);
}

export interface Delivery {
  status: number;
  json: Record<string, unknown>;
  id: string;
}

/** Posts a webhook the way GitHub does: JSON body, event and delivery headers, HMAC-SHA256 signature. */
export async function deliver(
  port: number,
  event: string,
  payload: unknown,
  opts: { id?: string; signature?: string | null } = {},
): Promise<Delivery> {
  const id = opts.id ?? randomUUID();
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "GitHub-Hookshot/test",
    "x-github-event": event,
    "x-github-delivery": id,
  };
  const signature = opts.signature === undefined ? await sign(body) : opts.signature;
  if (signature !== null) headers["x-hub-signature-256"] = signature;
  const res = await fetch(`http://127.0.0.1:${port}/api/github/webhooks`, { method: "POST", headers, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, id };
}

/**
 * Resolves when the worker has finished handling a delivery (the event, not a sleep) and the
 * GitHub writes it left in the outbox have been sent (the app's sender says it is idle).
 */
export class DeliveryWatcher {
  private readonly events: QueueEvents;
  private readonly queue: Queue;
  private constructor(
    env: TestEnv,
    private readonly outboxIdle: () => Promise<void>,
  ) {
    this.events = new QueueEvents(WEBHOOK_QUEUE, { connection: createRedis(TEST_REDIS_URL), prefix: env.queuePrefix });
    this.queue = new Queue(WEBHOOK_QUEUE, { connection: createRedis(TEST_REDIS_URL), prefix: env.queuePrefix });
  }
  static async start(env: TestEnv, outboxIdle: () => Promise<void> = async () => {}): Promise<DeliveryWatcher> {
    const w = new DeliveryWatcher(env, outboxIdle);
    await w.events.waitUntilReady();
    return w;
  }
  async handled(deliveryId: string, timeoutMs = 45_000): Promise<void> {
    await this.jobFinished(jobIdFrom(["wh", deliveryId]), timeoutMs);
  }
  /** The same for any webhook-queue job by its id (a delivery's job run again under another id). */
  async jobFinished(jobId: string, timeoutMs = 45_000): Promise<void> {
    const job = await Job.fromId(this.queue, jobId);
    if (!job) throw new Error(`job ${jobId} was not enqueued`);
    // Subscribes first, then checks the job's state: no race with a job that already finished.
    await job.waitUntilFinished(this.events, timeoutMs);
    await this.outboxIdle();
  }
  async close(): Promise<void> {
    await this.queue.close();
    await this.events.close();
  }
}

const require = createRequire(import.meta.url);
type Example = { name: string; examples: Array<Record<string, any>> };

/**
 * An `issue_comment.created` payload on a pull request, started from
 * @octokit/webhooks-examples and adapted the way GitHub fills it for a PR comment from an
 * installed app's repository.
 */
export function issueCommentPayload(opts: {
  repo: string;
  cloneUrl: string;
  prNumber: number;
  body: string;
  login?: string;
  userType?: "User" | "Bot";
  commentId?: number;
  onPullRequest?: boolean;
  /** The comment's `created_at` (default: now): what `/approve` and `/agent ok-to-test` bind to. */
  createdAt?: Date;
}): Record<string, any> {
  const all = require("@octokit/webhooks-examples/api.github.com/index.json") as Example[];
  const base = all.find((e) => e.name === "issue_comment")!.examples.find((e) => e.action === "created")!;
  const p = structuredClone(base);
  const [owner, name] = opts.repo.split("/") as [string, string];
  const login = opts.login ?? "alice";
  const user = { ...p.comment.user, login, type: opts.userType ?? "User", id: 9000 + login.length };
  p.repository = {
    ...p.repository,
    name,
    full_name: opts.repo,
    owner: { ...p.repository.owner, login: owner },
    clone_url: opts.cloneUrl,
    default_branch: "main",
  };
  p.issue = { ...p.issue, number: opts.prNumber };
  if (opts.onPullRequest !== false) {
    p.issue.pull_request = {
      url: `https://api.github.com/repos/${opts.repo}/pulls/${opts.prNumber}`,
      html_url: `https://github.com/${opts.repo}/pull/${opts.prNumber}`,
      diff_url: `https://github.com/${opts.repo}/pull/${opts.prNumber}.diff`,
      patch_url: `https://github.com/${opts.repo}/pull/${opts.prNumber}.patch`,
      merged_at: null,
    };
  }
  const createdAt = (opts.createdAt ?? new Date()).toISOString();
  p.comment = { ...p.comment, id: opts.commentId ?? Math.floor(Math.random() * 1e9), body: opts.body, user, created_at: createdAt, updated_at: createdAt };
  p.sender = user;
  p.installation = { id: INSTALLATION_ID, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg==" };
  return p;
}

/** A `pull_request` payload from @octokit/webhooks-examples, pointed at a test repo, PR and head commit. */
export function pullRequestPayload(
  action: "closed" | "synchronize" | "opened" | "reopened",
  opts: { repo: string; prNumber: number; merged?: boolean; sender?: string; headSha?: string; author?: string; headRepo?: string; updatedAt?: Date },
): Record<string, any> {
  const all = require("@octokit/webhooks-examples/api.github.com/index.json") as Example[];
  const p = structuredClone(all.find((e) => e.name === "pull_request")!.examples.find((e) => e.action === action)!);
  const [owner, name] = opts.repo.split("/") as [string, string];
  p.number = opts.prNumber;
  const repository = { ...p.repository, name, full_name: opts.repo, owner: { ...p.repository.owner, login: owner }, default_branch: "main" };
  p.pull_request = {
    ...p.pull_request,
    number: opts.prNumber,
    merged: opts.merged ?? false,
    state: action === "closed" ? "closed" : "open",
    user: { ...p.pull_request.user, login: opts.author ?? "octocat", type: "User" },
    head: { ...p.pull_request.head, sha: opts.headSha ?? p.pull_request.head.sha, repo: { ...repository, full_name: opts.headRepo ?? opts.repo } },
    base: { ...p.pull_request.base, ref: "main", repo: repository },
    // GitHub's time of the event (a push's time for `synchronize`); default now.
    updated_at: (opts.updatedAt ?? new Date()).toISOString(),
  };
  p.repository = repository;
  p.installation = { id: INSTALLATION_ID, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg==" };
  p.sender = { ...p.sender, login: opts.sender ?? "octocat", type: "User" };
  return p;
}

/** A `merge_group` payload (GitHub's merge queue) from @octokit/webhooks-examples, pointed at a test repo and group commit. */
export function mergeGroupPayload(
  action: "checks_requested" | "destroyed",
  opts: { repo: string; cloneUrl: string; headSha: string; baseSha: string; prNumber: number; reason?: "merged" | "invalidated" | "dequeued" },
): Record<string, any> {
  const all = require("@octokit/webhooks-examples/api.github.com/index.json") as Example[];
  const examples = all.find((e) => e.name === "merge_group")!.examples;
  const p = structuredClone(examples.find((e) => e.action === action) ?? examples[0]!);
  p.action = action;
  const [owner, name] = opts.repo.split("/") as [string, string];
  p.repository = { ...p.repository, name, full_name: opts.repo, owner: { ...p.repository.owner, login: owner }, clone_url: opts.cloneUrl, default_branch: "main" };
  p.merge_group = {
    ...p.merge_group,
    head_sha: opts.headSha,
    head_ref: `refs/heads/gh-readonly-queue/main/pr-${opts.prNumber}-${opts.baseSha}`,
    base_sha: opts.baseSha,
    base_ref: "refs/heads/main",
    head_commit: { ...p.merge_group.head_commit, id: opts.headSha, message: `Merge pull request #${opts.prNumber}` },
  };
  if (action === "destroyed") p.reason = opts.reason ?? "dequeued";
  p.installation = { id: INSTALLATION_ID, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg==" };
  return p;
}

/** A `push` to the default branch from @octokit/webhooks-examples (a merge group landing, say). */
export function pushPayload(opts: { repo: string; cloneUrl: string; before: string; after: string }): Record<string, any> {
  const all = require("@octokit/webhooks-examples/api.github.com/index.json") as Example[];
  const p = structuredClone(all.find((e) => e.name === "push")!.examples[0]!);
  const [owner, name] = opts.repo.split("/") as [string, string];
  p.ref = "refs/heads/main";
  p.before = opts.before;
  p.after = opts.after;
  p.deleted = false;
  p.commits = [];
  p.repository = { ...p.repository, name, full_name: opts.repo, owner: { ...p.repository.owner, login: owner, name: owner }, clone_url: opts.cloneUrl, default_branch: "main", master_branch: "main" };
  p.installation = { id: INSTALLATION_ID, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg==" };
  return p;
}

/**
 * A `deployment_protection_rule.requested` payload (GitHub asks a custom protection rule app).
 * @octokit/webhooks-examples has none: built to the documented schema
 * (@octokit/openapi-webhooks-types `webhook-deployment-protection-rule-requested`), with the
 * `deployment`, `repository` and `sender` objects taken from its `deployment.created` example.
 */
export function deploymentProtectionRulePayload(opts: { repo: string; environment: string; runId: number; sha: string; pullRequests: Array<{ number: number; headSha: string }> }): Record<string, any> {
  const all = require("@octokit/webhooks-examples/api.github.com/index.json") as Example[];
  const base = structuredClone(all.find((e) => e.name === "deployment")!.examples[0]!);
  const [owner, name] = opts.repo.split("/") as [string, string];
  const repository = { ...base.repository, name, full_name: opts.repo, owner: { ...base.repository.owner, login: owner }, default_branch: "main" };
  return {
    action: "requested",
    environment: opts.environment,
    event: "pull_request",
    deployment_callback_url: `https://api.github.com/repos/${opts.repo}/actions/runs/${opts.runId}/deployment_protection_rule`,
    deployment: { ...base.deployment, sha: opts.sha, ref: "feature", environment: opts.environment, original_environment: opts.environment },
    pull_requests: opts.pullRequests.map((p) => ({ url: `https://api.github.com/repos/${opts.repo}/pulls/${p.number}`, id: p.number, number: p.number, state: "open", head: { sha: p.headSha, ref: "feature", repo: repository }, base: { sha: "0".repeat(40), ref: "main", repo: repository } })),
    repository,
    sender: base.sender,
    installation: { id: INSTALLATION_ID, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg==" },
  };
}

/** A `check_run.requested_action` payload (a click on one of our check run's buttons). */
export function checkRunActionPayload(opts: { repo: string; cloneUrl: string; checkRunId: number; taskId: string; headSha: string; identifier: string; sender: string }): Record<string, any> {
  const all = require("@octokit/webhooks-examples/api.github.com/index.json") as Example[];
  const p = structuredClone(all.find((e) => e.name === "check_run")!.examples.find((e) => e.action === "requested_action")!);
  const [owner, name] = opts.repo.split("/") as [string, string];
  p.repository = { ...p.repository, name, full_name: opts.repo, owner: { ...p.repository.owner, login: owner }, clone_url: opts.cloneUrl, default_branch: "main" };
  p.check_run = { ...p.check_run, id: opts.checkRunId, head_sha: opts.headSha, external_id: opts.taskId };
  p.requested_action = { identifier: opts.identifier };
  p.sender = { ...p.sender, login: opts.sender, type: "User" };
  p.installation = { id: INSTALLATION_ID, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg==" };
  return p;
}

/** Everything an end-to-end test file needs: the running app on a fresh database and queue prefix, a git server, a delivery watcher and a database client. */
export interface AppFixture {
  env: TestEnv;
  app: RunningApp;
  git: GitHttpServer;
  watcher: DeliveryWatcher;
  db: pg.Client;
  stop(): Promise<void>;
}

export async function startAppFixture(
  token: string,
  opts: { env?: Record<string, string>; logs?: string[]; credentials?: AppOptions["credentials"] } = {},
): Promise<AppFixture> {
  isolateNetwork();
  const env = await makeTestEnv(opts.env);
  const git = await GitHttpServer.start(token);
  const app = await startTestApp(env, "all", opts.logs, opts.credentials ? { credentials: opts.credentials } : {});
  const watcher = await DeliveryWatcher.start(env, () => app.deps.writes.idle());
  const db = new pg.Client({ connectionString: env.databaseUrl });
  await db.connect();
  return {
    env,
    app,
    git,
    watcher,
    db,
    async stop() {
      await db.end();
      await watcher.close();
      await app.stop();
      await git.stop();
      await destroyTestEnv(env);
    },
  };
}

/** A new database of its own, migrated; `drop()` closes the pool and removes the database. */
export async function migratedTestDb(prefix: string): Promise<{ url: string; db: import("../../src/connectors/store/db.js").Db; drop(): Promise<void> }> {
  const { createDb, ensureDatabase, migrate } = await import("../../src/connectors/store/db.js");
  const u = new URL(TEST_DB_BASE);
  u.pathname = `/agent_${prefix}_${randomBytes(4).toString("hex")}`;
  const url = u.toString();
  await ensureDatabase(url);
  await migrate(url);
  const db = createDb(url);
  return {
    url,
    db,
    async drop() {
      await db.end().catch(() => {});
      const admin = new pg.Client({ connectionString: TEST_DB_BASE });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${u.pathname.slice(1)}" WITH (FORCE)`);
      await admin.end();
    },
  };
}
