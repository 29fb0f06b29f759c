/**
 * The web tier's router: a table of routes, each a method, a path and a handler, tried in order;
 * the first that matches answers, anything else is a JSON 404. An HttpError thrown by a handler
 * becomes its status with `{ ok: false, error }`; anything else is logged and answered 500.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { HttpError, send } from "./http.js";

export interface Route {
  /** The method it answers; absent: every method (the handler answers the others itself, e.g. 405). */
  method?: "GET" | "POST";
  /** The path without the query: exactly this string, or matching this pattern (its groups are `params`). */
  path: string | RegExp;
  handle(req: IncomingMessage, res: ServerResponse, params: readonly string[]): Promise<void>;
}

function matchPath(path: Route["path"], url: string): readonly string[] | null {
  if (typeof path === "string") return path === url ? [] : null;
  const m = path.exec(url);
  return m ? m.slice(1).map((g) => g ?? "") : null;
}

/** A request listener for `routes`; `failure` is what the log says when a handler fails unexpectedly. */
export function router(routes: readonly Route[], opts: { log: Logger; failure: string }): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = (req.url ?? "/").split("?")[0]!;
    for (const route of routes) {
      if (route.method && req.method !== route.method) continue;
      const params = matchPath(route.path, url);
      if (!params) continue;
      void route.handle(req, res, params).catch((err: unknown) => {
        if (err instanceof HttpError) {
          send(res, err.status, { ok: false, error: err.message });
          return;
        }
        opts.log.error({ err }, opts.failure);
        if (!res.headersSent) send(res, 500, { ok: false, error: "internal error" });
      });
      return;
    }
    send(res, 404, { ok: false, error: "not found" });
  };
}
