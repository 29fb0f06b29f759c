import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import type { BudgetLimits } from "../approval/error-budget.js";
import { TIERS } from "../approval/tiers.js";
import { loadServerPlanPolicy, type ServerPlanPolicy } from "./plan-policy-config.js";
import { slackConfigFromEnv, type SlackConfig } from "./slack-config.js";
import { diagnoseSettingsFromEnv, type DiagnoseSettings } from "./diagnose-config.js";
import { RUNTIME_NAME_RE, STACK_NAME_SOURCE } from "./fields.js";
import { describeZodIssues, issueLines } from "./issues.js";
import { EgressConfigError, parseEgressRules, type EgressAllowlist } from "../approval/egress.js";

/**
 * Server configuration, from the environment only. Everything that decides the gate or the
 * sandbox limits lives here (or on the default branch), never in the pull request
 * (invariant 2).
 */
const intFrom = (def: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(def);

/** Where the database is when DATABASE_URL is not set (the `agent` CLI uses the same default). */
export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/agent";
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
/**
 * LOG_LINK_TTL_SECONDS' default, 14 days: long enough to read the log of a PR that sat over a
 * holiday, short enough that a link pasted into a chat or a ticket stops working.
 */
export const DEFAULT_LOG_LINK_TTL_SECONDS = 14 * 86_400;

const csv = z
  .string()
  .default("")
  .transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean),
  );

