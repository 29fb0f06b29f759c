/**
 * Issue 15, item 4 — check at the time of use. A deploy that passed its gate when it was queued
 * is checked again by the deploy job immediately before it applies, atomically with claiming
 * the apply: a /deny, a close, a push or expired approvals in between stop it (BLOCKED, nothing
 * applied, no approval used). A failed apply uses up its approvals and its preview; a rollback
 * to a known-good plan that was applied before goes through once approved. End to end: signed
 * webhooks, the real task queue (held with BullMQ's pause while the attack happens), real
 * sandboxes, Postgres and Redis; GitHub at the HTTP boundary.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { createDeployWorkflow } from "../../src/connectors/store/workflows.js";
import { deployJobId } from "../../src/connectors/queues.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, leftoverSandboxes, pullRequestPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/time-of-use";
const TOKEN = "ghs_applyTimeGateInstallationToken000080";
const CONFIG = `version: 1
default_stack: app
stacks:
  - name: app
    dir: app
    gate: { approvals: 1, require: { lock: false } }
    steps:
      preview: ["cat", "plan.txt"]
      deploy: ["./deploy.sh"]
`;
// The deploy fails while the test says so (through the deploy's credentials, which only it gets).
const tree = (version: string) => ({
  "app/plan.txt": `plan: release ${version}\n`,
  "app/deploy.sh": exe(`#!/bin/sh\necho deploying ${version}\nif [ "$DEPLOY_FAILS" = "yes-fail-now" ]; then echo 'the cloud said no'; exit 3; fi\n`),
});

describe("the gate at the time of apply", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 80;
  let failDeploys = false;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials: staticCredentials((req): Record<string, string> => (req.kind === "deploy" && failDeploys ? { DEPLOY_FAILS: "yes-fail-now" } : {})) });
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"], ["carol", "maintain"]] as const) gh.permissions.set(login, role);
    gh.files.set("main:.github/agent.yml", CONFIG);
  });
  afterEach(async () => {
    await f.app.deps.queues.tasks.resume();
    failDeploys = false;
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });

  async function openPr(version: string, opts: { fastForward?: boolean } = {}) {
    await f.db.query("DELETE FROM stack_locks");
    const sha = await f.git.commit(REPO, tree(version), `pr ${version}`);
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha, author: "alice", ...(opts.fastForward ? { mergeSha: sha } : {}) });
    const res = await deliver(f.app.port!, "pull_request", pullRequestPayload("opened", { repo: REPO, prNumber: number, headSha: sha, author: "alice", sender: "alice" }));
    await f.watcher.handled(res.id);
    return { number, sha };
  }
  async function say(number: number, body: string, login: string) {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    await f.watcher.handled(res.id);
  }
  const replies = (number: number) => gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent"));
  const lastReply = (number: number) => replies(number).at(-1) ?? "";
  const checkRunOf = (c: RecordedCall) => gh.checkRuns.get(Number(c.path.split("/").pop()));
  const since = () => {
    const start = gh.calls.length;
    return (c: RecordedCall) => gh.calls.indexOf(c) >= start;
  };
  const completed = (after: (c: RecordedCall) => boolean, name: string, sha?: string) =>
    gh.waitFor((c) => after(c) && isCheckRunCompleted(c) && checkRunOf(c)?.name === name && (!sha || checkRunOf(c)?.head_sha === sha), name, 60_000);
  const deploymentsOf = (sha: string) => [...gh.deployments.values()].filter((d) => d.ref === sha).length;
  const deploysOf = async (number: number) => (await f.db.query("SELECT kind, state FROM deploys WHERE pr_number = $1 ORDER BY created_at", [number])).rows;
  const used = async (number: number) => (await f.db.query("SELECT a.source FROM deploy_approvals a JOIN deploys d ON d.task_id = a.deploy_task_id WHERE d.pr_number = $1", [number])).rows;

  async function previewAndApprove(number: number) {
    const after = since();
    await say(number, "/agent preview app", "alice");
    await completed(after, "agent/preview (app)");
    await say(number, "/approve", "bob");
    expect(lastReply(number)).toMatch(/^@bob approved `app`/);
  }

  /** `/agent deploy app` accepted by the gate, its job held in the paused task queue. */
  async function queueDeploy(number: number) {
    await f.app.deps.queues.tasks.pause();
    await say(number, "/agent deploy app", "alice");
    expect(lastReply(number)).toContain("deploying `app`");
    expect(await deploysOf(number)).toEqual([{ kind: "deploy", state: "PENDING" }]);
  }

  /** Lets the held deploy run; resolves with its check run's completion. */
  async function release() {
    const after = since();
    await f.app.deps.queues.tasks.resume();
    return completed(after, "agent/deploy (app)");
  }

  async function expectBlocked(number: number, sha: string, unmet: RegExp) {
    const done = await release();
    expect(done.body).toMatchObject({ conclusion: "action_required" });
    await gh.waitFor(() => replies(number).some((b) => b.startsWith("⛔ The queued deploy of `app`")), "the blocked-deploy comment");
    const said = replies(number).find((b) => b.startsWith("⛔ The queued deploy of `app`"))!;
    expect(said).toContain("was not applied: when it was about to start, the gate no longer passed. Nothing was applied and no approval was used.");
    expect(said).toMatch(unmet);
    expect(deploymentsOf(sha)).toBe(0);
    expect(await deploysOf(number)).toEqual([{ kind: "deploy", state: "BLOCKED" }]);
    expect(await used(number)).toEqual([]);
    const { rows } = await f.db.query("SELECT action FROM audit_log WHERE pr_number = $1 AND action LIKE 'deploy.%' ORDER BY id", [number]);
    expect(rows.map((r) => r.action)).toEqual(["deploy.queued", "deploy.blocked"]);
    return said;
  }

  it("CONTROL: a held deploy with nothing changed meanwhile is applied, and records the approval it used", async () => {
    const { number, sha } = await openPr("ok");
    await previewAndApprove(number);
    await queueDeploy(number);
    const done = await release();
    expect(done.body).toMatchObject({ conclusion: "success" });
    expect(deploymentsOf(sha)).toBe(1);
    expect(await used(number)).toEqual([{ source: "comment" }]);
  });

  it("ATTACK: a /deny after the deploy was queued stops it, and the /deny's reply says so", async () => {
    const { number, sha } = await openPr("deny");
    await previewAndApprove(number);
    await queueDeploy(number);
    await say(number, "/deny not now", "carol");
    expect(lastReply(number)).toContain("The queued deploy of `app` at");
    expect(lastReply(number)).toContain("will not be applied: the gate is checked again when it starts.");
    await expectBlocked(number, sha, /- \[ \] No \/deny in force — denied by @\u200b?carol/);
  });

  it("ATTACK: closing the PR after the deploy was queued stops it", async () => {
    const { number, sha } = await openPr("close");
    await previewAndApprove(number);
    await queueDeploy(number);
    gh.pulls.set(number, { ...gh.pulls.get(number)!, state: "closed" });
    const res = await deliver(f.app.port!, "pull_request", pullRequestPayload("closed", { repo: REPO, prNumber: number, headSha: sha, author: "alice", sender: "alice" }));
    await f.watcher.handled(res.id);
    await expectBlocked(number, sha, /- \[ \] Pull request is open — the pull request is closed/);
  });

  it("ATTACK: a push after the deploy was queued stops it (the new commits were never approved)", async () => {
    const { number, sha } = await openPr("push");
    await previewAndApprove(number);
    await queueDeploy(number);
    const pushed = await f.git.commit(REPO, tree("push-2"), "late push");
    gh.pulls.set(number, { ...gh.pulls.get(number)!, headSha: pushed });
    const res = await deliver(f.app.port!, "pull_request", pullRequestPayload("synchronize", { repo: REPO, prNumber: number, headSha: pushed, author: "alice", sender: "alice" }));
    await f.watcher.handled(res.id);
    const said = await expectBlocked(number, sha, new RegExp(`the head moved to \`${pushed.slice(0, 7)}\` after this deploy of \`${sha.slice(0, 7)}\` was queued`));
    expect(said).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(deploymentsOf(pushed)).toBe(0);
  });

  it("ATTACK: approvals that expired while the deploy was queued do not carry it", async () => {
    const { number, sha } = await openPr("expire");
    await previewAndApprove(number);
    await queueDeploy(number);
    // Two days pass (the approval lives one): the preview and the approval are that old now.
    await f.db.query("UPDATE approvals SET created_at = created_at - interval '2 days' WHERE pr_number = $1", [number]);
    await f.db.query("UPDATE tasks SET finished_at = finished_at - interval '2 days' WHERE kind = 'preview' AND workflow_id IN (SELECT id FROM workflows WHERE pr_number = $1)", [number]);
    const said = await expectBlocked(number, sha, /- \[ \] Approvals — 0 of 1/);
    expect(said).toContain("@\u200bbob (/approve): approval expired");
  });

  it("ATTACK: a /deny that comes after the deploy was claimed says it is too late (break-glass stops it) instead of pretending", async () => {
    const { number, sha } = await openPr("late");
    await previewAndApprove(number);
    const preview = (await f.db.query("SELECT t.id, t.plan_hash FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 AND t.kind = 'preview'", [number])).rows[0];
    // A deploy the worker has claimed and is applying (its row RUNNING).
    const applying = await createDeployWorkflow(f.app.deps.db, {
      repo: REPO, installationId: 4242, prNumber: number, headSha: sha, planHash: preview.plan_hash, requestedBy: "alice", deliveryId: null,
      config: { image: "agent-sandbox:test", cloneUrl: f.git.cloneUrl(REPO), defaultBranch: "main", stacks: [] }, stack: "app", jobId: deployJobId(REPO, "app", sha, preview.plan_hash), previewTaskId: preview.id,
    });
    await f.db.query("UPDATE deploys SET state = 'RUNNING', started_at = now() WHERE task_id = $1", [applying!.task.id]);
    await say(number, "/deny stop", "carol");
    expect(lastReply(number)).toContain("This comes too late for the deploy of `app` at");
    expect(lastReply(number)).toContain("it is already applying and a /deny does not stop it. An operator's break-glass does");
    await f.db.query("UPDATE deploys SET state = 'FAILED', finished_at = now() WHERE task_id = $1", [applying!.task.id]);
  });

  it("ATTACK: after a failed apply, /agent deploy is refused until a fresh preview and a fresh approval; CONTROL: then it is applied", async () => {
    const { number, sha } = await openPr("retry");
    await previewAndApprove(number);
    failDeploys = true;
    let after = since();
    await say(number, "/agent deploy app", "alice");
    expect((await completed(after, "agent/deploy (app)")).body).toMatchObject({ conclusion: "failure" });
    failDeploys = false;
    expect(await used(number)).toEqual([{ source: "comment" }]);

    // The failed apply used bob's approval.
    await say(number, "/agent deploy app", "alice");
    expect(lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(lastReply(number)).toMatch(/@\u200bbob \(\/approve\): already used by the deploy of plan [0-9a-f]{12}, which failed/);
    // A fresh approval is not enough: that preview was applied once already.
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy app", "alice");
    expect(lastReply(number)).toMatch(/this preview of `app` \(plan `[0-9a-f]{12}`\) was already applied once \(that deploy failed\); a preview is applied at most once\. To apply again, run `\/agent preview app`/);
    expect(deploymentsOf(sha)).toBe(1);

    // A fresh preview (the same plan: the command's output is stable) and the fresh approval.
    after = since();
    await say(number, "/agent preview app", "alice");
    await completed(after, "agent/preview (app)");
    after = since();
    await say(number, "/agent deploy app", "alice");
    expect(lastReply(number)).toContain("deploying `app`");
    expect((await completed(after, "agent/deploy (app)")).body).toMatchObject({ conclusion: "success" });
    expect((await deploysOf(number)).map((d) => d.state)).toEqual(["FAILED", "SUCCEEDED"]);
    expect(deploymentsOf(sha)).toBe(2);
  });

  it("a rollback to a known-good commit whose plan was applied before is applied once approved (and, queued, is stopped by a /deny like any deploy)", async () => {
    // The good PR is merged fast-forward: the default branch's commit is its head, whose plan was applied.
    const good = await openPr("good", { fastForward: true });
    await previewAndApprove(good.number);
    let after = since();
    await say(good.number, "/agent deploy app", "alice");
    expect((await completed(after, "agent/deploy (app)")).body).toMatchObject({ conclusion: "success" });
    await gh.waitFor(() => replies(good.number).some((b) => b.includes("and merged the pull request")), "the merge");

    const bad = await openPr("bad");
    await previewAndApprove(bad.number);
    failDeploys = true;
    after = since();
    await say(bad.number, "/agent deploy app", "alice");
    expect((await completed(after, "agent/deploy (app)")).body).toMatchObject({ conclusion: "failure" });
    failDeploys = false;
    // The failure's comment follows its check run: wait for it, so the rollback's reply is the last one.
    await gh.waitFor(() => replies(bad.number).some((b) => b.startsWith("❌ Deploy of `app`")), "the failure comment");

    after = since();
    await say(bad.number, "/agent rollback app", "alice");
    expect(lastReply(bad.number)).toContain(`rolling back \`app\` to \`${good.sha.slice(0, 7)}\``);
    await completed(after, "agent/preview (app)", good.sha);
    await gh.waitFor(() => replies(bad.number).some((b) => b.includes("waits for approval")), "the rollback plan");
    await say(bad.number, "/approve", "bob");

    // A branch apply gets the same check at the time of use: a /deny while it is queued stops it.
    await f.app.deps.queues.tasks.pause();
    await say(bad.number, "/agent rollback app", "alice");
    expect(lastReply(bad.number)).toContain("applying the rollback of `app`");
    await say(bad.number, "/deny wait", "carol");
    expect(lastReply(bad.number)).toContain("The queued deploy of `app`");
    after = since();
    await f.app.deps.queues.tasks.resume();
    expect((await completed(after, "agent/deploy (app)", good.sha)).body).toMatchObject({ conclusion: "action_required" });
    await gh.waitFor(() => replies(bad.number).some((b) => b.startsWith("⛔ The queued rollback of `app`")), "the blocked rollback");
    expect(deploymentsOf(good.sha)).toBe(1);

    // Blocked applied nothing and used nothing: once carol lifts her /deny, the same preview applies.
    await say(bad.number, "/approve", "carol");
    after = since();
    await say(bad.number, "/agent rollback app", "alice");
    expect(lastReply(bad.number)).toContain("applying the rollback of `app`");
    expect((await completed(after, "agent/deploy (app)", good.sha)).body).toMatchObject({ conclusion: "success" });
    expect(deploymentsOf(good.sha)).toBe(2);
    expect(await deploysOf(bad.number)).toEqual([
      { kind: "deploy", state: "FAILED" },
      { kind: "branch", state: "BLOCKED" },
      { kind: "branch", state: "SUCCEEDED" },
    ]);
  });
});
