/**
 * `gate.mode: merge-queue` end to end: real sandboxes (the stand-in `pulumi`), Postgres and
 * Redis; GitHub is the nock fake (merge_group and push payloads from @octokit/webhooks-examples,
 * the merge queue's entries through GraphQL). A merge group's head is previewed and the
 * `agent/merge-queue` check passes only if every stack plans what the group's pull requests'
 * approvals allow; the push that lands the group applies exactly the checked plans, once.
 * Attacks: a group commit that plans more than was approved, a push to a PR after its approval,
 * an unapproved member — each refused, with the same flow passing without the attack element.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { executable as exe } from "../helpers/git-server.js";
import { GitHubFake, isCheckRunCompleted, isCheckRunInProgress, type RecordedCall } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, leftoverSandboxes, mergeGroupPayload, pushPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/queue";
const TOKEN = "ghs_mergeQueueInstallationToken000000021";
const CONFIG = `version: 1
stacks:
  - name: net
    dir: net
    engine: pulumi
    gate: { approvals: 1, mode: merge-queue }
  - name: app
    dir: app
    engine: pulumi
    gate: { approvals: 1, mode: merge-queue }
  - name: cmd
    dir: cmd
    gate: { approvals: 1, mode: merge-queue }
    steps:
      preview: ["cat", "plan.txt"]
      deploy: ["./deploy.sh"]
`;
const NET = "net/pulumi-standin.json";
const APP = "app/pulumi-standin.json";

type Resource = { type: string; name: string; op: string; inputs: Record<string, unknown> };
const bucket = (name: string, inputs: Record<string, unknown> = {}): Resource => ({ type: "aws:s3/bucket:Bucket", name, op: "create", inputs: { acl: "private", ...inputs } });
const program = (resources: Resource[], exec?: string[]) => JSON.stringify({ config: { "aws:region": "eu-west-1" }, providers: { aws: "6.0.0" }, resources, ...(exec ? { exec } : {}) });
/** Both stacks' whole programs (each commit states them, so commits do not inherit each other's changes). */
const tree = (net: Resource[], app: Resource[], netExec?: string[]) => ({
  "net/Pulumi.yaml": "name: net\nruntime: nodejs\n",
  "app/Pulumi.yaml": "name: app\nruntime: nodejs\n",
  [NET]: program(net, netExec),
  [APP]: program(app),
});

