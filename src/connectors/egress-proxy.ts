/**
 * Egress allowlist proxy: lets a sandboxed stack that needs a cloud API reach exactly the
 * destinations the server operator allows, and nothing else.
 *
 * Design
 * ------
 * - A sandbox WITHOUT an allowlist keeps Docker network `none`: no interface but loopback,
 *   no egress at all. Nothing in this module is involved.
 * - A sandbox WITH an allowlist is attached to a Docker `--internal` network (no route out
 *   of the host). The only other member of that network that accepts connections is this
 *   proxy, so the proxy is the container's sole path to the outside world.
 * - Before the container starts, the task calls `proxy.grant(taskId, rules)`. That registers
 *   the task's allowlist under a fresh random token (`crypto.randomBytes(24)`, hex) and
 *   returns `http://task:<token>@<proxy-host>:<port>`, which the container receives as
 *   `HTTPS_PROXY` / `HTTP_PROXY` (and lower-case variants).
 * - For every `CONNECT host:port` the proxy
 *     1. authenticates the `Proxy-Authorization: Basic task:<token>` credentials against the
 *        live grants (SHA-256 digests compared with `timingSafeEqual`, every grant checked,
 *        no early exit) -> `407` + `Proxy-Authenticate: Basic realm="egress"` otherwise;
 *     2. checks host:port against that task's allowlist -> `403` (logged with task id, host,
 *        port) otherwise. Denied names are never even resolved, so DNS is no side channel;
 *     3. for a *name*, resolves it once and — unless `blockPrivateResolution: false` —
 *        refuses (`403`) if ANY address is loopback / private / link-local / unique-local /
 *        multicast / unspecified / reserved (DNS rebinding onto host or cloud-metadata
 *        services). It then connects to the address it checked, never re-resolving, so the
 *        answer cannot change between check and use. IP-literal rules are exempt: an operator
 *        who writes `10.0.0.5:5432` means exactly that address;
 *     4. connects (bounded by `connectTimeoutMs`, which also bounds resolution) -> `502` on
 *        failure/timeout, else `200 Connection Established` and bytes are piped both ways.
 * - Only TLS-style tunnels are offered. Plain-HTTP proxy requests (absolute-URI `GET` etc.)
 *   and `Upgrade` requests are refused with `403` ("only HTTPS via CONNECT") and are never
 *   forwarded: the proxy does not parse or rewrite application traffic.
 * - `revoke(taskId)` (call it when the task's sandbox is torn down) makes the token stop
 *   working immediately and destroys every tunnel (and in-flight CONNECT) of that task.
 *   Re-granting a task replaces its token and rules and likewise ends the old tunnels.
 * - Robustness: request headers are bounded (`maxHeaderSize`, `431` beyond it), slow
 *   header senders are cut off (`headersTimeout`), malformed requests get `400`, and
 *   client/upstream socket errors only end the affected connection, never the process.
 *   `close()` stops listening and ends all tunnels.
 *
 * Stats: `allowed` counts tunnels established (200), `denied` counts 403 refusals (not on the
 * allowlist, private resolution, plain HTTP), `unauthorized` counts 407s. 400/431/502 are not
 * counted in any of them.
 *
 * Rule syntax and matching (`parseEgressRules`, `isAllowed`): src/approval/egress.ts.
 *
 * Tests run this proxy only as a server on 127.0.0.1; the Docker wiring (internal network,
 * container env) lives with the sandbox connector.
 *
 * Long (about 440 lines) on purpose: the grant table, the CONNECT handling, the refusals and the
 * address checks are one security boundary, kept together so it can be audited as a whole.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { lookup } from "node:dns/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { BlockList, connect as netConnect, isIP, isIPv6 } from "node:net";
import type { Duplex } from "node:stream";
import { pino, type Logger } from "pino";
import { canonicalIPv6, normalizeHost, parsePort, ruleMatches, type EgressRule } from "../approval/egress.js";

const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8], // "this network", unspecified
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12],
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved + broadcast
] as const) {
  BLOCKED.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["64:ff9b:1::", 48], // local-use NAT64
  ["fc00::", 7], // unique-local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // deprecated site-local
  ["ff00::", 8], // multicast
] as const) {
  BLOCKED.addSubnet(net, prefix, "ipv6");
}

/**
 * True for addresses a *name* must not resolve to: loopback, RFC 1918 private, CGNAT,
 * link-local, unique-local, multicast, unspecified and reserved ranges (IPv4-mapped IPv6
 * forms included). Non-IP input counts as blocked.
 */
