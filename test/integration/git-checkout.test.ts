import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckoutError, checkoutAtSha } from "../../src/connectors/git.js";
import { GitHttpServer } from "../helpers/git-server.js";

const TOKEN = "ghs_checkoutTestToken0123456789abcdefABCDEF";

describe("checkoutAtSha against a Git smart-HTTP server", () => {
  let git: GitHttpServer;
  let first: string;
  let second: string;
  const dirs: string[] = [];
  const dest = async () => {
    const d = join(await mkdtemp(join(tmpdir(), "agent-co-")), "ws");
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    git = await GitHttpServer.start(TOKEN);
    first = await git.commit("octo/infra", { "README.md": "first\n" });
    second = await git.commit("octo/infra", { "README.md": "second\n", "infra/main.sh": "echo hi\n" });
  });
  afterAll(async () => {
    await git.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("checks out exactly the requested commit, not the branch tip, with the token as a header", async () => {
    const d = await dest();
    await checkoutAtSha({ cloneUrl: git.cloneUrl("octo/infra"), sha: first, token: TOKEN, dest: d, timeoutMs: 30_000 });
    expect(await readFile(join(d, "README.md"), "utf8")).toBe("first\n");
    expect(await readdir(d)).not.toContain("infra");
    // The object store (and any config) is not handed to the sandbox.
    expect(await readdir(d)).not.toContain(".git");
    expect(git.requests.length).toBeGreaterThan(0);
    expect(git.requests.every((r) => r.authorized)).toBe(true);
    // World-writable so the unprivileged sandbox user can work in it.
    expect((await stat(join(d, "README.md"))).mode & 0o666).toBe(0o666);
  });

  it("checks out a later commit too", async () => {
    const d = await dest();
    await checkoutAtSha({ cloneUrl: git.cloneUrl("octo/infra"), sha: second, token: TOKEN, dest: d, timeoutMs: 30_000 });
    expect(await readFile(join(d, "infra/main.sh"), "utf8")).toBe("echo hi\n");
  });

  it("fails with a non-transient error for a commit the server does not have", async () => {
    const d = await dest();
    const err = await checkoutAtSha({ cloneUrl: git.cloneUrl("octo/infra"), sha: "f".repeat(40), token: TOKEN, dest: d, timeoutMs: 30_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckoutError);
    expect((err as CheckoutError).transient).toBe(false);
  });

  it("fails without the right token and never echoes the token", async () => {
    const d = await dest();
    const wrong = "ghs_wrongTokenWrongTokenWrongToken0000000";
    const err = await checkoutAtSha({ cloneUrl: git.cloneUrl("octo/infra"), sha: first, token: wrong, dest: d, timeoutMs: 30_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckoutError);
    expect(String((err as Error).message)).not.toContain(wrong);
    expect(git.requests.some((r) => !r.authorized)).toBe(true);
  });

  it("refuses non-HTTP URLs, URLs with credentials, and SHAs that are not SHAs", async () => {
    const d = await dest();
    const base = { token: TOKEN, dest: d, timeoutMs: 5000 };
    await expect(checkoutAtSha({ ...base, cloneUrl: `file://${git.root}/octo/infra.git`, sha: first })).rejects.toThrow(/protocol/);
    await expect(checkoutAtSha({ ...base, cloneUrl: "ext::sh -c touch% /tmp/pwned", sha: first })).rejects.toThrow(CheckoutError);
    await expect(checkoutAtSha({ ...base, cloneUrl: git.cloneUrl("octo/infra").replace("http://", "http://u:p@"), sha: first })).rejects.toThrow(/credentials/);
    await expect(checkoutAtSha({ ...base, cloneUrl: git.cloneUrl("octo/infra"), sha: "--upload-pack=touch /tmp/pwned" })).rejects.toThrow(/not a commit SHA/);
  });
});
