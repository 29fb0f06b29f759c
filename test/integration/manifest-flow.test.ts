import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves when the child prints a line matching `re` (an event, not a sleep). */
function waitForOutput(child: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`no output matching ${re} in time:\n${seen}`)), timeoutMs);
    const on = (chunk: Buffer) => {
      seen += chunk.toString();
      if (re.test(seen)) {
        clearTimeout(timer);
        resolve(seen);
      }
    };
    child.stdout!.on("data", on);
    child.stderr!.on("data", on);
    child.on("exit", (code) => reject(new Error(`exited with ${code} before printing ${re}:\n${seen}`)));
  });
}

describe("npm start without credentials: Probot's manifest registration flow", () => {
  let child: ChildProcess | null = null;
  afterAll(() => {
    child?.kill("SIGKILL");
  });

  it("serves the registration page with the manifest from app.yml", async () => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), NODE_ENV: "development", LOG_LEVEL: "info", ENV_FILE: "/nonexistent/.env" };
    child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    const out = await waitForOutput(child, /Listening on/);
    expect(out).toContain("registration (manifest) flow");

    const page = await (await fetch(`http://localhost:${port}/probot`)).text();
    const value = /name="manifest"[^>]*value='([^']+)'/.exec(page)?.[1];
    expect(value).toBeDefined();
    const manifest = JSON.parse(value!.replace(/&quot;/g, '"').replace(/&amp;/g, "&")) as {
      name: string;
      default_events: string[];
      default_permissions: Record<string, string>;
      redirect_url: string;
    };
    expect(manifest.name).toBe("pr-infra-agent");
    expect(manifest.default_events).toEqual(expect.arrayContaining(["issue_comment", "pull_request", "pull_request_review"]));
    expect(manifest.default_permissions).toMatchObject({ checks: "write", issues: "write", pull_requests: "write", contents: "write" });
    expect(manifest.redirect_url).toBe(`http://localhost:${port}/probot/setup`);
  });

  it("a worker without credentials refuses to start, with a clear message", async () => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ROLE: "worker", NODE_ENV: "development", ENV_FILE: "/nonexistent/.env" };
    const worker = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    worker.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => worker.on("exit", resolve));
    expect(code).toBe(1);
    expect(err).toMatch(/APP_ID, PRIVATE_KEY .* WEBHOOK_SECRET/);
  });
});
