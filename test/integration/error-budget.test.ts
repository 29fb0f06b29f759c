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
import { GitHubFake } from "../helpers/github-fake.js";
import { prConversation } from "../helpers/conversation.js";
import { executable as exe } from "../helpers/git-server.js";
import { startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/budgets";
const TOKEN = "ghs_errorBudgetsInstallationToken0000032";
const CONFIG = `version: 1
stacks:
  - name: db
    dir: app
    gate: { approvals: 1, require: { lock: false } }
  - { name: a, dir: app, gate: { approvals: 1, require: { lock: false } } }
  - { name: b, dir: app, gate: { approvals: 1, require: { lock: false } } }
  - { name: c, dir: app, gate: { approvals: 1, require: { lock: false } } }
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

  const { say, lastReply, completed } = prConversation(() => f, () => gh, REPO);
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
    const { rows: reset } = await f.db.query("SELECT actor, detail FROM audit_log WHERE action = 'budget.reset' AND repo = $1", [REPO]);
    expect(reset).toEqual([{ actor: "ops-oncall", detail: { stack: "db", reason: "the RDS maintenance window was announced late" } }]);
    // The repository's budget (every stack's errors; the same error's limit is 3) is reset too, so the next test starts clean.
    expect(await budgetCommand(["reset", "--repo", REPO, "--reason", "the RDS maintenance window was announced late", "--as", "ops-oncall"], { db: f.app.deps.db, env: {} }, { stdout: () => {}, stderr: () => {} })).toBe(0);
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

  it("the repository's budget: the same error across stacks exhausts it though no stack's own is; a deploy of any stack then needs a maintainer (control: before that, it did not)", async () => {
    const reset = (args: string[], out: string[] = []) => budgetCommand(["reset", "--repo", REPO, ...args, "--as", "ops-oncall"], { db: f.app.deps.db, env: {} }, { stdout: (t) => out.push(t), stderr: (t) => out.push(t) });
    // The tests before left errors in the repository's budget: start clean.
    expect(await reset(["--reason", "start of the shared-module test"])).toBe(0);
    const deployOf = async (stack: string, script: { content: string; mode: number }) => {
      await f.db.query("DELETE FROM stack_locks WHERE repo = $1", [REPO]);
      const number = ++pr;
      const sha = await f.git.commit(REPO, { "app/plan.txt": `plan: release ${number}\n`, "app/deploy.sh": script }, `pr ${number}`);
      gh.pulls.set(number, { headSha: sha, author: "alice" });
      await say(number, `/agent preview ${stack}`, "alice");
      await completed(`agent/preview (${stack})`, sha);
      await say(number, "/approve", "bob");
      await say(number, `/agent deploy ${stack}`, "alice");
      return { number, sha };
    };
    // A shared module breaks: the same error in a, then b; each stack has 1 error (its own limit is 2).
    for (const [stack, k] of [["a", 11], ["b", 12]] as const) {
      const { sha } = await deployOf(stack, failing(k));
      expect((await completed(`agent/deploy (${stack})`, sha)).body).toMatchObject({ conclusion: "failure" });
    }
    // Control: the repository's budget (the same error's limit is 3) is not yet exhausted: c deploys on one writer's approval (and fails the same way).
    const third = await deployOf("c", failing(13));
    expect(lastReply(third.number)).toMatch(/deploying `c` at `[0-9a-f]{7}`/);
    expect((await completed("agent/deploy (c)", third.sha)).body).toMatchObject({ conclusion: "failure" });

    // ATTACK: a's own budget has 1 error, but the repository's is exhausted: one writer's approval is not enough.
    const fix = await deployOf("a", working);
    const blocked = lastReply(fix.number);
    expect(blocked).toMatch(/- \[ \] Error budget — exhausted — the repository's: 3 of 20 errors in 7 days; 3 × 'Error: timeout after \d+s waiting for RDS instance db-[0-9a-f]+' \(the same error 3 times \(limit 3\)\)/);
    expect(blocked).toContain("a deploy needs 2 approvals in all (1 now) and one of them from a maintainer");
    await say(fix.number, "/approve", "carol");
    await say(fix.number, "/agent deploy a", "alice");
    expect((await completed("agent/deploy (a)", fix.sha)).body).toMatchObject({ conclusion: "success" });

    // The operator resets the repository's budget (no --stack), audited.
    const out: string[] = [];
    expect(await reset(["--reason", "the shared module is fixed"], out)).toBe(0);
    expect(JSON.parse(out.join(""))).toMatchObject({ stack: null, reset: true, exhausted: false, summary: "the repository's: 0 of 20 errors in 7 days" });
    const { rows } = await f.db.query("SELECT detail FROM audit_log WHERE action = 'budget.reset' AND repo = $1 AND NOT detail ? 'stack' ORDER BY id DESC LIMIT 1", [REPO]);
    expect(rows).toEqual([{ detail: { reason: "the shared module is fixed" } }]);
  });
});
