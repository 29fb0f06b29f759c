/**
 * GitHub environments as the gate's other half, end to end (real Redis, Postgres, sandboxes;
 * GitHub at the HTTP boundary): the stack's environment's required reviewers are a requirement
 * of `/agent deploy`, and the app answers the environment's custom deployment protection rule —
 * `approved` only when its gate holds for the deployed commit, `rejected` with the reason
 * otherwise (attacks: an unapproved plan, a commit that is not the approved head, an
 * environment no stack claims).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { GitHubFake } from "../helpers/github-fake.js";
import { prConversation } from "../helpers/conversation.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, deploymentProtectionRulePayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/environments";
const TOKEN = "ghs_environmentsInstallationToken000024";
const CONFIG = `version: 1
stacks:
  - name: prod
    dir: app
    environment: { name: production, protection_rule: true }
    gate: { approvals: 1, require: { lock: false } }
steps:
  preview: ["cat", "plan.txt"]
  deploy: ["./deploy.sh"]
`;

describe("GitHub environments", () => {
  let f: AppFixture;
  let gh: GitHubFake;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials: staticCredentials(() => ({})) });
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"], ["carol", "maintain"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
    // As GET /repos/{o}/{r}/environments/production answers: carol must review.
    gh.environments.set("production", { protection_rules: [{ id: 1, node_id: "GA_1", type: "required_reviewers", prevent_self_review: false, reviewers: [{ type: "User", reviewer: { login: "carol", id: 3 } }] }], deployment_branch_policy: null });
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });

  const { say, lastReply, completed } = prConversation(() => f, () => gh, REPO);
  async function openPr(number: number) {
    // A merged PR's lock goes with its `closed` webhook, which these tests do not send.
    await f.db.query("DELETE FROM stack_locks WHERE repo = $1", [REPO]);
    const sha = await f.git.commit(REPO, { "app/plan.txt": `plan: release ${number}\n`, "app/deploy.sh": exe("#!/bin/sh\necho deployed\n") }, `pr ${number}`);
    gh.pulls.set(number, { headSha: sha, author: "alice" });
    await say(number, "/agent preview prod", "alice");
    await completed("agent/preview (prod)", sha);
    return sha;
  }
  /** GitHub asks the app about Actions run `runId` deploying `sha` to `environment`; resolves with the app's answer. */
  async function ask(runId: number, environment: string, sha: string, prs: Array<{ number: number; headSha: string }>) {
    const res = await deliver(f.app.port!, "deployment_protection_rule", deploymentProtectionRulePayload({ repo: REPO, environment, runId, sha, pullRequests: prs }));
    await f.watcher.handled(res.id);
    const answer = gh.find("POST", new RegExp(`/actions/runs/${runId}/deployment_protection_rule$`));
    expect(answer).toHaveLength(1);
    return answer[0]!.body as { environment_name: string; state: string; comment: string };
  }

  it("the environment's required reviewer is a requirement of /agent deploy: another approver is not enough, the reviewer's approval is", async () => {
    const sha = await openPr(1);
    await say(1, "/approve", "bob");
    await say(1, "/agent deploy prod", "alice");
    expect(lastReply(1)).toContain("is blocked");
    expect(lastReply(1)).toMatch(/- \[x\] Approvals — 1 of 1/);
    expect(lastReply(1)).toMatch(/- \[ \] Environment's required reviewer approved — the production environment needs one of its required reviewers to approve this plan \(@\u200bcarol\)/);
    expect(gh.deployments.size).toBe(0);

    await say(1, "/approve", "carol");
    await say(1, "/agent deploy prod", "alice");
    expect(lastReply(1)).toMatch(/deploying `prod` at `[0-9a-f]{7}`/);
    expect((await completed("agent/deploy (prod)", sha)).body).toMatchObject({ conclusion: "success" });
  });

  it("the environment's rules bind a rollback too: another approver is not enough, the required reviewer's approval is", async () => {
    await f.db.query("DELETE FROM stack_locks WHERE repo = $1", [REPO]);
    const files = { "app/plan.txt": "plan: release 3\n", "app/deploy.sh": exe("#!/bin/sh\necho deployed\n") };
    const sha = await f.git.commit(REPO, files, "pr 3");
    // The commit GitHub's merge API answers with: the last good commit the rollback goes back to.
    const mergeSha = await f.git.commit(REPO, files, "merge commit of #3");
    gh.pulls.set(3, { headSha: sha, author: "alice", mergeSha });
    await say(3, "/agent preview prod", "alice");
    await completed("agent/preview (prod)", sha);
    await say(3, "/approve", "bob");
    await say(3, "/approve", "carol");
    await say(3, "/agent deploy prod", "alice");
    expect((await completed("agent/deploy (prod)", sha)).body).toMatchObject({ conclusion: "success" });
    await gh.waitFor((c) => c.method === "PUT" && c.path.endsWith("/pulls/3/merge"), "the merge");

    // The rollback previews the merge commit and waits for its approval.
    await say(3, "/agent rollback prod", "alice");
    expect(lastReply(3)).toContain(`rolling back \`prod\` to \`${mergeSha.slice(0, 7)}\``);
    await completed("agent/preview (prod)", mergeSha);
    await gh.waitFor(() => lastReply(3).includes("waits for approval"), "the rollback's plan");
    const deployments = gh.deployments.size;
    // ATTACK: an approver the environment does not list approves; the rollback must not apply.
    await say(3, "/approve", "bob");
    await say(3, "/agent rollback prod", "alice");
    expect(lastReply(3)).toMatch(/Rollback of `prod` at `[0-9a-f]{7}` is blocked/);
    expect(lastReply(3)).toMatch(/- \[x\] Approvals — 1 of 1/);
    expect(lastReply(3)).toMatch(/- \[ \] Environment's required reviewer approved — the production environment needs one of its required reviewers to approve this plan \(@\u200bcarol\)/);
    expect(gh.deployments.size).toBe(deployments);
    // Positive control: the environment's reviewer approves; the same command applies it.
    await say(3, "/approve", "carol");
    await say(3, "/agent rollback prod", "alice");
    expect(lastReply(3)).toContain("applying the rollback of `prod`");
    expect((await completed("agent/deploy (prod)", mergeSha)).body).toMatchObject({ conclusion: "success" });
  });

  it("as the environment's custom protection rule: rejects an unapproved plan, a commit that is not the approved head and an unclaimed environment; approves once the gate holds", async () => {
    const sha = await openPr(2);
    const unapproved = await ask(9001, "production", sha, [{ number: 2, headSha: sha }]);
    expect(unapproved).toMatchObject({ environment_name: "production", state: "rejected" });
    expect(unapproved.comment).toContain("the gate of `prod` does not hold for #2");
    expect(unapproved.comment).toContain("approvals: 0 of 1");

    await say(2, "/approve", "bob");
    await say(2, "/approve", "carol");
    // ATTACK: the Actions run deploys a commit other than the approved head.
    const other = "f".repeat(40);
    const moved = await ask(9002, "production", other, [{ number: 2, headSha: other }]);
    expect(moved.state).toBe("rejected");
    expect(moved.comment).toContain(`#2's head is now ${sha.slice(0, 7)}, not the deployed fffffff`);
    // ATTACK: an environment no stack claims is never approved.
    const unclaimed = await ask(9003, "staging", sha, [{ number: 2, headSha: sha }]);
    expect(unclaimed.state).toBe("rejected");
    expect(unclaimed.comment).toContain("no stack in .github/agent.yml answers for environment staging");

    // Positive control: the same request for the approved head is approved.
    const approved = await ask(9004, "production", sha, [{ number: 2, headSha: sha }]);
    expect(approved.state).toBe("approved");
    expect(approved.comment).toMatch(/the gate of `prod` holds for #2 at [0-9a-f]{7}: plan [0-9a-f]{12} approved by @bob, @carol/);
    const audit = (await f.db.query("SELECT action, detail->>'environment' AS env FROM audit_log WHERE action LIKE 'environment.%' ORDER BY id")).rows;
    expect(audit).toEqual([
      { action: "environment.rejected", env: "production" },
      { action: "environment.rejected", env: "production" },
      { action: "environment.rejected", env: "staging" },
      { action: "environment.approved", env: "production" },
    ]);
  });
});