export const ServerEnvSchema = z.object({
  ROLE: z.enum(["web", "worker", "all"]).default("all"),
  HOST: z.string().default("0.0.0.0"),
  /** The app's public base URL; enables links from check runs to full step logs. */
  PUBLIC_URL: z.string().url().optional(),
  PORT: intFrom(3000, 0, 65535),
  APP_ID: z.string().regex(/^\d+$/, "must be the numeric GitHub App ID").optional(),
  PRIVATE_KEY: z.string().optional(),
  PRIVATE_KEY_PATH: z.string().optional(),
  PLAN_POLICY_CONFIG: z.string().optional(),
  WEBHOOK_SECRET: z.string().min(1).optional(),
  GHE_HOST: z
    .string()
    .regex(/^[A-Za-z0-9.-]+(:\d+)?$/, "must be a host name, optionally with :port")
    .optional(),
  GHE_PROTOCOL: z.enum(["https", "http"]).default("https"),
  REDIS_URL: z.string().url().default(DEFAULT_REDIS_URL),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default("agent"),
  DATABASE_URL: z.string().default(DEFAULT_DATABASE_URL),
  /**
   * Bearer token for the operator endpoints: `POST /admin/break-glass` (revoke every credential
   * lease, stop queued deploys), `GET /admin/audit`, and the read-only queue dashboard
   * `/admin/queues` (also as Basic auth, user `admin`). Unset: they do not exist (404). At least 32
   * characters, e.g. `openssl rand -hex 32`; keep it out of logs and of the repository.
   */
  ADMIN_TOKEN: z.string().min(32, "must be at least 32 characters (e.g. the output of `openssl rand -hex 32`)").optional(),
  /**
   * Bearer token `GET /metrics` requires (Authorization: Bearer <token>). Unset: /metrics is
   * open, as is usual for Prometheus scraping on a private network; set it when the port is
   * reachable from elsewhere.
   */
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters (e.g. the output of `openssl rand -hex 16`)").optional(),
  /** ROLE=worker only: serve `GET /metrics` (and /healthz) on this port; web and all serve them on PORT. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  SANDBOX_IMAGE: z.string().default("agent-sandbox:test"),
  SANDBOX_ALLOWED_IMAGES: csv,
  SANDBOX_MEMORY_MB: intFrom(1024, 16, 65536),
  SANDBOX_CPUS: z.coerce.number().min(0.1).max(64).default(1),
  SANDBOX_PIDS: intFrom(256, 16, 32768),
  SANDBOX_TIMEOUT_SECONDS: intFrom(900, 1, 6 * 3600),
  SANDBOX_OUTPUT_LIMIT_BYTES: intFrom(1_048_576, 1024, 64 * 1_048_576),
  SANDBOX_WORKSPACE_ROOT: z.string().default(join(tmpdir(), "agent-workspaces")),
  SANDBOX_POOL_SIZE: intFrom(2, 0, 64),
  /** JSON: {"owner/repo:stack": ["api.pulumi.com:443", "*.amazonaws.com"]}, `*` for any repo or stack. */
  SANDBOX_EGRESS_ALLOWLIST: z.string().default("{}"),
  /** Docker `--internal` network that egress-enabled sandboxes join (the proxy is on it too). */
  SANDBOX_EGRESS_NETWORK: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/).optional(),
  SANDBOX_EGRESS_PROXY_LISTEN: z.string().default("0.0.0.0"),
  SANDBOX_EGRESS_PROXY_PORT: intFrom(3128, 0, 65535),
  /** The proxy's address as seen from the sandboxes on the internal network. */
  SANDBOX_EGRESS_PROXY_HOST: z.string().optional(),
  SANDBOX_REAP_INTERVAL_SECONDS: intFrom(60, 1, 3600),
  /** Size of a sandbox's in-memory workspace (it also counts against SANDBOX_MEMORY_MB). */
  SANDBOX_WORKSPACE_MB: intFrom(1024, 16, 65536),
  /** OCI runtime for the repository's own code (unset: the Docker engine's default, runc). */
  SANDBOX_RUNTIME: z.string().regex(RUNTIME_NAME_RE, "must be a Docker runtime name such as `runc` or `runsc`").optional(),
  /**
   * OCI runtime for untrusted code (a fork's pull request, run after a maintainer's ok): gVisor
   * by default. Registered with dockerd as `runsc` with `runtimeArgs: ["--network=none"]`.
   */
  SANDBOX_UNTRUSTED_RUNTIME: z.string().regex(RUNTIME_NAME_RE, "must be a Docker runtime name such as `runc` or `runsc`").default("runsc"),
  /** Runtimes a repository may pick for a stack (`sandbox.runtime` in .github/agent.yml). */
  SANDBOX_RUNTIMES: z
    .string()
    .default("runc,runsc")
    .transform((v) => v.split(",").map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(RUNTIME_NAME_RE, "must list Docker runtime names such as `runc,runsc`"))),
  WORKER_CONCURRENCY: intFrom(2, 1, 64),
  /**
   * How long a task job's lock lasts without being renewed (the worker renews it at half this
   * while alive). A killed worker's job is seen as stalled once the lock has lapsed.
   */
  WORKER_LOCK_SECONDS: intFrom(60, 1, 3600),
  /** How often workers look for stalled task jobs (a dead worker's) and put them back in the queue. */
  WORKER_STALLED_INTERVAL_SECONDS: intFrom(30, 1, 3600),
  /** How long a stack lock taken by a successful preview lasts without being renewed. */
  STACK_LOCK_TTL_SECONDS: intFrom(86_400, 60, 30 * 86_400),
  /** On start-up, a worker reads every installed repository's config and syncs its drift schedules ("false": only pushes do). */
  DRIFT_SYNC_ON_START: z.enum(["true", "false"], { error: "must be `true` or `false`" }).default("true"),
  /** Error budgets (seed 002): errors of any kind a stack may have within the window before its deploys lose autonomy (0: off). */
  ERROR_BUDGET_MAX_TOTAL: intFrom(8, 0, 1000),
  /** The same error (normalised message) within the window. */
  ERROR_BUDGET_MAX_SAME: intFrom(2, 0, 1000),
  /** Procedure violations (plan-integrity failures, deploys break-glass stopped) within the window. */
  ERROR_BUDGET_MAX_VIOLATIONS: intFrom(1, 0, 1000),
  ERROR_BUDGET_WINDOW_SECONDS: intFrom(7 * 86_400, 60, 90 * 86_400),
  /** A repository's budget: every stack's errors together, within the same window (0: that limit off; all 0: off). */
  ERROR_BUDGET_REPO_MAX_TOTAL: intFrom(20, 0, 10_000),
  /** The same error across the repository's stacks (a shared module failing everywhere). */
  ERROR_BUDGET_REPO_MAX_SAME: intFrom(3, 0, 10_000),
  ERROR_BUDGET_REPO_MAX_VIOLATIONS: intFrom(2, 0, 10_000),
  /** What an exhausted budget does: one more approval, from a maintainer, or no deploys at all (rollbacks always work). */
  ERROR_BUDGET_ON_EXHAUSTED: z.enum(["extra-approval", "freeze"], { error: "must be `extra-approval` or `freeze`" }).default("extra-approval"),
  /** Trust tiers' credential lifetimes in seconds, over the seed's (`executor=900,builder=1800`): a task holding credentials is stopped past its tier's. */
  TRUST_TTL_SECONDS: z
    .string()
    .regex(/^(?:(?:observer|operator|builder|executor|architect)=[1-9][0-9]{0,5})(?:,(?:observer|operator|builder|executor|architect)=[1-9][0-9]{0,5})*$/, { error: "must be like `executor=900,builder=1800` (tier=seconds, comma-separated)" })
    .optional(),
  /** How often workers check the rotated secrets' ages and rotate the due ones. */
  ROTATION_CHECK_SECONDS: intFrom(6 * 3600, 1, 7 * 86_400),
  /** How often every process checks Vault for a new version of the GitHub App key (vault.github_private_key). */
  GITHUB_KEY_CHECK_SECONDS: intFrom(60, 1, 3600),
  /** The trust tier of an actor, repository or stack no operator assigned one (`npm run agent -- tier set`); executor keeps every command and no extra approval. */
  TRUST_DEFAULT_TIER: z.enum(["observer", "operator", "builder", "executor", "architect"], { error: "must be observer, operator, builder, executor or architect" }).default("executor"),
  /** The rollout phase of a repository no operator set one for (`npm run agent -- phase set`): observe, suggest (the full human gate) or act. */
  ROLLOUT_DEFAULT_PHASE: z.enum(["observe", "suggest", "act"], { error: "must be `observe`, `suggest` or `act`" }).default("suggest"),
  /** A ceiling over every repository's `review_max_live`: live review stacks per repository. */
  REVIEW_MAX_LIVE: intFrom(20, 0, 1000),
  /** How often live review stacks are swept: expiry warnings posted, expired ones destroyed. */
  REVIEW_SWEEP_SECONDS: intFrom(300, 1, 86_400),
  /** On start-up, a worker destroys the live review stacks of pull requests that closed while it was down ("false": off). */
  REVIEW_REAP_ON_START: z.enum(["true", "false"], { error: "must be `true` or `false`" }).default("true"),
  /** How long an approval (review or `/approve`) counts. */
  APPROVAL_TTL_SECONDS: intFrom(86_400, 60, 30 * 86_400),
  /** A floor under every stack's `gate.approvals`: a repository cannot configure fewer. */
  GATE_MIN_APPROVALS: intFrom(0, 0, 10),
  /** Continuation comments the sticky comment may spill into beyond its first 65,536 characters. */
  COMMENT_MAX_CONTINUATIONS: intFrom(4, 0, 20),
  /** Least time between two updates of a PR's sticky comment; renders meanwhile merge into one (0 = no spacing). */
  STICKY_UPDATE_INTERVAL_MS: intFrom(3000, 0, 600_000),
  SHUTDOWN_GRACE_SECONDS: intFrom(30, 0, 3600),
  /** How long a progress write (a running check run, a "queued" sticky comment) waits in the outbox for a newer one to replace it. */
  CHECK_RUN_UPDATE_INTERVAL_MS: intFrom(5000, 0, 600_000),
  /** GitHub writes an installation may make at once after a quiet spell (the outbox's bucket). */
  GITHUB_WRITE_BURST: intFrom(10, 1, 1000),
  /** Steady GitHub writes per second per installation; 0 turns pacing off (a GitHub stand-in). */
  GITHUB_WRITES_PER_SECOND: intFrom(1, 0, 1000),
  /**
   * How long a `/logs/<task>` link shown on a check run, comment, deployment or in Slack works
   * (see DEFAULT_LOG_LINK_TTL_SECONDS). The PR's sticky comment gets fresh links whenever it is
   * updated. At most a year.
   */
  LOG_LINK_TTL_SECONDS: intFrom(DEFAULT_LOG_LINK_TTL_SECONDS, 60, 366 * 86_400),
  /**
   * How often Vault's `sys/health` is probed, so `/readyz` and `agent_vault_up` notice an
   * outage (sealed, standby-less, down) without waiting for a task to need a credential.
   */
  VAULT_HEALTH_INTERVAL_SECONDS: intFrom(15, 1, 3600),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
});

