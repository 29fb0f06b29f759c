/**
 * Prometheus metrics (prom-client), served at `GET /metrics` by the web tier (and by a worker
 * on METRICS_PORT). One Registry per app instance, never prom-client's global one, so several
 * apps in one process (the tests) do not collide.
 *
 * Counters and histograms are observed where things happen (web tier, task processors); the
 * gauges about state elsewhere (queues, the sandbox pool, Vault, running tasks) are read at
 * scrape time. Deploy files that use these names: deploy/prometheus/alerts.yml and
 * deploy/grafana/agent-dashboard.json (a test checks they name only metrics exposed here).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Logger } from "pino";

export const METRICS_PATH = "/metrics";
export const METRIC_PREFIX = "agent_";

export type WebhookOutcome = "accepted" | "duplicate" | "bad_signature" | "unhandled_event" | "error";
export type TaskOutcome = "succeeded" | "failed" | "cancelled" | "needs_attention";
export const QUEUE_STATES = ["waiting", "active", "delayed", "failed"] as const;

/** What the scrape-time gauges read; each is optional (a gauge without its source is not registered). */
export interface MetricsSources {
  /** BullMQ queues (webhooks, tasks): job counts and the oldest waiting job. */
  queues?: ReadonlyArray<MetricsQueue>;
  /** Idle warm sandboxes in the pool. */
  sandboxIdle?: () => number;
  /** Whether Vault answers; absent without Vault (then `agent_vault_up` is not exposed). */
  vaultUp?: () => boolean;
  /** Age in seconds of the oldest task in state RUNNING (null: none). */
  oldestRunningTaskSeconds?: () => Promise<number | null>;
  /** SANDBOX_TIMEOUT_SECONDS, exposed for alerts that compare against it. */
  taskTimeoutSeconds?: number;
  /** GitHub writes waiting in the outbox, per class, and the age of the oldest due one. */
  githubOutbox?: () => Promise<{ pending: Record<string, number>; oldestDueSeconds: number }>;
  /** Where a failed scrape-time read is reported (the scrape still answers). */
  log?: Pick<Logger, "warn">;
  /** Node's default metrics with the `agent_` prefix (default true). */
  defaultMetrics?: boolean;
}

/** The part of a BullMQ Queue the gauges read. */
export interface MetricsQueue {
  readonly name: string;
  getJobCounts(...types: string[]): Promise<Record<string, number>>;
  getWaiting(start?: number, end?: number): Promise<Array<{ timestamp: number }>>;
}

export interface Metrics {
  registry: Registry;
  webhookDeliveries: Counter<"event" | "outcome">;
  ingestSeconds: Histogram;
  taskDuration: Histogram<"kind" | "outcome">;
  stepDuration: Histogram<"step" | "outcome">;
  deploys: Counter<"outcome">;
  approvalWait: Histogram;
  githubRateLimitRemaining: Gauge<"installation">;
  errorBudgetRemaining: Gauge<"repo" | "stack">;
  secretAge: Gauge<"secret">;
  secretMaxAge: Gauge<"secret">;
  secretRotationFailures: Counter<"secret">;
}

