/**
 * One server under test for bench/ingest.ts, run in a process of its own (forked with an IPC
 * channel) so that the load client never shares an event loop with it. `argv[2]` names it:
 *
 * - `app`: the real web tier, `startApp` with ROLE=web (verify, dedupe and record in
 *   PostgreSQL, enqueue on Redis, 202), configured from the environment like `src/main.ts`.
 * - `probot`: a plain Probot app with a no-op `issue_comment` handler behind Probot's
 *   `createNodeMiddleware` on node:http (verify, parse, run the handler, 200).
 * - `ceiling`: node:http with `@octokit/webhooks`' `verify` and a 200, nothing else.
 *
 * Each logs at LOG_LEVEL (default info, as in production) to /dev/null, synchronously like
 * pino's stdout default, and sends `{ port }` to the parent once it listens.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhooks } from "@octokit/webhooks";
import { pino, type Logger } from "pino";
import { createNodeMiddleware, Probot } from "probot";
import { startApp } from "../src/app.js";
import { loadServerConfig } from "../src/config/server-config.js";
import { WEBHOOK_PATH } from "../src/web/server.js";

export type IngestTargetKind = "app" | "probot" | "ceiling";

function logger(): Logger {
  const level = (process.env.LOG_LEVEL ?? "info") as pino.Level;
  return pino({ level }, pino.destination({ dest: "/dev/null", sync: true }));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function listen(server: ReturnType<typeof createServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

async function start(kind: string): Promise<{ port: number; stop(): Promise<void> }> {
  const secret = process.env.WEBHOOK_SECRET!;
  if (kind === "app") {
    const app = await startApp(loadServerConfig({ ...process.env, ROLE: "web", HOST: "127.0.0.1", PORT: "0" }), { log: logger() });
    return { port: app.port!, stop: () => app.stop() };
  }
  if (kind === "probot") {
    const probot = new Probot({
      appId: process.env.APP_ID!,
      privateKey: process.env.PRIVATE_KEY!,
      secret,
      log: logger(),
      ...(process.env.GITHUB_API_URL ? { baseUrl: process.env.GITHUB_API_URL } : {}),
    });
    const middleware = await createNodeMiddleware(
      (app) => {
        app.on("issue_comment", async () => {});
      },
      { probot, webhooksPath: WEBHOOK_PATH },
    );
    const server = createServer((req, res) => {
      void middleware(req, res, () => {
        res.writeHead(404).end();
      });
    });
    const port = await listen(server);
    return { port, stop: () => new Promise<void>((r) => server.close(() => r())) };
  }
  if (kind === "ceiling") {
    const webhooks = new Webhooks({ secret });
    const server = createServer((req, res) => {
      void (async () => {
        const body = await readBody(req);
        const signature = req.headers["x-hub-signature-256"];
        const ok = typeof signature === "string" && (await webhooks.verify(body, signature).catch(() => false));
        res.writeHead(ok ? 200 : 401, { "content-type": "text/plain" }).end(ok ? "ok" : "bad signature");
      })().catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    const port = await listen(server);
    return { port, stop: () => new Promise<void>((r) => server.close(() => r())) };
  }
  throw new Error(`unknown ingest target ${JSON.stringify(kind)} (app, probot or ceiling)`);
}

const kind = process.argv[2] ?? "";
start(kind).then(
  (running) => {
    process.send!({ port: running.port });
    process.on("message", (msg: unknown) => {
      if (msg === "stop") {
        void running.stop().finally(() => process.exit(0));
      }
    });
    process.on("disconnect", () => process.exit(0));
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
