import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, pullRequestPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/locked";
const TOKEN = "ghs_locksInstallationToken000000000000006";
const CONFIG = 'version: 1\nstacks:\n  - name: prod\n  - name: dev\nsteps:\n  preview: ["sh", "-c", "echo plan for $AGENT_STACK"]\n';

/** Atlantis-style locks: a successful preview takes the stack; other PRs wait in its queue and start when it is released. */
describe("stack locks", () => {
  let f: AppFixture;
  let gh: GitHubFake;

  beforeAll(async () => {
    // The reaper's pass (which sweeps expired locks) every second, for the expiry hand-over.
    f = await startAppFixture(TOKEN, { env: { SANDBOX_REAP_INTERVAL_SECONDS: "1" } });
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

  /** PR `pr`'s newest check run for a stack, as GitHub holds it now. */
  const checkRunOf = (pr: number, stack: string) => [...gh.checkRuns.values()].findLast((cr) => cr.name === `agent/preview (${stack})` && cr.head_sha === gh.pulls.get(pr)!.headSha);
  const titleOf = (pr: number, stack: string) => String((checkRunOf(pr, stack)?.output as { title?: string } | undefined)?.title);

  it("a successful preview takes the lock; another PR's preview of that stack waits in the stack's queue, with its place, instead of being refused", async () => {
    await say(1, "/agent preview prod", "alice");
    await previewDone(1, "prod");
    expect(await holder("prod")).toBe(1);
    gh.calls.length = 0;

    await say(2, "/agent preview prod dev", "bob");
    const queued = replies(2).find((b) => b.includes("queued behind"));
    expect(queued).toMatch(/`prod` is locked by #1: this preview waits in its queue \(position 1\) and starts by itself when the lock is released/);
    expect(queued).toContain("`/agent cancel` leaves the queue");
    // The free stack runs; the locked one waits, visibly.
    await gh.waitFor(() => checkRunOf(2, "dev")?.status === "completed", "PR 2's dev preview");
    expect(await holder("dev")).toBe(2);
    await gh.waitFor(() => titleOf(2, "prod") === "Waiting for #1's lock on prod, position 1", "PR 2's waiting check run");
    expect(checkRunOf(2, "prod")).toMatchObject({ status: "queued" });
    // A third PR lines up behind it.
    await say(3, "/agent preview prod", "bob");
    await gh.waitFor(() => titleOf(3, "prod") === "Waiting for #1's lock on prod, position 2", "PR 3's waiting check run");
    const { rows } = await f.db.query("SELECT t.state FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.repo = $1 AND w.pr_number IN (2, 3) AND t.stack = 'prod'", [REPO]);
    expect(rows.map((r) => r.state)).toEqual(["PENDING", "PENDING"]);
  });

  it("/agent status shows each stack's latest preview on this PR, who holds its lock and this PR's place in its queue", async () => {
    await say(2, "/agent status", "bob");
    const status = replies(2).at(-1)!;
    expect(status).toMatch(/^@bob status of #2:/);
    expect(status).toMatch(/\| `prod` \| pending on `[0-9a-f]{7}`[^|]*\| — \| — \| held by #1 until \d{4}-[^|]*; this PR is number 1 in its queue \|/);
    expect(status).toMatch(/\| `dev` \| succeeded on `[0-9a-f]{7}` \(\[check run\]\(https:\/\/github\.com\/octo-org\/locked\/runs\/\d+\)\) \| see output \| ✅ preview \| held by this PR until/);
  });

  it("only the holder PR's author or a maintainer may unlock; the lock then goes to the head of the queue, whose preview starts by itself", async () => {
    await say(2, "/agent unlock prod", "bob");
    expect(replies(2).at(-1)).toMatch(/not released:\n- `prod`: the lock is held by #1; only its author/);
    expect(await holder("prod")).toBe(1);

    // alice is the author of #1 but not a maintainer: from #1 she may.
    await say(1, "/agent unlock", "alice");
    expect(replies(1).at(-1)).toBe("@alice released `prod`.");
    // First in line: #2 gets the lock and its waiting preview runs; #3 moves up.
    expect(await holder("prod")).toBe(2);
    await previewDone(2, "prod");
    expect(checkRunOf(2, "prod")).toMatchObject({ status: "completed", conclusion: "success" });
    await gh.waitFor(() => titleOf(3, "prod") === "Waiting for #2's lock on prod, position 1", "PR 3's new place");

    // A maintainer may release another PR's lock from anywhere.
    expect(await holder("dev")).toBe(2);
    await say(3, "/agent unlock dev", "mia");
    expect(replies(3).at(-1)).toBe("@mia released `dev` (was held by #2).");
    expect(await holder("dev")).toBeNull();
    const { rows } = await f.db.query("SELECT action, detail->>'from_queue' AS from_queue FROM audit_log WHERE repo = $1 AND action LIKE 'lock.%' ORDER BY id", [REPO]);
    expect(rows.map((r) => `${r.action}${r.from_queue ? " (queue)" : ""}`)).toEqual([
      "lock.acquired",
      "lock.acquired",
      "lock.unlock_refused",
      "lock.released",
      "lock.acquired (queue)",
      // #2's preview succeeded and renewed the lock it was given.
      "lock.acquired",
      "lock.released",
    ]);
  });

  it("/agent cancel leaves the queue; closing or merging the holder PR hands the lock to the next in line", async () => {
    gh.pulls.set(4, { headSha: await f.git.commit(REPO, { "README.md": "pr 4\n" }), author: "alice" });
    await say(4, "/agent preview prod", "alice");
    await gh.waitFor(() => titleOf(4, "prod") === "Waiting for #2's lock on prod, position 2", "PR 4 behind PR 3");
    await say(3, "/agent cancel", "bob");
    expect(replies(3).at(-1)).toContain("cancelled preview of `prod`");
    await gh.waitFor(() => titleOf(4, "prod") === "Waiting for #2's lock on prod, position 1", "PR 4 moved up");

    const res = await deliver(f.app.port!, "pull_request", pullRequestPayload("closed", { repo: REPO, prNumber: 2, merged: true }));
    expect(res.status).toBe(202);
    await f.watcher.handled(res.id);
    const { rows } = await f.db.query("SELECT detail FROM audit_log WHERE repo = $1 AND action = 'lock.released' AND pr_number = 2 ORDER BY id DESC LIMIT 1", [REPO]);
    expect(rows[0].detail).toEqual({ stacks: ["prod"], by: "merged" });
    // Not #3 (it left the queue): #4.
    expect(await holder("prod")).toBe(4);
    await previewDone(4, "prod");
    const { rows: p3 } = await f.db.query("SELECT t.state FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.repo = $1 AND w.pr_number = 3 AND t.stack = 'prod'", [REPO]);
    expect(p3.map((r) => r.state)).toEqual(["CANCELLED"]);

    // Closing a PR that waits takes it out of the queue, and nothing of it runs later.
    await say(1, "/agent preview prod", "alice");
    await gh.waitFor(() => titleOf(1, "prod") === "Waiting for #4's lock on prod, position 1", "PR 1 waits for #4");
    await f.watcher.handled((await deliver(f.app.port!, "pull_request", pullRequestPayload("closed", { repo: REPO, prNumber: 1, merged: false }))).id);
    await gh.waitFor(() => checkRunOf(1, "prod")?.conclusion === "cancelled", "PR 1's waiting preview cancelled");
    expect((await f.db.query("SELECT count(*)::int AS n FROM lock_waits WHERE repo = $1", [REPO])).rows[0].n).toBe(0);
  });

  it("a lock that expires goes to the next in line as well", async () => {
    gh.pulls.set(5, { headSha: await f.git.commit(REPO, { "README.md": "pr 5\n" }), author: "bob" });
    await say(5, "/agent preview prod", "bob");
    await gh.waitFor(() => titleOf(5, "prod") === "Waiting for #4's lock on prod, position 1", "PR 5 waits for #4");
    await f.db.query("UPDATE stack_locks SET expires_at = now() - interval '1 second' WHERE repo = $1 AND stack = 'prod'", [REPO]);
    await previewDone(5, "prod");
    expect(await holder("prod")).toBe(5);
    const { rows } = await f.db.query("SELECT pr_number FROM audit_log WHERE repo = $1 AND action = 'lock.expired' AND detail->>'stack' = 'prod'", [REPO]);
    expect(rows.map((r) => r.pr_number)).toEqual([4]);
  });
});
