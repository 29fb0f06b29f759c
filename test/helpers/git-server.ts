import { execFile, spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A file entry for `GitHttpServer.commit` that is executable in the checkout. */
export const executable = (content: string) => ({ content, mode: 0o755 });

/**
 * A Git smart-HTTP server on 127.0.0.1 (git's own `http-backend` as CGI), standing in for
 * GitHub's git endpoint. It demands the installation token the way GitHub does
 * (`Authorization: Basic base64(x-access-token:<token>)`) and records what it saw.
 */
export class GitHttpServer {
  readonly requests: Array<{ path: string; authorized: boolean }> = [];
  private server: Server | null = null;
  private constructor(
    readonly root: string,
    private readonly token: string,
  ) {}

  static async start(token: string): Promise<GitHttpServer> {
    const root = await mkdtemp(join(tmpdir(), "agent-git-"));
    const s = new GitHttpServer(root, token);
    await s.listen();
    return s;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  cloneUrl(fullName: string): string {
    return `${this.baseUrl}/${fullName}.git`;
  }

  /** Creates (or adds a commit to) a bare repository; returns the new commit's SHA. */
  async commit(fullName: string, files: Record<string, string | { content: string; mode: number }>, message = "fixture"): Promise<string> {
    const bare = join(this.root, `${fullName}.git`);
    const work = await mkdtemp(join(tmpdir(), "agent-gitwork-"));
    const env = { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.invalid", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.invalid" };
    const git = (args: string[], cwd = work) => run("git", args, { cwd, env });
    try {
      await mkdir(bare, { recursive: true });
      await git(["init", "-q", "--bare", bare]).catch(() => {});
      await git(["init", "-q"]);
      const head = await git(["--git-dir", bare, "rev-parse", "--verify", "-q", "refs/heads/main"]).catch(() => null);
      if (head) {
        await git(["fetch", "-q", bare, "main"]);
        await git(["checkout", "-q", "FETCH_HEAD"]);
      }
      for (const [path, spec] of Object.entries(files)) {
        const file = join(work, path);
        await mkdir(dirname(file), { recursive: true });
        const { content, mode } = typeof spec === "string" ? { content: spec, mode: 0o644 } : spec;
        await writeFile(file, content, { mode });
      }
      await git(["add", "-A"]);
      await git(["commit", "-q", "--allow-empty", "-m", message]);
      const { stdout } = await git(["rev-parse", "HEAD"]);
      const sha = stdout.trim();
      // Every commit gets its own ref, as refs/pull/N/head does on GitHub.
      await git(["push", "-q", bare, `HEAD:refs/heads/main`, `HEAD:refs/pull/${sha.slice(0, 12)}/head`, "--force"]);
      return sha;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  private listen(): Promise<void> {
    const expected = `Basic ${Buffer.from(`x-access-token:${this.token}`).toString("base64")}`;
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const authorized = req.headers.authorization === expected;
      this.requests.push({ path: url.pathname, authorized });
      if (!authorized) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="GitHub"' });
        res.end("unauthorized");
        return;
      }
      const cgi = spawn("git", ["http-backend"], {
        env: {
          PATH: process.env.PATH,
          GIT_PROJECT_ROOT: this.root,
          GIT_HTTP_EXPORT_ALL: "1",
          PATH_INFO: url.pathname,
          QUERY_STRING: url.search.slice(1),
          REQUEST_METHOD: req.method ?? "GET",
          CONTENT_TYPE: req.headers["content-type"] ?? "",
          GIT_PROTOCOL: String(req.headers["git-protocol"] ?? ""),
          HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"] ?? ""),
          REMOTE_ADDR: "127.0.0.1",
        },
      });
      req.pipe(cgi.stdin);
      let head = Buffer.alloc(0);
      let headersDone = false;
      cgi.stdout.on("data", (chunk: Buffer) => {
        if (headersDone) {
          res.write(chunk);
          return;
        }
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        headersDone = true;
        let status = 200;
        const headers: Record<string, string> = {};
        for (const line of head.subarray(0, end).toString().split("\r\n")) {
          const i = line.indexOf(":");
          const k = line.slice(0, i).trim();
          const v = line.slice(i + 1).trim();
          if (k.toLowerCase() === "status") status = Number.parseInt(v, 10);
          else headers[k] = v;
        }
        res.writeHead(status, headers);
        res.write(head.subarray(end + 4));
      });
      cgi.stdout.on("end", () => res.end());
      cgi.on("error", () => {
        res.writeHead(500);
        res.end();
      });
    });
    return new Promise((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await rm(this.root, { recursive: true, force: true });
  }
}
