/**
 * What every route of the web tier shares: the error a handler throws to answer with a status,
 * bounded body reading, JSON answers, and constant-time token checks.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/** Thrown by a route handler: the router answers `{ ok: false, error: message }` with `status`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The body as UTF-8, or a 413 HttpError (and the request destroyed) once it passes `maxBytes`. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
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

/** A 413 before reading when the declared Content-Length is already over `maxBytes`. */
export function refuseDeclaredOver(req: IncomingMessage, maxBytes: number): void {
  if (Number(header(req, "content-length") ?? 0) > maxBytes) throw new HttpError(413, "payload too large");
}

export function send(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Secrets are compared as SHA-256 digests: equal-length buffers for timingSafeEqual, and
 * nothing about the token's length leaks through timing either.
 */
export function digest(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}

function sameSecret(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

/** Whether the request carries `Authorization: Bearer <secret>`, compared in constant time. */
export function bearerMatches(req: IncomingMessage, expected: Buffer | null): boolean {
  const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header(req, "authorization") ?? "");
  if (!m || !expected) return false;
  return sameSecret(m[1]!, expected);
}

/** Whether the request carries `Authorization: Basic <user:secret>` with that user, the secret compared in constant time. */
export function basicMatches(req: IncomingMessage, user: string, expected: Buffer | null): boolean {
  const m = /^Basic[ ]+([A-Za-z0-9+/=]+)[ ]*$/i.exec(header(req, "authorization") ?? "");
  if (!m || !expected) return false;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return false;
  const passwordOk = sameSecret(decoded.slice(colon + 1), expected);
  return decoded.slice(0, colon) === user && passwordOk;
}
