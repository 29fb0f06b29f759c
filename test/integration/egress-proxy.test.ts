/**
 * The egress proxy against real sockets, 127.0.0.1 only: a TCP echo server plays the cloud API,
 * a fake resolver maps test names onto 127.0.0.1. No Docker, no outside network, no sleeps:
 * every wait is on a socket event, bounded by a timer.
 */
import { request as httpRequest } from "node:http";
import { connect as netConnect, createServer, type Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseEgressRules } from "../../src/approval/egress.js";
import { EgressProxy } from "../../src/connectors/egress-proxy.js";

const WAIT_MS = 5_000;

/** A raw TCP client that buffers everything it receives, so tests can await exact bytes. */
class Client {
  buf = Buffer.alloc(0);
  closed = false;
  #waiters = new Set<() => void>();

  constructor(readonly socket: Socket) {
    socket.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.#notify();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#notify();
    });
    socket.on("error", () => {
      /* surfaced as close */
    });
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves with check()'s first non-undefined value; rejects if the socket closes first or after WAIT_MS. */
  until<T>(what: string, check: () => T | undefined, allowClosed = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.buf.toString("latin1"))}`));
      }, WAIT_MS);
      const waiter = () => {
        const v = check();
        if (v !== undefined) {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(v);
        } else if (this.closed && !allowClosed) {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          reject(new Error(`socket closed while waiting for ${what}; received ${JSON.stringify(this.buf.toString("latin1"))}`));
        }
      };
      this.#waiters.add(waiter);
      waiter();
    });
  }

  /** Reads one HTTP response head (and its Content-Length body) off the front of the buffer. */
  async response(): Promise<{ status: number; statusLine: string; headers: Record<string, string>; body: string }> {
    const headEnd = await this.until("response head", () => {
      const i = this.buf.indexOf("\r\n\r\n");
      return i === -1 ? undefined : i;
    });
    const lines = this.buf.subarray(0, headEnd).toString("latin1").split("\r\n");
    const statusLine = lines[0]!;
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(":");
      headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
    }
    const length = Number(headers["content-length"] ?? 0);
    const total = headEnd + 4 + length;
    await this.until("response body", () => (this.buf.length >= total ? true : undefined));
    const body = this.buf.subarray(headEnd + 4, total).toString("utf8");
    this.buf = this.buf.subarray(total);
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
    return { status: m ? Number(m[1]) : NaN, statusLine, headers, body };
  }

  async read(n: number): Promise<string> {
    await this.until(`${n} bytes`, () => (this.buf.length >= n ? true : undefined));
    const out = this.buf.subarray(0, n).toString("utf8");
    this.buf = this.buf.subarray(n);
    return out;
  }

  whenClosed(): Promise<true> {
    return this.until("close", () => (this.closed ? true : undefined), true);
  }
}

const clients: Client[] = [];
async function open(port: number): Promise<Client> {
  const socket = netConnect({ host: "127.0.0.1", port });
  const c = new Client(socket);
  clients.push(c);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return c;
}

const basic = (token: string, user = "task") => `Basic ${Buffer.from(`${user}:${token}`).toString("base64")}`;
const tokenOf = (proxyUrl: string) => new URL(proxyUrl).password;

function connectRequest(target: string, auth: string | null, extra = ""): string {
  return `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth === null ? "" : `Proxy-Authorization: ${auth}\r\n`}${extra}\r\n`;
}

/** Opens a client, sends CONNECT and returns the parsed response with the client (tunnel if 200). */
async function tunnel(proxy: EgressProxy, target: string, auth: string | null, trailing = "") {
  const c = await open(proxy.port);
  c.socket.write(connectRequest(target, auth) + trailing);
  const res = await c.response();
  return { ...res, client: c };
}

/** The "cloud API": echoes bytes back and counts connections. */
class EchoServer {
  connections = 0;
  readonly sockets = new Set<Socket>();
  readonly #closeWaiters: Array<() => void> = [];
  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<EchoServer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const addr = server.address();
    if (addr === null || typeof addr === "string") throw new Error("no address");
    const echo = new EchoServer(server, addr.port);
    server.on("connection", (s) => {
      echo.connections++;
      echo.sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        echo.sockets.delete(s);
        for (const w of echo.#closeWaiters.splice(0)) w();
      });
      s.pipe(s);
    });
    return echo;
  }

  /** Resolves once the server holds no open connections (bounded). */
  drained(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`echo server still has ${this.sockets.size} connections`)), WAIT_MS);
      const check = () => {
        if (this.sockets.size === 0) {
          clearTimeout(timer);
          resolve();
        } else this.#closeWaiters.push(check);
      };
      check();
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const addr = s.address();
  if (addr === null || typeof addr === "string") throw new Error("no address");
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return addr.port;
}

const DNS: Record<string, string[]> = {
  "api.cloud.test": ["127.0.0.1"],
  "other.cloud.test": ["127.0.0.1"],
  "eu.api.wild.test": ["127.0.0.1"],
  "deep.eu.api.wild.test": ["127.0.0.1"],
  "wild.test": ["127.0.0.1"],
  "rebind.test": ["127.0.0.1"],
  // One public and one internal answer: still refused.
  "mixed.test": ["93.184.216.34", "127.0.0.1"],
};
const lookups: string[] = [];
async function fakeResolve(host: string): Promise<string[]> {
  lookups.push(host);
  const a = DNS[host];
  if (a === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
  return a;
}

function captureLog() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString("utf8").split("\n")) if (l.trim() !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, log: pino({ level: "debug" }, stream) };
}

describe("EgressProxy on 127.0.0.1", () => {
  let echo: EchoServer;
  /** blockPrivateResolution: false, so names resolving to 127.0.0.1 may reach the echo server. */
  let open_: EgressProxy;
  /** Default settings (blockPrivateResolution: true). */
  let strict: EgressProxy;
  const strictLog = captureLog();
  const extraProxies: EgressProxy[] = [];
  let seq = 0;
  const task = () => `task-${++seq}`;

  beforeAll(async () => {
    echo = await EchoServer.start();
    open_ = await EgressProxy.start({ resolve: fakeResolve, blockPrivateResolution: false });
    strict = await EgressProxy.start({ resolve: fakeResolve, log: strictLog.log });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await echo.drained();
  });
  afterAll(async () => {
    await open_?.close();
    await strict?.close();
    for (const p of extraProxies) await p.close();
    await echo?.stop();
  });

  it("grant() hands out http://task:<48 hex>@host:port, a fresh token each time; re-granting retires the old token", async () => {
    const id = task();
    const first = open_.grant(id, parseEgressRules([`api.cloud.test:${echo.port}`]));
    expect(first).toMatch(new RegExp(`^http://task:[0-9a-f]{48}@127\\.0\\.0\\.1:${open_.port}$`));
    const second = open_.grant(id, parseEgressRules([`api.cloud.test:${echo.port}`]));
    expect(tokenOf(second)).not.toBe(tokenOf(first));
    expect((await tunnel(open_, `api.cloud.test:${echo.port}`, basic(tokenOf(first)))).status).toBe(407);
    const ok = await tunnel(open_, `api.cloud.test:${echo.port}`, basic(tokenOf(second)));
    expect(ok.status).toBe(200);
  });

  it("tunnels bytes both ways to an allowed name (blockPrivateResolution: false)", async () => {
    const url = open_.grant(task(), parseEgressRules([`api.cloud.test:${echo.port}`]));
    const before = echo.connections;
    // Bytes sent right behind the CONNECT head (same write) must reach upstream too.
    const t = await tunnel(open_, `api.cloud.test:${echo.port}`, basic(tokenOf(url)), "early|");
    expect(t.statusLine).toBe("HTTP/1.1 200 Connection Established");
    expect(await t.client.read(6)).toBe("early|");
    t.client.socket.write("hello cloud");
    expect(await t.client.read(11)).toBe("hello cloud");
    const big = "x".repeat(256 * 1024);
    t.client.socket.write(big);
    expect(await t.client.read(big.length)).toBe(big);
    expect(echo.connections).toBe(before + 1);
    // Half-close propagates: the echo server ends, and so does the tunnel.
    t.client.socket.end();
    await t.client.whenClosed();
  });

  it("tunnels to an IP-literal rule with default settings (private-resolution block does not apply)", async () => {
    const url = strict.grant(task(), parseEgressRules([`127.0.0.1:${echo.port}`]));
    const t = await tunnel(strict, `127.0.0.1:${echo.port}`, basic(tokenOf(url)));
    expect(t.status).toBe(200);
    t.client.socket.write("ping");
    expect(await t.client.read(4)).toBe("ping");
  });

  it("refuses a name that resolves to 127.0.0.1 with default settings (DNS rebinding) and logs it", async () => {
    const id = task();
    const url = strict.grant(id, parseEgressRules([`rebind.test:${echo.port}`, `mixed.test:${echo.port}`]));
    const before = echo.connections;
    const t = await tunnel(strict, `rebind.test:${echo.port}`, basic(tokenOf(url)));
    expect(t.status).toBe(403);
    expect(t.statusLine).toBe("HTTP/1.1 403 Forbidden");
    await t.client.whenClosed();
    // A mix of public and internal answers is refused as well.
    const mixed = await tunnel(strict, `mixed.test:${echo.port}`, basic(tokenOf(url)));
    expect(mixed.status).toBe(403);
    expect(echo.connections).toBe(before);
    expect(strictLog.lines).toContainEqual(
      expect.objectContaining({ taskId: id, host: "rebind.test", port: echo.port, msg: "egress proxy: destination denied" }),
    );
  });

  it("refuses a host that is not on the allowlist: 403, logged, never resolved, nothing reaches upstream", async () => {
    const id = task();
    const url = strict.grant(id, parseEgressRules([`127.0.0.1:${echo.port}`]));
    const before = echo.connections;
    lookups.length = 0;
    const t = await tunnel(strict, `other.cloud.test:${echo.port}`, basic(tokenOf(url)));
    expect(t.status).toBe(403);
    expect(t.body).toContain("not allowed");
    await t.client.whenClosed();
    // Another loopback address is not the allowed one either.
    expect((await tunnel(strict, `127.0.0.2:${echo.port}`, basic(tokenOf(url)))).status).toBe(403);
    expect(lookups).toEqual([]);
    expect(echo.connections).toBe(before);
    expect(strictLog.lines).toContainEqual(
      expect.objectContaining({ level: 40, taskId: id, host: "other.cloud.test", port: echo.port, reason: "not on allowlist" }),
    );
  });

  it("refuses a port that does not match the rule", async () => {
    const url = open_.grant(task(), parseEgressRules([`api.cloud.test:${echo.port}`, `127.0.0.1:${echo.port}`]));
    const before = echo.connections;
    const other = echo.port === 65535 ? 1 : echo.port + 1;
    expect((await tunnel(open_, `api.cloud.test:${other}`, basic(tokenOf(url)))).status).toBe(403);
    expect((await tunnel(open_, "api.cloud.test:443", basic(tokenOf(url)))).status).toBe(403);
    expect((await tunnel(open_, `127.0.0.1:${other}`, basic(tokenOf(url)))).status).toBe(403);
    expect(echo.connections).toBe(before);
  });

  it("a wildcard rule matches subdomains (any depth, any case) but not the apex", async () => {
    const url = open_.grant(task(), parseEgressRules([`*.wild.test:${echo.port}`]));
    const auth = basic(tokenOf(url));
    const sub = await tunnel(open_, `eu.api.wild.test:${echo.port}`, auth);
    expect(sub.status).toBe(200);
    sub.client.socket.write("sub");
    expect(await sub.client.read(3)).toBe("sub");
    expect((await tunnel(open_, `DEEP.eu.api.wild.test.:${echo.port}`, auth)).status).toBe(200);
    const before = echo.connections;
    expect((await tunnel(open_, `wild.test:${echo.port}`, auth)).status).toBe(403);
    expect(echo.connections).toBe(before);
  });

  it("answers 407 with Proxy-Authenticate for a missing, wrong, malformed or revoked token", async () => {
    const id = task();
    const url = open_.grant(id, parseEgressRules([`api.cloud.test:${echo.port}`]));
    const token = tokenOf(url);
    const target = `api.cloud.test:${echo.port}`;
    const before = open_.stats.unauthorized;
    const attempts: Array<string | null> = [
      null,
      basic("0".repeat(48)),
      basic(token.slice(0, -1)),
      basic(token, "someone-else"),
      `Bearer ${token}`,
      "Basic !!!not-base64!!!",
    ];
    for (const auth of attempts) {
      const t = await tunnel(open_, target, auth);
      expect(t.statusLine).toBe("HTTP/1.1 407 Proxy Authentication Required");
      expect(t.headers["proxy-authenticate"]).toBe('Basic realm="egress"');
      await t.client.whenClosed();
    }
    expect((await tunnel(open_, target, basic(token))).status).toBe(200);
    open_.revoke(id);
    const revoked = await tunnel(open_, target, basic(token));
    expect(revoked.status).toBe(407);
    expect(revoked.headers["proxy-authenticate"]).toBe('Basic realm="egress"');
    expect(open_.stats.unauthorized).toBe(before + attempts.length + 1);
  });

  it("one task's token does not unlock another task's destinations", async () => {
    const a = open_.grant(task(), parseEgressRules(["127.0.0.1:1"]));
    open_.grant(task(), parseEgressRules([`api.cloud.test:${echo.port}`]));
    expect((await tunnel(open_, `api.cloud.test:${echo.port}`, basic(tokenOf(a)))).status).toBe(403);
  });

  it("revoke() closes the task's open tunnels, on both sides, and leaves other tasks alone", async () => {
    const id = task();
    const url = open_.grant(id, parseEgressRules([`api.cloud.test:${echo.port}`]));
    const keep = open_.grant(task(), parseEgressRules([`api.cloud.test:${echo.port}`]));
    const t = await tunnel(open_, `api.cloud.test:${echo.port}`, basic(tokenOf(url)));
    const other = await tunnel(open_, `api.cloud.test:${echo.port}`, basic(tokenOf(keep)));
    expect(t.status).toBe(200);
    expect(other.status).toBe(200);
    t.client.socket.write("before");
    expect(await t.client.read(6)).toBe("before");
    expect(echo.sockets.size).toBe(2);
    open_.revoke(id);
    await t.client.whenClosed();
    // The upstream half is gone too; the other task's tunnel still works.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("upstream socket not closed")), WAIT_MS);
      const check = () => (echo.sockets.size === 1 ? (clearTimeout(timer), resolve()) : undefined);
      for (const s of echo.sockets) s.once("close", check);
      check();
    });
    other.client.socket.write("still here");
    expect(await other.client.read(10)).toBe("still here");
  });

  it("refuses plain-HTTP proxy requests with 403 and does not forward them", async () => {
    const url = open_.grant(task(), parseEgressRules([`127.0.0.1:${echo.port}`, `api.cloud.test:${echo.port}`]));
    const before = echo.connections;
    const deniedBefore = open_.stats.denied;
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({
        host: "127.0.0.1",
        port: open_.port,
        method: "GET",
        path: `http://api.cloud.test:${echo.port}/v1/secrets`,
        headers: { Host: `api.cloud.test:${echo.port}`, "Proxy-Authorization": basic(tokenOf(url)) },
        agent: false,
        timeout: WAIT_MS,
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.on("response", (r) => {
        let body = "";
        r.setEncoding("utf8");
        r.on("data", (d: string) => (body += d));
        r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.end();
    });
    expect(res.status).toBe(403);
    expect(res.body).toContain("only HTTPS via CONNECT");
    // Hand-written, and as an Upgrade request: same answer.
    const c = await open(open_.port);
    c.socket.write(`POST http://127.0.0.1:${echo.port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nhi`);
    expect((await c.response()).status).toBe(403);
    const u = await open(open_.port);
    u.socket.write(`GET http://127.0.0.1:${echo.port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    const up = await u.response();
    expect(up.status).toBe(403);
    expect(up.body).toContain("only HTTPS via CONNECT");
    expect(echo.connections).toBe(before);
    expect(open_.stats.denied).toBe(deniedBefore + 3);
  });

  it("answers 400 to malformed CONNECT requests and keeps serving", async () => {
    const url = open_.grant(task(), parseEgressRules([`api.cloud.test:${echo.port}`]));
    const auth = basic(tokenOf(url));
    for (const raw of [
      "CONNECT this is not valid\r\n\r\n",
      `CONNECT api.cloud.test HTTP/1.1\r\nProxy-Authorization: ${auth}\r\n\r\n`,
      `CONNECT api.cloud.test:99999 HTTP/1.1\r\nProxy-Authorization: ${auth}\r\n\r\n`,
      `CONNECT bad_host!:443 HTTP/1.1\r\nProxy-Authorization: ${auth}\r\n\r\n`,
      `CONNECT http://api.cloud.test:${echo.port}/ HTTP/1.1\r\nProxy-Authorization: ${auth}\r\n\r\n`,
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
    ]) {
      const c = await open(open_.port);
      c.socket.write(raw);
      const res = await c.response();
      expect(res.status, JSON.stringify(raw)).toBe(400);
      await c.whenClosed();
    }
    const t = await tunnel(open_, `api.cloud.test:${echo.port}`, auth);
    expect(t.status).toBe(200);
    t.client.socket.write("alive");
    expect(await t.client.read(5)).toBe("alive");
  });

  it("answers 431 to oversized request headers and keeps serving", async () => {
    const url = open_.grant(task(), parseEgressRules([`api.cloud.test:${echo.port}`]));
    const c = await open(open_.port);
    c.socket.write(connectRequest(`api.cloud.test:${echo.port}`, basic(tokenOf(url)), `X-Pad: ${"a".repeat(64 * 1024)}\r\n`));
    expect((await c.response()).status).toBe(431);
    await c.whenClosed();
    expect((await tunnel(open_, `api.cloud.test:${echo.port}`, basic(tokenOf(url)))).status).toBe(200);
  });

  it("answers 502 when the upstream refuses the connection or the name does not resolve", async () => {
    const port = await closedPort();
    const url = strict.grant(task(), parseEgressRules([`127.0.0.1:${port}`, "nxdomain.test:443"]));
    const refused = await tunnel(strict, `127.0.0.1:${port}`, basic(tokenOf(url)));
    expect(refused.statusLine).toBe("HTTP/1.1 502 Bad Gateway");
    await refused.client.whenClosed();
    const nx = await tunnel(strict, "nxdomain.test:443", basic(tokenOf(url)));
    expect(nx.status).toBe(502);
    // Still serving.
    const ok = strict.grant(task(), parseEgressRules([`127.0.0.1:${echo.port}`]));
    expect((await tunnel(strict, `127.0.0.1:${echo.port}`, basic(tokenOf(ok)))).status).toBe(200);
  });

  it("answers 502 when resolution does not finish within connectTimeoutMs", async () => {
    const p = await EgressProxy.start({
      connectTimeoutMs: 200,
      resolve: (host) => (host === "hang.test" ? new Promise<string[]>(() => {}) : fakeResolve(host)),
    });
    extraProxies.push(p);
    const url = p.grant(task(), parseEgressRules(["hang.test:443"]));
    const t = await tunnel(p, "hang.test:443", basic(tokenOf(url)));
    expect(t.status).toBe(502);
  });

  it("counts allowed, denied and unauthorized requests exactly", async () => {
    const p = await EgressProxy.start({ resolve: fakeResolve, blockPrivateResolution: false });
    extraProxies.push(p);
    expect(p.stats).toEqual({ allowed: 0, denied: 0, unauthorized: 0 });
    const url = p.grant(task(), parseEgressRules([`api.cloud.test:${echo.port}`, `127.0.0.1:${await closedPort()}`]));
    const auth = basic(tokenOf(url));
    expect((await tunnel(p, `api.cloud.test:${echo.port}`, auth)).status).toBe(200);
    expect((await tunnel(p, `127.0.0.1:${echo.port}`, auth)).status).toBe(403);
    expect((await tunnel(p, "other.cloud.test:443", auth)).status).toBe(403);
    expect((await tunnel(p, `api.cloud.test:${echo.port}`, null)).status).toBe(407);
    expect((await tunnel(p, `api.cloud.test:${echo.port}`, auth)).status).toBe(200);
    const c = await open(p.port);
    c.socket.write("CONNECT nonsense\r\n\r\n");
    expect((await c.response()).status).toBe(400);
    expect(p.stats).toEqual({ allowed: 2, denied: 2, unauthorized: 1 });
    // The snapshot is a copy, not a live handle callers could write to.
    const s = p.stats as { allowed: number };
    s.allowed = 99;
    expect(p.stats.allowed).toBe(2);
  });

  it("close() ends all open tunnels and stops accepting", async () => {
    const p = await EgressProxy.start({ resolve: fakeResolve, blockPrivateResolution: false });
    const url = p.grant(task(), parseEgressRules([`api.cloud.test:${echo.port}`]));
    const t = await tunnel(p, `api.cloud.test:${echo.port}`, basic(tokenOf(url)));
    expect(t.status).toBe(200);
    const port = p.port;
    await p.close();
    await t.client.whenClosed();
    await expect(
      new Promise<void>((resolve, reject) => {
        const s = netConnect({ host: "127.0.0.1", port });
        s.once("connect", () => {
          s.destroy();
          resolve();
        });
        s.once("error", reject);
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
    expect(() => p.grant("late", [])).toThrow(/closed/);
  });
});