export type ServerEnv = z.infer<typeof ServerEnvSchema>;

export interface ServerConfig {
  role: ServerEnv["ROLE"];
  host: string;
  port: number;
  publicUrl: string | undefined;
  github: {
    appId: string | undefined;
    privateKey: string | undefined;
    webhookSecret: string | undefined;
    /** REST API base, https://api.github.com or the GHES `/api/v3` endpoint. */
    apiBaseUrl: string;
    /** Web base for links in comments: https://github.com or the GHES host. */
    webBaseUrl: string;
    /** The outbox's write budget per installation; null: unpaced. */
    writePacing: { burst: number; perSecond: number } | null;
  };
  redisUrl: string;
  queuePrefix: string;
  databaseUrl: string;
  sandbox: {
    defaultImage: string;
    allowedImages: string[];
    memoryMb: number;
    cpus: number;
    pids: number;
    timeoutSeconds: number;
    outputLimitBytes: number;
    workspaceRoot: string;
    /** Warm, started containers kept ready for the default image (0: always cold). */
    poolSize: number;
    reapIntervalSeconds: number;
    workspaceMb: number;
    /** Runtime for trusted code (undefined: the engine's default). */
    runtime: string | undefined;
    /** Runtime for untrusted code (forks): gVisor unless configured otherwise. */
    untrustedRuntime: string;
    /** Runtimes a repository's stack may ask for. */
    allowedRuntimes: string[];
    egress: {
      allowlist: EgressAllowlist;
      network: string | undefined;
      proxyListen: string;
      proxyPort: number;
      proxyHost: string | undefined;
    };
  };
  worker: {
    concurrency: number;
    shutdownGraceSeconds: number;
    checkRunUpdateIntervalMs: number;
    /** WORKER_LOCK_SECONDS: a task job's lock duration (BullMQ lockDuration). */
    lockSeconds: number;
    /** WORKER_STALLED_INTERVAL_SECONDS: how often stalled task jobs are looked for (BullMQ stalledInterval). */
    stalledIntervalSeconds: number;
  };
  locks: { ttlSeconds: number };
  /** Drift schedules: synced from every installed repository's config when a worker starts. */
  drift: { syncOnStart: boolean };
  /** Credential lifetime per trust tier (the seed's, TRUST_TTL_SECONDS over them). */
  tierTtlSeconds: Record<"observer" | "operator" | "builder" | "executor" | "architect", number>;
  /** ROTATION_CHECK_SECONDS. */
  rotationCheckSeconds: number;
  /** GITHUB_KEY_CHECK_SECONDS. */
  githubKeyCheckSeconds: number;
  /** TRUST_DEFAULT_TIER. */
  defaultTier: "observer" | "operator" | "builder" | "executor" | "architect";
  /** ROLLOUT_DEFAULT_PHASE. */
  defaultPhase: "observe" | "suggest" | "act";
  /** Error budgets; null: off (every limit 0). */
  errorBudget: BudgetLimits | null;
  /** ERROR_BUDGET_REPO_*: the repository's budget (null: off). */
  repoErrorBudget: BudgetLimits | null;
  /** Review stacks: the server's cost-guard ceiling, the sweep interval, the start-up reaper. */
  review: { maxLive: number; sweepSeconds: number; reapOnStart: boolean };
  comments: { maxContinuations: number; stickyUpdateIntervalMs: number };
  gate: { approvalTtlSeconds: number; minApprovals: number };
  /** ADMIN_TOKEN: enables `POST /admin/break-glass`, `/admin/audit` and `/admin/queues` (Authorization: Bearer <token>); null: they are off. */
  adminToken: string | null;
  /**
   * `GET /metrics`: `token` (METRICS_TOKEN) is the bearer token it requires, null: open;
   * `port` (METRICS_PORT) is where a worker-only process serves it, null: a worker serves none.
   */
  metrics: { token: string | null; port: number | null };
  /** The server's plan policy by selector (PLAN_POLICY_CONFIG); null: none. */
  planPolicy: ServerPlanPolicy | null;
  /** Slack approvals and notifications (SLACK_BOT_TOKEN, …); null: Slack is off. */
  slack: SlackConfig | null;
  /** Issue diagnostics: DIAGNOSE_CONFIG (probes, embedder, report sizes) and QDRANT_URL. */
  diagnose: DiagnoseSettings;
  /** LOG_LINK_TTL_SECONDS: how long a signed `/logs/<task>` link works. */
  logLinks: { ttlSeconds: number };
  /** VAULT_HEALTH_INTERVAL_SECONDS: how often Vault's `sys/health` is probed (with Vault configured). */
  vault: { healthIntervalSeconds: number };
  logLevel: ServerEnv["LOG_LEVEL"];
}

