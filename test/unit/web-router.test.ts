/**
 * The web tier's router (src/web/router.ts) on a real HTTP server with stand-in routes, and the
 * web tier's lazy imports: loading src/web/server.ts must not load bull-board, Express or the
 * root of Slack's Bolt (the web tier's idle memory depends on it). Needs no services.
 */
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpError, send } from "../../src/web/http.js";
import { router, type Route } from "../../src/web/router.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

describe("web router", () => {
  let server: Server;
  let base: string;
  const seen: string[] = [];
  const routes: Route[] = [
    { method: "POST", path: "/exact", handle: async (_req, res) => send(res, 202, { ok: true, route: "exact" }) },
    { method: "GET", path: /^\/items\/([^/]+)$/, handle: async (_req, res, [id]) => send(res, 200, { ok: true, id }) },
    {
      path: "/any-method",
      handle: async (req, res) => {
        seen.push(req.method!);
        send(res, 200, { ok: true, method: req.method });
      },
    },
    {
      method: "GET",
      path: "/teapot",
      handle: async () => {
        throw new HttpError(418, "short and stout");
      },
    },
    {
      method: "GET",
      path: "/boom",
      handle: async () => {
        throw new Error("secret detail");
      },
    },
  ];

  beforeAll(async () => {
    server = createServer(router(routes, { log: pino({ level: "silent" }), failure: "request failed" }));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  const call = async (path: string, method = "GET") => {
    const res = await fetch(`${base}${path}`, { method });
    return { status: res.status, type: res.headers.get("content-type"), json: (await res.json()) as Record<string, unknown> };
  };

  it("matches exact paths and methods, ignoring the query", async () => {
    expect(await call("/exact?x=1", "POST")).toMatchObject({ status: 202, json: { ok: true, route: "exact" } });
  });

  it("passes a pattern's groups to the handler", async () => {
    expect(await call("/items/abc")).toMatchObject({ status: 200, json: { id: "abc" } });
    expect((await call("/items/abc/more")).status).toBe(404);
  });

  it("answers 404 (JSON) for an unknown path or a method the route does not take", async () => {
    for (const [path, method] of [["/nowhere", "GET"], ["/exact", "GET"], ["/items/x", "POST"]] as const) {
      expect(await call(path, method)).toEqual({ status: 404, type: "application/json", json: { ok: false, error: "not found" } });
    }
  });

  it("gives a route without a method every method", async () => {
    expect((await call("/any-method", "DELETE")).json).toMatchObject({ method: "DELETE" });
    expect(seen).toContain("DELETE");
  });

  it("answers an HttpError with its status and message, anything else with a bare 500", async () => {
    expect(await call("/teapot")).toMatchObject({ status: 418, json: { ok: false, error: "short and stout" } });
    expect(await call("/boom")).toEqual({ status: 500, type: "application/json", json: { ok: false, error: "internal error" } });
  });
});

describe("web tier imports", () => {
  it("loading src/web/server.ts loads neither bull-board nor Express nor all of Bolt", async () => {
    const script =
      "import('./src/web/server.ts').then(() => { const keys = Object.keys(require('node:module')._cache);" +
      " console.log(JSON.stringify(keys.filter((k) => /node_modules[\\\\/](@bull-board|express|@slack)[\\\\/]/.test(k)).map((k) => k.replace(/.*node_modules[\\\\/]/, '')))); })";
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "-e", script], { cwd: ROOT, timeout: 30_000 });
    const loaded = JSON.parse(stdout.trim().split("\n").at(-1)!) as string[];
    // Only Bolt's signature verifier, from its own module (src/connectors/slack/interactions.ts).
    expect(loaded.map((k) => k.replace(/\\/g, "/"))).toEqual(["@slack/bolt/dist/receivers/verify-request.js"]);
  });
});
