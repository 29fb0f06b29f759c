import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { Webhooks } from "@octokit/webhooks";
import type { Queue } from "bullmq";
import type { Logger } from "pino";
import { z } from "zod";
import { forgetDelivery, recordDelivery } from "../connectors/store/deliveries.js";
import { getTaskLogs } from "../connectors/store/logs.js";
import { exportAudit, verifyAuditChain } from "../connectors/store/audit-chain.js";
import { parseSlackInteraction, SLACK_MAX_SKEW_SECONDS } from "../connectors/slack/interactions.js";
import { claimSlackReplayKey, forgetSlackReplayKey } from "../connectors/store/slack-replay.js";
import { checkLogLink } from "./log-links.js";
import type { Db } from "../connectors/store/db.js";
import { HANDLED_EVENTS } from "../handlers/index.js";
import { WEBHOOK_JOB_OPTIONS, jobIdFrom, type Queues } from "../jobs/queues.js";
import { BreakGlassError, BreakGlassInputError, OPERATOR_NAME_PATTERN, STACK_NAME_PATTERN } from "../ops/break-glass.js";
import { METRICS_PATH, type Metrics, type WebhookOutcome } from "./metrics.js";
import { traceField, withSpan } from "../ops/tracing.js";

export const WEBHOOK_PATH = "/api/github/webhooks";
/** GitHub caps webhook payloads at 25 MB. */
const MAX_BODY_BYTES = 25 * 1024 * 1024;
const DELIVERY_ID_RE = /^[A-Za-z0-9-]{1,100}$/;
const EVENT_RE = /^[a-z_]{1,64}$/;

export const BREAK_GLASS_PATH = "/admin/break-glass";
const MAX_ADMIN_BODY_BYTES = 4096;
/** Who is named in the audit log when the request names no operator. */
export const DEFAULT_HTTP_OPERATOR = "admin-api";

const BreakGlassBody = z.strictObject({
  stack: z.string().regex(STACK_NAME_PATTERN, "must be a stack name").optional(),
  operator: z.string().regex(OPERATOR_NAME_PATTERN, "must be a name ([A-Za-z0-9][A-Za-z0-9 ._@-], at most 100 characters)").optional(),
});

export interface AdminOptions {
  /** ADMIN_TOKEN: the bearer token the endpoint requires (at least 32 characters). */
  token: string;
  /** Runs break-glass (src/ops/break-glass.ts with via "http"); its result is the 200 body. */
  breakGlass(req: { stack?: string; actor: string }): Promise<unknown>;
  /** Queues shown read-only on the dashboard at `/admin/queues` (bull-board); absent: no dashboard. */
  queues?: ReadonlyArray<Queue>;
}

/** The queue dashboard (bull-board, read-only); only with ADMIN_TOKEN, behind Basic or Bearer auth. */
export const QUEUES_DASHBOARD_PATH = "/admin/queues";
/** The user name the dashboard's Basic auth expects; the password is ADMIN_TOKEN. */
export const DASHBOARD_USER = "admin";