export class ServerConfigError extends Error {
  override name = "ServerConfigError";
}

function slackFrom(env: NodeJS.ProcessEnv): SlackConfig | null {
  try {
    return slackConfigFromEnv(env);
  } catch (err) {
    throw new ServerConfigError((err as Error).message);
  }
}

function diagnoseFrom(env: NodeJS.ProcessEnv): DiagnoseSettings {
  try {
    return diagnoseSettingsFromEnv(env);
  } catch (err) {
    throw new ServerConfigError(`invalid server configuration:\n  ${(err as Error).message}`);
  }
}

function planPolicyFrom(file: string | undefined): ServerPlanPolicy | null {
  if (!file) return null;
  try {
    return loadServerPlanPolicy(file);
  } catch (err) {
    throw new ServerConfigError(`invalid server configuration:\n  ${(err as Error).message}`);
  }
}

/** Same rule as Probot's readEnvOptions, so the manifest flow and the app agree. */
export function githubApiBaseUrl(gheHost: string | undefined, protocol: string): string {
  return gheHost ? `${protocol}://${gheHost}/api/v3` : "https://api.github.com";
}

function privateKeyFrom(env: ServerEnv): string | undefined {
  if (env.PRIVATE_KEY) {
    const key = env.PRIVATE_KEY.includes("-----BEGIN")
      ? env.PRIVATE_KEY
      : Buffer.from(env.PRIVATE_KEY, "base64").toString("utf8");
    return key.replace(/\\n/g, "\n");
  }
  if (env.PRIVATE_KEY_PATH) return readFileSync(env.PRIVATE_KEY_PATH, "utf8");
  return undefined;
}

