/**
 * The web tier: verify, dedupe, record, enqueue, answer. No GitHub API calls and no sandbox
 * work happen here (invariant 7); a worker picks deliveries and clicks up from the queue.
 *
 * One module per route family in src/web/routes/; this file holds the route table and the two
 * servers built from it (router.ts matches a request to its route and answers errors).
 */
import { createServer, type Server } from "node:http";
import type { Logger } from "pino";
import type { Db } from "../connectors/store/db.js";
import type { Queues } from "../connectors/queues.js";
import type { Metrics } from "./metrics.js";
import { router, type Route } from "./router.js";
import { adminRoutes, type AdminOptions } from "./routes/admin.js";
import { healthRoutes, healthzRoute, type ReadinessCheck } from "./routes/health.js";
import { logRoutes } from "./routes/logs.js";
import { metricsRoutes } from "./routes/metrics.js";
import { slackRoutes } from "./routes/slack.js";
import { webhookRoutes } from "./routes/webhooks.js";

export { AUDIT_PATH, AUDIT_VERIFY_PATH, BREAK_GLASS_PATH, DEFAULT_HTTP_OPERATOR, type AdminOptions } from "./routes/admin.js";
export type { ReadinessCheck } from "./routes/health.js";
export { DASHBOARD_USER, QUEUES_DASHBOARD_PATH } from "./routes/queue-dashboard.js";
export { SLACK_CLICK_JOB, SLACK_INTERACTIONS_PATH, slackClickJobId } from "./routes/slack.js";
export { WEBHOOK_PATH } from "./routes/webhooks.js";

export interface WebDeps {
  db: Db;
  queues: Pick<Queues, "webhooks">;
  webhookSecret: string;
  log: Logger;
  /** Operator endpoints (`POST /admin/break-glass`, `/admin/audit`, `/admin/queues`); absent: they answer 404. */
  admin?: AdminOptions | undefined;
  /** What `/readyz` checks (Postgres, Redis, Docker for workers, Vault when configured). */
  readiness?: ReadinessCheck[];
  /**
   * How long a delivery may wait for Redis to take it before the answer is 503 (default 5 s;
   * GitHub gives up on a webhook after 10 s). The queue's connection retries forever, so
   * without a bound a request would hang for as long as Redis is down.
   */
  enqueueTimeoutMs?: number;
  /** Slack's interactivity endpoint (`POST /slack/interactions`); absent: 404. */
  slack?: { signingSecret: string; users: Readonly<Record<string, string>> };
  /** Prometheus metrics: `GET /metrics` and the webhook counters; absent: /metrics answers 404. */
  metrics?: Metrics | undefined;
  /**
   * METRICS_TOKEN: when set, `GET /metrics` requires `Authorization: Bearer <token>`. When not,
   * /metrics is open: Prometheus usually scrapes over a private network, and the metrics carry
   * counts and timings, no secrets or repository content.
   */
  metricsToken?: string | null | undefined;
}

/**
 * The route table, in the order routes are tried (their paths do not overlap). A family's
 * routes are in it only when what it needs is configured; otherwise its paths answer 404.
 *
 *   POST /api/github/webhooks                     webhooks.ts
 *   GET  /logs/<task id>?exp=&sig=                logs.ts
 *   POST /admin/break-glass, GET /admin/audit[/verify], /admin/queues…   admin.ts (ADMIN_TOKEN)
 *   POST /slack/interactions                      slack.ts (Slack configured)
 *   GET  /metrics                                 metrics.ts (metrics configured)
 *   GET  /healthz, /readyz                        health.ts
 */
function webRoutes(deps: WebDeps): Route[] {
  return [
    ...webhookRoutes(deps),
    ...logRoutes(deps),
    ...(deps.admin ? adminRoutes({ ...deps, admin: deps.admin }) : []),
    ...(deps.slack ? slackRoutes({ ...deps, slack: deps.slack }) : []),
    ...(deps.metrics ? metricsRoutes(deps.metrics, deps.metricsToken) : []),
    ...healthRoutes(deps),
  ];
}

export function createWebServer(deps: WebDeps): Server {
  return createServer(router(webRoutes(deps), { log: deps.log, failure: "webhook request failed" }));
}

/**
 * A server with only `GET /metrics` and `/healthz`: for a worker-only process (METRICS_PORT),
 * which has no web tier but observes the task metrics.
 */
export function createMetricsServer(opts: { metrics: Metrics; token?: string | null | undefined; log: Logger }): Server {
  return createServer(router([...metricsRoutes(opts.metrics, opts.token), healthzRoute], { log: opts.log, failure: "metrics request failed" }));
}
