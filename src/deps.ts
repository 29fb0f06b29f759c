import type { Logger } from "pino";
import type { ServerConfig } from "./config/server-config.js";
import type { GitHub, RepoRef } from "./connectors/github.js";
import type { CredentialSource } from "./connectors/credentials.js";
import type { EgressProxy } from "./connectors/egress-proxy.js";
import type { SandboxProvider } from "./connectors/sandbox.js";
import type { Db } from "./connectors/store/db.js";
import type { GitHubWrites, WriteTarget } from "./connectors/outbox/writes.js";
import type { TaskRow, WorkflowRow } from "./connectors/store/workflows.js";
import type { ResolvedStack } from "./config/repo/resolve.js";
import type { TaskCancellation } from "./connectors/cancellation.js";
import type { Queues } from "./connectors/queues.js";
import type { SlackConfig } from "./config/slack-config.js";
import type { SlackNotifier } from "./connectors/slack/client.js";
import type { Metrics } from "./web/metrics.js";
import type { DiagnoseRuntime } from "./diagnose/runtime.js";

/** What handlers and task processors are given; connectors are passed in, never imported as singletons. */
export interface AppDeps {
  config: ServerConfig;
  db: Db;
  queues: Queues;
  /** Sandboxes for tasks: warm from the pool for the default image, cold otherwise. */
  sandboxes: SandboxProvider;
  /** Per-task credentials (Vault later); injected per exec and redacted from all output. */
  credentials: CredentialSource;
  /** Running only when some stack has an egress allowlist. */
  egress: EgressProxy | null;
  /** Stops running tasks across workers (worker role only). */
  cancellation: TaskCancellation | null;
  log: Logger;
  /** An installation-authenticated client (Probot's Octokit with retry and throttling), for reads. */
  github: (installationId: number) => Promise<GitHub>;
  /** Every GitHub write: through the outbox (prioritised, coalesced, paced, durable). */
  writes: GitHubWrites;
  /** Slack approvals and notifications; null when Slack is not configured. */
  slack: { notifier: SlackNotifier; config: SlackConfig } | null;
  /** Prometheus metrics of this app instance (src/web/metrics.ts); the app always creates them, tests may leave them out. */
  metrics?: Metrics;
  /** Issue diagnostics (knowledge base, probes); workers set it up, tests may leave it out. */
  diagnose?: DiagnoseRuntime;
}

/**
 * One task being run, as every task processor and the deploys layer pass it around (one
 * context object instead of positional parameters): where it reports, what it runs, its log.
 */
export interface TaskRun {
  deps: AppDeps;
  gh: GitHub;
  repo: RepoRef;
  /** Where its GitHub writes go (the workflow's installation and repository). */
  target: WriteTarget;
  workflow: WorkflowRow;
  task: TaskRow;
  stack: ResolvedStack;
  log: Logger;
}