const ALLOWLIST_KEY = new RegExp(`^(\\*|[A-Za-z0-9_.-]+\\/[A-Za-z0-9_.-]+):(\\*|${STACK_NAME_SOURCE})$`);
const AllowlistJson = z.record(z.string(), z.array(z.string()).min(1)).superRefine((map, ctx) => {
  for (const key of Object.keys(map)) {
    if (!ALLOWLIST_KEY.test(key)) ctx.addIssue({ code: "custom", path: [key], message: "keys are owner/repo:stack (either may be *)" });
  }
});

function parseAllowlist(text: string): EgressAllowlist {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ServerConfigError("invalid server configuration:\n  SANDBOX_EGRESS_ALLOWLIST: not JSON");
  }
  const parsed = AllowlistJson.safeParse(json);
  if (!parsed.success) {
    const issues = describeZodIssues(parsed.error.issues, { data: { SANDBOX_EGRESS_ALLOWLIST: json }, at: ["SANDBOX_EGRESS_ALLOWLIST"], schema: AllowlistJson });
    throw new ServerConfigError(`invalid server configuration:\n${issueLines(issues)}`);
  }
  try {
    return Object.entries(parsed.data).map(([key, entries]) => {
      const i = key.lastIndexOf(":");
      return { repo: key.slice(0, i), stack: key.slice(i + 1), rules: parseEgressRules(entries) };
    });
  } catch (err) {
    if (err instanceof EgressConfigError) throw new ServerConfigError(`invalid server configuration:\n  SANDBOX_EGRESS_ALLOWLIST: ${err.message}`);
    throw err;
  }
}