export function createMetrics(sources: MetricsSources = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (sources.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const failedRead = (what: string, err: unknown) => sources.log?.warn({ err: (err as Error)?.message ?? String(err) }, `metrics: could not read ${what}`);

  const webhookDeliveries = new Counter({
    name: "agent_webhook_deliveries_total",
    help: "Webhook deliveries answered by the web tier, by event and outcome (accepted, duplicate, bad_signature, unhandled_event, error). Unverified requests are counted with event=\"unverified\".",
    labelNames: ["event", "outcome"] as const,
    registers,
  });
  const ingestSeconds = new Histogram({
    name: "agent_ingest_seconds",
    help: "Seconds from the start of a webhook request to the 2xx answer of an accepted (queued) delivery.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const taskDuration = new Histogram({
    name: "agent_task_duration_seconds",
    help: "Seconds from a task's first start to its end, by kind (checks, preview, deploy, branch) and outcome (succeeded, failed, cancelled, needs_attention).",
    labelNames: ["kind", "outcome"] as const,
    buckets: [5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200],
    registers,
  });
  const stepDuration = new Histogram({
    name: "agent_step_duration_seconds",
    help: "Seconds a step (lint, test, preview, deploy) ran in its sandbox, by step and outcome (succeeded, failed, timed_out).",
    labelNames: ["step", "outcome"] as const,
    buckets: [1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600],
    registers,
  });
  const deploys = new Counter({
    name: "agent_deploys_total",
    help: "Deploys (and branch applies) that ended, by outcome (succeeded, failed, needs_attention).",
    labelNames: ["outcome"] as const,
    registers,
  });
  // Zero from the start, so rate() and ratios work before the first deploy of each outcome.
  for (const outcome of ["succeeded", "failed", "needs_attention"]) deploys.labels({ outcome }).inc(0);
  const approvalWait = new Histogram({
    name: "agent_approval_wait_seconds",
    help: "Seconds from a preview's finish to its deploy being queued (waiting for approvals).",
    buckets: [60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86_400, 3 * 86_400, 7 * 86_400],
    registers,
  });
  const githubRateLimitRemaining = new Gauge({
    name: "agent_github_rate_limit_remaining",
    help: "GitHub API requests left in the current rate-limit window (x-ratelimit-remaining of the latest response), by installation.",
    labelNames: ["installation"] as const,
    registers,
  });

  const errorBudgetRemaining = new Gauge({
    name: "agent_error_budget_remaining",
    help: "Errors a stack may still have within its error budget's window before its deploys lose autonomy (0: exhausted), as of the latest gate evaluation, by repository and stack.",
    labelNames: ["repo", "stack"] as const,
    registers,
  });

  const secretAge = new Gauge({
    name: "agent_secret_age_seconds",
    help: "Seconds since the current version of a rotated static secret was written (Vault KV v2 metadata), by secret.",
    labelNames: ["secret"] as const,
    registers,
  });
  const secretMaxAge = new Gauge({
    name: "agent_secret_max_age_seconds",
    help: "The age at which a rotated static secret is due (its every_days), by secret.",
    labelNames: ["secret"] as const,
    registers,
  });
  const secretRotationFailures = new Counter({
    name: "agent_secret_rotation_failures_total",
    help: "Rotations of a static secret that failed (the old value kept), by secret.",
    labelNames: ["secret"] as const,
    registers,
  });

  const queues = sources.queues;
  if (queues) {
    new Gauge({
      name: "agent_queue_jobs",
      help: "Jobs in a BullMQ queue by state (waiting, active, delayed, failed), read at scrape time.",
      labelNames: ["queue", "state"] as const,
      registers,
      async collect() {
        this.reset();
        for (const q of queues) {
          try {
            const counts = await q.getJobCounts(...QUEUE_STATES);
            for (const state of QUEUE_STATES) this.set({ queue: q.name, state }, counts[state] ?? 0);
          } catch (err) {
            failedRead(`the ${q.name} queue`, err);
          }
        }
      },
    });
    new Gauge({
      name: "agent_queue_oldest_waiting_seconds",
      help: "Age in seconds of the oldest waiting job of a queue (0 when none waits), read at scrape time.",
      labelNames: ["queue"] as const,
      registers,
      async collect() {
        this.reset();
        for (const q of queues) {
          try {
            const [oldest] = await q.getWaiting(0, 0);
            this.set({ queue: q.name }, oldest ? Math.max(0, (Date.now() - oldest.timestamp) / 1000) : 0);
          } catch (err) {
            failedRead(`the ${q.name} queue`, err);
          }
        }
      },
    });
  }
  const idle = sources.sandboxIdle;
  if (idle) {
    new Gauge({
      name: "agent_sandbox_pool_idle",
      help: "Warm sandbox containers idle in this process's pool.",
      registers,
      collect() {
        this.set(idle());
      },
    });
  }
  const vaultUp = sources.vaultUp;
  if (vaultUp) {
    new Gauge({
      name: "agent_vault_up",
      help: "1 when Vault serves this process (its sys/health, probed every VAULT_HEALTH_INTERVAL_SECONDS, or the latest call), 0 when it is sealed, uninitialised or unreachable (absent without Vault).",
      registers,
      collect() {
        this.set(vaultUp() ? 1 : 0);
      },
    });
  }
  const oldest = sources.oldestRunningTaskSeconds;
  if (oldest) {
    new Gauge({
      name: "agent_tasks_running_oldest_seconds",
      help: "Seconds since the oldest task in state RUNNING started (0 when none runs), read from Postgres at scrape time.",
      registers,
      async collect() {
        try {
          this.set((await oldest()) ?? 0);
        } catch (err) {
          this.reset();
          failedRead("running tasks", err);
        }
      },
    });
  }
  const outbox = sources.githubOutbox;
  if (outbox) {
    let read: Promise<{ pending: Record<string, number>; oldestDueSeconds: number }> | null = null;
    // One query per scrape for both gauges.
    const once = () => (read ??= outbox().finally(() => setImmediate(() => (read = null))));
    new Gauge({
      name: "agent_github_outbox_pending",
      help: "GitHub writes waiting in the outbox (not yet sent), by class: ack, final, progress.",
      labelNames: ["class"],
      registers,
      async collect() {
        try {
          const { pending } = await once();
          for (const [cls, n] of Object.entries(pending)) this.set({ class: cls }, n);
        } catch (err) {
          this.reset();
          failedRead("the GitHub outbox", err);
        }
      },
    });
    new Gauge({
      name: "agent_github_outbox_oldest_due_seconds",
      help: "Seconds the oldest due GitHub write has waited in the outbox (0 when none): high while GitHub is rate limiting or unreachable.",
      registers,
      async collect() {
        try {
          this.set((await once()).oldestDueSeconds);
        } catch (err) {
          this.reset();
          failedRead("the GitHub outbox", err);
        }
      },
    });
  }
  if (sources.taskTimeoutSeconds !== undefined) {
    const g = new Gauge({
      name: "agent_task_timeout_seconds",
      help: "SANDBOX_TIMEOUT_SECONDS: how long a task's steps may run in all.",
      registers,
    });
    g.set(sources.taskTimeoutSeconds);
  }

  return { registry, webhookDeliveries, ingestSeconds, taskDuration, stepDuration, deploys, approvalWait, githubRateLimitRemaining, errorBudgetRemaining, secretAge, secretMaxAge, secretRotationFailures };
}

/** A task ended: its duration from its first start (null: not known, not observed). */
export function observeTaskEnd(m: Metrics | undefined, kind: string, outcome: TaskOutcome, startedAt: Date | null | undefined): void {
  if (!m || !startedAt) return;
  m.taskDuration.observe({ kind, outcome }, Math.max(0, (Date.now() - startedAt.getTime()) / 1000));
}

/** A step ran in a sandbox for `durationMs` (null: it did not run). */
export function observeStep(m: Metrics | undefined, step: string, outcome: string, durationMs: number | null | undefined): void {
  if (!m || durationMs === null || durationMs === undefined) return;
  m.stepDuration.observe({ step, outcome }, durationMs / 1000);
}

/** A deploy ended: counted by outcome and timed as a task. */
export function observeDeployEnd(m: Metrics | undefined, kind: string, outcome: "succeeded" | "failed" | "needs_attention", startedAt: Date | null | undefined): void {
  if (!m) return;
  m.deploys.inc({ outcome });
  observeTaskEnd(m, kind, outcome, startedAt);
}
