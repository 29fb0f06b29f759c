/**
 * The human gate and `/agent deploy`, end to end: the stand-in `pulumi` runs inside real
 * sandbox containers, Postgres holds approvals and deploys, GitHub is the nock fake.
 * preview → blocked deploy with the checklist → approvals → deploy of exactly the approved
 * plan → merge with `sha`; and the attacks on it: self-approval, stale approvals, /deny,
 * a config lowered in the PR, a late push, duplicate deploys, a worker that died mid-apply.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials, type CredentialSource } from "../../src/connectors/credentials.js";
import { createDeployWorkflow } from "../../src/connectors/store/workflows.js";
import { deployJobId, DEPLOY_JOB_OPTIONS } from "../../src/connectors/queues.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { checkRunActionPayload, deliver, issueCommentPayload, leftoverSandboxes, pullRequestPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/gated";
const TOKEN = "ghs_deployGateInstallationToken0000000010";
const PASSPHRASE = "gate-test-passphrase-0000000001";
const CONFIG = `version: 1
stacks:
  - name: prod
    dir: infra
    engine: pulumi
    gate: { approvals: 1 }
  - name: app
    dir: app
    gate: { approvals: 1, require: { lock: false } }
    steps:
      preview: ["echo", "plan: restart 2 services"]
      deploy: ["./deploy.sh"]
`;
const credentials: CredentialSource = staticCredentials(() => ({ PULUMI_BACKEND_URL: "file:///tmp/pulumi-state", PULUMI_CONFIG_PASSPHRASE: PASSPHRASE }));
const TREE = {
  "infra/Pulumi.yaml": "name: shop\nruntime: nodejs\n",
  "infra/pulumi-standin.json": readFileSync(new URL("../fixtures/pulumi/creates.json", import.meta.url), "utf8"),
  "app/deploy.sh": exe("#!/bin/sh\necho deployed app\n"),
};

describe("the gate and /agent deploy", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 20;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials });
  });
  afterEach(() => gh?.stop());
  afterAll(() => f.stop());

  async function openPr(tree: Record<string, string | { content: string; mode: number }> = TREE) {
    await f.db.query("DELETE FROM stack_locks");
    gh?.stop();
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"], ["carol", "maintain"], ["rita", "read"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
    const sha = await f.git.commit(REPO, tree);
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha, author: "alice" });
    return { number, sha };
  }

  async function say(number: number, body: string, login: string) {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    await f.watcher.handled(res.id);
  }
  const replies = (number: number) =>
    gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent"));
  const lastReply = (number: number) => replies(number).at(-1) ?? "";
  const checkRunNamed = (c: RecordedCall) => String(gh.checkRuns.get(Number(c.path.split("/").pop()))?.name);

  async function preview(number: number, stack = "prod") {
    const start = gh.calls.length;
    await say(number, `/agent preview ${stack}`, "alice");
    const done = await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c) && checkRunNamed(c) === `agent/preview (${stack})`, `the ${stack} preview`);
    expect(done.body).toMatchObject({ conclusion: "success" });
    // The preview's last write (the sticky comment) follows the check run.
    const at = gh.calls.indexOf(done);
    await gh.waitFor((c) => gh.calls.indexOf(c) > at && /\/comments\/\d+$/.test(c.path) && c.method === "PATCH", "the sticky comment");
  }
  const deployDone = (stack = "prod") => gh.waitFor((c) => isCheckRunCompleted(c) && checkRunNamed(c) === `agent/deploy (${stack})`, `the ${stack} deploy`, 90_000);
  const deploysOf = async (number: number) => (await f.db.query("SELECT stack, state, merged, plan_hash FROM deploys WHERE pr_number = $1 ORDER BY created_at", [number])).rows;

  it("walks the whole path: blocked with a checklist, the author's approval ignored, a reviewer approves, deploy of the approved plan, merge with sha", async () => {
    const { number, sha } = await openPr();
    await preview(number);

    await say(number, "/agent deploy prod", "alice");
    const blocked = lastReply(number);
    expect(blocked).toContain("is blocked");
    expect(blocked).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(blocked).toMatch(/- \[x\] Preview of the head commit succeeded/);
    expect(blocked).toMatch(/- \[x\] Stack lock held by this PR/);
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(0);

    await say(number, "/approve looks fine to me", "alice");
    expect(lastReply(number)).toContain("author of a pull request never counts");
    await say(number, "/agent deploy prod", "alice");
    expect(lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(lastReply(number)).toContain("cannot approve their own change");

    await say(number, "/approve", "bob");
    expect(lastReply(number)).toMatch(/approved `prod` \(plan `[0-9a-f]{12}`\)/);
    await say(number, "/agent deploy prod", "alice");
    expect(lastReply(number)).toMatch(/deploying `prod` at `[0-9a-f]{7}` \(plan `[0-9a-f]{12}`\), approved by @\u200bbob/);

    const done = await deployDone();
    expect(done.body).toMatchObject({ conclusion: "success" });
    const [deployment] = [...gh.deployments.values()];
    expect(deployment).toEqual({ ref: sha, environment: "prod", statuses: ["in_progress", "success"] });
    const merged = await gh.waitFor((c) => c.method === "PUT" && c.path.endsWith(`/pulls/${number}/merge`), "the merge");
    expect(merged.body).toMatchObject({ sha, merge_method: "merge" });
    await gh.waitFor(() => replies(number).some((b) => b.includes("and merged the pull request")), "the deployed-and-merged comment");
    const rows = await deploysOf(number);
    const approvedHash = (await f.db.query("SELECT plan_hash FROM approvals WHERE pr_number = $1 AND actor = 'bob'", [number])).rows[0].plan_hash;
    expect(rows).toEqual([{ stack: "prod", state: "SUCCEEDED", merged: true, plan_hash: approvedHash }]);
    const { rows: audit } = await f.db.query("SELECT action FROM audit_log WHERE pr_number = $1 AND action LIKE ANY (ARRAY['gate.%', 'deploy.%', 'merge.%', 'approval.%']) ORDER BY id", [number]);
    expect(audit.map((a) => a.action)).toEqual([
      "gate.evaluated",
      "approval.recorded",
      "gate.evaluated",
      "approval.recorded",
      "gate.evaluated",
      "deploy.queued",
      // The gate asked again at the time of apply, and the approvals it used (issue 15).
      "deploy.claimed",
      "deploy.started",
      "deploy.succeeded",
      "merge.succeeded",
    ]);
    expect(JSON.stringify(gh.calls.map((c) => c.body))).not.toContain(PASSPHRASE);
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });

  it("a push after the approval makes it stale; a /deny blocks until the same person approves again", async () => {
    const { number } = await openPr();
    await preview(number);
    await say(number, "/approve", "bob");
    const pushed = await f.git.commit(REPO, { ...TREE, "README.md": "new commit\n" });
    gh.pulls.set(number, { headSha: pushed, author: "alice" });
    await say(number, "/agent deploy prod", "alice");
    expect(lastReply(number)).toMatch(/- \[ \] Preview of the head commit succeeded/);
    expect(lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);

    await preview(number);
    await say(number, "/approve", "bob");
    await say(number, "/deny not during the freeze", "carol");
    await say(number, "/agent deploy prod", "alice");
    expect(lastReply(number)).toMatch(/- \[ \] No \/deny in force — .*carol/);
    await say(number, "/approve", "carol");
    gh.calls.length = 0;
    await say(number, "/agent deploy prod", "alice");
    expect(lastReply(number)).toContain("deploying `prod`");
    await deployDone();
    expect((await deploysOf(number)).map((d) => d.state)).toEqual(["SUCCEEDED"]);
  });

  it("an approving GitHub review of the head commit counts; one of an older commit, or the author's, does not", async () => {
    const { number, sha } = await openPr();
    await preview(number, "app");
    const review = (id: number, login: string, commit: string) => ({ id, user: { login, type: "User" }, state: "APPROVED" as const, commit_id: commit, submitted_at: new Date().toISOString() });
    gh.reviews.set(number, [review(1, "bob", "0".repeat(40)), review(2, "alice", sha)]);
    await say(number, "/agent deploy app", "alice");
    expect(lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(lastReply(number)).toMatch(/@\u200bbob \(review\): approved an older commit/);
    gh.reviews.set(number, [review(1, "bob", "0".repeat(40)), review(2, "alice", sha), review(3, "bob", sha)]);
    await say(number, "/agent deploy app", "alice");
    expect(lastReply(number)).toContain("deploying `app`");
    await deployDone("app");
  });

  it("a fork's code runs only when a maintainer asks, and a fork is never deployed", async () => {
    const { number, sha } = await openPr();
    gh.pulls.set(number, { ...gh.pulls.get(number)!, headRepo: "mallory/gated" });
    // GitHub announces the PR (and its head): a maintainer's ok-to-test vouches for the head
    // recorded before their comment (issue 15; without a record they are asked to comment again).
    const opened = await deliver(f.app.port!, "pull_request", pullRequestPayload("opened", { repo: REPO, prNumber: number, headSha: sha, author: "alice", sender: "alice", headRepo: "mallory/gated" }));
    await f.watcher.handled(opened.id);
    await say(number, "/agent preview app", "bob");
    expect(lastReply(number)).toContain("comes from a fork");
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(0);
    // Prow's name for it works too, and needs maintain as well.
    await say(number, "/agent ok-to-test", "bob");
    expect(lastReply(number)).toContain("`ok-to-test` needs **maintain** access");
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(0);
    const start = gh.calls.length;
    await say(number, "/agent ok-to-test", "carol");
    await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c) && checkRunNamed(c) === "agent/preview (app)", "the maintainer's preview");
    await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c) && checkRunNamed(c) === "agent/preview (prod)", "the maintainer's preview of prod");
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy app", "carol");
    expect(lastReply(number)).toMatch(/- \[ \] Not from a fork/);
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(0);
  });

  it("the preview check run's Approve and Deploy buttons go through the same gate as the comments", async () => {
    const { number, sha } = await openPr();
    await preview(number, "app");
    const [checkRunId, cr] = [...gh.checkRuns.entries()].find(([, c]) => c.name === "agent/preview (app)")!;
    expect((cr.actions as Array<{ identifier: string }>).map((a) => a.identifier)).toEqual(["deploy", "approve"]);
    // The app sets external_id to its task id (check-run ids of the fake repeat across tests).
    const task = String(cr.external_id);
    const click = async (identifier: string, sender: string) => {
      const res = await deliver(f.app.port!, "check_run", checkRunActionPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), checkRunId, taskId: task, headSha: sha, identifier, sender }));
      expect(res.status).toBe(202);
      await f.watcher.handled(res.id);
    };
    await click("deploy", "alice");
    expect(lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    await click("approve", "rita");
    expect(lastReply(number)).toContain("needs **write** access");
    await click("approve", "bob");
    expect(lastReply(number)).toMatch(/^@bob approved `app`/);
    await click("deploy", "alice");
    expect(lastReply(number)).toContain("deploying `app`");
    await deployDone("app");
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(1);
  });

  it("a button click is dispatched like its comment: a broken default-branch config is audited (config.invalid) and explained; an undeclared stack runs nothing", async () => {
    const { number, sha } = await openPr();
    await preview(number, "app");
    const [checkRunId, cr] = [...gh.checkRuns.entries()].find(([, c]) => c.name === "agent/preview (app)")!;
    const click = async (identifier: string, sender: string) => {
      const res = await deliver(f.app.port!, "check_run", checkRunActionPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), checkRunId, taskId: String(cr.external_id), headSha: sha, identifier, sender }));
      await f.watcher.handled(res.id);
    };
    gh.files.set("main:.github/agent.yml", "version: 1\nstacks: nope\n");
    await click("approve", "bob");
    expect(lastReply(number)).toMatch(/^@bob The configuration on the default branch `main` is not valid:/);
    const audited = await f.db.query("SELECT action, detail FROM audit_log WHERE repo = $1 AND pr_number = $2 AND actor = 'bob' ORDER BY id", [REPO, number]);
    expect(audited.rows.map((r) => r.action)).toEqual(["command.received", "config.invalid"]);
    expect(audited.rows[0].detail).toMatchObject({ command: "approve", via: "check_run_button", stack: "app", permission: "write" });
    expect(audited.rows[1].detail).toMatchObject({ command: "approve" });

    gh.files.set("main:.github/agent.yml", CONFIG.slice(0, CONFIG.indexOf("  - name: app")));
    await click("deploy", "alice");
    expect(lastReply(number)).toBe("@alice the stack of that check run is no longer declared on the default branch.");
    expect((await f.db.query("SELECT count(*)::int AS n FROM approvals WHERE repo = $1 AND pr_number = $2", [REPO, number])).rows[0].n).toBe(0);
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(0);
  });

  it("a PR that lowers its own gate in .github/agent.yml changes nothing; a writer cannot deploy a maintain-only stack", async () => {
    const lowered = CONFIG.replace("gate: { approvals: 1 }", "gate: { approvals: 0 }");
    const { number, sha } = await openPr({ ...TREE, ".github/agent.yml": lowered });
    gh.files.set(`${sha}:.github/agent.yml`, lowered);
    await preview(number);
    await say(number, "/agent deploy prod", "alice");
    expect(lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(0);

    gh.files.set("main:.github/agent.yml", CONFIG.replace("gate: { approvals: 1 }", "gate: { approvals: 1, deploy_permission: maintain }"));
    await say(number, "/agent deploy prod", "bob");
    expect(lastReply(number)).toContain("needs **maintain** access and you have **write**");
    await say(number, "/agent deploy prod", "rita");
    expect(lastReply(number)).toContain("needs **write** access");
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(0);
  });

  it("a push during the deploy: the merge with the approved sha is refused and nothing is merged", async () => {
    const { number } = await openPr();
    await preview(number, "app");
    await say(number, "/approve", "bob");
    // The branch moves while the deploy runs (after GitHub saw the deployment start).
    void gh.waitFor((c) => c.method === "POST" && /\/deployments\/\d+\/statuses$/.test(c.path) && c.body?.state === "in_progress", "deploy start").then(() => {
      gh.pulls.set(number, { ...gh.pulls.get(number)!, headSha: "9".repeat(40) });
    });
    await say(number, "/agent deploy app", "alice");
    await deployDone("app");
    const merge = await gh.waitFor((c) => c.method === "PUT" && c.path.endsWith(`/pulls/${number}/merge`), "the merge attempt");
    expect(merge.body?.sha).not.toBe("9".repeat(40));
    await gh.waitFor(() => replies(number).some((b) => b.includes("GitHub refused the merge (409")), "the refused-merge comment");
    expect(gh.pulls.get(number)!.merged).toBeFalsy();
    expect(await deploysOf(number)).toEqual([expect.objectContaining({ stack: "app", state: "SUCCEEDED", merged: false })]);
  });

  it("two /agent deploy at once apply once; a deploy whose worker died mid-apply is never re-run", async () => {
    const { number, sha } = await openPr();
    await preview(number, "app");
    await say(number, "/approve", "bob");
    await Promise.all([say(number, "/agent deploy app", "alice"), say(number, "/agent deploy app", "carol")]);
    await deployDone("app");
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(1);
    expect(replies(number).filter((b) => b.includes("deploying `app`"))).toHaveLength(1);
    expect(replies(number).some((b) => /already (queued or running|applied)/.test(b))).toBe(true);
    expect((await deploysOf(number)).map((d) => d.state)).toEqual(["SUCCEEDED"]);
    // And once applied, the same plan is not applied again.
    await say(number, "/agent deploy app", "alice");
    expect(lastReply(number)).toMatch(/already applied|already queued or running|blocked/);
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(1);

    // A worker died while applying: its deploy row says RUNNING, and BullMQ hands the job to another worker.
    await f.db.query("DELETE FROM stack_locks");
    const crashed = await createDeployWorkflow(f.app.deps.db, {
      repo: REPO,
      installationId: 4242,
      prNumber: number,
      headSha: sha,
      planHash: "sha256:" + "ab".repeat(32),
      requestedBy: "alice",
      deliveryId: null,
      config: { image: "agent-sandbox:test", cloneUrl: f.git.cloneUrl(REPO), defaultBranch: "main", stacks: [] },
      stack: "prod",
      jobId: deployJobId(REPO, "prod", sha, "sha256:" + "ab".repeat(32)),
      // A preview is applied at most once (issue 15): this crashed deploy stands for another one.
      previewTaskId: randomUUID(),
    });
    await f.db.query("UPDATE deploys SET state = 'RUNNING' WHERE task_id = $1", [crashed!.task.id]);
    await f.db.query("UPDATE tasks SET state = 'RUNNING' WHERE id = $1", [crashed!.task.id]);
    const before = gh.find("POST", /\/deployments$/).length;
    await f.app.deps.queues.tasks.add("deploy", { taskId: crashed!.task.id, workflowId: crashed!.workflow.id, deliveryId: null }, { ...DEPLOY_JOB_OPTIONS, jobId: crashed!.task.job_id });
    await gh.waitFor(() => replies(number).some((b) => b.includes("needs attention")), "the needs-attention comment");
    const state = (await f.db.query("SELECT d.state AS deploy, t.state AS task FROM deploys d JOIN tasks t ON t.id = d.task_id WHERE d.task_id = $1", [crashed!.task.id])).rows[0];
    expect(state).toEqual({ deploy: "NEEDS_ATTENTION", task: "BLOCKED" });
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(before);
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });
});
