/**
 * Issue 15, item 2 — the people who changed the code do not approve it, and an approval counts
 * for what the approver saw. Each attack is performed end to end: signed webhooks to the running
 * app, real sandboxes (the preview and deploy commands run in Docker), Postgres and Redis;
 * GitHub (and Slack) at the HTTP boundary. Each has a positive control: the same flow without
 * the attack element goes through.
 */
import { createHmac } from "node:crypto";
import { EventEmitter, once } from "node:events";
import nock from "nock";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { GitHubFake, isCheckRunCompleted, type FakePull, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { checkRunActionPayload, deliver, issueCommentPayload, leftoverSandboxes, pullRequestPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/approvers";
const TOKEN = "ghs_approverBindingInstallationToken00070";
const CONFIG = `version: 1
default_stack: app
stacks:
  - name: app
    dir: app
    gate: { approvals: 1, require: { lock: false } }
    steps:
      preview: ["cat", "plan.txt"]
      deploy: ["./deploy.sh"]
  - name: flaky
    dir: app
    gate: { approvals: 1, require: { lock: false } }
    steps:
      # Every preview plans differently: a re-preview of one commit with another plan.
      preview: ["sh", "-c", "echo plan: $(date +%s%N)"]
      deploy: ["./deploy.sh"]
  - name: mf
    dir: app
    gate: { approvals: 1, mode: merge-then-deploy, require: { lock: false } }
    steps:
      preview: ["cat", "plan.txt"]
      deploy: ["./deploy.sh"]
  - name: back
    dir: app
    gate: { approvals: 1, require: { lock: false } }
    steps:
      preview: ["cat", "plan.txt"]
      deploy: ["./deploy.sh"]
`;
const tree = (version: string) => ({
  "app/plan.txt": `plan: release ${version}\n`,
  "app/deploy.sh": exe(`#!/bin/sh\necho deploying ${version}\n`),
});
const ROLES: Array<[string, string]> = [["alice", "write"], ["bob", "write"], ["carol", "maintain"], ["mallory", "write"], ["rita", "read"]];

/** What every test here does with the running app and the fake GitHub. */
function driver(get: () => { f: AppFixture; gh: GitHubFake }) {
  const d = {
    async say(number: number, body: string, login: string, opts: { createdAt?: Date; onPullRequest?: boolean } = {}) {
      const { f } = get();
      const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login, ...opts }));
      await f.watcher.handled(res.id);
    },
    /** A push to the PR by `sender`, as GitHub reports it (synchronize, with the time of the push). */
    async push(number: number, files: Record<string, string | { content: string; mode: number }>, sender: string, at = new Date()) {
      const { f, gh } = get();
      const sha = await f.git.commit(REPO, files, `push by ${sender}`);
      gh.pulls.set(number, { ...gh.pulls.get(number)!, headSha: sha });
      const res = await deliver(f.app.port!, "pull_request", pullRequestPayload("synchronize", { repo: REPO, prNumber: number, headSha: sha, sender, author: gh.pulls.get(number)!.author!, updatedAt: at, ...(gh.pulls.get(number)!.headRepo ? { headRepo: gh.pulls.get(number)!.headRepo! } : {}) }));
      await f.watcher.handled(res.id);
      return sha;
    },
    replies(number: number) {
      return get().gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent"));
    },
    lastReply(number: number) {
      return d.replies(number).at(-1) ?? "";
    },
    checkRunOf(c: RecordedCall) {
      return get().gh.checkRuns.get(Number(c.path.split("/").pop()));
    },
    /** `/agent preview <stack>`; resolves with the preview's check run id once it and the sticky comment are done. */
    async preview(number: number, stack: string, login = "alice") {
      const { gh } = get();
      const start = gh.calls.length;
      await d.say(number, `/agent preview ${stack}`, login);
      const done = await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c) && d.checkRunOf(c)?.name === `agent/preview (${stack})`, `the ${stack} preview`);
      expect(done.body).toMatchObject({ conclusion: "success" });
      const at = gh.calls.indexOf(done);
      await gh.waitFor((c) => gh.calls.indexOf(c) > at && /\/comments\/\d+$/.test(c.path) && c.method === "PATCH", "the sticky comment");
      return Number(done.path.split("/").pop());
    },
    async click(checkRunId: number, identifier: "approve" | "deploy", sender: string) {
      const { f, gh } = get();
      const cr = gh.checkRuns.get(checkRunId)!;
      const res = await deliver(f.app.port!, "check_run", checkRunActionPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), checkRunId, taskId: String(cr.external_id), headSha: String(cr.head_sha), identifier, sender }));
      expect(res.status).toBe(202);
      await f.watcher.handled(res.id);
    },
    deployDone(stack: string, after = 0) {
      const { gh } = get();
      return gh.waitFor((c) => gh.calls.indexOf(c) >= after && isCheckRunCompleted(c) && d.checkRunOf(c)?.name === `agent/deploy (${stack})`, `the ${stack} deploy`, 60_000);
    },
    deployments() {
      return get().gh.find("POST", /\/deployments$/).length;
    },
    planOf(text: string) {
      return /plan `([0-9a-f]{12})`/.exec(text)?.[1] ?? "none";
    },
  };
  return d;
}

