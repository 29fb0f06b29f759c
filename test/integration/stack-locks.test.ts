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

  it("a preview takes its stacks' locks; another PR's preview of a held stack waits in the stack's queue, with its place, instead of being refused", async () => {
    await say(1, "/agent preview prod", "alice");
    await previewDone(1, "prod");
    expect(await holder("prod")).toBe(1);
    gh.calls.length = 0;

    await say(2, "/agent preview prod dev", "bob");
    const queued = replies(2).find((b) => b.includes("queued behind"));
    expect(queued).toMatch(/`prod` is locked by #1: this preview waits in its queue \(position 1\) until #1 is merged or closed/);
    // All or none: dev is free, but #2 does not hold half its set; it waits with prod.
    expect(queued).toMatch(/`dev` is free, but waits with the others/);
    expect(queued).toContain("locked together, all or none");
    expect(queued).toContain("`/agent cancel` leaves the queue");
    expect(await holder("dev")).toBeNull();
    await gh.waitFor(() => titleOf(2, "prod") === "Waiting for #1's lock on prod, position 1" && titleOf(2, "dev") === "Waiting for the lock on dev, position 1", "PR 2's waiting check runs");
    expect(checkRunOf(2, "prod")).toMatchObject({ status: "queued" });
    // A third PR lines up behind it.
    await say(3, "/agent preview prod", "bob");
    await gh.waitFor(() => titleOf(3, "prod") === "Waiting for #1's lock on prod, position 2", "PR 3's waiting check run");
    const { rows } = await f.db.query("SELECT w.pr_number AS pr, t.stack, t.state FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.repo = $1 AND w.pr_number IN (2, 3) ORDER BY w.pr_number, t.stack", [REPO]);
    expect(rows).toEqual([
      { pr: 2, stack: "dev", state: "PENDING" },
      { pr: 2, stack: "prod", state: "PENDING" },
      { pr: 3, stack: "prod", state: "PENDING" },
    ]);
  });

  it("/agent status shows each stack's latest preview on this PR, who holds its lock and this PR's place in its queue", async () => {
    await say(2, "/agent status", "bob");
    const status = replies(2).at(-1)!;
    expect(status).toMatch(/^@bob status of #2:/);
    expect(status).toMatch(/\| `prod` \| pending on `[0-9a-f]{7}`[^|]*\| — \| — \| held by #1 until \d{4}-[^|]*; this PR is number 1 in its queue \|/);
    expect(status).toMatch(/\| `dev` \| pending on `[0-9a-f]{7}`[^|]*\| — \| — \| free; this PR is number 1 in its queue \|/);
  });

  it("only the holder PR's author or a maintainer may unlock; the locks then go to the head of the queue, whose previews start by themselves", async () => {
    await say(2, "/agent unlock prod", "bob");
    expect(replies(2).at(-1)).toMatch(/not released:\n- `prod`: the lock is held by #1; only its author/);
    expect(await holder("prod")).toBe(1);

    // alice is the author of #1 but not a maintainer: from #1 she may.
    await say(1, "/agent unlock", "alice");
    expect(replies(1).at(-1)).toBe("@alice released `prod`.");
    // First in line: #2 gets prod and dev together and both previews run; #3 moves up.
    expect([await holder("prod"), await holder("dev")]).toEqual([2, 2]);
    await previewDone(2, "prod");
    await gh.waitFor(() => checkRunOf(2, "dev")?.status === "completed", "PR 2's dev preview");
    expect(checkRunOf(2, "prod")).toMatchObject({ status: "completed", conclusion: "success" });
    await gh.waitFor(() => titleOf(3, "prod") === "Waiting for #2's lock on prod, position 1", "PR 3's new place");

    // A maintainer may release another PR's lock from anywhere.
    await say(3, "/agent unlock dev", "mia");
    expect(replies(3).at(-1)).toBe("@mia released `dev` (was held by #2).");
    expect(await holder("dev")).toBeNull();
    const { rows } = await f.db.query("SELECT action, pr_number AS pr, detail->>'stack' AS stack, detail->>'from_queue' AS q FROM audit_log WHERE repo = $1 AND action LIKE 'lock.%' ORDER BY id", [REPO]);
    const seen = rows.map((r) => `${r.action} #${r.pr} ${r.stack ?? ""}${r.q ? " (queue)" : ""}`.trim());
    expect(seen.slice(0, 4)).toEqual(["lock.acquired #1 prod", "lock.acquired #1 prod", "lock.unlock_refused #2 prod", "lock.released #1 prod"]);
    expect(seen.slice(4, 6).sort()).toEqual(["lock.acquired #2 dev (queue)", "lock.acquired #2 prod (queue)"]);
    // Then #2's previews renewed them, and mia released dev.
    expect(seen.slice(6, 8).sort()).toEqual(["lock.acquired #2 dev", "lock.acquired #2 prod"]);
    expect(seen.slice(8)).toEqual(["lock.released #3 dev"]);
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
