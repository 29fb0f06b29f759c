import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, pullRequestPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/locked";
const TOKEN = "ghs_locksInstallationToken000000000000006";
const CONFIG = 'version: 1\nstacks:\n  - name: prod\n  - name: dev\nsteps:\n  preview: ["sh", "-c", "echo plan for $AGENT_STACK"]\n';

/** Atlantis-style locks: a successful preview takes the stack; other PRs are told who holds it. */
describe("stack locks", () => {
  let f: AppFixture;
  let gh: GitHubFake;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN);
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.permissions.set("bob", "write");
    gh.permissions.set("mia", "maintain");
    gh.files.set("main:.github/agent.yml", CONFIG);
    for (const [n, author] of [[1, "alice"], [2, "bob"], [3, "bob"]] as const) {
      gh.pulls.set(n, { headSha: await f.git.commit(REPO, { "README.md": `pr ${n}\n` }), author });
    }
  });
  afterEach(() => {
    gh.calls.length = 0;
  });
  afterAll(async () => {
    gh.stop();
    await f.stop();
  });

  async function say(pr: number, body: string, login: string) {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: pr, body, login }));
    await f.watcher.handled(res.id);
  }
  const replies = (pr: number) => gh.find("POST", new RegExp(`/issues/${pr}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.includes("pr-infra-agent:sticky"));
  /** PR `pr`'s preview finished: its check run completed and its sticky comment says so. */
  async function previewDone(pr: number, stack: string) {
    await gh.waitFor((c) => isCheckRunCompleted(c) && gh.checkRuns.get(Number(c.path.split("/").pop()))?.name === `agent/preview (${stack})` && gh.checkRuns.get(Number(c.path.split("/").pop()))?.head_sha === gh.pulls.get(pr)!.headSha, `PR ${pr}'s ${stack} preview`);
    await gh.waitFor((c) => {
      const id = Number(/issues\/comments\/(\d+)$/.exec(c.path)?.[1]);
      return c.method === "PATCH" && gh.comments.get(id)?.issue === pr && String(c.body?.body).includes(`\`${stack}\``) && !String(c.body?.body).includes("in progress");
    }, `PR ${pr}'s sticky comment`);
  }
  const holder = async (stack: string) =>
    (await f.db.query("SELECT pr_number FROM stack_locks WHERE repo = $1 AND stack = $2 AND expires_at > now()", [REPO, stack])).rows[0]?.pr_number ?? null;

  it("a successful preview takes the lock; another PR's preview of that stack is refused, naming the holder", async () => {
    await say(1, "/agent preview prod", "alice");
    await previewDone(1, "prod");
    expect(await holder("prod")).toBe(1);
    gh.calls.length = 0;

    await say(2, "/agent preview prod dev", "bob");
    const refusal = replies(2).find((b) => b.includes("locked by #1"));
    expect(refusal).toMatch(/`prod` is locked by #1 \(previewed by @alice\)/);
    expect(refusal).toMatch(/merged or closed.*`\/agent unlock prod` on #1/);
    // The free stack still runs; the locked one does not.
    await previewDone(2, "dev");
    expect(gh.find("POST", /\/check-runs$/).map((c) => c.body!.name)).toEqual(["agent/preview (dev)"]);
    expect(await holder("dev")).toBe(2);
  });

  it("/agent status shows each stack's latest preview on this PR and who holds its lock", async () => {
    await say(2, "/agent status", "bob");
    const status = replies(2).at(-1)!;
    expect(status).toMatch(/^@bob status of #2:/);
    expect(status).toMatch(/\| `prod` \| none yet \| — \| — \| held by #1 until \d{4}-/);
    expect(status).toMatch(/\| `dev` \| succeeded on `[0-9a-f]{7}` \(\[check run\]\(https:\/\/github\.com\/octo-org\/locked\/runs\/\d+\)\) \| see output \| ✅ preview \| held by this PR until/);
  });

  it("only the holder PR's author or a maintainer may unlock", async () => {
    await say(2, "/agent unlock prod", "bob");
    expect(replies(2).at(-1)).toMatch(/not released:\n- `prod`: the lock is held by #1; only its author/);
    expect(await holder("prod")).toBe(1);

    // alice is the author of #1 but not a maintainer: from #1 she may.
    await say(1, "/agent unlock", "alice");
    expect(replies(1).at(-1)).toBe("@alice released `prod`.");
    expect(await holder("prod")).toBeNull();

    // A maintainer may release another PR's lock from anywhere.
    expect(await holder("dev")).toBe(2);
    await say(3, "/agent unlock dev", "mia");
    expect(replies(3).at(-1)).toBe("@mia released `dev` (was held by #2).");
    expect(await holder("dev")).toBeNull();
    const { rows } = await f.db.query("SELECT action, actor FROM audit_log WHERE action LIKE 'lock.%' ORDER BY id");
    expect(rows.map((r) => r.action)).toEqual(["lock.acquired", "lock.acquired", "lock.unlock_refused", "lock.released", "lock.released"]);
  });

  it("closing or merging the holder PR releases its locks", async () => {
    await say(3, "/agent preview prod", "bob");
    await previewDone(3, "prod");
    expect(await holder("prod")).toBe(3);
    const res = await deliver(f.app.port!, "pull_request", pullRequestPayload("closed", { repo: REPO, prNumber: 3, merged: true }));
    expect(res.status).toBe(202);
    await f.watcher.handled(res.id);
    expect(await holder("prod")).toBeNull();
    const { rows } = await f.db.query("SELECT detail FROM audit_log WHERE action = 'lock.released' AND pr_number = 3 ORDER BY id DESC LIMIT 1");
    expect(rows[0].detail).toEqual({ stacks: ["prod"], by: "merged" });
  });
});
