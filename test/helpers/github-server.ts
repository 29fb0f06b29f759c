import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GitHubFake, SECONDARY_LIMIT_BODY, type ContentLimitOptions, type RecordedCall, type Reply } from "./github-fake.js";

/** The API path prefix of a GitHub Enterprise Server, which is what GHE_HOST points the app at. */
const API_PREFIX = "/api/v3";

/** An injected failure: the next `remaining` matching calls get this answer instead of the fake's. */
interface Fault {
  remaining: number;
  status: number;
  headers: Record<string, string>;
  body: unknown;
  match: (c: { method: string; path: string }) => boolean;
}

export interface FaultOptions {
  /** Only calls this matches are failed (default: every call). `path` is without the /api/v3 prefix. */
  match?: (c: { method: string; path: string }) => boolean;
  /** Sent as `retry-after` (seconds). */
  retryAfterSeconds?: number;
  /** Response body (default: a message shaped like GitHub's for that status). */
  body?: unknown;
  /** More response headers, e.g. `x-ratelimit-remaining: 0` and `x-ratelimit-reset` for a primary rate limit. */
  headers?: Record<string, string>;
}

function defaultFaultBody(status: number): unknown {
  if (status === 403 || status === 429) return { ...SECONDARY_LIMIT_BODY };
  if (status >= 500) return { message: "Server Error" };
  return { message: `HTTP ${status}` };
}

/**
 * A primary rate limit as GitHub answers it (403, quota used up, resets in `seconds`): Probot's
 * throttling retries these (twice). A secondary limit (`failNext(n, 403 | 429)` with the default
 * body) is retried after `retry-after` by the app's own handler (withGitHubPacing):
 * Probot's default only logs it.
 */
export function primaryRateLimit(seconds = 1): FaultOptions {
  return {
    retryAfterSeconds: seconds,
    headers: { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(Math.ceil(Date.now() / 1000) + seconds) },
    body: { message: "API rate limit exceeded for installation ID 4242.", documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api" },
  };
}

/**
 * GitHub's REST API as a real HTTP server on 127.0.0.1, for app processes the test spawns (they
 * cannot see this process's nock). The routing and state are GitHubFake's (`fake`); this adds
 * the transport and fault injection: `failNext` answers the next N calls with 502, or 403/429
 * with `retry-after`, before the fake sees them. Failed calls are recorded in `faulted`, not
 * in `calls`, so counts of what GitHub accepted stay exact.
 *
 * Point an app at it with `env` (GHE_HOST=127.0.0.1:<port>, GHE_PROTOCOL=http): the app then
 * talks to `http://127.0.0.1:<port>/api/v3`, as it would to a GitHub Enterprise Server.
 *
 * `start(repo, token, { contentLimit: {} })` also enforces GitHub's content-creation limit (80
 * writes a minute per installation; GitHubFake's ContentLimitOptions): writes past it get 403
 * with `retry-after`, counted in `limited` (`fake.limitedCalls`), not in `calls`.
 */
export class GitHubServer {
  readonly faulted: RecordedCall[] = [];
  private readonly faults: Fault[] = [];
  private readonly events = new EventEmitter();

  private constructor(
    readonly fake: GitHubFake,
    private readonly server: Server,
    readonly port: number,
  ) {
    this.events.setMaxListeners(100);
  }

  static async start(repo: string, token: string, opts: { contentLimit?: ContentLimitOptions } = {}): Promise<GitHubServer> {
    let self: GitHubServer | null = null;
    const server = createServer((req, res) => {
      if (!self) {
        res.writeHead(503).end();
        return;
      }
      void self.serve(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ message: `github stand-in failed: ${(err as Error).message}` }));
      });
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const fake = new GitHubFake(repo, token, `http://127.0.0.1:${port}${API_PREFIX}`, { intercept: false, ...(opts.contentLimit ? { contentLimit: opts.contentLimit } : {}) });
    self = new GitHubServer(fake, server, port);
    return self;
  }

  /** The REST base URL the app uses (config.github.apiBaseUrl). */
  get apiBaseUrl(): string {
    return `http://127.0.0.1:${this.port}${API_PREFIX}`;
  }

  /** Environment that points an app (process) at this server. */
  get env(): Record<string, string> {
    return { GHE_HOST: `127.0.0.1:${this.port}`, GHE_PROTOCOL: "http" };
  }

  get calls(): RecordedCall[] {
    return this.fake.calls;
  }

  /** Writes the content-creation limit refused (403 with retry-after). */
  get limited(): number {
    return this.fake.limited;
  }

  /** Resolves with the first answered call (already made or still to come) that matches. */
  waitFor(pred: (c: RecordedCall) => boolean, what?: string, timeoutMs?: number): Promise<RecordedCall> {
    return this.fake.waitFor(pred, what, timeoutMs);
  }

  find(method: string, pathRe: RegExp): RecordedCall[] {
    return this.fake.find(method, pathRe);
  }

  /** Resolves once `n` injected failures have been served (so far and to come). */
  waitForFaults(n: number, timeoutMs = 45_000): Promise<void> {
    if (this.faulted.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.events.off("fault", on);
        reject(new Error(`timed out waiting for ${n} injected failures; served ${this.faulted.length}`));
      }, timeoutMs);
      const on = () => {
        if (this.faulted.length < n) return;
        clearTimeout(timer);
        this.events.off("fault", on);
        resolve();
      };
      this.events.on("fault", on);
    });
  }

  /**
   * The next `n` calls (that `opts.match` accepts) are answered with `status` instead of being
   * handled; e.g. `failNext(2, 502)` or `failNext(1, 429, { retryAfterSeconds: 1 })`. Faults
   * queue up in the order they were asked for.
   */
  failNext(n: number, status: number, opts: FaultOptions = {}): void {
    this.faults.push({
      remaining: n,
      status,
      headers: { ...(opts.retryAfterSeconds !== undefined ? { "retry-after": String(opts.retryAfterSeconds) } : {}), ...opts.headers },
      body: opts.body ?? defaultFaultBody(status),
      match: opts.match ?? (() => true),
    });
  }

  /** Faults asked for and not yet served. */
  get pendingFaults(): number {
    return this.faults.reduce((n, f) => n + f.remaining, 0);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", this.apiBaseUrl);
    const path = url.pathname.startsWith(API_PREFIX) ? url.pathname.slice(API_PREFIX.length) : url.pathname;

    const fault = this.faults.find((f) => f.remaining > 0 && f.match({ method, path }));
    let reply: Reply;
    if (fault) {
      fault.remaining--;
      if (fault.remaining === 0) this.faults.splice(this.faults.indexOf(fault), 1);
      let body: Record<string, unknown> | null = null;
      try {
        body = raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
      } catch {
        body = null;
      }
      this.faulted.push({ method, path, query: url.searchParams, body, headers });
      this.events.emit("fault");
      reply = [fault.status, fault.body, fault.headers];
    } else {
      reply = this.fake.respond(method, url.toString(), raw, headers);
    }
    const [status, body, extra = {}] = reply;
    const isText = typeof body === "string";
    const payload = status === 204 ? "" : isText ? body : JSON.stringify(body);
    res.writeHead(status, {
      "content-type": isText ? "text/plain; charset=utf-8" : "application/json; charset=utf-8",
      ...extra,
    });
    res.end(payload);
  }
}
