/**
 * `/agent rollback a b c` end to end: real sandboxes, Postgres and Redis; GitHub is the nock
 * fake. Several stacks of a `depends_on` chain go back to their last good default-branch
 * commits together: each is previewed, each passes its own gate (nothing is applied while one
 * is unapproved), and they apply in reverse dependency order — what depends on a stack is
 * rolled back before it — with one summary comment and no merge.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, leftoverSandboxes, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/rollback-run";
const TOKEN = "ghs_rollbackRunInstallationToken00000022";
const stackYaml = (name: string, dependsOn: string[]) => `  - name: ${name}
    dir: ${name}
    depends_on: [${dependsOn.join(", ")}]
    gate: { approvals: 1, require: { lock: false } }
    steps:
      preview: ["cat", "plan.txt"]
      deploy: ["./deploy.sh"]
`;
const CONFIG = `version: 1\nstacks:\n${stackYaml("net", [])}${stackYaml("db", ["net"])}${stackYaml("api", ["db"])}`;
const STACKS = ["net", "db", "api"];
const tree = (version: string, failing: string | null = null) =>
  Object.fromEntries(
    STACKS.flatMap((s) => [
      [`${s}/plan.txt`, `plan: ${s} release ${version}\n`],
      [`${s}/deploy.sh`, exe(`#!/bin/sh\necho deploying ${s} ${version}\nexit ${s === failing ? 3 : 0}\n`)],
    ]),
  );

describe("/agent rollback of several stacks", () => {
  let f: AppFixture;
  let gh: GitHubFake;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials: staticCredentials(() => ({})) });
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
  });
  afterAll(async () => {
    expect(await leftoverSandboxes(f.app)).toBe(0);
    gh?.stop();
    await f.stop();
  });

  async function say(number: number, body: string, login: string) {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    await f.watcher.handled(res.id);
  }
  const replies = (number: number) => gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent"));
  const lastReply = (number: number) => replies(number).at(-1) ?? "";
  const replyMatching = (number: number, re: RegExp) => gh.waitFor(() => replies(number).some((b) => re.test(b)), String(re), 90_000);
  const checkRunOf = (c: RecordedCall) => gh.checkRuns.get(Number(c.path.split("/").pop()));
  const completed = (name: string, sha: string) => gh.waitFor((c) => isCheckRunCompleted(c) && checkRunOf(c)?.name === name && checkRunOf(c)?.head_sha === sha, `${name} on ${sha.slice(0, 7)}`, 60_000);

  /** A PR with all three stacks at `version`, previewed, approved and deployed as one run. */
  async function deployAll(number: number, version: string, failing: string | null = null) {
    // A merged PR's locks go with its `closed` webhook, which this test does not send.
    await f.db.query("DELETE FROM stack_locks WHERE repo = $1", [REPO]);
    const sha = await f.git.commit(REPO, tree(version, failing), `pr ${number}`);
    const mergeSha = await f.git.commit(REPO, tree(version, failing), `merge #${number}`);
    gh.pulls.set(number, { headSha: sha, author: "alice", mergeSha });
    await say(number, "/agent preview net db api", "alice");
    for (const s of STACKS) await completed(`agent/preview (${s})`, sha);
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy net db api", "alice");
    await replyMatching(number, failing ? /The deploy run at `[0-9a-f]{7}` stopped/ : /🚀 Deployed 3 stacks/);
    return { sha, mergeSha };
  }

  it("previews every stack, applies none while one is unapproved, then rolls them back downstream first, without merging", async () => {
    const good = await deployAll(70, "v1");
    await deployAll(71, "v2", "net");
    const merges = gh.find("PUT", /\/pulls\/\d+\/merge$/).length;

    // 1. The first call previews each stack's last good commit.
    await say(71, "/agent rollback net db api", "alice");
    expect(lastReply(71)).toContain("⏪ rolling back 3 stacks to their last successful deploys");
    for (const s of STACKS) expect(lastReply(71)).toContain(`\`${s}\` → \`${good.mergeSha.slice(0, 7)}\` (#70)`);
    expect(lastReply(71)).toContain("comment `/agent rollback api db net` again");
    for (const s of STACKS) expect((await completed(`agent/preview (${s})`, good.mergeSha)).body).toMatchObject({ conclusion: "success" });
    // Each preview waits for the others: none is applied on its own.
    await replyMatching(71, /Rollback of `net` at `[0-9a-f]{7}` is planned .* waits for approval/s);

    // 2. Not approved yet: one reply with the unmet checklists, nothing queued.
    await say(71, "/agent rollback net db api", "alice");
    expect(lastReply(71)).toContain("nothing was rolled back: every stack of a multi-stack rollback must pass its gate first");
    expect(lastReply(71)).toMatch(/- \[ \] Approvals — 0 of 1/);
    const before = (await f.db.query("SELECT count(*)::int AS n FROM deploys WHERE kind = 'branch'")).rows[0].n;
    expect(before).toBe(0);

    // 3. bob approves every pending rollback plan; the same command applies them in reverse order.
    await say(71, "/approve", "bob");
    await say(71, "/agent rollback net db api", "alice");
    expect(lastReply(71)).toMatch(/⏪ rolling back 3 stacks in reverse dependency order/);
    expect(lastReply(71)).toMatch(/1\. `api` → .*\n2\. `db` → .* after `api`\n3\. `net` → .* after `db`/);
    await replyMatching(71, /⏪ Rolled back 3 stacks in reverse dependency order/);
    const rows = (await f.db.query<{ stack: string; state: string; head_sha: string; started_at: Date; finished_at: Date; run_id: string }>("SELECT stack, state, head_sha, started_at, finished_at, run_id FROM deploys WHERE kind = 'branch' ORDER BY started_at")).rows;
    expect(rows.map((r) => [r.stack, r.state, r.head_sha])).toEqual([["api", "SUCCEEDED", good.mergeSha], ["db", "SUCCEEDED", good.mergeSha], ["net", "SUCCEEDED", good.mergeSha]]);
    expect(new Set(rows.map((r) => r.run_id)).size).toBe(1);
    // Each one started only after the stack depending on it had finished.
    expect(rows[1]!.started_at.getTime()).toBeGreaterThanOrEqual(rows[0]!.finished_at.getTime());
    expect(rows[2]!.started_at.getTime()).toBeGreaterThanOrEqual(rows[1]!.finished_at.getTime());
    expect(gh.find("PUT", /\/pulls\/\d+\/merge$/)).toHaveLength(merges);
    expect(replies(71).find((b) => b.startsWith("⏪ Rolled back 3 stacks"))).toContain("Nothing was merged.");
  }, 240_000);
});