export function isPrivateAddress(address: string): boolean {
  const v = isIP(address);
  if (v === 4) return BLOCKED.check(address, "ipv4");
  if (v === 6) {
    if (BLOCKED.check(address, "ipv6")) return true;
    // NAT64 well-known prefix embeds an IPv4 address in the last 32 bits.
    const c = canonicalIPv6(address) ?? "";
    const m = /^64:ff9b::(?:ffff:)?([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(c);
    if (m) {
      const hi = parseInt(m[1]!, 16);
      const lo = parseInt(m[2]!, 16);
      return BLOCKED.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, "ipv4");
    }
    return false;
  }
  return true;
}

export interface EgressProxyOptions {
  /** Listen address. Default 127.0.0.1. */
  host?: string;
  /** Listen port. Default 0 (ephemeral). */
  port?: number;
  /** Host name/address containers use to reach the proxy, put into grant() URLs. Default: `host`. */
  advertiseHost?: string;
  log?: Logger;
  /**
   * Refuse when a *name* resolves to loopback/private/link-local/unique-local/multicast
   * addresses (DNS rebinding to internal services); IP-literal rules are exempt. Default true.
   */
  blockPrivateResolution?: boolean;
  /** Bound on resolving plus connecting upstream; 502 beyond it. Default 10 000. */
  connectTimeoutMs?: number;
  /** Name resolution; default dns.lookup(all). Returns IP addresses. */
  resolve?: (host: string) => Promise<string[]>;
}

interface Grant {
  taskId: string;
  digest: Buffer;
  rules: EgressRule[];
  /** Client and upstream sockets of this task's tunnels and in-flight CONNECTs. */
  sockets: Set<Duplex>;
}

const MAX_HEADER_BYTES = 16 * 1024;
const HEADERS_TIMEOUT_MS = 10_000;
const REFUSE_LINGER_MS = 2_000;

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
};

