/**
 * Error budgets end to end (real Redis, Postgres and sandboxes; GitHub at the HTTP boundary):
 * the same deploy error twice (volatile ids and numbers differ, as in life) exhausts the stack's
 * budget (seed limits 8/2/1); its next deploy then needs one more approval, from a maintainer —
 * the attack is a writer's approval, then a second writer's, the control a maintainer's —
 * `/agent status` shows the budget, and an operator's audited reset gives the autonomy back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { budgetCommand } from "../../src/ops/budget-cli.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/budgets";
const TOKEN = "ghs_errorBudgetsInstallationToken0000032";
const CONFIG = `version: 1
stacks:
  - name: db
    dir: app
    gate: { approvals: 1, require: { lock: false } }
steps:
  preview: ["cat", "plan.txt"]
  deploy: ["./deploy.sh"]
`;
/** A deploy that fails like a flaky database does: the ids and timings differ, the error is the same. */
const instance = (n: number) => `db-${(0x3f1a2b00 + n * 7919).toString(16)}`;
const failing = (n: number) => exe(`#!/bin/sh\necho "connecting to ${instance(n)}.rds.internal"\necho "Error: timeout after ${30 + n}s waiting for RDS instance ${instance(n)}" >&2\nexit 1\n`);
const working = exe("#!/bin/sh\necho deployed\n");

