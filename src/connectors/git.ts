import { execFile } from "node:child_process";
import { chmod, mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Fetching the commit failed; `transient` says whether a retry may help. */
export class CheckoutError extends Error {
  override name = "CheckoutError";
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

export interface CheckoutOptions {
  /** The repository's clone URL from the webhook payload (`repository.clone_url`). */
  cloneUrl: string;
  /** Exactly the commit to check out: the PR head SHA the command was given on. */
  sha: string;
  /** Installation access token; sent as an HTTP header, never in argv or the URL. */
  token: string | null;
  dest: string;
  timeoutMs: number;
}

const SHA_RE = /^[0-9a-f]{40}$/;

function gitEnv(token: string | null, url: URL): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: "/nonexistent",
    GIT_TERMINAL_PROMPT: "0",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_LFS_SKIP_SMUDGE: "1",
  };
  if (token) {
    const basic = Buffer.from(`x-access-token:${token}`).toString("base64");
    // Config through the environment keeps the token out of argv (visible in `ps`) and out of .git/config.
    env.GIT_CONFIG_COUNT = "1";
    env.GIT_CONFIG_KEY_0 = `http.${url.origin}/.extraheader`;
    env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${basic}`;
  }
  return env;
}

/** Fetches exactly `sha` from `cloneUrl` into an empty `dest` and checks it out, detached. */
export async function checkoutAtSha(opts: CheckoutOptions): Promise<void> {
  if (!SHA_RE.test(opts.sha)) throw new CheckoutError(`not a commit SHA: ${opts.sha.slice(0, 64)}`, false);
  let url: URL;
  try {
    url = new URL(opts.cloneUrl);
  } catch {
    throw new CheckoutError("the repository clone URL is not a URL", false);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new CheckoutError(`clone URL protocol ${url.protocol} is not allowed`, false);
  }
  if (url.username || url.password) throw new CheckoutError("clone URL must not carry credentials", false);

  await mkdir(opts.dest, { recursive: true, mode: 0o700 });
  if ((await readdir(opts.dest)).length > 0) throw new CheckoutError("checkout directory is not empty", false);
  const env = gitEnv(opts.token, url);
  const git = (args: string[]) =>
    run("git", ["-c", "core.hooksPath=/dev/null", "-c", "protocol.allow=never", "-c", "protocol.https.allow=always", "-c", "protocol.http.allow=always", ...args], {
      cwd: opts.dest,
      env,
      timeout: opts.timeoutMs,
      maxBuffer: 4 * 1024 * 1024,
    });
  try {
    await git(["init", "-q"]);
    await git(["fetch", "-q", "--depth=1", "--no-tags", "--no-recurse-submodules", url.toString(), opts.sha]);
    await git(["checkout", "-q", "--detach", "FETCH_HEAD"]);
    const { stdout } = await git(["rev-parse", "HEAD"]);
    if (stdout.trim() !== opts.sha) throw new CheckoutError(`checked out ${stdout.trim()} instead of ${opts.sha}`, false);
  } catch (err) {
    if (err instanceof CheckoutError) throw err;
    const stderr = String((err as { stderr?: string }).stderr ?? (err as Error).message);
    const missing = /not our ref|couldn't find remote ref|unadvertised object|no such remote ref|not found/i.test(stderr);
    throw new CheckoutError(
      missing
        ? `commit ${opts.sha} could not be fetched from the repository (force-pushed away?)`
        : `git fetch failed: ${firstLine(stderr)}`,
      !missing,
    );
  }
  // The sandbox user is not the worker's user: let it read and write its own workspace.
  await run("chmod", ["-R", "a+rwX", opts.dest]);
  await chmod(opts.dest, 0o777);
  await rmGitDir(opts.dest);
}

/** The sandbox gets the tree, not the repository's object store. */
async function rmGitDir(dest: string): Promise<void> {
  await rm(join(dest, ".git"), { recursive: true, force: true });
}

function firstLine(s: string): string {
  return (s.split("\n").find((l) => l.trim()) ?? "unknown error").replace(/Authorization:[^\n]*/gi, "Authorization: [redacted]").slice(0, 300);
}
