/**
 * GET /logs/<task id>?exp=…&sig=…: a task's full, redacted step output, behind a signed link
 * that expires (src/web/log-links.ts). A forged or altered link is 403; a genuine one past its
 * expiry is 410 (Gone), saying where a fresh one is.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Db } from "../../connectors/store/db.js";
import { getTaskLogs } from "../../connectors/store/logs.js";
import { HttpError } from "../http.js";
import { checkLogLink } from "../log-links.js";
import type { Route } from "../router.js";

const LOG_PATH = /^\/logs\/([^/]+)$/;
const TASK_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function logRoutes(deps: { db: Db; webhookSecret: string }): Route[] {
  async function onLog(req: IncomingMessage, res: ServerResponse, [taskId]: readonly string[]): Promise<void> {
    const params = new URL(req.url ?? "/", "http://localhost").searchParams;
    const link = TASK_ID_RE.test(taskId!) ? checkLogLink(deps.webhookSecret, taskId!, params.get("exp") ?? "", params.get("sig") ?? "") : "invalid";
    if (link === "invalid") throw new HttpError(403, "invalid log link");
    if (link === "expired") throw new HttpError(410, "this log link expired; the pull request's agent comment links the latest logs with fresh links each time it is updated (e.g. after `/agent preview`)");
    const logs = await getTaskLogs(deps.db, taskId!);
    if (logs.length === 0) throw new HttpError(404, "no log for this task (yet)");
    const body = logs
      .map((l) => `==> ${l.step}${l.truncated ? " (cut at the sandbox output limit)" : ""} <==\n${l.content}`)
      .join("\n");
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "private, no-store" });
    res.end(body);
  }

  return [{ method: "GET", path: LOG_PATH, handle: onLog }];
}