describe("error budgets", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 0;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials: staticCredentials(() => ({})) });
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"], ["dan", "write"], ["carol", "maintain"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
  });
  afterAll(async () => {
    gh?.stop();
    await f?.stop();
  });

  async function say(number: number, body: string, login: string) {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    await f.watcher.handled(res.id);
  }
  const lastReply = (number: number) => gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent")).at(-1) ?? "";
  const checkRunOf = (c: RecordedCall) => gh.checkRuns.get(Number(c.path.split("/").pop()));
  const completed = (name: string, sha: string) => gh.waitFor((c) => isCheckRunCompleted(c) && checkRunOf(c)?.name === name && checkRunOf(c)?.head_sha === sha, name, 60_000);
  /** A PR whose head previews `plan` and deploys with `deploy`, previewed and approved by bob. */
  async function approvedPr(deploy: { content: string; mode: number }) {
    await f.db.query("DELETE FROM stack_locks WHERE repo = $1", [REPO]);
    const number = ++pr;
    const files = { "app/plan.txt": `plan: release ${number}\n`, "app/deploy.sh": deploy };
    const sha = await f.git.commit(REPO, files, `pr ${number}`);
    // The commit GitHub's merge API answers with: what a rollback goes back to.
    const mergeSha = await f.git.commit(REPO, files, `merge #${number}`);
    gh.pulls.set(number, { headSha: sha, author: "alice", mergeSha });
    await say(number, "/agent preview db", "alice");
    await completed("agent/preview (db)", sha);
    await say(number, "/approve", "bob");
    return { number, sha, mergeSha };
  }

  it("the same error twice exhausts the budget: a deploy then needs a maintainer's approval besides the usual one; an operator's reset lifts it", async () => {
    for (const n of [1, 2]) {
      const { number, sha } = await approvedPr(failing(n));
      await say(number, "/agent deploy db", "alice");
      expect((await completed("agent/deploy (db)", sha)).body).toMatchObject({ conclusion: "failure" });
    }
    const { rows: failures } = await f.db.query("SELECT detail->>'error_signature' AS sig, detail->>'error_line' AS line FROM audit_log WHERE repo = $1 AND action = 'deploy.failed' ORDER BY id", [REPO]);
    expect(failures).toHaveLength(2);
    // Different ids and seconds, one error.
    expect(failures[0].sig).toBe(failures[1].sig);
    expect(failures[1].line).toMatch(/^Error: timeout after 32s waiting for RDS instance db-/);

    // ATTACK: the usual single approval of a writer.
    const { number, sha } = await approvedPr(working);
    await say(number, "/agent deploy db", "alice");
    const blocked = lastReply(number);
    expect(blocked).toContain("is blocked");
    expect(blocked).toMatch(/- \[x\] Approvals — 1 of 1/);
    expect(blocked).toMatch(/- \[ \] Error budget — exhausted — 2 of 8 errors in 7 days; 2 × 'Error: timeout after \d+s waiting for RDS instance db-[0-9a-f]+' \(the same error 2 times \(limit 2\)\)/);
    expect(blocked).toContain("a deploy needs 2 approvals in all (1 now) and one of them from a maintainer (maintain or admin access)");
    // ATTACK: a second writer's approval: two approvals, no maintainer.
    await say(number, "/approve", "dan");
    await say(number, "/agent deploy db", "alice");
    expect(lastReply(number)).toMatch(/- \[ \] Error budget — exhausted/);
    expect(lastReply(number)).toContain("one of them from a maintainer");
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(2);
    // `/agent status` shows it.
    await say(number, "/agent status", "alice");
    expect(lastReply(number)).toMatch(/Error budget of `db`: 2 of 8 errors in 7 days; 2 × 'Error: timeout after/);
    // Positive control: a maintainer approves; the same command deploys.
    await say(number, "/approve", "carol");
    await say(number, "/agent deploy db", "alice");
    expect(lastReply(number)).toMatch(/deploying `db` at `[0-9a-f]{7}`/);
    expect((await completed("agent/deploy (db)", sha)).body).toMatchObject({ conclusion: "success" });

    // The operator resets it, with a reason (audited): one writer's approval is enough again.
    const out: string[] = [];
    const code = await budgetCommand(["reset", "--repo", REPO, "--stack", "db", "--reason", "the RDS maintenance window was announced late", "--as", "ops-oncall"], { db: f.app.deps.db, env: {} }, { stdout: (t) => out.push(t), stderr: (t) => out.push(t) });
    expect(code).toBe(0);
    expect(JSON.parse(out.join(""))).toMatchObject({ reset: true, exhausted: false, summary: "0 of 8 errors in 7 days", remaining: 8 });
    const { rows: reset } = await f.db.query("SELECT actor, detail FROM audit_log WHERE action = 'budget.reset'");
    expect(reset).toEqual([{ actor: "ops-oncall", detail: { stack: "db", reason: "the RDS maintenance window was announced late" } }]);
    const next = await approvedPr(working);
    await say(next.number, "/agent deploy db", "alice");
    expect(lastReply(next.number)).toMatch(/deploying `db` at `[0-9a-f]{7}`/);
    expect((await completed("agent/deploy (db)", next.sha)).body).toMatchObject({ conclusion: "success" });
  });

  it("a rollback is never held by an exhausted budget", async () => {
    const good = await approvedPr(working);
    await say(good.number, "/agent deploy db", "alice");
    expect((await completed("agent/deploy (db)", good.sha)).body).toMatchObject({ conclusion: "success" });
    let last = good.number;
    for (const n of [3, 4]) {
      const { number, sha } = await approvedPr(failing(n));
      await say(number, "/agent deploy db", "alice");
      expect((await completed("agent/deploy (db)", sha)).body).toMatchObject({ conclusion: "failure" });
      last = number;
    }
    const out: string[] = [];
    await budgetCommand(["show", "--repo", REPO, "--stack", "db"], { db: f.app.deps.db, env: {} }, { stdout: (t) => out.push(t), stderr: (t) => out.push(t) });
    expect(JSON.parse(out.join(""))).toMatchObject({ exhausted: true });
    // Back to the good merge commit, with the rollback's one approval (no maintainer): applied.
    await say(last, "/agent rollback db", "alice");
    await completed("agent/preview (db)", good.mergeSha);
    await gh.waitFor(() => lastReply(last).includes("waits for approval"), "the rollback plan");
    await say(last, "/approve", "bob");
    await say(last, "/agent rollback db", "alice");
    expect(lastReply(last)).toContain("applying the rollback of `db`");
    expect((await completed("agent/deploy (db)", good.mergeSha)).body).toMatchObject({ conclusion: "success" });
  });
});
