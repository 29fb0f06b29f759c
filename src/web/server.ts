import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Webhooks } from "@octokit/webhooks";
import type { Logger } from "pino";
import { forgetDelivery, recordDelivery } from "../connectors/store/deliveries.js";
import { getTaskLogs } from "../connectors/store/logs.js";
import { verifyLogSignature } from "./log-links.js";
import type { Db } from "../connectors/store/db.js";
import { HANDLED_EVENTS } from "../handlers/index.js";
import { WEBHOOK_JOB_OPTIONS, jobIdFrom, type Queues } from "../jobs/queues.js";

export const WEBHOOK_PATH = "/api/github/webhooks";
/** GitHub caps webhook payloads at 25 MB. */
const MAX_BODY_BYTES = 25 * 1024 * 1024;
const DELIVERY_ID_RE = /^[A-Za-z0-9-]{1,100}$/;
const EVENT_RE = /^[a-z_]{1,64}$/;

export interface WebDeps {
  db: Db;
  queues: Pick<Queues, "webhooks">;
  webhookSecret: string;
  log: Logger;
}

const TASK_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
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
 * The web tier: verify, dedupe, record, enqueue, answer. No GitHub API calls and no sandbox
 * work happen here (invariant 6); a worker picks the delivery up from the queue.
 */
export function createWebServer(deps: WebDeps): Server {
  const webhooks = new Webhooks({ secret: deps.webhookSecret });

  async function onWebhook(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const id = header(req, "x-github-delivery");
    const event = header(req, "x-github-event");
    const signature = header(req, "x-hub-signature-256");
    if (!id || !DELIVERY_ID_RE.test(id)) throw new HttpError(400, "missing or malformed X-GitHub-Delivery");
    if (!event || !EVENT_RE.test(event)) throw new HttpError(400, "missing or malformed X-GitHub-Event");
    if (!signature) throw new HttpError(401, "missing X-Hub-Signature-256");
    const body = await readBody(req);
    let valid = false;
    try {
      valid = await webhooks.verify(body, signature);
    } catch {
      valid = false;
    }
    if (!valid) throw new HttpError(401, "signature does not match");

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
      send(res, 200, { ok: true, duplicate: true });
      return;
    }
    if (!HANDLED_EVENTS.has(event)) {
      send(res, 202, { ok: true, queued: false });
      return;
    }
    try {
      await deps.queues.webhooks.add(event, { id, name: event, payload }, { ...WEBHOOK_JOB_OPTIONS, jobId: jobIdFrom(["wh", id]) });
    } catch (err) {
      // Not recorded as seen, so a manual redelivery from GitHub can still get through.
      await forgetDelivery(deps.db, id).catch(() => {});
      log.error({ err }, "could not enqueue delivery");
      throw new HttpError(503, "queue unavailable");
    }
    log.info("delivery queued");
    send(res, 202, { ok: true, queued: true });
  }

  /** GET /logs/<task id>?sig=…: a task's full, redacted step output, behind a signed link. */
  async function onLog(req: IncomingMessage, res: ServerResponse, taskId: string): Promise<void> {
    const sig = new URL(req.url ?? "/", "http://localhost").searchParams.get("sig") ?? "";
    if (!TASK_ID_RE.test(taskId) || !verifyLogSignature(deps.webhookSecret, taskId, sig)) throw new HttpError(403, "invalid log link");
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
    if (url === "/healthz" && req.method === "GET") {
      send(res, 200, { ok: true });
      return;
    }
    send(res, 404, { ok: false, error: "not found" });
  });
}
