/**
 * Rollout phases end to end (real Redis, Postgres and sandboxes running the stand-in `pulumi`;
 * GitHub at the HTTP boundary). `observe`: previews work, `/agent deploy` says what would happen
 * and applies nothing, and no deploy credentials are ever asked for — not even by a deploy that
 * was queued before the switch (the attack). `act`: a merged pull request's plan that the policy
 * allows and that destroys nothing applies at the merge commit without an approval; a
 * destructive one waits for the human gate. `suggest` (the control) applies nothing after a merge.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials, type CredentialRequest } from "../../src/connectors/credentials.js";
import { createDeployWorkflow } from "../../src/connectors/store/workflows.js";
import { deployJobId, DEPLOY_JOB_OPTIONS } from "../../src/connectors/queues.js";
import { phaseCommand } from "../../src/ops/phase-cli.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, pullRequestPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";
import { until } from "../helpers/app-process.js";

const REPO = "octo-org/phases";
const TOKEN = "ghs_rolloutPhasesInstallationToken000033";
const CONFIG = `version: 1
stacks:
  - name: prod
    dir: infra
    engine: pulumi
    policy: { max_deletes: 10 }
    gate: { approvals: 1, require: { lock: false } }
`;
const fixture = (name: string) => readFileSync(new URL(`../fixtures/pulumi/${name}.json`, import.meta.url), "utf8");

describe("rollout phases", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 0;
  const asked: CredentialRequest[] = [];

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, {
      credentials: staticCredentials((req) => {
        asked.push(req);
        return { PULUMI_BACKEND_URL: "file:///tmp/pulumi-state", PULUMI_CONFIG_PASSPHRASE: "phases-test-passphrase-000001" };
      }),
    });
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"], ["carol", "write"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
  });
  afterAll(async () => {
    gh?.stop();
    await f?.stop();
  });

  async function phase(scope: string, to: string) {
    const out: string[] = [];
    expect(await phaseCommand(["set", "--scope", scope, "--phase", to, "--reason", `test moves ${scope} to ${to}`, "--as", "ops-oncall"], { db: f.app.deps.db, env: {} }, { stdout: (t) => out.push(t), stderr: (t) => out.push(t) })).toBe(0);
  }
  async function say(number: number, body: string, login = "alice") {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    await f.watcher.handled(res.id);
  }
  const replies = (number: number) => gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent"));
  const lastReply = (number: number) => replies(number).at(-1) ?? "";
  const replyWith = (number: number, text: string) => gh.waitFor(() => replies(number).some((r) => r.includes(text)), `a reply with ${JSON.stringify(text)}`).then(() => replies(number).find((r) => r.includes(text))!);
  const checkRunOf = (c: RecordedCall) => gh.checkRuns.get(Number(c.path.split("/").pop()));
  const completed = (name: string, sha: string) => gh.waitFor((c) => isCheckRunCompleted(c) && checkRunOf(c)?.name === name && checkRunOf(c)?.head_sha === sha, `${name} on ${sha.slice(0, 7)}`, 60_000);
  async function previewedPr(program: string) {
    await f.db.query("DELETE FROM stack_locks WHERE repo = $1", [REPO]);
    const number = ++pr;
    const files = { "infra/Pulumi.yaml": "name: shop\nruntime: nodejs\n", "infra/pulumi-standin.json": program };
    const sha = await f.git.commit(REPO, files, `pr ${number}`);
    const mergeSha = await f.git.commit(REPO, files, `merge #${number}`);
    gh.pulls.set(number, { headSha: sha, author: "alice", mergeSha });
    await say(number, "/agent preview prod");
    expect((await completed("agent/preview (prod)", sha)).body).toMatchObject({ conclusion: "success" });
    return { number, sha, mergeSha };
  }
  async function merge(number: number, sha: string, mergeSha: string) {
    gh.pulls.get(number)!.state = "closed";
    const p = pullRequestPayload("closed", { repo: REPO, prNumber: number, merged: true, headSha: sha, sender: "bob", author: "alice" });
    p.pull_request.merge_commit_sha = mergeSha;
    p.pull_request.merged_by = { ...p.sender, login: "bob" };
    p.repository.clone_url = f.git.cloneUrl(REPO);
    await f.watcher.handled((await deliver(f.app.port!, "pull_request", p)).id);
  }
  const deployAsks = () => asked.filter((r) => r.kind === "deploy");

  it("observe: /agent deploy answers what would happen and applies nothing; a deploy queued before the switch is stopped before any deploy credential is asked for", async () => {
    await phase("octo-org/*", "observe");
    const { number, sha } = await previewedPr(fixture("creates"));
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy prod");
    const answer = lastReply(number);
    expect(answer).toContain("nothing was deployed: this repository is in `observe` mode (set for `octo-org/*`)");
    expect(answer).toMatch(/In `suggest` this would now apply plan `[0-9a-f]{12}` of `prod` at `[0-9a-f]{7}` and then merge the pull request\./);
    // `/agent status` says the gate's "ready" means nothing here.
    await say(number, "/agent status");
    expect(lastReply(number)).toContain("**Rollout phase: `observe`** (set for `octo-org/*`): read-only — nothing is deployed here, whatever the gate below says.");
    await say(number, "/agent rollback prod");
    expect(lastReply(number)).toContain("`/agent rollback prod` was not run: this repository is in `observe` mode");

    // ATTACK: a deploy recorded and queued as if asked before the switch (the app's own path).
    const preview = (await f.db.query("SELECT id, plan_hash FROM tasks WHERE stack = 'prod' AND kind = 'preview' ORDER BY created_at DESC LIMIT 1")).rows[0];
    const created = await createDeployWorkflow(f.app.deps.db, {
      repo: REPO, installationId: 4242, prNumber: number, headSha: sha, planHash: preview.plan_hash, requestedBy: "alice", deliveryId: null,
      config: { image: "agent-sandbox:test", cloneUrl: f.git.cloneUrl(REPO), defaultBranch: "main", stacks: [(await f.db.query("SELECT config FROM workflows w JOIN tasks t ON t.workflow_id = w.id WHERE t.id = $1", [preview.id])).rows[0].config.stacks[0]] },
      stack: "prod", jobId: deployJobId(REPO, "prod", sha, preview.plan_hash), previewTaskId: preview.id,
    });
    await f.app.deps.queues.tasks.add("deploy", { taskId: created!.task.id, workflowId: created!.workflow.id, deliveryId: null }, { ...DEPLOY_JOB_OPTIONS, jobId: created!.task.job_id });
    await gh.waitFor(() => lastReply(number).startsWith("⛔ The queued deploy of `prod`"), "the stopped deploy's comment");
    expect(lastReply(number)).toContain("was not applied: the repository is in `observe` mode (set for `octo-org/*`: previews, status and diagnostics only); nothing was applied and no deploy credentials were fetched");
    expect((await f.db.query("SELECT state FROM deploys WHERE task_id = $1", [created!.task.id])).rows[0].state).toBe("BLOCKED");
    expect(deployAsks()).toEqual([]);
    expect(gh.deployments.size).toBe(0);
    const { rows } = await f.db.query("SELECT actor, detail FROM audit_log WHERE action = 'phase.changed'");
    expect(rows[0]).toEqual({ actor: "ops-oncall", detail: { scope: "octo-org/*", from: null, to: "observe", reason: "test moves octo-org/* to observe" } });
  });

  it("suggest (the control): a merge applies nothing by itself", async () => {
    await phase("octo-org/*", "suggest");
    const { number, sha, mergeSha } = await previewedPr(fixture("creates"));
    await merge(number, sha, mergeSha);
    expect((await f.db.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'act.previewed' AND pr_number = $1", [number])).rows[0].n).toBe(0);
    expect(gh.find("POST", /\/check-runs$/).filter((c) => c.body?.head_sha === mergeSha)).toHaveLength(0);
  });

  it("act: a merged plan the policy allows, with nothing destructive, applies at the merge commit without an approval; a destructive one waits for the gate", async () => {
    await phase(REPO, "act");
    const safe = await previewedPr(fixture("creates"));
    await merge(safe.number, safe.sha, safe.mergeSha);
    expect((await completed("agent/deploy (prod)", safe.mergeSha)).body).toMatchObject({ conclusion: "success" });
    expect(await replyWith(safe.number, "without a human approval")).toMatch(/^🤖 Deploy of the merged commit of `prod` at `[0-9a-f]{7}` \(plan `[0-9a-f]{12}`\) is being applied now without a human approval: the repository is in `act`, the plan policy allows this plan and it deletes or replaces nothing\./);
    expect([...gh.deployments.values()].at(-1)).toMatchObject({ ref: safe.mergeSha, environment: "prod" });
    expect((await f.db.query("SELECT count(*)::int AS n FROM approvals WHERE pr_number = $1", [safe.number])).rows[0].n).toBe(0);

    // ATTACK on the autonomy: a plan that replaces a database merges; nothing applies by itself.
    const risky = await previewedPr(fixture("mixed"));
    const deployments = gh.deployments.size;
    await merge(risky.number, risky.sha, risky.mergeSha);
    await completed("agent/preview (prod)", risky.mergeSha);
    expect(await replyWith(risky.number, "was not applied by itself (`act`)")).toMatch(/the plan deletes or replaces 3 resources \(orders-db, legacy-worker, legacy-jobs\)\. It waits for approval/);
    expect(gh.deployments.size).toBe(deployments);
    const held = await until(async () => (await f.db.query("SELECT detail FROM audit_log WHERE action = 'act.held' AND pr_number = $1", [risky.number])).rows[0], "the act.held row");
    expect(held.detail.why).toContain("deletes or replaces");
    // The human gate still works for it: a reviewer (not its author, not who merged it) approves, /agent deploy applies that plan.
    await say(risky.number, "/approve", "carol");
    await say(risky.number, "/agent deploy prod");
    expect((await completed("agent/deploy (prod)", risky.mergeSha)).body).toMatchObject({ conclusion: "success" });
  });
});