export interface WebDeps {
  db: Db;
  queues: Pick<Queues, "webhooks">;
  webhookSecret: string;
  log: Logger;
  /** Operator endpoints (`POST /admin/break-glass`); absent: they answer 404. */
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

export const SLACK_INTERACTIONS_PATH = "/slack/interactions";
/** The job a verified Slack click becomes, on the webhooks queue. */
export const SLACK_CLICK_JOB = "slack-click";
/** A click's job id, from the request's signature (BullMQ job ids may not contain `:`). */
export function slackClickJobId(replayKey: string): string {
  return jobIdFrom(["slack", createHash("sha256").update(replayKey).digest("hex").slice(0, 32)]);
}
const MAX_SLACK_BODY_BYTES = 64 * 1024;

export interface ReadinessCheck {
  name: string;
  /** Resolves when healthy; rejects (or times out) with the reason otherwise. */
  check(): Promise<void>;
}

const READINESS_TIMEOUT_MS = 2000;
const ENQUEUE_TIMEOUT_MS = 5000;

/**
 * Adds a job, or fails fast: at once when the queue's Redis connection is known to be down,
 * else after `timeoutMs`. An add that timed out may still land once Redis is back (the client
 * resends it); its job id makes GitHub's redelivery of it a no-op in the queue.
 */
async function boundedAdd(queue: Queue, add: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`Redis did not take the job within ${timeoutMs} ms`)), timeoutMs)));
  try {
    await Promise.race([
      (async () => {
        // The ioredis connection the queue was given (src/jobs/queues.ts): known down means no wait.
        const status = (queue.opts.connection as { status?: unknown } | undefined)?.status;
        if (typeof status === "string" && status !== "ready") throw new Error(`Redis connection is ${status}`);
        const added = add();
        added.catch(() => {}); // may settle after the timeout
        await added;
      })(),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every check at once, each bounded in time; a failing one never hides the others. */
async function readiness(checks: ReadinessCheck[]): Promise<{ ok: boolean; checks: Record<string, string> }> {
  const results = await Promise.all(
    checks.map(async (c) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${READINESS_TIMEOUT_MS} ms`)), READINESS_TIMEOUT_MS)));
      try {
        await Promise.race([c.check(), timeout]);
        return [c.name, "ok"] as const;
      } catch (err) {
        return [c.name, `down: ${(err as Error).message}`.slice(0, 200)] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ok: results.every(([, r]) => r === "ok"), checks: Object.fromEntries(results) };
}

export const AUDIT_PATH = "/admin/audit";
export const AUDIT_VERIFY_PATH = "/admin/audit/verify";

const isoDate = z
  .string()
  .refine((v) => /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(v) && !Number.isNaN(Date.parse(v)), "must be an ISO date or date-time with a zone")
  .transform((v) => new Date(v));
const AuditQuery = z.strictObject({
  repo: z.string().regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/, "must be owner/name").optional(),
  stack: z.string().regex(STACK_NAME_PATTERN, "must be a stack name").optional(),
  since: isoDate.optional(),
  until: isoDate.optional(),
  limit: z.coerce.number().int().min(1).max(100_000).optional(),
});

const TASK_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        reject(new HttpError(413, "payload too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Secrets are compared as SHA-256 digests: equal-length buffers for timingSafeEqual, and
 * nothing about the token's length leaks through timing either.
 */
function digest(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}

function sameSecret(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

/** Whether the request carries `Authorization: Bearer <secret>`, compared in constant time. */
function bearerMatches(req: IncomingMessage, expected: Buffer | null): boolean {
  const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header(req, "authorization") ?? "");
  if (!m || !expected) return false;
  return sameSecret(m[1]!, expected);
}

/** Whether the request carries `Authorization: Basic <user:secret>` with that user, the secret compared in constant time. */
function basicMatches(req: IncomingMessage, user: string, expected: Buffer | null): boolean {
  const m = /^Basic[ ]+([A-Za-z0-9+/=]+)[ ]*$/i.exec(header(req, "authorization") ?? "");
  if (!m || !expected) return false;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return false;
  const passwordOk = sameSecret(decoded.slice(colon + 1), expected);
  return decoded.slice(0, colon) === user && passwordOk;
}

/**
 * GET /metrics: the registry in Prometheus' text format. With a token, only for
 * `Authorization: Bearer <METRICS_TOKEN>`; without one, open (see WebDeps.metricsToken).
 */
async function serveMetrics(req: IncomingMessage, res: ServerResponse, metrics: Metrics, tokenDigest: Buffer | null): Promise<void> {
  if (tokenDigest && !bearerMatches(req, tokenDigest)) {
    res.setHeader("www-authenticate", 'Bearer realm="metrics"');
    throw new HttpError(401, "a valid metrics token is required (Authorization: Bearer <METRICS_TOKEN>)");
  }
  const body = await metrics.registry.metrics();
  res.writeHead(200, { "content-type": metrics.registry.contentType, "cache-control": "no-store" });
  res.end(body);
}

/**
 * A server with only `GET /metrics` and `/healthz`: for a worker-only process (METRICS_PORT),
 * which has no web tier but observes the task metrics.
 */
export function createMetricsServer(opts: { metrics: Metrics; token?: string | null | undefined; log: Logger }): Server {
  const tokenDigest = opts.token ? digest(opts.token) : null;
  return createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0]!;
    if (url === METRICS_PATH && req.method === "GET") {
      void serveMetrics(req, res, opts.metrics, tokenDigest).catch((err: unknown) => {
        if (err instanceof HttpError) return send(res, err.status, { ok: false, error: err.message });
        opts.log.error({ err }, "metrics request failed");
        if (!res.headersSent) send(res, 500, { ok: false, error: "internal error" });
      });
      return;
    }
    if (url === "/healthz" && req.method === "GET") return send(res, 200, { ok: true });
    send(res, 404, { ok: false, error: "not found" });
  });
}

/**
 * The web tier: verify, dedupe, record, enqueue, answer. No GitHub API calls and no sandbox
 * work happen here (invariant 6); a worker picks the delivery up from the queue.
 */
export function createWebServer(deps: WebDeps): Server {
  const webhooks = new Webhooks({ secret: deps.webhookSecret });
  if (deps.admin && deps.admin.token.length < 32) throw new Error("the admin token must be at least 32 characters");
  // Compared as SHA-256 digests: equal-length buffers for timingSafeEqual, and nothing about
  // the token's length leaks through timing either.
  const adminDigest = deps.admin ? digest(deps.admin.token) : null;
  const metricsDigest = deps.metricsToken ? digest(deps.metricsToken) : null;

  /** Whether the request carries `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
  function authorized(req: IncomingMessage): boolean {
    return bearerMatches(req, adminDigest);
  }

  // The queue dashboard: bull-board's Express app, read-only (no retry, clean, pause, add).
  // It is reached only through onQueueDashboard below, after the admin check, and loaded on
  // the first such request: Express and bull-board stay out of a web tier nobody opens it on.
  type Board = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;
  const adminQueues = deps.admin?.queues?.length ? deps.admin.queues : null;
  let board: Promise<Board> | null = null;
  const dashboard = adminQueues
    ? () =>
        (board ??= (async () => {
          const [{ createBullBoard }, { BullMQAdapter }, { ExpressAdapter }] = await Promise.all([
            import("@bull-board/api"),
            import("@bull-board/api/bullMQAdapter"),
            import("@bull-board/express"),
          ]);
          const adapter = new ExpressAdapter();
          adapter.setBasePath(QUEUES_DASHBOARD_PATH);
          createBullBoard({
            queues: adminQueues.map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
            // @bull-board/express 9.10.1 pins @bull-board/api 9.10.1 for its types; the adapter is the same shape.
            serverAdapter: adapter as unknown as Parameters<typeof createBullBoard>[0]["serverAdapter"],
            options: { uiConfig: { boardTitle: "pr-infra-agent queues" } },
          });
          return adapter.getRouter() as Board;
        })())
    : null;

  /**
   * /admin/queues…: the dashboard, for `Authorization: Basic admin:<ADMIN_TOKEN>` (a browser
   * prompts for it) or `Bearer <ADMIN_TOKEN>`. Reading only: any method but GET/HEAD is refused.
   */
  async function onQueueDashboard(req: IncomingMessage, res: ServerResponse, load: () => Promise<Board>): Promise<void> {
    if (!authorized(req) && !basicMatches(req, DASHBOARD_USER, adminDigest)) {
      deps.log.warn({ remote: req.socket.remoteAddress }, "queue dashboard: request without valid admin credentials refused");
      res.setHeader("www-authenticate", 'Basic realm="pr-infra-agent admin", charset="UTF-8"');
      send(res, 401, { ok: false, error: "admin credentials are required (Basic admin:<ADMIN_TOKEN>, or Bearer <ADMIN_TOKEN>)" });
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      send(res, 405, { ok: false, error: "the queue dashboard is read-only" });
      return;
    }
    // bull-board's routes are relative to where it is mounted.
    const rest = (req.url ?? "/").slice(QUEUES_DASHBOARD_PATH.length);
    req.url = rest.startsWith("/") ? rest : `/${rest}`;
    (await load())(req, res, (err?: unknown) => {
      if (err) deps.log.error({ err }, "queue dashboard request failed");
      if (res.headersSent) return;
      if (err) send(res, 500, { ok: false, error: "internal error" });
      else send(res, 404, { ok: false, error: "not found" });
    });
  }

  /**
   * POST /admin/break-glass: revokes every credential lease (of one stack, or all) and stops
   * queued deploys. The token is never logged; neither is the Authorization header.
   */
  async function onBreakGlass(req: IncomingMessage, res: ServerResponse, admin: AdminOptions): Promise<void> {
    const remote = req.socket.remoteAddress;
    if (!authorized(req)) {
      deps.log.warn({ remote }, "break-glass: request without a valid admin token refused");
      res.setHeader("www-authenticate", 'Bearer realm="admin"');
      throw new HttpError(401, "a valid admin token is required (Authorization: Bearer <ADMIN_TOKEN>)");
    }
    if (Number(header(req, "content-length") ?? 0) > MAX_ADMIN_BODY_BYTES) throw new HttpError(413, "payload too large");
    const text = await readBody(req, MAX_ADMIN_BODY_BYTES);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'body must be JSON: {"stack"?: string, "operator"?: string}');
    }
    const body = BreakGlassBody.safeParse(json);
    if (!body.success) {
      const issues = body.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
      throw new HttpError(400, `invalid body: ${issues}`.slice(0, 300));
    }
    const actor = body.data.operator ?? DEFAULT_HTTP_OPERATOR;
    deps.log.warn({ remote, stack: body.data.stack ?? "*", operator: actor }, "break-glass requested over HTTP");
    let result: unknown;
    try {
      result = await admin.breakGlass({ ...(body.data.stack !== undefined ? { stack: body.data.stack } : {}), actor });
    } catch (err) {
      if (err instanceof BreakGlassInputError) throw new HttpError(400, err.message);
      deps.log.error({ err: err instanceof Error ? err.message : String(err) }, "break-glass over HTTP failed");
      // Our own message and what did happen (audited); anything else stays in the server log.
      if (err instanceof BreakGlassError) send(res, 500, { ok: false, error: err.message.slice(0, 500), result: err.result });
      else send(res, 500, { ok: false, error: "break-glass failed; see the server log" });
      return;
    }
    send(res, 200, { ok: true, result });
  }

  /**
   * GET /admin/audit?repo=&stack=&since=&until=&limit= : the audit log as JSON lines (with each
   * row's chain hash); GET /admin/audit/verify : the chain check. Admin token required.
   */
  async function onAudit(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (!authorized(req)) {
      res.setHeader("www-authenticate", 'Bearer realm="admin"');
      throw new HttpError(401, "a valid admin token is required (Authorization: Bearer <ADMIN_TOKEN>)");
    }
    if (path === AUDIT_VERIFY_PATH) {
      const result = await verifyAuditChain(deps.db);
      send(res, result.ok ? 200 : 409, result);
      return;
    }
    const q = AuditQuery.safeParse(Object.fromEntries(new URL(req.url ?? "/", "http://x").searchParams));
    if (!q.success) throw new HttpError(400, `invalid query: ${q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`.slice(0, 300));
    const { repo, stack, since, until, limit } = q.data;
    res.writeHead(200, { "content-type": "application/x-ndjson; charset=utf-8", "cache-control": "no-store" });
    for await (const line of exportAudit(deps.db, { ...(repo ? { repo } : {}), ...(stack ? { stack } : {}), ...(since ? { since } : {}), ...(until ? { until } : {}), limit: limit ?? 10_000 })) {
      if (!res.write(`${line}\n`)) await new Promise((r) => res.once("drain", r));
    }
    res.end();
  }

  /**
   * POST /slack/interactions: Bolt's signature check (signing secret, 5-minute window) on the
   * raw body, then the click is queued for a worker and Slack gets its 200 at once (it wants
   * an answer within 3 s).
   *
   * Replays: the request's signature is recorded in Postgres (unique) before the click is
   * queued, and kept for the whole window; a request seen before is answered 200 with an empty
   * body and not queued. 200, not 409: Slack shows the clicking user an error for anything but
   * a 200 within 3 s, and a replay should teach its sender nothing. (The job id is still derived
   * from the signature, so two replicas racing on one request also collapse in the queue.)
   */
  async function onSlack(req: IncomingMessage, res: ServerResponse, slack: NonNullable<WebDeps["slack"]>): Promise<void> {
    if (Number(header(req, "content-length") ?? 0) > MAX_SLACK_BODY_BYTES) throw new HttpError(413, "payload too large");
    const rawBody = await readBody(req, MAX_SLACK_BODY_BYTES);
    const click = parseSlackInteraction({ rawBody, headers: req.headers, signingSecret: slack.signingSecret, users: { ...slack.users } });
    if (!click.ok) {
      deps.log.warn({ status: click.status, reason: click.message, remote: req.socket.remoteAddress }, "slack interaction refused");
      throw new HttpError(click.status, click.message);
    }
    const first = await claimSlackReplayKey(deps.db, { signature: click.replayKey, requestTs: click.requestTs, windowSeconds: SLACK_MAX_SKEW_SECONDS });
    if (!first) {
      deps.log.warn({ slack_user: click.slackUser, remote: req.socket.remoteAddress }, "replayed slack interaction ignored");
      res.writeHead(200);
      res.end();
      return;
    }
    try {
      const queue = deps.queues.webhooks;
      const jobId = slackClickJobId(click.replayKey);
      await boundedAdd(queue, () => queue.add(SLACK_CLICK_JOB as never, { ...click, ...traceField() } as never, { ...WEBHOOK_JOB_OPTIONS, jobId }), deps.enqueueTimeoutMs ?? ENQUEUE_TIMEOUT_MS);
    } catch (err) {
      // Not queued, so not handled: the key goes, and nothing is left claiming otherwise.
      await forgetSlackReplayKey(deps.db, click.replayKey).catch(() => {});
      deps.log.error({ err }, "could not enqueue slack interaction");
      throw new HttpError(503, "queue unavailable");
    }
    res.writeHead(200);
    res.end();
  }

  /**
   * Counts every answer to a webhook POST (agent_webhook_deliveries_total) and times accepted
   * ones (agent_ingest_seconds). The event label is the header's value only once the signature
   * holds (GitHub's event names); before that it is "unverified", so unsigned requests cannot
   * invent label values.
   */
  async function onWebhook(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const seen: { event: string; outcome: WebhookOutcome } = { event: "unverified", outcome: "error" };
    // The span's carrier rides in the job data (receiveWebhook): the worker's span is its child.
    await withSpan("webhook.receive", {}, async (span) => {
      let status = 500;
      try {
        await receiveWebhook(req, res, seen);
        status = res.statusCode;
      } catch (err) {
        if (err instanceof HttpError) status = err.status;
        throw err;
      } finally {
        deps.metrics?.webhookDeliveries.inc({ event: seen.event, outcome: seen.outcome });
        if (seen.outcome === "accepted") deps.metrics?.ingestSeconds.observe((performance.now() - started) / 1000);
        // Header values only once the signature held (like the metrics' event label).
        const verified = seen.event !== "unverified";
        span.setAttributes({
          "github.event": seen.event,
          ...(verified ? { "github.delivery": header(req, "x-github-delivery") ?? "" } : {}),
          "webhook.outcome": seen.outcome,
          "http.response.status_code": status,
        });
      }
    });
  }

  async function receiveWebhook(req: IncomingMessage, res: ServerResponse, seen: { event: string; outcome: WebhookOutcome }): Promise<void> {
    const id = header(req, "x-github-delivery");
    const event = header(req, "x-github-event");
    const signature = header(req, "x-hub-signature-256");
    if (!id || !DELIVERY_ID_RE.test(id)) throw new HttpError(400, "missing or malformed X-GitHub-Delivery");
    if (!event || !EVENT_RE.test(event)) throw new HttpError(400, "missing or malformed X-GitHub-Event");
    if (!signature) {
      seen.outcome = "bad_signature";
      throw new HttpError(401, "missing X-Hub-Signature-256");
    }
    const body = await readBody(req);
    let valid = false;
    try {
      valid = await webhooks.verify(body, signature);
    } catch {
      valid = false;
    }
    if (!valid) {
      seen.outcome = "bad_signature";
      throw new HttpError(401, "signature does not match");
    }
    seen.event = event;

    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(body) as Record<string, unknown>;
    } catch {
      throw new HttpError(400, "body is not JSON");
    }
    const log = deps.log.child({ delivery_id: id, event });
    const installation = payload.installation as { id?: number } | undefined;
    const repository = payload.repository as { full_name?: string } | undefined;
    const isNew = await recordDelivery(deps.db, {
      id,
      event,
      action: typeof payload.action === "string" ? payload.action : null,
      installationId: installation?.id ?? null,
      repo: repository?.full_name ?? null,
    });
    if (!isNew) {
      log.info("duplicate delivery ignored");
      seen.outcome = "duplicate";
      send(res, 200, { ok: true, duplicate: true });
      return;
    }
    if (!HANDLED_EVENTS.has(event)) {
      seen.outcome = "unhandled_event";
      send(res, 202, { ok: true, queued: false });
      return;
    }
    try {
      const queue = deps.queues.webhooks;
      await boundedAdd(queue, () => queue.add(event, { id, name: event, payload, ...traceField() }, { ...WEBHOOK_JOB_OPTIONS, jobId: jobIdFrom(["wh", id]) }), deps.enqueueTimeoutMs ?? ENQUEUE_TIMEOUT_MS);
    } catch (err) {
      // Not recorded as seen, so a manual redelivery from GitHub can still get through.
      await forgetDelivery(deps.db, id).catch(() => {});
      log.error({ err }, "could not enqueue delivery");
      throw new HttpError(503, "queue unavailable");
    }
    log.info("delivery queued");
    seen.outcome = "accepted";
    send(res, 202, { ok: true, queued: true });
  }

  /**
   * GET /logs/<task id>?exp=…&sig=…: a task's full, redacted step output, behind a signed link
   * that expires (src/web/log-links.ts). A forged or altered link is 403; a genuine one past its
   * expiry is 410 (Gone), saying where a fresh one is.
   */
  async function onLog(req: IncomingMessage, res: ServerResponse, taskId: string): Promise<void> {
    const params = new URL(req.url ?? "/", "http://localhost").searchParams;
    const link = TASK_ID_RE.test(taskId) ? checkLogLink(deps.webhookSecret, taskId, params.get("exp") ?? "", params.get("sig") ?? "") : "invalid";
    if (link === "invalid") throw new HttpError(403, "invalid log link");
    if (link === "expired") throw new HttpError(410, "this log link expired; the pull request's agent comment links the latest logs with fresh links each time it is updated (e.g. after `/agent preview`)");
    const logs = await getTaskLogs(deps.db, taskId);
    if (logs.length === 0) throw new HttpError(404, "no log for this task (yet)");
    const body = logs
      .map((l) => `==> ${l.step}${l.truncated ? " (cut at the sandbox output limit)" : ""} <==\n${l.content}`)
      .join("\n");
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "private, no-store" });
    res.end(body);
  }

  return createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0]!;
    const done = (p: Promise<void>) =>
      p.catch((err: unknown) => {
        if (err instanceof HttpError) {
          send(res, err.status, { ok: false, error: err.message });
          return;
        }
        deps.log.error({ err }, "webhook request failed");
        if (!res.headersSent) send(res, 500, { ok: false, error: "internal error" });
      });
    if (url === WEBHOOK_PATH && req.method === "POST") {
      void done(onWebhook(req, res));
      return;
    }
    const log = /^\/logs\/([^/]+)$/.exec(url);
    if (log && req.method === "GET") {
      void done(onLog(req, res, log[1]!));
      return;
    }
    if (url === BREAK_GLASS_PATH && deps.admin) {
      if (req.method !== "POST") {
        res.setHeader("allow", "POST");
        send(res, 405, { ok: false, error: "method not allowed" });
        return;
      }
      void done(onBreakGlass(req, res, deps.admin));
      return;
    }
    if ((url === AUDIT_PATH || url === AUDIT_VERIFY_PATH) && deps.admin && req.method === "GET") {
      void done(onAudit(req, res, url));
      return;
    }
    if (url === SLACK_INTERACTIONS_PATH && deps.slack && req.method === "POST") {
      void done(onSlack(req, res, deps.slack));
      return;
    }
    if (url === METRICS_PATH && deps.metrics && req.method === "GET") {
      void done(serveMetrics(req, res, deps.metrics, metricsDigest));
      return;
    }
    if ((url === QUEUES_DASHBOARD_PATH || url.startsWith(`${QUEUES_DASHBOARD_PATH}/`)) && dashboard) {
      void done(onQueueDashboard(req, res, dashboard));
      return;
    }
    if (url === "/healthz" && req.method === "GET") {
      send(res, 200, { ok: true });
      return;
    }
    if (url === "/readyz" && req.method === "GET") {
      void done(
        readiness(deps.readiness ?? []).then((r) => {
          if (!r.ok) deps.log.warn({ checks: r.checks }, "not ready");
          send(res, r.ok ? 200 : 503, r);
        }),
      );
      return;
    }
    send(res, 404, { ok: false, error: "not found" });
  });
}
