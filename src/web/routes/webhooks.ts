/**
 * POST /api/github/webhooks: verify, dedupe, record, enqueue, answer. No GitHub API calls and
 * no sandbox work happen here (invariant 7); a worker picks the delivery up from the queue.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { Webhooks } from "@octokit/webhooks";
import type { Logger } from "pino";
import type { Db } from "../../connectors/store/db.js";
import { forgetDelivery, recordDelivery } from "../../connectors/store/deliveries.js";
import { HANDLED_EVENTS } from "../../domain/events.js";
import { WEBHOOK_JOB_OPTIONS, jobIdFrom, type Queues } from "../../connectors/queues.js";
import { traceField, withSpan } from "../../ops/tracing.js";
import { boundedAdd, ENQUEUE_TIMEOUT_MS } from "../enqueue.js";
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

export function webhookRoutes(deps: WebhookRouteDeps): Route[] {
  const webhooks = new Webhooks({ secret: deps.webhookSecret });

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

  return [{ method: "POST", path: WEBHOOK_PATH, handle: onWebhook }];
}
