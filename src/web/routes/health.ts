/**
 * GET /healthz: the process answers. GET /readyz: what it depends on answers too (Postgres,
 * Redis, Docker for workers, Vault when configured); 503 with each check's result otherwise.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { send } from "../http.js";
import type { Route } from "../router.js";

export interface ReadinessCheck {
  name: string;
  /** Resolves when healthy; rejects (or times out) with the reason otherwise. */
  check(): Promise<void>;
}

const READINESS_TIMEOUT_MS = 2000;

/** Runs every check at once, each bounded in time; a failing one never hides the others. */
async function readiness(checks: readonly ReadinessCheck[]): Promise<{ ok: boolean; checks: Record<string, string> }> {
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

/** GET /healthz alone (a worker-only process's metrics server has no readiness checks). */
export const healthzRoute: Route = {
  method: "GET",
  path: "/healthz",
  handle: async (_req: IncomingMessage, res: ServerResponse) => send(res, 200, { ok: true }),
};

export function healthRoutes(deps: { readiness?: readonly ReadinessCheck[] | undefined; log: Logger }): Route[] {
  return [
    healthzRoute,
    {
      method: "GET",
      path: "/readyz",
      handle: async (_req, res) => {
        const r = await readiness(deps.readiness ?? []);
        if (!r.ok) deps.log.warn({ checks: r.checks }, "not ready");
        send(res, r.ok ? 200 : 503, r);
      },
    },
  ];
}