function digestOf(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

async function defaultResolve(host: string): Promise<string[]> {
  const answers = await lookup(host, { all: true, verbatim: true });
  return answers.map((a) => a.address);
}

/** Splits a CONNECT request-target ("host:port" or "[v6]:port"). */
function parseAuthority(target: string): { host: string; ip: boolean; port: number } | null {
  const m = /^(\[[^\]]+\]|[^:[\]]+):([0-9]{1,5})$/.exec(target);
  if (!m) return null;
  const port = parsePort(m[2]!);
  const h = normalizeHost(m[1]!);
  if (port === null || h === null) return null;
  return { host: h.host, ip: h.ip, port };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export class EgressProxy {
  readonly port: number;
  readonly #server: Server;
  readonly #log: Logger;
  readonly #urlHost: string;
  readonly #blockPrivate: boolean;
  readonly #connectTimeoutMs: number;
  readonly #resolve: (host: string) => Promise<string[]>;
  readonly #grants = new Map<string, Grant>();
  /** Every socket handed to us by a CONNECT, plus upstream sockets. */
  readonly #tunnels = new Set<Duplex>();
  readonly #stats = { allowed: 0, denied: 0, unauthorized: 0 };
  #closed = false;

  private constructor(server: Server, port: number, opts: EgressProxyOptions) {
    this.#server = server;
    this.port = port;
    this.#log = opts.log ?? pino({ enabled: false });
    const h = opts.advertiseHost ?? opts.host ?? "127.0.0.1";
    this.#urlHost = isIPv6(h) ? `[${h}]` : h;
    this.#blockPrivate = opts.blockPrivateResolution ?? true;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.#resolve = opts.resolve ?? defaultResolve;

    server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#onConnect(req, socket, head).catch((err: unknown) => {
        this.#log.error({ err }, "egress proxy: unexpected error handling CONNECT");
        this.#refuse(socket, 502, "bad gateway");
      });
    });
    server.on("request", (req: IncomingMessage, res: ServerResponse) => this.#onPlainRequest(req, res));
    server.on("upgrade", (_req: IncomingMessage, socket: Duplex) => {
      this.#stats.denied++;
      this.#refuse(socket, 403, "only HTTPS via CONNECT");
    });
    server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
      const code = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
      this.#log.debug({ code: err.code }, "egress proxy: malformed client request");
      this.#refuse(socket, code, STATUS_TEXT[code]!.toLowerCase());
    });
  }

  static async start(opts: EgressProxyOptions = {}): Promise<EgressProxy> {
    const server = createServer({
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: 1_000,
      keepAliveTimeout: 1_000,
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr === null || typeof addr === "string") throw new Error("egress proxy: no TCP address");
    server.on("error", () => {
      /* listening socket errors after start are not fatal to the process */
    });
    return new EgressProxy(server, addr.port, opts);
  }

  get stats(): { allowed: number; denied: number; unauthorized: number } {
    return { ...this.#stats };
  }

  /** Registers a task's allowlist; returns the proxy URL with a fresh random token for the container's HTTPS_PROXY. */
  grant(taskId: string, rules: EgressRule[]): string {
    if (this.#closed) throw new Error("egress proxy is closed");
    if (taskId === "") throw new Error("egress proxy: empty task id");
    this.revoke(taskId);
    const token = randomBytes(24).toString("hex");
    this.#grants.set(taskId, {
      taskId,
      digest: digestOf(token),
      rules: rules.map((r) => ({ host: r.host, port: r.port })),
      sockets: new Set(),
    });
    return `http://task:${token}@${this.#urlHost}:${this.port}`;
  }

  /** The token stops working immediately; open tunnels (and in-flight CONNECTs) of the task are destroyed. */
  revoke(taskId: string): void {
    const g = this.#grants.get(taskId);
    if (!g) return;
    this.#grants.delete(taskId);
    for (const s of g.sockets) s.destroy();
    g.sockets.clear();
  }

  async close(): Promise<void> {
    this.#closed = true;
    const done = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const id of [...this.#grants.keys()]) this.revoke(id);
    for (const s of this.#tunnels) s.destroy();
    this.#tunnels.clear();
    this.#server.closeAllConnections();
    await done;
  }

  /** Constant-time lookup of the grant for presented Basic credentials. */
  #authenticate(header: string | undefined): Grant | null {
    if (header === undefined) return null;
    const m = /^basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header);
    if (!m) return null;
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon === -1 || decoded.slice(0, colon) !== "task") return null;
    const presented = digestOf(decoded.slice(colon + 1));
    let found: Grant | null = null;
    for (const g of this.#grants.values()) {
      // No early exit: the time taken does not depend on which grant (if any) matched.
      if (timingSafeEqual(presented, g.digest) && found === null) found = g;
    }
    return found;
  }

  async #onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    this.#tunnels.add(socket);
    socket.once("close", () => this.#tunnels.delete(socket));
    if (this.#closed) return void socket.destroy();

    const target = parseAuthority(req.url ?? "");
    if (target === null) return this.#refuse(socket, 400, "CONNECT target must be host:port");

    const grant = this.#authenticate(req.headers["proxy-authorization"]);
    if (grant === null) {
      this.#stats.unauthorized++;
      this.#log.info({ host: target.host, port: target.port }, "egress proxy: missing or unknown proxy token");
      return this.#refuse(socket, 407, "proxy authentication required", ['Proxy-Authenticate: Basic realm="egress"']);
    }
    const { taskId } = grant;
    const deny = (reason: string, extra: Record<string, unknown> = {}) => {
      this.#stats.denied++;
      this.#log.warn({ taskId, host: target.host, port: target.port, reason, ...extra }, "egress proxy: destination denied");
      this.#refuse(socket, 403, `destination ${target.host}:${target.port} is not allowed`);
    };
    if (!grant.rules.some((r) => ruleMatches(r, target.host, target.ip, target.port))) return deny("not on allowlist");

    grant.sockets.add(socket);
    socket.once("close", () => grant.sockets.delete(socket));
    const live = () => !socket.destroyed && this.#grants.get(taskId) === grant && !this.#closed;
    const started = Date.now();
    const remaining = () => Math.max(1, this.#connectTimeoutMs - (Date.now() - started));

    let address = target.host;
    if (!target.ip) {
      let addresses: string[];
      try {
        addresses = await withTimeout(this.#resolve(target.host), remaining(), "resolution");
      } catch (err) {
        if (!live()) return void socket.destroy();
        this.#log.warn({ taskId, host: target.host, port: target.port, err: String(err) }, "egress proxy: resolution failed");
        return this.#refuse(socket, 502, `could not resolve ${target.host}`);
      }
      if (!live()) return void socket.destroy();
      const valid = addresses.filter((a) => isIP(a) !== 0);
      if (valid.length === 0) return this.#refuse(socket, 502, `could not resolve ${target.host}`);
      if (this.#blockPrivate) {
        const internal = valid.filter((a) => isPrivateAddress(a));
        if (internal.length > 0) return deny("name resolves to a private/internal address", { addresses: internal });
      }
      address = valid[0]!;
    }

    const upstream = netConnect({ host: address, port: target.port });
    this.#tunnels.add(upstream);
    grant.sockets.add(upstream);
    upstream.once("close", () => {
      this.#tunnels.delete(upstream);
      grant.sockets.delete(upstream);
    });
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        upstream.destroy();
        resolve(false);
      }, remaining());
      const finish = (v: boolean) => {
        clearTimeout(timer);
        upstream.off("connect", onConnect);
        upstream.off("error", onError);
        socket.off("close", onClientClose);
        resolve(v);
      };
      const onConnect = () => finish(true);
      const onError = () => finish(false);
      const onClientClose = () => finish(false);
      upstream.once("connect", onConnect);
      upstream.once("error", onError);
      socket.once("close", onClientClose);
    });
    upstream.on("error", () => upstream.destroy());
    if (!live()) {
      upstream.destroy();
      return void socket.destroy();
    }
    if (!ok) {
      upstream.destroy();
      this.#log.warn({ taskId, host: target.host, port: target.port, address }, "egress proxy: upstream connection failed");
      return this.#refuse(socket, 502, `could not connect to ${target.host}:${target.port}`);
    }

    this.#stats.allowed++;
    this.#log.info({ taskId, host: target.host, port: target.port, address }, "egress proxy: tunnel established");
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) upstream.write(head);
    const teardown = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.once("close", teardown);
    upstream.once("close", teardown);
    socket.pipe(upstream);
    upstream.pipe(socket);
  }

  #onPlainRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#stats.denied++;
    this.#log.warn({ method: req.method, url: (req.url ?? "").slice(0, 200) }, "egress proxy: plain HTTP proxy request refused");
    req.resume();
    const body = "only HTTPS via CONNECT\n";
    res.writeHead(403, {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": Buffer.byteLength(body),
      Connection: "close",
    });
    res.end(body);
  }

  /** Writes a final response on a raw socket and closes it. */
  #refuse(socket: Duplex, status: number, message: string, extraHeaders: string[] = []): void {
    if (socket.destroyed) return;
    socket.on("error", () => socket.destroy());
    const body = `${message}\n`;
    const head = [
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}`,
      ...extraHeaders,
      "Content-Type: text/plain; charset=utf-8",
      `Content-Length: ${Buffer.byteLength(body)}`,
      "Connection: close",
      "",
      "",
    ].join("\r\n");
    if (!socket.writable) return void socket.destroy();
    socket.end(head + body);
    // Give the client a moment to read the response, then make sure the socket goes away
    // even if it never closes its side.
    const t = setTimeout(() => socket.destroy(), REFUSE_LINGER_MS);
    t.unref();
    socket.once("close", () => clearTimeout(t));
  }
}