describe("approvers: who changed the code, and what was seen", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 70;
  const d = driver(() => ({ f, gh }));

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials: staticCredentials(() => ({})) });
  });
  afterEach(async () => {
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });

  /** A PR by alice, announced by GitHub (`opened`): its head is on record from then. */
  async function openPr(files: Record<string, string | { content: string; mode: number }> = tree("v1"), extra: Partial<FakePull> = {}, openedAt = new Date()) {
    await f.db.query("DELETE FROM stack_locks");
    gh?.stop();
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of ROLES) gh.permissions.set(login, role);
    gh.files.set("main:.github/agent.yml", CONFIG);
    const sha = await f.git.commit(REPO, files, "pr head");
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha, author: "alice", ...extra });
    const res = await deliver(f.app.port!, "pull_request", pullRequestPayload("opened", { repo: REPO, prNumber: number, headSha: sha, author: "alice", sender: "alice", updatedAt: openedAt, ...(extra.headRepo ? { headRepo: extra.headRepo } : {}) }));
    await f.watcher.handled(res.id);
    return { number, sha };
  }

  it("ATTACK: a pusher's /approve, review and Approve button do not count; CONTROL: another writer's /approve does", async () => {
    const { number } = await openPr();
    // mallory (write) pushes a commit onto alice's PR, then approves the result three ways.
    const head = await d.push(number, tree("v1-mallory"), "mallory");
    const checkRun = await d.preview(number, "app");
    await d.say(number, "/approve", "mallory");
    expect(d.lastReply(number)).toMatch(/^@mallory noted for `app` \(plan `[0-9a-f]{12}`\), but it does not count: pushed to this pull request: the people who changed the code do not approve it\.$/);
    gh.reviews.set(number, [{ id: 7001, user: { login: "mallory", type: "User" }, state: "APPROVED", commit_id: head, submitted_at: new Date().toISOString() }]);
    await d.click(checkRun, "approve", "mallory");
    expect(d.lastReply(number)).toContain("but it does not count: pushed to this pull request");
    await d.say(number, "/agent deploy app", "alice");
    const blocked = d.lastReply(number);
    expect(blocked).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(blocked).toContain("@\u200bmallory (review): pushed to this pull request: the people who changed the code do not approve it");
    expect(blocked).toContain("@\u200bmallory (/approve): pushed to this pull request");
    expect(d.deployments()).toBe(0);

    // Control: bob did not change the code; his approval counts and the deploy goes.
    await d.say(number, "/approve", "bob");
    expect(d.lastReply(number)).toMatch(/^@bob approved `app` \(plan `[0-9a-f]{12}`\) at `[0-9a-f]{7}`/);
    const start = gh.calls.length;
    await d.say(number, "/agent deploy app", "alice");
    expect(d.lastReply(number)).toContain("deploying `app`");
    expect((await d.deployDone("app", start)).body).toMatchObject({ conclusion: "success" });
  });

  it("ATTACK: the author of a commit of the PR does not count (GitHub's web-flow committer is no one); CONTROL: a writer who wrote none does", async () => {
    const { number } = await openPr(tree("c1"), { commits: [{ author: "alice", committer: "web-flow" }, { author: "carol", committer: "web-flow" }] });
    await d.preview(number, "app");
    await d.say(number, "/approve", "carol");
    expect(d.lastReply(number)).toContain("but it does not count: wrote a commit of it: the people who changed the code do not approve it");
    await d.say(number, "/agent deploy app", "alice");
    expect(d.lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    await d.say(number, "/approve", "bob");
    expect(d.lastReply(number)).toMatch(/^@bob approved `app`/);
    const start = gh.calls.length;
    await d.say(number, "/agent deploy app", "alice");
    expect(d.lastReply(number)).toContain("deploying `app`");
    await d.deployDone("app", start);
  });

  it("ATTACK: merge-first, the merge commit's new plan is not approved by the PR author or a pusher; CONTROL: by another writer it is", async () => {
    const { number } = await openPr(tree("m1"));
    const head = await d.push(number, tree("m1-mallory"), "mallory");
    // The base moved: the merge commit plans something else.
    const mergeSha = await f.git.commit(REPO, tree("m1+base"), "merge commit");
    gh.pulls.set(number, { ...gh.pulls.get(number)!, headSha: head, mergeSha });
    await d.preview(number, "mf");
    await d.say(number, "/approve", "bob");
    const start = gh.calls.length;
    // carol (not the author) asks for the deploy: the old code excluded only her.
    await d.say(number, "/agent deploy mf", "carol");
    expect((await d.deployDone("mf", start)).body).toMatchObject({ conclusion: "action_required" });
    await gh.waitFor(() => d.replies(number).some((b) => b.includes("Deploy of the merge commit of `mf`") && b.includes("is planned")), "the merge commit's plan");
    expect(d.replies(number).find((b) => b.includes("is planned"))).toContain("@\u200balice, @\u200bmallory, who changed the pull request");

    await d.say(number, "/approve", "alice");
    expect(d.lastReply(number)).toContain("but it does not count: wrote the pull request: the people who changed the code do not approve it");
    await d.say(number, "/approve", "mallory");
    expect(d.lastReply(number)).toContain("but it does not count: pushed to this pull request");
    await d.say(number, "/agent deploy mf", "carol");
    expect(d.lastReply(number)).toMatch(/Deploy of the merge commit of `mf` at `[0-9a-f]{7}` is blocked/);
    expect(d.lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(gh.deployments.size).toBe(1); // only the first, refused, apply

    await d.say(number, "/approve", "bob");
    expect(d.lastReply(number)).toMatch(/^@bob approved `mf` \(merge commit's plan `[0-9a-f]{12}` at `[0-9a-f]{7}`\); `\/agent deploy mf` applies it\.$/);
    const again = gh.calls.length;
    await d.say(number, "/agent deploy mf", "carol");
    const done = await gh.waitFor((c) => gh.calls.indexOf(c) >= again && isCheckRunCompleted(c) && d.checkRunOf(c)?.name === "agent/deploy (mf)" && d.checkRunOf(c)?.head_sha === mergeSha, "the merge commit's deploy");
    expect(done.body).toMatchObject({ conclusion: "success" });
  });

  it("ATTACK: a stale Approve/Deploy button (a re-preview with another plan) approves and deploys nothing and says what it was for; CONTROL: the current one works", async () => {
    const { number, sha } = await openPr(tree("f1"));
    const first = await d.preview(number, "flaky");
    const second = await d.preview(number, "flaky");
    expect(gh.checkRuns.get(first)!.external_id).not.toBe(gh.checkRuns.get(second)!.external_id);
    const before = (await f.db.query("SELECT count(*)::int AS n FROM approvals")).rows[0].n;
    await d.click(first, "approve", "bob");
    const said = d.lastReply(number);
    expect(said).toMatch(new RegExp(`^@bob the Approve button you clicked was for \`flaky\` at \`${sha.slice(0, 7)}\` \\(plan \`[0-9a-f]{12}\`\\), which is no longer current: a newer preview of ${sha.slice(0, 7)} planned [0-9a-f]{12}\\. Nothing was approved`));
    const firstPlan = (await f.db.query("SELECT plan_hash FROM tasks WHERE id = $1", [gh.checkRuns.get(first)!.external_id])).rows[0].plan_hash as string;
    expect(firstPlan.replace("sha256:", "").slice(0, 12)).toBe(d.planOf(said));
    expect((await f.db.query("SELECT count(*)::int AS n FROM approvals")).rows[0].n).toBe(before);
    await d.click(first, "deploy", "alice");
    expect(d.lastReply(number)).toMatch(/^@alice the Deploy button you clicked was for `flaky` .* which is no longer current: .*Nothing was queued/);
    await d.say(number, "/agent deploy flaky", "alice");
    expect(d.lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(d.deployments()).toBe(0);

    // Control: the current check run's buttons.
    await d.click(second, "approve", "bob");
    expect(d.lastReply(number)).toMatch(/^@bob approved `flaky`/);
    const start = gh.calls.length;
    await d.click(second, "deploy", "alice");
    expect(d.lastReply(number)).toContain("deploying `flaky`");
    await d.deployDone("flaky", start);
  });

  it("ATTACK: an Approve button of the commit before a push approves nothing (not the new head's plan) and names both commits", async () => {
    const { number, sha } = await openPr(tree("p1"));
    const old = await d.preview(number, "app");
    const pushed = await d.push(number, tree("p2"), "alice");
    await d.click(old, "approve", "bob");
    expect(d.lastReply(number)).toContain(`the Approve button you clicked was for \`app\` at \`${sha.slice(0, 7)}\``);
    expect(d.lastReply(number)).toContain(`the head moved to ${pushed.slice(0, 7)} since, which has no successful preview yet. Nothing was approved`);
    // Once the new head is previewed, the old button still approves nothing.
    await d.preview(number, "app");
    await d.click(old, "approve", "bob");
    expect(d.lastReply(number)).toMatch(new RegExp(`the head moved to ${pushed.slice(0, 7)} since; its current plan is [0-9a-f]{12}\\. Nothing was approved`));
    expect((await f.db.query("SELECT count(*)::int AS n FROM approvals WHERE pr_number = $1", [number])).rows[0].n).toBe(0);
    await d.say(number, "/agent deploy app", "alice");
    expect(d.lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
  });

  it("ATTACK: an /approve written before a re-preview changed the plan, processed after it, does not count and says so; CONTROL: one written after counts", async () => {
    const { number } = await openPr(tree("r1"));
    await d.preview(number, "flaky");
    const written = new Date(); // bob reads the first plan and comments …
    await d.preview(number, "flaky"); // … while the plan is previewed again (differently) before his comment is handled
    await d.say(number, "/approve", "bob", { createdAt: written });
    expect(d.lastReply(number)).toMatch(/^@bob noted for `flaky` \(plan `([0-9a-f]{12})`\) at `[0-9a-f]{7}`, but it does not count: the plan changed after your comment: you saw plan \1, the current plan is [0-9a-f]{12}\.$/);
    await d.say(number, "/agent deploy flaky", "alice");
    expect(d.lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(d.lastReply(number)).toContain("@\u200bbob (/approve): approved a different plan");
    await d.say(number, "/approve", "bob");
    expect(d.lastReply(number)).toMatch(/^@bob approved `flaky`/);
    await d.say(number, "/agent deploy flaky", "alice");
    expect(d.lastReply(number)).toContain("deploying `flaky`");
    await d.deployDone("flaky");
  });

  it("ATTACK: an /approve written before a push, processed after the new head was previewed, does not count and says so", async () => {
    const { number, sha } = await openPr(tree("h1"));
    await d.preview(number, "app");
    const written = new Date();
    const pushed = await d.push(number, tree("h2"), "alice", new Date(written.getTime() + 1000));
    await d.preview(number, "app");
    await d.say(number, "/approve", "bob", { createdAt: written });
    expect(d.lastReply(number)).toBe(`@bob noted for \`app\` (plan \`${d.planOf(d.lastReply(number))}\`) at \`${sha.slice(0, 7)}\`, but it does not count: the head moved to ${pushed.slice(0, 7)} after your comment (you saw the plan of ${sha.slice(0, 7)}).`);
    await d.say(number, "/agent deploy app", "alice");
    expect(d.lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(d.deployments()).toBe(0);
  });

  it("ATTACK: a review submitted before a re-preview with another plan does not count; CONTROL: one submitted after it does", async () => {
    const { number, sha } = await openPr(tree("v1"));
    await d.preview(number, "flaky");
    gh.reviews.set(number, [{ id: 7101, user: { login: "bob", type: "User" }, state: "APPROVED", commit_id: sha, submitted_at: new Date().toISOString() }]);
    await d.preview(number, "flaky");
    await d.say(number, "/agent deploy flaky", "alice");
    expect(d.lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(d.lastReply(number)).toContain("@\u200bbob (review): approved a different plan");
    gh.reviews.set(number, [...gh.reviews.get(number)!, { id: 7102, user: { login: "bob", type: "User" }, state: "APPROVED", commit_id: sha, submitted_at: new Date().toISOString() }]);
    await d.say(number, "/agent deploy flaky", "alice");
    expect(d.lastReply(number)).toContain("deploying `flaky`");
    await d.deployDone("flaky");
  });

  it("ATTACK: /agent ok-to-test does not run a head pushed after the comment; CONTROL: a comment after the push runs it; with no push on record it asks again", async () => {
    const written = new Date();
    const { number, sha } = await openPr(tree("fork1"), { headRepo: "mallory/approvers" }, new Date(written.getTime() - 1000));
    const pushed = await d.push(number, tree("fork2"), "mallory", new Date(written.getTime() + 1000));
    const checkRuns = () => gh.find("POST", /\/check-runs$/).length;
    await d.say(number, "/agent ok-to-test", "carol", { createdAt: written });
    expect(d.lastReply(number)).toBe(`@carol the head moved from ${sha.slice(0, 7)} (what you vouched for) to ${pushed.slice(0, 7)} after your comment. Nothing was run: review the new commit, then comment again.`);
    expect(checkRuns()).toBe(0);

    const start = gh.calls.length;
    await d.say(number, "/agent ok-to-test", "carol", { createdAt: new Date(written.getTime() + 2000) });
    const done = await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c) && d.checkRunOf(c)?.name === "agent/preview (app)", "the vouched preview");
    expect(d.checkRunOf(done)?.head_sha).toBe(pushed);

    // A fork PR whose pushes were never recorded (e.g. opened before the app was installed).
    await f.db.query("DELETE FROM stack_locks");
    const other = ++pr;
    gh.pulls.set(other, { headSha: pushed, author: "mallory", headRepo: "mallory/approvers" });
    await d.say(other, "/agent ok-to-test", "carol");
    expect(d.lastReply(other)).toContain(`I have no record of this pull request's pushes from before your comment, so I can't tell which commit you vouched for. I have now recorded its head ${pushed.slice(0, 7)}`);
    const again = gh.calls.length;
    await d.say(other, "/agent ok-to-test", "carol", { createdAt: new Date(Date.now() + 1000) });
    await gh.waitFor((c) => gh.calls.indexOf(c) >= again && isCheckRunCompleted(c) && d.checkRunOf(c)?.name === "agent/preview (app)", "the preview after the head was recorded");
  });

  it("ATTACK: a rollback requester's own /approve is answered truthfully (it does not count); CONTROL: another writer's is", async () => {
    // A good deploy of `back`, merged: what a rollback goes back to.
    const good = await openPr(tree("b1"));
    gh.pulls.set(good.number, { ...gh.pulls.get(good.number)!, mergeSha: await f.git.commit(REPO, tree("b1"), "merge commit") });
    await d.preview(good.number, "back");
    await d.say(good.number, "/approve", "bob");
    const start = gh.calls.length;
    await d.say(good.number, "/agent deploy back", "alice");
    await d.deployDone("back", start);
    await gh.waitFor(() => d.replies(good.number).some((b) => b.includes("and merged the pull request")), "the merge");

    const issue = 900 + pr;
    const before = gh.calls.length;
    await d.say(issue, "/agent rollback back", "alice", { onPullRequest: false });
    await gh.waitFor((c) => gh.calls.indexOf(c) >= before && isCheckRunCompleted(c) && d.checkRunOf(c)?.name === "agent/preview (back)", "the rollback preview");
    await gh.waitFor(() => d.replies(issue).some((b) => b.includes("waits for approval")), "the rollback plan");
    await d.say(issue, "/approve", "alice", { onPullRequest: false });
    expect(d.lastReply(issue)).toMatch(/^@alice noted for `back` \(rollback plan `[0-9a-f]{12}` at `[0-9a-f]{7}`\), but it does not count: the person who asked for it cannot approve their own change\.$/);
    await d.say(issue, "/approve", "bob", { onPullRequest: false });
    expect(d.lastReply(issue)).toMatch(/^@bob approved `back` \(rollback plan `[0-9a-f]{12}` at `[0-9a-f]{7}`\); `\/agent rollback back` applies it\.$/);
  });
});

describe("a pusher's Slack click", () => {
  const SLACK = "https://slack.test";
  const BOT_TOKEN = "xoxb-1234567890-0987654321-ApproverBinding0";
  const SIGNING_SECRET = "9a742231b10e8888abcd99yyyzzz85a6";
  let f: AppFixture;
  let gh: GitHubFake;
  const d = driver(() => ({ f, gh }));
  const posted: Array<Record<string, string>> = [];
  const ephemeral: Array<Record<string, string>> = [];
  const slackCalls = new EventEmitter();
  const slackWait = async (pred: () => boolean, what: string) => {
    const deadline = AbortSignal.timeout(30_000);
    while (!pred()) await once(slackCalls, "call", { signal: deadline }).catch(() => { throw new Error(`timed out waiting for ${what}`); });
  };
  const form = (body: unknown) => (typeof body === "string" ? Object.fromEntries(new URLSearchParams(body)) : (body as Record<string, string>));

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, {
      env: {
        SLACK_BOT_TOKEN: BOT_TOKEN,
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_CHANNELS: JSON.stringify({ "*": "C0DEPLOYS" }),
        SLACK_USERS: JSON.stringify({ U0BOB: "bob", U0MAL: "mallory" }),
        SLACK_API_URL: `${SLACK}/api/`,
      },
      credentials: staticCredentials(() => ({})),
    });
    const record = (into: Array<Record<string, string>>) => (_r: unknown, _i: unknown, body: unknown) => (into.push(form(body)), setImmediate(() => slackCalls.emit("call")));
    nock(SLACK).persist().post("/api/chat.postMessage").reply(200, { ok: true, channel: "C0DEPLOYS", ts: "1763800000.000100" }).on("request", record(posted));
    nock(SLACK).persist().post("/api/chat.postEphemeral").reply(200, { ok: true, message_ts: "1763800001.000100" }).on("request", record(ephemeral));
    nock(SLACK).persist().post("/api/chat.update").reply(200, { ok: true, channel: "C0DEPLOYS", ts: "1763800000.000100" }).on("request", record([]));
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });
  const click = (user: string, value: string) => {
    const payload = {
      type: "block_actions",
      user: { id: user, username: user.toLowerCase(), team_id: "T0TEAM" },
      channel: { id: "C0DEPLOYS", name: "deploys" },
      container: { type: "message", message_ts: "1763800000.000100", channel_id: "C0DEPLOYS" },
      message: { type: "message", ts: "1763800000.000100", text: "Approval needed" },
      response_url: "https://hooks.slack.com/actions/T0TEAM/1/abc",
      actions: [{ action_id: "agent_approve", block_id: "agent_approval", value, type: "button", action_ts: `1763800000.${user.length}00200` }],
    };
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const ts = Math.floor(Date.now() / 1000);
    const sig = `v0=${createHmac("sha256", SIGNING_SECRET).update(`v0:${ts}:${body}`).digest("hex")}`;
    return fetch(`http://127.0.0.1:${f.app.port}/slack/interactions`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": String(ts), "x-slack-signature": sig }, body });
  };

  it("ATTACK: does not count, and both Slack and the PR are told why; CONTROL: another writer's click counts", async () => {
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of ROLES) gh.permissions.set(login, role);
    gh.files.set("main:.github/agent.yml", CONFIG);
    const number = 9;
    const sha = await f.git.commit(REPO, tree("s1"));
    gh.pulls.set(number, { headSha: sha, author: "alice" });
    await d.push(number, tree("s1-mallory"), "mallory");
    await d.preview(number, "app");
    await d.say(number, "/agent deploy app", "alice");
    expect(d.lastReply(number)).toContain("is blocked");
    await slackWait(() => posted.length === 1, "the Slack approval request");
    const blocks = JSON.parse(posted[0]!.blocks!) as Array<{ type: string; elements?: Array<{ action_id: string; value: string }> }>;
    const value = blocks.find((b) => b.type === "actions")!.elements![0]!.value;

    expect((await click("U0MAL", value)).status).toBe(200);
    await gh.waitFor(() => d.replies(number).some((b) => b.includes("in Slack")), "the PR comment about mallory's click");
    expect(d.lastReply(number)).toMatch(/^@\u200bmallory's approval of `app` \(plan `[0-9a-f]{12}`\) at `[0-9a-f]{7}` in Slack does not count: pushed to this pull request: the people who changed the code do not approve it\.$/);
    await slackWait(() => ephemeral.length === 1, "the private answer");
    expect(ephemeral[0]).toMatchObject({ user: "U0MAL", text: "Your approval was recorded but does not count: pushed to this pull request: the people who changed the code do not approve it." });
    await d.say(number, "/agent deploy app", "alice");
    expect(d.lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);

    expect((await click("U0BOB", value)).status).toBe(200);
    await gh.waitFor(() => d.replies(number).some((b) => b.startsWith("@\u200bbob approved")), "bob's approval");
    const start = gh.calls.length;
    await d.say(number, "/agent deploy app", "alice");
    expect(d.lastReply(number)).toContain("deploying `app`");
    await d.deployDone("app", start);
  });
});
