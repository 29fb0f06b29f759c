/**
 * POST /api/github/webhooks: verify, dedupe, record, enqueue, answer. No GitHub API calls and
 * no sandbox work happen here (invariant 7); a worker picks the delivery up from the queue.
 * Recording and enqueuing are batched across concurrent requests (src/web/ingest-batch.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { Webhooks } from "@octokit/webhooks";
import type { Logger } from "pino";
import type { Db } from "../../connectors/store/db.js";
import { HANDLED_EVENTS } from "../../domain/events.js";
import type { Queues } from "../../connectors/queues.js";
import { traceField, withSpan } from "../../ops/tracing.js";
import { ENQUEUE_TIMEOUT_MS } from "../enqueue.js";
import { createIngestBatcher, IngestUnavailableError, type IngestOutcome } from "../ingest-batch.js";
import { header, HttpError, readBody, send } from "../http.js";
import type { Metrics, WebhookOutcome } from "../metrics.js";
import type { Route } from "../router.js";

export const WEBHOOK_PATH = "/api/github/webhooks";
/** GitHub caps webhook payloads at 25 MB. */
const MAX_BODY_BYTES = 25 * 1024 * 1024;
const DELIVERY_ID_RE = /^[A-Za-z0-9-]{1,100}$/;
const EVENT_RE = /^[a-z_]{1,64}$/;

export interface WebhookRouteDeps {
  db: Db;
  queues: Pick<Queues, "webhooks">;
  webhookSecret: string;
  log: Logger;
  metrics?: Metrics | undefined;
  enqueueTimeoutMs?: number | undefined;
}

type Seen = { event: string; outcome: WebhookOutcome };

/**
 * A payload string as a `text` column value, else null: one odd value (a NUL byte Postgres
 * refuses) must not fail the whole batch it shares an INSERT with.
 */
function column(v: unknown): string | null {
  return typeof v === "string" && !v.includes("\u0000") ? v : null;
}

export function webhookRoutes(deps: WebhookRouteDeps): Route[] {
  const webhooks = new Webhooks({ secret: deps.webhookSecret });
  // Concurrent deliveries share one INSERT and one addBulk (src/web/ingest-batch.ts).
  const batcher = createIngestBatcher({
    db: deps.db,
    queue: deps.queues.webhooks,
    handled: HANDLED_EVENTS,
    enqueueTimeoutMs: deps.enqueueTimeoutMs ?? ENQUEUE_TIMEOUT_MS,
    log: deps.log,
  });

  /**
   * Counts every answer to a webhook POST (agent_webhook_deliveries_total) and times accepted
   * ones (agent_ingest_seconds). The event label is the header's value only once the signature
   * holds (GitHub's event names); before that it is "unverified", so unsigned requests cannot
   * invent label values.
   */
  async function onWebhook(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const seen: Seen = { event: "unverified", outcome: "error" };
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

  async function receiveWebhook(req: IncomingMessage, res: ServerResponse, seen: Seen): Promise<void> {
    const id = header(req, "x-github-delivery");
    const event = header(req, "x-github-event");
    const signature = header(req, "x-hub-signature-256");
    if (!id || !DELIVERY_ID_RE.test(id)) throw new HttpError(400, "missing or malformed X-GitHub-Delivery");
    if (!event || !EVENT_RE.test(event)) throw new HttpError(400, "missing or malformed X-GitHub-Event");
    if (!signature) {
      seen.outcome = "bad_signature";
      throw new HttpError(401, "missing X-Hub-Signature-256");
    }
    const body = await readBody(req, MAX_BODY_BYTES);
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
    const installationId = (payload.installation as { id?: unknown } | undefined)?.id;
    let outcome: IngestOutcome;
    try {
      outcome = await batcher.submit({
        record: {
          id,
          event,
          action: column(payload.action),
          installationId: Number.isSafeInteger(installationId) ? (installationId as number) : null,
          repo: column((payload.repository as { full_name?: unknown } | undefined)?.full_name),
        },
        data: { id, name: event, payload, ...traceField() },
      });
    } catch (err) {
      if (!(err instanceof IngestUnavailableError)) throw err;
      // The batch logged the cause once; this is the request's own line.
      deps.log.warn({ delivery_id: id, event }, `delivery refused: ${err.message}`);
      throw new HttpError(503, err.message);
    }
    if (outcome === "duplicate") {
      deps.log.info({ delivery_id: id, event }, "duplicate delivery ignored");
      seen.outcome = "duplicate";
      send(res, 200, { ok: true, duplicate: true });
      return;
    }
    if (outcome === "unhandled") {
      seen.outcome = "unhandled_event";
      send(res, 202, { ok: true, queued: false });
      return;
    }
    deps.log.info({ delivery_id: id, event }, "delivery queued");
    seen.outcome = "accepted";
    send(res, 202, { ok: true, queued: true });
  }

  return [{ method: "POST", path: WEBHOOK_PATH, handle: onWebhook }];
}
