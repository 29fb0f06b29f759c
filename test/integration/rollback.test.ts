/**
 * `/agent rollback` and the merge-first deploy mode, end to end: real sandboxes, Postgres and
 * Redis; GitHub is the nock fake. A rollback previews the default branch's last good commit,
 * waits for an approval bound to that commit and plan (or none, by the stack's policy), applies
 * exactly that plan, never merges, and reports its SLA in the audit log. Merge-first merges,
 * then applies the merge commit only if it plans the same; otherwise it asks again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, leftoverSandboxes, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/rollback";
const TOKEN = "ghs_rollbackInstallationToken00000000020";
const CONFIG = `version: 1
stacks:
  - name: app
    dir: app
    gate: { approvals: 1, require: { lock: false } }
    steps:
      preview: ["cat", "plan.txt"]
      deploy: ["./deploy.sh"]
  - name: fast
    dir: app
    gate: { approvals: 1, rollback_approvals: 0, require: { lock: false } }
    steps:
      preview: ["cat", "plan.txt"]
      deploy: ["./deploy.sh"]
  - name: mf
    dir: app
    gate: { approvals: 1, mode: merge-then-deploy, require: { lock: false } }
    steps:
      preview: ["cat", "plan.txt"]
      deploy: ["./deploy.sh"]
`;
const tree = (version: string, deployExit = 0) => ({
  "app/plan.txt": `plan: release ${version}\n`,
  "app/deploy.sh": exe(`#!/bin/sh\necho deploying ${version}\nexit ${deployExit}\n`),
});

describe("/agent rollback and merge-first deploys", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 40;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials: staticCredentials(() => ({})) });
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"], ["carol", "maintain"], ["rita", "read"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
  });
  afterEach(async () => {
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });

  async function openPr(files: Record<string, string | { content: string; mode: number }>, mergeFiles = files) {
    // A merged PR's lock goes with its `closed` webhook, which these tests do not send.
    await f.db.query("DELETE FROM stack_locks");
    const sha = await f.git.commit(REPO, files, "pr head");
    // The commit GitHub's merge API answers with: the default branch after the merge.
    const mergeSha = await f.git.commit(REPO, mergeFiles, "merge commit");
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha, author: "alice", mergeSha });
    return { number, sha, mergeSha };
  }
  async function say(number: number, body: string, login: string, onPullRequest = true) {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login, onPullRequest }));
    await f.watcher.handled(res.id);
  }
  const replies = (number: number) =>
    gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent"));
  const lastReply = (number: number) => replies(number).at(-1) ?? "";
  const planOf = (text: string) => /plan `([0-9a-f]{12})`/.exec(text)?.[1] ?? "none";
  const checkRunOf = (c: RecordedCall) => gh.checkRuns.get(Number(c.path.split("/").pop()));
  const since = () => {
    const start = gh.calls.length;
    return (c: RecordedCall) => gh.calls.indexOf(c) >= start;
  };
  const completed = (after: (c: RecordedCall) => boolean, name: string, sha?: string) =>
    gh.waitFor((c) => after(c) && isCheckRunCompleted(c) && checkRunOf(c)?.name === name && (!sha || checkRunOf(c)?.head_sha === sha), name, 30_000);
  const replyMatching = (number: number, re: RegExp) => gh.waitFor(() => replies(number).some((b) => re.test(b)), String(re), 30_000);

  /** preview → bob approves → alice deploys; resolves when the deploy's check run completes. */
  async function deployPr(number: number, stack: string) {
    const after = since();
    await say(number, `/agent preview ${stack}`, "alice");
    await completed(after, `agent/preview (${stack})`);
    await say(number, "/approve", "bob");
    await say(number, `/agent deploy ${stack}`, "alice");
    return completed(after, `agent/deploy (${stack})`);
  }

  it("rolls back to the last good default-branch commit after a failed deploy, through the gate, without merging", async () => {
    const good = await openPr(tree("v1"));
    expect((await deployPr(good.number, "app")).body).toMatchObject({ conclusion: "success" });
    await replyMatching(good.number, /and merged the pull request/);

    const bad = await openPr(tree("v2", 3));
    expect((await deployPr(bad.number, "app")).body).toMatchObject({ conclusion: "failure" });
    await replyMatching(bad.number, /failed/);
    expect(replies(bad.number).find((b) => b.startsWith("❌ Deploy of `app`"))).toContain("`/agent rollback app`");

    // 1. The rollback previews the last good commit: the merge commit of the good PR.
    const after = since();
    await say(bad.number, "/agent rollback app", "alice");
    expect(lastReply(bad.number)).toContain(`rolling back \`app\` to \`${good.mergeSha.slice(0, 7)}\``);
    expect(lastReply(bad.number)).toContain(`#${good.number}`);
    const rollbackPreview = await completed(after, "agent/preview (app)", good.mergeSha);
    expect(rollbackPreview.body).toMatchObject({ conclusion: "success" });
    // No Deploy/Approve buttons on a default-branch commit's preview.
    expect(checkRunOf(rollbackPreview)?.actions).toBeUndefined();
    await replyMatching(bad.number, /waits for approval/);
    expect(lastReply(bad.number)).toContain("Then comment `/agent rollback app`");

    // 2. Not approved yet: the checklist. The requester's own /approve does not count.
    await say(bad.number, "/agent rollback app", "alice");
    expect(lastReply(bad.number)).toMatch(/^@alice Rollback of `app` at `[0-9a-f]{7}` is blocked/);
    expect(lastReply(bad.number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    await say(bad.number, "/approve", "alice");
    await say(bad.number, "/agent rollback app", "alice");
    expect(lastReply(bad.number)).toContain("@\u200balice (/approve): the person who asked for it cannot approve their own change");
    expect(gh.deployments.size).toBe(2);

    // 3. bob approves the rollback plan; alice applies it.
    await say(bad.number, "/approve", "bob");
    expect(lastReply(bad.number)).toBe(`@bob approved \`app\` (rollback plan \`${planOf(lastReply(bad.number))}\` at \`${good.mergeSha.slice(0, 7)}\`); \`/agent rollback app\` applies it.`);
    const applyStart = since();
    await say(bad.number, "/agent rollback app", "alice");
    expect(lastReply(bad.number)).toContain("applying the rollback of `app`");
    expect((await completed(applyStart, "agent/deploy (app)", good.mergeSha)).body).toMatchObject({ conclusion: "success" });
    await replyMatching(bad.number, /⏪ Rollback of `app` to `[0-9a-f]{7}` succeeded/);

    // Exactly one new deployment, of the last good commit; no merge for a rollback.
    const deployments = [...gh.deployments.values()];
    expect(deployments).toHaveLength(3);
    expect(deployments[2]).toEqual({ ref: good.mergeSha, environment: "app", statuses: ["in_progress", "success"] });
    expect(gh.find("PUT", new RegExp(`/pulls/${bad.number}/merge$`))).toHaveLength(0);
    const { rows: deploys } = await f.db.query("SELECT kind, state, head_sha FROM deploys WHERE pr_number = $1 ORDER BY created_at", [bad.number]);
    expect(deploys).toEqual([
      { kind: "deploy", state: "FAILED", head_sha: bad.sha },
      { kind: "branch", state: "SUCCEEDED", head_sha: good.mergeSha },
    ]);
    // The SLA (seed 001: begin < 5 min, finish < 15 min) is in the audit log.
    const { rows: sla } = await f.db.query("SELECT detail FROM audit_log WHERE action = 'rollback.finished' AND pr_number = $1", [bad.number]);
    expect(sla).toHaveLength(1);
    expect(sla[0].detail).toMatchObject({ stack: "app", sha: good.mergeSha, outcome: "SUCCEEDED", sla: { begin_target_seconds: 300, finish_target_seconds: 900, begin_met: true, finish_met: true } });
    expect(sla[0].detail.finish_seconds).toBeGreaterThanOrEqual(sla[0].detail.begin_seconds);

    // The applied rollback preview is never applied twice: asking again starts a new preview.
    const again = since();
    await say(bad.number, "/agent rollback app", "alice");
    expect(lastReply(bad.number)).toContain("Previewing that commit first");
    await completed(again, "agent/preview (app)", good.mergeSha);
    await gh.waitFor(() => replies(bad.number).filter((b) => b.includes("waits for approval")).length === 2, "the second rollback plan");
    expect(gh.deployments.size).toBe(3);
    if (process.env.SHOW_REPLIES) console.log(replies(bad.number).join("\n\n-----\n\n"));
  });

  it("a stack with `rollback_approvals: 0` rolls back at once, also from an issue; a reader cannot; nothing recorded means nothing to do", async () => {
    const issue = 900 + pr;
    await say(issue, "/agent rollback fast", "alice", false);
    expect(lastReply(issue)).toContain("there is nothing to roll `fast` back to");

    const good = await openPr(tree("f1"));
    expect((await deployPr(good.number, "fast")).body).toMatchObject({ conclusion: "success" });

    await say(issue, "/agent rollback fast", "rita", false);
    expect(lastReply(issue)).toContain("needs **write** access");

    const after = since();
    await say(issue, "/agent rollback fast", "alice", false);
    expect(lastReply(issue)).toContain("no approval needed");
    await completed(after, "agent/deploy (fast)", good.mergeSha);
    await replyMatching(issue, /⏪ Rollback of `fast` to `[0-9a-f]{7}` succeeded/);
    expect(replies(issue).some((b) => b.includes("is being applied now"))).toBe(true);
    const { rows } = await f.db.query("SELECT detail FROM audit_log WHERE action = 'rollback.finished' AND pr_number = $1", [issue]);
    expect(rows[0].detail).toMatchObject({ outcome: "SUCCEEDED", sla: { begin_met: true, finish_met: true } });
  });

  it("/agent status shows, per previewed stack, the approvals counted and what is missing", async () => {
    const { number } = await openPr(tree("s1"));
    const after = since();
    await say(number, "/agent preview app", "alice");
    await completed(after, "agent/preview (app)");
    await say(number, "/agent status", "rita");
    expect(lastReply(number)).toContain("needs **write** access");
    await say(number, "/agent status", "alice");
    const before = lastReply(number);
    expect(before).toContain("**Deploy gate**");
    expect(before).toMatch(/- `app`: ⛔ not ready to deploy\n {2}- \[ \] Approvals — 0 of 1 approval\. Needs 1 more approval/);
    // Stacks never previewed on this PR are not asked about.
    expect(before).not.toMatch(/- `fast`: /);
    await say(number, "/approve", "bob");
    await say(number, "/agent status", "alice");
    const after2 = lastReply(number);
    expect(after2).toContain("- `app`: ✅ ready to deploy — approved by @\u200bbob");
    // The PR's audit trail, newest last.
    expect(after2).toMatch(/<summary>Audit trail of this PR \(last \d+ of \d+\)<\/summary>/);
    expect(after2).toMatch(/`approval\.recorded` `[0-9a-f]{7}` by bob\n- [^\n]*`command\.received` by alice\n\n<\/details>$/);
  });

  it("merge-first: merges, then applies the merge commit when it plans exactly the approved plan", async () => {
    const { number, sha, mergeSha } = await openPr(tree("m1"));
    const done = await deployPr(number, "mf");
    expect(done.body).toMatchObject({ conclusion: "success" });
    const merge = gh.find("PUT", new RegExp(`/pulls/${number}/merge$`));
    expect(merge).toHaveLength(1);
    expect(merge[0]!.body).toMatchObject({ sha });
    // The merge happened before the Deployment, which is of the merge commit.
    const deployment = gh.find("POST", /\/deployments$/).at(-1)!;
    expect(gh.calls.indexOf(merge[0]!)).toBeLessThan(gh.calls.indexOf(deployment));
    expect(deployment.body).toMatchObject({ ref: mergeSha, environment: "mf" });
    await replyMatching(number, /Merged the pull request and deployed `mf` at the merge commit/);
    const { rows } = await f.db.query("SELECT state, merged, merge_sha FROM deploys WHERE pr_number = $1", [number]);
    expect(rows).toEqual([{ state: "SUCCEEDED", merged: true, merge_sha: mergeSha }]);
  });

  it("merge-first: a merge commit that plans differently is not applied; its plan needs a new approval, then /agent deploy applies it", async () => {
    // The base branch moved: the merge commit carries a plan nobody approved.
    const { number, mergeSha } = await openPr(tree("m2"), tree("m2+base"));
    const done = await deployPr(number, "mf");
    expect(done.body).toMatchObject({ conclusion: "action_required" });
    await replyMatching(number, /plans differently/);
    const { rows: first } = await f.db.query("SELECT state, merged FROM deploys WHERE pr_number = $1", [number]);
    expect(first).toEqual([{ state: "FAILED", merged: true }]);
    const deployment = [...gh.deployments.values()].at(-1)!;
    expect(deployment).toEqual({ ref: mergeSha, environment: "mf", statuses: ["in_progress", "failure"] });

    // The merge commit is previewed in the PR; bob's earlier approval was of another plan.
    await replyMatching(number, /Deploy of the merge commit of `mf` at `[0-9a-f]{7}` is planned/);
    await say(number, "/agent deploy mf", "alice");
    expect(lastReply(number)).toMatch(/Deploy of the merge commit of `mf` at `[0-9a-f]{7}` is blocked/);
    await say(number, "/approve", "bob");
    const after = since();
    await say(number, "/agent deploy mf", "alice");
    expect((await completed(after, "agent/deploy (mf)", mergeSha)).body).toMatchObject({ conclusion: "success" });
    expect(gh.find("PUT", new RegExp(`/pulls/${number}/merge$`))).toHaveLength(1);
    const { rows } = await f.db.query("SELECT kind, state, head_sha FROM deploys WHERE pr_number = $1 ORDER BY created_at", [number]);
    expect(rows).toEqual([
      { kind: "deploy", state: "FAILED", head_sha: expect.any(String) },
      { kind: "branch", state: "SUCCEEDED", head_sha: mergeSha },
    ]);
  });
});
