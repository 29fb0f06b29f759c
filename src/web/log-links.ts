import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Capability links to a task's full log: the URL carries an HMAC of the task id, so only
 * someone who was shown the link (on the check run) can read it. Logs are redacted before
 * they are stored.
 */
export function logSignature(secret: string, taskId: string): string {
  return createHmac("sha256", `task-log:${secret}`).update(taskId).digest("hex");
}

export function logUrl(publicUrl: string, secret: string, taskId: string): string {
  return `${publicUrl.replace(/\/$/, "")}/logs/${taskId}?sig=${logSignature(secret, taskId)}`;
}

export function verifyLogSignature(secret: string, taskId: string, sig: string): boolean {
  const expected = Buffer.from(logSignature(secret, taskId), "hex");
  const given = Buffer.from(/^[0-9a-f]{64}$/.test(sig) ? sig : "", "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The link for a task's log, or null when the app has no public URL configured. */
export function taskLogUrl(config: { publicUrl: string | undefined; github: { webhookSecret: string | undefined } }, taskId: string): string | null {
  if (!config.publicUrl || !config.github.webhookSecret) return null;
  return logUrl(config.publicUrl, config.github.webhookSecret, taskId);
}
