/**
 * /admin/queues…: the queue dashboard (bull-board's Express app, read-only: no retry, clean,
 * pause, add), for `Authorization: Basic admin:<ADMIN_TOKEN>` (a browser prompts for it) or
 * `Bearer <ADMIN_TOKEN>`. Reading only: any method but GET/HEAD is refused.
 *
 * bull-board and Express are imported on the first request that passed the admin check, never
 * at start: they stay out of the memory of a web tier nobody opens the dashboard on.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Queue } from "bullmq";
import type { Logger } from "pino";
import { basicMatches, bearerMatches, send } from "../http.js";
import type { Route } from "../router.js";

/** The queue dashboard (bull-board, read-only); only with ADMIN_TOKEN, behind Basic or Bearer auth. */
export const QUEUES_DASHBOARD_PATH = "/admin/queues";
/** QUEUES_DASHBOARD_PATH and everything below it. */
const DASHBOARD_PATHS = /^\/admin\/queues(?:\/.*)?$/s;
/** The user name the dashboard's Basic auth expects; the password is ADMIN_TOKEN. */
export const DASHBOARD_USER = "admin";

type Board = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** bull-board over `queues`, built (and its packages imported) on the first call only. */
function lazyBoard(queues: ReadonlyArray<Queue>): () => Promise<Board> {
  let board: Promise<Board> | null = null;
  return () =>
    (board ??= (async () => {
      const [{ createBullBoard }, { BullMQAdapter }, { ExpressAdapter }] = await Promise.all([
        import("@bull-board/api"),
        import("@bull-board/api/bullMQAdapter"),
        import("@bull-board/express"),
      ]);
      const adapter = new ExpressAdapter();
      adapter.setBasePath(QUEUES_DASHBOARD_PATH);
      createBullBoard({
        queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
        // @bull-board/express 9.10.1 pins @bull-board/api 9.10.1 for its types; the adapter is the same shape.
        serverAdapter: adapter as unknown as Parameters<typeof createBullBoard>[0]["serverAdapter"],
        options: { uiConfig: { boardTitle: "pr-infra-agent queues" } },
      });
      return adapter.getRouter() as Board;
    })());
}

/** The dashboard's route; none when there are no queues to show. `adminDigest`: ADMIN_TOKEN's (http.ts `digest`). */
export function queueDashboardRoutes(deps: { queues?: ReadonlyArray<Queue> | undefined; adminDigest: Buffer; log: Logger }): Route[] {
  if (!deps.queues?.length) return [];
  const load = lazyBoard(deps.queues);

  async function onQueueDashboard(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!bearerMatches(req, deps.adminDigest) && !basicMatches(req, DASHBOARD_USER, deps.adminDigest)) {
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

  return [{ path: DASHBOARD_PATHS, handle: onQueueDashboard }];
}
