/**
 * GET /metrics: the registry in Prometheus' text format. With a token (METRICS_TOKEN), only for
 * `Authorization: Bearer <METRICS_TOKEN>`; without one, open: Prometheus usually scrapes over a
 * private network, and the metrics carry counts and timings, no secrets or repository content.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { bearerMatches, digest, HttpError } from "../http.js";
import { METRICS_PATH, type Metrics } from "../metrics.js";
import type { Route } from "../router.js";

export function metricsRoutes(metrics: Metrics, token: string | null | undefined): Route[] {
  const tokenDigest = token ? digest(token) : null;

  async function serveMetrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (tokenDigest && !bearerMatches(req, tokenDigest)) {
      res.setHeader("www-authenticate", 'Bearer realm="metrics"');
      throw new HttpError(401, "a valid metrics token is required (Authorization: Bearer <METRICS_TOKEN>)");
    }
    const body = await metrics.registry.metrics();
    res.writeHead(200, { "content-type": metrics.registry.contentType, "cache-control": "no-store" });
    res.end(body);
  }

  return [{ method: "GET", path: METRICS_PATH, handle: serveMetrics }];
}
