/**
 * Hold-and-wait across commands: a pull request keeps its stack locks until it merges or
 * closes, so two PRs each holding a stack the other then asks for would wait for ever. The
 * request that would close such a cycle is refused with who waits for whom (nothing queued);
 * the same request from a PR that holds nothing queues as usual; unlocking breaks the cycle.
 * Real Redis, Postgres and sandboxes; GitHub is the nock fake.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/deadlock";
const TOKEN = "ghs_deadlockInstallationToken0000000023";
const CONFIG = 'version: 1\nstacks:\n  - name: prod\n  - name: dev\nsteps:\n  preview: ["sh", "-c", "echo plan for $AGENT_STACK"]\n';

describe("stack locks: hold-and-wait across commands", () => {
  let f: AppFixture;
  let gh: GitHubFake;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN);
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.permissions.set("bob", "write");
    gh.files.set("main:.github/agent.yml", CONFIG);
    for (const [n, author] of [[1, "alice"], [2, "bob"], [3, "bob"]] as const) gh.pulls.set(n, { headSha: await f.git.commit(REPO, { "README.md": `pr ${n}\n` }), author });
  });
  afterAll(async () => {
    gh.stop();
    await f.stop();
  });

  async function say(pr: number, body: string, login: string) {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: pr, body, login }));
    await f.watcher.handled(res.id);
  }
  const lastReply = (pr: number) => gh.find("POST", new RegExp(`/issues/${pr}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.includes("pr-infra-agent:sticky")).at(-1) ?? "";
  const previewDone = (pr: number, stack: string) =>
    gh.waitFor((c) => isCheckRunCompleted(c) && gh.checkRuns.get(Number(c.path.split("/").pop()))?.name === `agent/preview (${stack})` && gh.checkRuns.get(Number(c.path.split("/").pop()))?.head_sha === gh.pulls.get(pr)!.headSha, `PR ${pr}'s ${stack} preview`);
  const holder = async (stack: string) => (await f.db.query("SELECT pr_number FROM stack_locks WHERE repo = $1 AND stack = $2 AND expires_at > now()", [REPO, stack])).rows[0]?.pr_number ?? null;
  const waits = async () => (await f.db.query("SELECT pr_number AS pr, stack FROM lock_waits WHERE repo = $1 ORDER BY pr_number, stack", [REPO])).rows;

  it("refuses the request that would close a cycle, queues the same request from a PR holding nothing, and an unlock lets the waiter through", async () => {
    await say(1, "/agent preview prod", "alice");
    await previewDone(1, "prod");
    await say(2, "/agent preview dev", "bob");
    await previewDone(2, "dev");
    expect([await holder("prod"), await holder("dev")]).toEqual([1, 2]);

    // #1 (holding prod) waits for #2's dev: a plain queue.
    await say(1, "/agent preview dev", "alice");
    expect(lastReply(1)).toContain("queued behind another pull request's lock");
    expect(await waits()).toEqual([{ pr: 1, stack: "dev" }]);

    // ATTACK (or accident): #2 (holding dev) asks for prod, which #1 holds while it waits for #2.
    await say(2, "/agent preview prod", "bob");
    expect(lastReply(2)).toContain("nothing was queued: waiting for these locks would never end — #2 waits for #1 (`prod`), #1 waits for #2 (`dev`)");
    expect(lastReply(2)).toContain("Release what this pull request holds (`dev`) with `/agent unlock <stack>`");
    expect(await waits()).toEqual([{ pr: 1, stack: "dev" }]);
    const recorded = await f.db.query("SELECT 1 FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.repo = $1 AND w.pr_number = 2 AND t.stack = 'prod'", [REPO]);
    expect(recorded.rowCount).toBe(0);

    // Positive control: the same request from a PR that holds nothing just waits its turn.
    await say(3, "/agent preview prod", "bob");
    expect(lastReply(3)).toContain("queued behind another pull request's lock");
    expect(await waits()).toEqual([{ pr: 1, stack: "dev" }, { pr: 3, stack: "prod" }]);

    // #2 lets dev go: #1's waiting preview takes it and runs.
    await say(2, "/agent unlock dev", "bob");
    await previewDone(1, "dev");
    expect(await holder("dev")).toBe(1);
  });
});
