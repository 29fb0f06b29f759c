import { createHmac, timingSafeEqual } from "node:crypto";
import { DEFAULT_LOG_LINK_TTL_SECONDS } from "../config/server-config.js";

/**
 * Capability links to a task's full log: the URL carries its expiry (`exp`, unix seconds) and
 * an HMAC over the task id and that expiry, so only someone who was shown the link (on the
 * check run, the PR comment, the deployment, Slack) can read it, and only until it expires: a
 * link copied into a chat, a ticket or a browser history stops working (LOG_LINK_TTL_SECONDS).
 * Logs are redacted before they are stored.
 */
export function logSignature(secret: string, taskId: string, expiresAt: number): string {
  // "v2": links signed over the task id alone (valid forever) no longer verify. The newline
  // cannot occur in a task id (a UUID), so (id, exp) pairs cannot collide.
  return createHmac("sha256", `task-log:v2:${secret}`).update(`${taskId}\n${expiresAt}`).digest("hex");
}

/** The link for `taskId`, valid until `expiresAt` (unix seconds). */
export function logUrl(publicUrl: string, secret: string, taskId: string, expiresAt: number): string {
  return `${publicUrl.replace(/\/$/, "")}/logs/${taskId}?exp=${expiresAt}&sig=${logSignature(secret, taskId, expiresAt)}`;
}

export type LogLinkCheck = "ok" | "invalid" | "expired";

/**
 * Whether a link's `exp` and `sig` are ours for this task and still valid at `nowMs`. The
 * signature is checked first: a changed `exp` is "invalid", never "expired", so nobody learns
 * anything from a link they did not get from us.
 */
export function checkLogLink(secret: string, taskId: string, exp: string, sig: string, nowMs = Date.now()): LogLinkCheck {
  if (!/^\d{1,12}$/.test(exp) || !/^[0-9a-f]{64}$/.test(sig)) return "invalid";
  const expiresAt = Number(exp);
  const expected = Buffer.from(logSignature(secret, taskId, expiresAt), "hex");
  const given = Buffer.from(sig, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "invalid";
  return Math.floor(nowMs / 1000) <= expiresAt ? "ok" : "expired";
}

/**
 * When a link made at `nowMs` expires: at least `ttlSeconds` later, rounded up to a whole day
 * (to a whole TTL when that is shorter). The rounding makes every link to a task rendered on
 * the same day the same URL: the check run's Details link and the one in its summary, each
 * re-render of the PR comment.
 */
export function logLinkExpiry(ttlSeconds: number, nowMs = Date.now()): number {
  const step = Math.max(1, Math.min(86_400, ttlSeconds));
  return Math.ceil((Math.floor(nowMs / 1000) + ttlSeconds) / step) * step;
}

/**
 * The link for a task's log (see logLinkExpiry for how long it works), or null when the app
 * has no public URL configured. `logLinks` (LOG_LINK_TTL_SECONDS) is optional so partial
 * configs keep working; without it the default TTL applies.
 */
export function taskLogUrl(
  config: { publicUrl: string | undefined; github: { webhookSecret: string | undefined }; logLinks?: { ttlSeconds: number } },
  taskId: string,
  nowMs = Date.now(),
): string | null {
  if (!config.publicUrl || !config.github.webhookSecret) return null;
  const expiresAt = logLinkExpiry(config.logLinks?.ttlSeconds ?? DEFAULT_LOG_LINK_TTL_SECONDS, nowMs);
  return logUrl(config.publicUrl, config.github.webhookSecret, taskId, expiresAt);
}