describe("the merge queue (gate.mode: merge-queue)", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let base: string;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials: staticCredentials(() => ({ PULUMI_BACKEND_URL: "file:///tmp/pulumi-state", PULUMI_CONFIG_PASSPHRASE: "merge-queue-test-passphrase-01" })) });
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"], ["carol", "maintain"], ["mallory", "write"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
    base = await f.git.commit(REPO, tree([], []), "base");
  });
  afterAll(async () => {
    expect(await leftoverSandboxes(f.app)).toBe(0);
    gh?.stop();
    await f.stop();
  });

  const checkRunOf = (c: RecordedCall) => gh.checkRuns.get(Number(c.path.split("/").pop()));
  /** A check run reaching `completed`: created so (the outbox merged its updates) or updated so. */
  const completedRun = (name: string, sha: string, timeoutMs = 90_000) =>
    gh.waitFor(
      (c) =>
        (c.method === "POST" && /\/check-runs$/.test(c.path) && c.body?.status === "completed" && c.body?.name === name && c.body?.head_sha === sha) ||
        (isCheckRunCompleted(c) && checkRunOf(c)?.name === name && checkRunOf(c)?.head_sha === sha),
      `${name} on ${sha.slice(0, 7)}`,
      timeoutMs,
    );
  const completedRuns = (name: string, sha: string) => [...gh.checkRuns.values()].filter((cr) => cr.name === name && cr.head_sha === sha && cr.status === "completed");
  const replies = (number: number) => gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent"));
  const replyMatching = (number: number, re: RegExp) => gh.waitFor(() => replies(number).some((b) => re.test(b)), `a reply on #${number} matching ${re}`, 90_000);

  async function say(number: number, body: string, login: string) {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    await f.watcher.handled(res.id);
  }
  async function openPr(number: number, content: ReturnType<typeof tree>, files: string[]) {
    const sha = await f.git.commit(REPO, content, `pr ${number}`);
    gh.pulls.set(number, { headSha: sha, author: "alice", files });
    return sha;
  }
  /** alice previews the stack on the PR head; `approver` (if any) approves the plan. */
  async function previewAndApprove(number: number, stack: string, approver: string | null = "bob") {
    const head = gh.pulls.get(number)!.headSha;
    await say(number, `/agent preview ${stack}`, "alice");
    expect((await completedRun(`agent/preview (${stack})`, head)).body).toMatchObject({ conclusion: "success" });
    if (approver) {
      await say(number, "/approve", approver);
      expect(replies(number).at(-1)).toMatch(new RegExp(`@${approver} approved \`${stack}\``));
    }
  }
  /** GitHub asks for checks on a merge group: the queue lists `prs` in order, the last one's entry with head `head` (`heads`: others' entry heads). */
  async function checkGroup(head: string, baseSha: string, prs: number[], files: string[], heads: Record<number, string> = {}) {
    gh.mergeQueue = prs.map((prNumber, i) => ({ position: i + 1, prNumber, headSha: heads[prNumber] ?? (i === prs.length - 1 ? head : String(prNumber).padStart(40, "e")) }));
    gh.compares.set(`${baseSha}...${head}`, files);
    const res = await deliver(f.app.port!, "merge_group", mergeGroupPayload("checks_requested", { repo: REPO, cloneUrl: f.git.cloneUrl(REPO), headSha: head, baseSha, prNumber: prs.at(-1)! }));
    await f.watcher.handled(res.id);
  }
  const mergeQueueCheck = async (head: string) => {
    await completedRun("agent/merge-queue", head);
    return completedRuns("agent/merge-queue", head).at(-1)! as { conclusion: string; output: { title: string; summary: string } };
  };
  async function land(before: string, after: string, files: string[] = []) {
    if (files.length) gh.compares.set(`${before}...${after}`, files);
    const res = await deliver(f.app.port!, "push", pushPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), before, after }));
    await f.watcher.handled(res.id);
  }
  const deploysAt = async (sha: string) => (await f.db.query<{ stack: string; state: string; plan_hash: string; preview_task_id: string }>("SELECT stack, state, plan_hash, preview_task_id FROM deploys WHERE repo = $1 AND head_sha = $2 ORDER BY stack", [REPO, sha])).rows;
  const approvedPlanOf = async (number: number, stack: string) =>
    (await f.db.query<{ plan_hash: string }>("SELECT t.plan_hash FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.repo = $1 AND w.pr_number = $2 AND t.stack = $3 AND t.kind = 'preview' AND t.state = 'SUCCEEDED' ORDER BY t.created_at DESC LIMIT 1", [REPO, number, stack])).rows[0]!.plan_hash;

  it("a group of one: checked on the group commit, applied once it lands with exactly the plan checked; /agent deploy is refused", async () => {
    await openPr(51, tree([bucket("logs")], []), [NET]);
    await previewAndApprove(51, "net");
    await say(51, "/agent deploy net", "alice");
    expect(replies(51).at(-1)).toContain("deploys through the merge queue");
    expect(await deploysAt(gh.pulls.get(51)!.headSha)).toEqual([]);

    const group = await f.git.commit(REPO, tree([bucket("logs")], []), "merge group #51");
    await checkGroup(group, base, [51], [NET]);
    const check = await mergeQueueCheck(group);
    expect(check.conclusion).toBe("success");
    expect(check.output.summary).toContain("plans exactly #51's approved plan");
    // The stack was previewed on the group's commit itself, where GitHub's queue looks.
    expect(completedRuns("agent/preview (net)", group)).toHaveLength(1);
    expect(completedRuns("agent/preview (app)", group)).toHaveLength(0);

    await land(base, group);
    expect((await completedRun("agent/deploy (net)", group)).body).toMatchObject({ conclusion: "success" });
    const [deploy] = await deploysAt(group);
    expect(deploy).toMatchObject({ stack: "net", state: "SUCCEEDED", plan_hash: await approvedPlanOf(51, "net") });
    expect([...gh.deployments.values()].filter((d) => d.ref === group)).toEqual([{ ref: group, environment: "net", statuses: ["in_progress", "success"] }]);
    await replyMatching(51, /🚀 Merge-queue deploy of `net` to `[0-9a-f]{7}` succeeded/);

    // A redelivered push applies nothing twice.
    await land(base, group);
    expect(await deploysAt(group)).toHaveLength(1);
    base = group;
  });

  it("attack: a group commit that plans more than the approval is refused, and landing it anyway applies nothing", async () => {
    await openPr(52, tree([bucket("logs"), bucket("audit")], []), [NET]);
    await previewAndApprove(52, "net");
    // Something nobody approved rides along in the group's commit (an entry the app cannot see).
    const group = await f.git.commit(REPO, tree([bucket("logs"), bucket("audit"), bucket("exfil", { acl: "public-read" })], []), "merge group #52");
    await checkGroup(group, base, [52], [NET]);
    const check = await mergeQueueCheck(group);
    expect(check.conclusion).toBe("failure");
    expect(check.output.summary).toContain("but #52's approved plan is");
    expect(check.output.summary).toContain("GitHub removes it from the queue");

    // Merged although the check failed (it was not required): nothing is applied, every PR is told.
    const deployments = gh.deployments.size;
    await land(base, group);
    await replyMatching(52, /landed on the default branch, but `net` was not applied/);
    expect(replies(52).at(-1)).toContain("`agent/merge-queue` check had failed");
    expect(await deploysAt(group)).toEqual([]);
    expect(gh.deployments.size).toBe(deployments);
  });

  it("attack: a /deny between the queue's check and the landing stops the apply; nothing is applied", async () => {
    await openPr(63, tree([bucket("logs"), bucket("denied")], []), [NET]);
    await previewAndApprove(63, "net");
    const group = await f.git.commit(REPO, tree([bucket("logs"), bucket("denied")], []), "merge group #63");
    await checkGroup(group, base, [63], [NET]);
    expect((await mergeQueueCheck(group)).conclusion).toBe("success");
    await say(63, "/deny not this week", "carol");
    await land(base, group);
    // The apply asks the group's gate again right before it starts: the denial holds.
    expect((await completedRun("agent/deploy (net)", group)).body).toMatchObject({ conclusion: "action_required" });
    expect(await deploysAt(group)).toEqual([expect.objectContaining({ stack: "net", state: "BLOCKED" })]);
    await replyMatching(63, /was not applied: when it was about to start, the gate no longer passed/);
    expect(replies(63).at(-1)).toMatch(/#63's approval of \\`net\\` does not hold: denied by @\u200bcarol/);
    expect([...gh.deployments.values()].filter((d) => d.ref === group)).toEqual([]);
  });

  it("attack: a push to the pull request after its approval makes the group fail, even when the group plans the pushed code", async () => {
    await openPr(53, tree([bucket("logs"), bucket("cache")], []), [NET]);
    await previewAndApprove(53, "net");
    // mallory pushes after bob's approval; the queue builds the group from the new head.
    const pushed = await f.git.commit(REPO, tree([bucket("logs"), bucket("cache", { acl: "public-read" })], []), "pr 53 after approval");
    gh.pulls.set(53, { ...gh.pulls.get(53)!, headSha: pushed, commits: [{ author: "alice", committer: "alice" }, { sha: pushed, author: "mallory", committer: "mallory" }] });
    const group = await f.git.commit(REPO, tree([bucket("logs"), bucket("cache", { acl: "public-read" })], []), "merge group #53");
    await checkGroup(group, base, [53], [NET]);
    const check = await mergeQueueCheck(group);
    expect(check.conclusion).toBe("failure");
    expect(check.output.summary).toContain("#53's approval of `net` does not hold");
  });

  it("a group of three: disjoint changes of two PRs to one stack compose; an unapproved member ejects the group until it is approved", async () => {
    await openPr(54, tree([bucket("logs"), bucket("metrics")], []), [NET]);
    await openPr(55, tree([bucket("logs"), bucket("jobs")], []), [NET]);
    await openPr(56, tree([bucket("logs")], [bucket("assets")]), [APP]);
    await previewAndApprove(54, "net");
    await previewAndApprove(55, "net");
    await previewAndApprove(56, "app", null);
    const content = tree([bucket("logs"), bucket("metrics"), bucket("jobs")], [bucket("assets")]);

    const first = await f.git.commit(REPO, content, "merge group #54 #55 #56");
    await checkGroup(first, base, [54, 55, 56], [NET, APP]);
    const ejected = await mergeQueueCheck(first);
    expect(ejected.conclusion).toBe("failure");
    expect(ejected.output.summary).toContain("#56's approval of `app` does not hold");
    expect(ejected.output.summary).toMatch(/✅ `net`: plans exactly the approved changes of #54, #55 together/);

    await say(56, "/approve", "bob");
    const second = await f.git.commit(REPO, content, "merge group #54 #55 #56, again");
    await checkGroup(second, base, [54, 55, 56], [NET, APP]);
    const passed = await mergeQueueCheck(second);
    expect(passed.conclusion).toBe("success");
    expect(passed.output.summary).toContain("✅ `app`: plans exactly #56's approved plan");

    await land(base, second);
    expect((await completedRun("agent/deploy (net)", second)).body).toMatchObject({ conclusion: "success" });
    expect((await completedRun("agent/deploy (app)", second)).body).toMatchObject({ conclusion: "success" });
    expect((await deploysAt(second)).map((d) => [d.stack, d.state])).toEqual([["app", "SUCCEEDED"], ["net", "SUCCEEDED"]]);
    for (const pr of [54, 55, 56]) await replyMatching(pr, /Merge-queue deploy of `net` to `[0-9a-f]{7}` succeeded/);
    base = second;
  });

  it("two PRs changing the same resource differently cannot be composed: the group is refused", async () => {
    await openPr(57, tree([bucket("logs", { versioning: true })], []), [NET]);
    await openPr(58, tree([bucket("logs", { versioning: false, forceDestroy: true })], []), [NET]);
    await previewAndApprove(57, "net");
    await previewAndApprove(58, "net");
    const group = await f.git.commit(REPO, tree([bucket("logs", { versioning: true, forceDestroy: true })], []), "merge group #57 #58");
    await checkGroup(group, base, [57, 58], [NET]);
    const check = await mergeQueueCheck(group);
    expect(check.conclusion).toBe("failure");
    expect(check.output.summary).toMatch(/#57 and #58 both change `urn:pulumi:net::net::aws:s3\/bucket:Bucket::logs` in `net` differently/);
  });

  it("a failed apply is told on every pull request of the group, and its Deployment is marked failed", async () => {
    const cmd = { "cmd/plan.txt": "plan: rotate the queue workers\n", "cmd/deploy.sh": exe("#!/bin/sh\necho rotating\nexit 3\n") };
    await openPr(64, { ...tree([bucket("logs")], []), ...cmd }, ["cmd/plan.txt", "cmd/deploy.sh"]);
    await openPr(65, tree([bucket("logs"), bucket("spare")], []), [NET]);
    await previewAndApprove(64, "cmd");
    await previewAndApprove(65, "net");
    const group = await f.git.commit(REPO, { ...tree([bucket("logs"), bucket("spare")], []), ...cmd }, "merge group #64 #65");
    await checkGroup(group, base, [64, 65], [NET, "cmd/plan.txt", "cmd/deploy.sh"]);
    expect((await mergeQueueCheck(group)).conclusion).toBe("success");
    await land(base, group);
    expect((await completedRun("agent/deploy (cmd)", group)).body).toMatchObject({ conclusion: "failure" });
    expect((await completedRun("agent/deploy (net)", group)).body).toMatchObject({ conclusion: "success" });
    for (const pr of [64, 65]) await replyMatching(pr, /❌ Merge-queue deploy of `cmd` at `[0-9a-f]{7}` failed: the deploy command failed \(exit 3\)/);
    expect(replies(65).find((b) => b.startsWith("❌ Merge-queue deploy of `cmd`"))).toContain("The merge group is merged");
    expect([...gh.deployments.values()].filter((d) => d.ref === group && d.environment === "cmd")).toEqual([{ ref: group, environment: "cmd", statuses: ["in_progress", "failure"] }]);
    base = group;
  });

  it("destroyed: the group's running preview is stopped and the group is never applied", async () => {
    await openPr(59, tree([bucket("logs"), bucket("slow")], []), [NET]);
    await previewAndApprove(59, "net");
    // The group's program takes long to evaluate: the destroy arrives while it runs.
    const group = await f.git.commit(REPO, tree([bucket("logs"), bucket("slow")], [], ["sleep", "120"]), "merge group #59");
    const started = gh.calls.length;
    await checkGroup(group, base, [59], [NET]);
    await gh.waitFor((c) => gh.calls.indexOf(c) >= started && isCheckRunInProgress(c) && checkRunOf(c)?.name === "agent/preview (net)" && checkRunOf(c)?.head_sha === group, "the group preview running");
    const res = await deliver(f.app.port!, "merge_group", mergeGroupPayload("destroyed", { repo: REPO, cloneUrl: f.git.cloneUrl(REPO), headSha: group, baseSha: base, prNumber: 59, reason: "dequeued" }));
    await f.watcher.handled(res.id);
    expect((await completedRun("agent/preview (net)", group)).body).toMatchObject({ conclusion: "cancelled" });
    const row = (await f.db.query("SELECT state FROM merge_groups WHERE repo = $1 AND head_sha = $2", [REPO, group])).rows[0];
    expect(row).toEqual({ state: "DESTROYED" });
    expect(completedRuns("agent/merge-queue", group)).toEqual([]);

    await land(base, group);
    expect(await deploysAt(group)).toEqual([]);
  });

  it("entries merged one by one: the second push is checked again against only the PR it merged, and applies only its stack", async () => {
    await openPr(60, tree([bucket("logs"), bucket("edge")], []), [NET]);
    await openPr(61, tree([bucket("logs")], [bucket("assets"), bucket("web")]), [APP]);
    await previewAndApprove(60, "net");
    await previewAndApprove(61, "app");
    const g60 = await f.git.commit(REPO, tree([bucket("logs"), bucket("edge")], [bucket("assets")]), "merge group #60");
    const g61 = await f.git.commit(REPO, tree([bucket("logs"), bucket("edge")], [bucket("assets"), bucket("web")]), "merge group #60 #61");
    // Both entries were built on the same base; #61's holds #60's change too.
    await checkGroup(g60, base, [60], [NET]);
    expect((await mergeQueueCheck(g60)).conclusion).toBe("success");
    await checkGroup(g61, base, [60, 61], [NET, APP], { 60: g60 });
    expect((await mergeQueueCheck(g61)).conclusion).toBe("success");

    await land(base, g60);
    expect((await completedRun("agent/deploy (net)", g60)).body).toMatchObject({ conclusion: "success" });
    // The branch moved under #61's entry: only what this push merged (app) is checked and applied.
    await land(g60, g61, [APP]);
    expect((await completedRun("agent/deploy (app)", g61)).body).toMatchObject({ conclusion: "success" });
    expect((await deploysAt(g61)).map((d) => d.stack)).toEqual(["app"]);
    const recheck = (await f.db.query("SELECT pr_numbers, stacks, state FROM merge_groups WHERE repo = $1 AND head_sha = $2 AND purpose = 'apply'", [REPO, g61])).rows;
    expect(recheck).toEqual([{ pr_numbers: [61], stacks: ["app"], state: "PASSED" }]);
  });
});
