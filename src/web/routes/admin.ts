/**
 * Operator endpoints, all behind ADMIN_TOKEN (absent: they answer 404):
 *   POST /admin/break-glass      revoke credential leases, stop queued deploys
 *   GET  /admin/audit            the audit log as JSON lines
 *   GET  /admin/audit/verify     the audit chain's check
 *   GET  /admin/queues…          the read-only queue dashboard (queue-dashboard.ts)
 * The token is never logged; neither is the Authorization header.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Queue } from "bullmq";
import type { Logger } from "pino";
import { z } from "zod";
import { STACK_NAME_RE } from "../../config/fields.js";
import { exportAudit, verifyAuditChain } from "../../connectors/store/audit-chain.js";
import type { Db } from "../../connectors/store/db.js";
import { BreakGlassError, BreakGlassInputError, OPERATOR_NAME_PATTERN } from "../../ops/break-glass.js";
import { bearerMatches, digest, HttpError, readBody, refuseDeclaredOver, send } from "../http.js";
import type { Route } from "../router.js";
import { queueDashboardRoutes } from "./queue-dashboard.js";

export const BREAK_GLASS_PATH = "/admin/break-glass";
const MAX_ADMIN_BODY_BYTES = 4096;
/** Who is named in the audit log when the request names no operator. */
export const DEFAULT_HTTP_OPERATOR = "admin-api";

export const AUDIT_PATH = "/admin/audit";
export const ROTATE_PATH = "/admin/rotate";
export const AUDIT_VERIFY_PATH = "/admin/audit/verify";

export interface AdminOptions {
  /** ADMIN_TOKEN: the bearer token the endpoint requires (at least 32 characters). */
  token: string;
  /** Runs break-glass (src/ops/break-glass.ts with via "http"); its result is the 200 body. */
  breakGlass(req: { stack?: string; actor: string }): Promise<unknown>;
  /** Emergency rotation of one static secret or all (src/ops/rotation.ts); absent: none configured (404). */
  rotate?(req: { secret: string | null; actor: string }): Promise<unknown>;
  /** Queues shown read-only on the dashboard at `/admin/queues` (bull-board); absent: no dashboard. */
  queues?: ReadonlyArray<Queue>;
}

const BreakGlassBody = z.strictObject({
  stack: z.string().regex(STACK_NAME_RE, "must be a stack name").optional(),
  operator: z.string().regex(OPERATOR_NAME_PATTERN, "must be a name ([A-Za-z0-9][A-Za-z0-9 ._@-], at most 100 characters)").optional(),
});

const RotateBody = z
  .strictObject({
    secret: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "must be a secret's name").optional(),
    all: z.literal(true).optional(),
    operator: z.string().regex(OPERATOR_NAME_PATTERN, "must be a name ([A-Za-z0-9][A-Za-z0-9 ._@-], at most 100 characters)").optional(),
  })
  .refine((b) => (b.secret === undefined) !== (b.all === undefined), { error: 'give exactly one of "secret" or "all": true' });

/** A rotation request naming a secret the server does not rotate. */
export class RotationInputError extends Error {
  override name = "RotationInputError";
}

const isoDate = z
  .string()
  .refine((v) => /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(v) && !Number.isNaN(Date.parse(v)), "must be an ISO date or date-time with a zone")
  .transform((v) => new Date(v));
const AuditQuery = z.strictObject({
  repo: z.string().regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/, "must be owner/name").optional(),
  stack: z.string().regex(STACK_NAME_RE, "must be a stack name").optional(),
  since: isoDate.optional(),
  until: isoDate.optional(),
  limit: z.coerce.number().int().min(1).max(100_000).optional(),
});