export function loadServerConfig(source: NodeJS.ProcessEnv = process.env): ServerConfig {
  // `PORT=` in a compose file means "not set", not 0.
  const present = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = ServerEnvSchema.safeParse(present);
  if (!parsed.success) {
    throw new ServerConfigError(`invalid server configuration:\n${issueLines(describeZodIssues(parsed.error.issues, { data: present, schema: ServerEnvSchema }))}`);
  }
  const env = parsed.data;
  const egressAllowlist = parseAllowlist(env.SANDBOX_EGRESS_ALLOWLIST);
  if (egressAllowlist.length > 0 && !env.SANDBOX_EGRESS_NETWORK) {
    throw new ServerConfigError(
      "invalid server configuration:\n  SANDBOX_EGRESS_NETWORK: required when SANDBOX_EGRESS_ALLOWLIST has entries (an internal Docker network shared with the egress proxy)",
    );
  }
  return {
    role: env.ROLE,
    host: env.HOST,
    port: env.PORT,
    publicUrl: env.PUBLIC_URL,
    github: {
      appId: env.APP_ID,
      privateKey: privateKeyFrom(env),
      webhookSecret: env.WEBHOOK_SECRET,
      apiBaseUrl: githubApiBaseUrl(env.GHE_HOST, env.GHE_PROTOCOL),
      webBaseUrl: env.GHE_HOST ? `${env.GHE_PROTOCOL}://${env.GHE_HOST}` : "https://github.com",
      writePacing: env.GITHUB_WRITES_PER_SECOND > 0 ? { burst: env.GITHUB_WRITE_BURST, perSecond: env.GITHUB_WRITES_PER_SECOND } : null,
    },
    redisUrl: env.REDIS_URL,
    queuePrefix: env.QUEUE_PREFIX,
    databaseUrl: env.DATABASE_URL,
    sandbox: {
      defaultImage: env.SANDBOX_IMAGE,
      allowedImages: env.SANDBOX_ALLOWED_IMAGES,
      memoryMb: env.SANDBOX_MEMORY_MB,
      cpus: env.SANDBOX_CPUS,
      pids: env.SANDBOX_PIDS,
      timeoutSeconds: env.SANDBOX_TIMEOUT_SECONDS,
      outputLimitBytes: env.SANDBOX_OUTPUT_LIMIT_BYTES,
      workspaceRoot: env.SANDBOX_WORKSPACE_ROOT,
      poolSize: env.SANDBOX_POOL_SIZE,
      reapIntervalSeconds: env.SANDBOX_REAP_INTERVAL_SECONDS,
      workspaceMb: env.SANDBOX_WORKSPACE_MB,
      runtime: env.SANDBOX_RUNTIME,
      untrustedRuntime: env.SANDBOX_UNTRUSTED_RUNTIME,
      allowedRuntimes: env.SANDBOX_RUNTIMES,
      egress: {
        allowlist: egressAllowlist,
        network: env.SANDBOX_EGRESS_NETWORK,
        proxyListen: env.SANDBOX_EGRESS_PROXY_LISTEN,
        proxyPort: env.SANDBOX_EGRESS_PROXY_PORT,
        proxyHost: env.SANDBOX_EGRESS_PROXY_HOST,
      },
    },
    worker: {
      concurrency: env.WORKER_CONCURRENCY,
      shutdownGraceSeconds: env.SHUTDOWN_GRACE_SECONDS,
      checkRunUpdateIntervalMs: env.CHECK_RUN_UPDATE_INTERVAL_MS,
      lockSeconds: env.WORKER_LOCK_SECONDS,
      stalledIntervalSeconds: env.WORKER_STALLED_INTERVAL_SECONDS,
    },
    locks: { ttlSeconds: env.STACK_LOCK_TTL_SECONDS },
    drift: { syncOnStart: env.DRIFT_SYNC_ON_START === "true" },
    tierTtlSeconds: { ...Object.fromEntries(Object.values(TIERS).map((t) => [t.name, t.credentialTtlSeconds])), ...Object.fromEntries((env.TRUST_TTL_SECONDS ?? "").split(",").filter(Boolean).map((p) => [p.split("=")[0], Number(p.split("=")[1])])) } as Record<"observer" | "operator" | "builder" | "executor" | "architect", number>,
    rotationCheckSeconds: env.ROTATION_CHECK_SECONDS,
    githubKeyCheckSeconds: env.GITHUB_KEY_CHECK_SECONDS,
    defaultTier: env.TRUST_DEFAULT_TIER,
    defaultPhase: env.ROLLOUT_DEFAULT_PHASE,
    errorBudget:
      env.ERROR_BUDGET_MAX_TOTAL || env.ERROR_BUDGET_MAX_SAME || env.ERROR_BUDGET_MAX_VIOLATIONS
        ? { maxTotalErrors: env.ERROR_BUDGET_MAX_TOTAL || Infinity, maxSameErrorRepeats: env.ERROR_BUDGET_MAX_SAME || Infinity, maxProcedureViolations: env.ERROR_BUDGET_MAX_VIOLATIONS || Infinity, windowSeconds: env.ERROR_BUDGET_WINDOW_SECONDS, onExhausted: env.ERROR_BUDGET_ON_EXHAUSTED }
        : null,
    repoErrorBudget:
      env.ERROR_BUDGET_REPO_MAX_TOTAL || env.ERROR_BUDGET_REPO_MAX_SAME || env.ERROR_BUDGET_REPO_MAX_VIOLATIONS
        ? { maxTotalErrors: env.ERROR_BUDGET_REPO_MAX_TOTAL || Infinity, maxSameErrorRepeats: env.ERROR_BUDGET_REPO_MAX_SAME || Infinity, maxProcedureViolations: env.ERROR_BUDGET_REPO_MAX_VIOLATIONS || Infinity, windowSeconds: env.ERROR_BUDGET_WINDOW_SECONDS, onExhausted: env.ERROR_BUDGET_ON_EXHAUSTED }
        : null,
    review: { maxLive: env.REVIEW_MAX_LIVE, sweepSeconds: env.REVIEW_SWEEP_SECONDS, reapOnStart: env.REVIEW_REAP_ON_START === "true" },
    comments: { maxContinuations: env.COMMENT_MAX_CONTINUATIONS, stickyUpdateIntervalMs: env.STICKY_UPDATE_INTERVAL_MS },
    gate: { approvalTtlSeconds: env.APPROVAL_TTL_SECONDS, minApprovals: env.GATE_MIN_APPROVALS },
    adminToken: env.ADMIN_TOKEN ?? null,
    metrics: { token: env.METRICS_TOKEN ?? null, port: env.METRICS_PORT ?? null },
    planPolicy: planPolicyFrom(env.PLAN_POLICY_CONFIG),
    slack: slackFrom(present),
    diagnose: diagnoseFrom(present),
    logLinks: { ttlSeconds: env.LOG_LINK_TTL_SECONDS },
    vault: { healthIntervalSeconds: env.VAULT_HEALTH_INTERVAL_SECONDS },
    logLevel: env.LOG_LEVEL,
  };
}

/** True when the app has what it needs to serve webhooks; otherwise the manifest flow runs. */
export function isRegistered(config: ServerConfig): boolean {
  return Boolean(config.github.appId && config.github.privateKey && config.github.webhookSecret);
}