export function adminRoutes(deps: { admin: AdminOptions; db: Db; log: Logger }): Route[] {
  const { admin } = deps;
  if (admin.token.length < 32) throw new Error("the admin token must be at least 32 characters");
  const adminDigest = digest(admin.token);

  /** A 401 unless the request carries `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
  function requireToken(req: IncomingMessage, res: ServerResponse, onRefused?: () => void): void {
    if (bearerMatches(req, adminDigest)) return;
    onRefused?.();
    res.setHeader("www-authenticate", 'Bearer realm="admin"');
    throw new HttpError(401, "a valid admin token is required (Authorization: Bearer <ADMIN_TOKEN>)");
  }

  /** POST /admin/break-glass: revokes every credential lease (of one stack, or all) and stops queued deploys. */
  async function onBreakGlass(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      send(res, 405, { ok: false, error: "method not allowed" });
      return;
    }
    const remote = req.socket.remoteAddress;
    requireToken(req, res, () => deps.log.warn({ remote }, "break-glass: request without a valid admin token refused"));
    refuseDeclaredOver(req, MAX_ADMIN_BODY_BYTES);
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

  /** POST /admin/rotate: rotates one static secret ({"secret": name}) or all ({"all": true}) now; the outcomes are the 200 body. */
  async function onRotate(req: IncomingMessage, res: ServerResponse): Promise<void> {
    requireToken(req, res, () => deps.log.warn({ remote: req.socket.remoteAddress }, "rotate: request without a valid admin token refused"));
    if (!admin.rotate) throw new HttpError(404, "no secret rotation is configured (credentials config `rotation`, with Vault)");
    refuseDeclaredOver(req, MAX_ADMIN_BODY_BYTES);
    let json: unknown;
    try {
      json = JSON.parse(await readBody(req, MAX_ADMIN_BODY_BYTES));
    } catch {
      throw new HttpError(400, 'body must be JSON: {"secret": string} or {"all": true}, and optionally "operator"');
    }
    const body = RotateBody.safeParse(json);
    if (!body.success) throw new HttpError(400, `invalid body: ${body.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`.slice(0, 300));
    const actor = body.data.operator ?? DEFAULT_HTTP_OPERATOR;
    deps.log.warn({ secret: body.data.secret ?? "*", operator: actor }, "emergency rotation requested over HTTP");
    try {
      send(res, 200, { ok: true, result: await admin.rotate({ secret: body.data.secret ?? null, actor }) });
    } catch (err) {
      if (err instanceof RotationInputError) throw new HttpError(400, err.message);
      throw err;
    }
  }

  /** GET /admin/audit?repo=&stack=&since=&until=&limit= : the audit log as JSON lines, with each row's chain hash. */
  async function onAudit(req: IncomingMessage, res: ServerResponse): Promise<void> {
    requireToken(req, res);
    const q = AuditQuery.safeParse(Object.fromEntries(new URL(req.url ?? "/", "http://x").searchParams));
    if (!q.success) throw new HttpError(400, `invalid query: ${q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`.slice(0, 300));
    const { repo, stack, since, until, limit } = q.data;
    res.writeHead(200, { "content-type": "application/x-ndjson; charset=utf-8", "cache-control": "no-store" });
    for await (const line of exportAudit(deps.db, { ...(repo ? { repo } : {}), ...(stack ? { stack } : {}), ...(since ? { since } : {}), ...(until ? { until } : {}), limit: limit ?? 10_000 })) {
      if (!res.write(`${line}\n`)) await new Promise((r) => res.once("drain", r));
    }
    res.end();
  }

  /** GET /admin/audit/verify: the chain check; 409 when it does not hold. */
  async function onAuditVerify(req: IncomingMessage, res: ServerResponse): Promise<void> {
    requireToken(req, res);
    const result = await verifyAuditChain(deps.db);
    send(res, result.ok ? 200 : 409, result);
  }

  return [
    { path: BREAK_GLASS_PATH, handle: onBreakGlass },
    { method: "POST", path: ROTATE_PATH, handle: onRotate },
    { method: "GET", path: AUDIT_PATH, handle: onAudit },
    { method: "GET", path: AUDIT_VERIFY_PATH, handle: onAuditVerify },
    ...queueDashboardRoutes({ queues: admin.queues, adminDigest, log: deps.log }),
  ];
}
