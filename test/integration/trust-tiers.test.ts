/**
 * Trust tiers end to end (real Redis, Postgres and sandboxes; GitHub at the HTTP boundary):
 * assignments are operator actions (audited); a demoted actor cannot deploy, whatever their
 * GitHub permission, and the refusal names the tier rule; a stack at `builder` needs one
 * approval more; an `observer` repository's previews get no credentials at all. The control is
 * the server's default tier (`executor`), under which the same flows deploy as before.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials, type CredentialRequest } from "../../src/connectors/credentials.js";
import { tierCommand } from "../../src/ops/tier-cli.js";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { prConversation } from "../helpers/conversation.js";
import { executable as exe } from "../helpers/git-server.js";
import { until } from "../helpers/app-process.js";
import { startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/tiers";
const TOKEN = "ghs_trustTiersInstallationToken0000000034";
const CONFIG = `version: 1
stacks:
  - name: app
    dir: app
    gate: { approvals: 1, require: { lock: false } }
  - name: slow
    dir: app
    steps:
      preview: ["sh", "-c", "sleep 4; cat plan.txt"]
steps:
  preview: ["cat", "plan.txt"]
  deploy: ["./deploy.sh"]
`;

describe("trust tiers", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 0;
  const asked: CredentialRequest[] = [];

  beforeAll(async () => {
    // `operator`'s and `architect`'s credentials live 2 s here (the seed's 30 and 15 min would not fit a test).
    f = await startAppFixture(TOKEN, { env: { TRUST_TTL_SECONDS: "operator=2,architect=2" }, credentials: staticCredentials((req) => (asked.push(req), { APP_TOKEN: "app-token-0000000000000001" })) });
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "admin"], ["bob", "write"], ["carol", "write"], ["dave", "write"], ["erin", "write"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
  });
  afterAll(async () => {
    gh?.stop();
    await f?.stop();
  });

  async function tier(args: string[]) {
    const out: string[] = [];
    expect(await tierCommand(["set", ...args, "--reason", "test", "--as", "ops-oncall"], { db: f.app.deps.db, env: {} }, { stdout: (t) => out.push(t), stderr: (t) => out.push(t) }), out.join("")).toBe(0);
  }
  const { say, lastReply, checkRunOf, completed } = prConversation(() => f, () => gh, REPO);
  async function previewedPr(deployScript = "#!/bin/sh\necho deployed\n") {
    // A merged PR's lock goes with its `closed` webhook, which these tests do not send.
    await f.db.query("DELETE FROM stack_locks WHERE repo = $1", [REPO]);
    const number = ++pr;
    const sha = await f.git.commit(REPO, { "app/plan.txt": `plan: release ${number}\n`, "app/deploy.sh": exe(deployScript) }, `pr ${number}`);
    gh.pulls.set(number, { headSha: sha, author: "bob" });
    await say(number, "/agent preview app", "bob");
    await completed("agent/preview (app)", sha);
    return { number, sha };
  }

  it("a demoted actor cannot deploy, whatever their GitHub permission; the refusal names the rule; the default tier (control) can", async () => {
    await tier(["--actor", "alice", "--tier", "operator"]);
    const { number, sha } = await previewedPr();
    await say(number, "/approve", "carol");
    // ATTACK: an admin on GitHub, demoted here.
    await say(number, "/agent deploy app", "alice");
    expect(lastReply(number)).toBe("@alice sorry, `deploy` needs trust tier builder (T2) or higher, and the effective tier here is operator (T1), assigned to actor @\u200balice — the lowest of the actor's, the repository's and the stack's. Nothing was run; an operator assigns tiers with `npm run agent -- tier set`.");
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(0);
    // An operator may still approve (and preview).
    await say(number, "/approve", "alice");
    expect(lastReply(number)).toContain("approved `app`");
    // Control: carol has the server's default tier (executor).
    await say(number, "/agent deploy app", "carol");
    expect(lastReply(number)).toMatch(/deploying `app` at `[0-9a-f]{7}`/);
    expect((await completed("agent/deploy (app)", sha)).body).toMatchObject({ conclusion: "success" });
    const { rows } = await f.db.query("SELECT actor, detail FROM audit_log WHERE action = 'tier.changed'");
    expect(rows).toEqual([{ actor: "ops-oncall", detail: { kind: "actor", subject: "alice", from: null, to: "operator", reason: "test" } }]);
    expect((await f.db.query("SELECT detail->>'tier' AS tier FROM audit_log WHERE action = 'tier.refused'")).rows).toEqual([{ tier: "operator" }]);
  });

  it("a team's tier is its members': a member of a demoted team cannot deploy (attack), a non-member can (control); unreadable membership falls to the lowest team tier", async () => {
    await tier(["--team", "octo-org/contractors", "--tier", "operator"]);
    gh.teams.set("contractors", ["dave"]);
    try {
      const { number, sha } = await previewedPr();
      await say(number, "/approve", "carol");
      // ATTACK: dave has write access on GitHub, and is in a team an operator demoted.
      await say(number, "/agent deploy app", "dave");
      expect(lastReply(number)).toContain("`deploy` needs trust tier builder (T2) or higher, and the effective tier here is operator (T1), assigned to team `octo-org/contractors` (@\u200bdave is a member)");
      // GitHub cannot say who is in the team: nobody is promoted by the outage, carol included.
      gh.membershipFailure = 502;
      await say(number, "/agent deploy app", "carol");
      expect(lastReply(number)).toContain("the effective tier here is operator (T1), assigned to team `octo-org/contractors` (team membership of @\u200bcarol could not be read: the lowest team tier applies)");
      expect(gh.find("POST", /\/deployments$/).filter((c) => c.body?.ref === sha)).toHaveLength(0);
      // Control: carol is in no assigned team; with GitHub answering she has the default tier.
      gh.membershipFailure = null;
      await say(number, "/agent deploy app", "carol");
      expect(lastReply(number)).toMatch(/deploying `app` at `[0-9a-f]{7}`/);
      expect((await completed("agent/deploy (app)", sha)).body).toMatchObject({ conclusion: "success" });
      expect(gh.find("GET", /\/orgs\/octo-org\/teams\/contractors\/memberships\/dave$/).length).toBeGreaterThan(0);
    } finally {
      gh.membershipFailure = null;
      await tier(["--team", "octo-org/contractors", "--tier", "default"]);
    }
  });

  it("a stack at `builder` needs one approval beyond its own; the gate's audit row names the tier", async () => {
    await tier(["--repo", REPO, "--stack", "app", "--tier", "builder"]);
    try {
      const { number, sha } = await previewedPr();
      await say(number, "/approve", "carol");
      await say(number, "/agent deploy app", "carol");
      expect(lastReply(number)).toMatch(/- \[ \] Approvals — 1 of 2 approvals/);
      await say(number, "/agent status", "carol");
      expect(lastReply(number)).toContain("Trust tier for your deploy of `app`: builder (T2), assigned to stack `octo-org/tiers:app` — 1 approval beyond the stack's own.");
      await say(number, "/approve", "alice");
      await say(number, "/agent deploy app", "carol");
      expect((await completed("agent/deploy (app)", sha)).body).toMatchObject({ conclusion: "success" });
      const { rows } = await f.db.query("SELECT detail->>'tier' AS tier, detail->>'allowed' AS allowed FROM audit_log WHERE action = 'gate.evaluated' AND pr_number = $1 ORDER BY id", [number]);
      expect(rows).toEqual([{ tier: "builder", allowed: "false" }, { tier: "builder", allowed: "true" }]);
      // The deploy's check run names the tier it runs under.
      expect(gh.calls.filter((c) => /check-runs/.test(c.path)).some((c) => JSON.stringify(c.body ?? {}).includes("Trust tier: builder (T2), assigned to stack `octo-org/tiers:app`"))).toBe(true);
      // Every audit row of the deploy task, from its queueing on, carries the tier it was judged and ran under.
      const taskRows = () =>
        f.db.query<{ action: string; tier: string | null }>("SELECT action, detail->>'tier' AS tier FROM audit_log WHERE task_id = (SELECT task_id FROM deploys WHERE repo = $1 AND pr_number = $2) ORDER BY id", [REPO, number]);
      // The merge after the apply is audited after the check run completes.
      const task = await until(async () => {
        const r = await taskRows();
        return r.rows.some((x) => x.action === "merge.succeeded") && r;
      }, "the deploy task's merge.succeeded row");
      expect(task.rows.map((r) => r.action)).toEqual(expect.arrayContaining(["deploy.queued", "deploy.claimed", "deploy.started", "deploy.succeeded", "merge.succeeded"]));
      expect(task.rows.filter((r) => r.tier !== "builder")).toEqual([]);
    } finally {
      await tier(["--repo", REPO, "--stack", "app", "--tier", "default"]);
    }
  });

  it("an `observer` repository's previews run with no credentials at all; the default tier's do get them (control)", async () => {
    const before = asked.length;
    const control = await previewedPr();
    expect(asked.slice(before).filter((r) => r.kind === "preview")).toHaveLength(1);
    await tier(["--repo", REPO, "--tier", "observer"]);
    try {
      const mark = asked.length;
      const { number, sha } = await previewedPr();
      expect(number).toBe(control.number + 1);
      expect(asked.slice(mark)).toEqual([]);
      // The check run says which tier it ran under, and why.
      const result = gh.find("PATCH", /\/check-runs\/\d+$/).filter((c) => isCheckRunCompleted(c) && checkRunOf(c)?.head_sha === sha).at(-1)!;
      expect(String((result.body as { output: { summary: string } }).output.summary)).toContain("Trust tier: observer (T0), assigned to repository `octo-org/tiers`.");
      // And nobody deploys there: the repository's tier bounds everyone's.
      await say(number, "/agent deploy app", "carol");
      expect(lastReply(number)).toContain("the effective tier here is observer (T0), assigned to repository `octo-org/tiers`");
    } finally {
      await tier(["--repo", REPO, "--tier", "default"]);
    }
  });

  it("a task holding credentials is stopped when they reach their tier's lifetime; the default tier's outlives the same step (control)", async () => {
    await f.db.query("DELETE FROM stack_locks WHERE repo = $1", [REPO]);
    const number = ++pr;
    const sha = await f.git.commit(REPO, { "app/plan.txt": `plan: release ${number}\n`, "app/deploy.sh": exe("#!/bin/sh\necho deployed\n") }, `pr ${number}`);
    gh.pulls.set(number, { headSha: sha, author: "dave" });
    await tier(["--actor", "dave", "--tier", "operator"]);
    const start = gh.calls.length;
    await say(number, "/agent preview slow", "dave");
    const stopped = await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c) && checkRunOf(c)?.name === "agent/preview (slow)", "the stopped preview");
    expect(stopped.body).toMatchObject({ conclusion: "failure" });
    expect(JSON.stringify(stopped.body)).toContain("the task's credentials reached their lifetime under trust tier operator (2 s), so it was stopped");
    // Control: bob's (executor, 15 min) preview of the same step finishes.
    const again = gh.calls.length;
    await say(number, "/agent preview slow", "bob");
    const done = await gh.waitFor((c) => gh.calls.indexOf(c) >= again && isCheckRunCompleted(c) && checkRunOf(c)?.name === "agent/preview (slow)", "the control preview");
    expect(done.body).toMatchObject({ conclusion: "success" });
    // Each task asked for credentials with its tier's lifetime (Vault's task token TTL with vault.task_tokens).
    expect(asked.filter((a) => a.stack === "slow").map((a) => a.ttlSeconds)).toEqual([2, 900]);
  });

  it("a deploy stopped at its tier's credential lifetime while applying is handed to a human (NEEDS_ATTENTION, not merged); the default tier's same apply finishes (control)", async () => {
    const slowPr = async () => {
      const previewed = await previewedPr("#!/bin/sh\necho applying\nsleep 5\necho deployed\n");
      await say(previewed.number, "/approve", "carol");
      return previewed;
    };
    // Control: carol (executor, 15 min) deploys; the 5 s apply finishes and the PR is merged.
    const control = await slowPr();
    await say(control.number, "/agent deploy app", "carol");
    expect((await completed("agent/deploy (app)", control.sha)).body).toMatchObject({ conclusion: "success" });

    // erin, the repository and the stack at architect (2 s here): the apply outlives the credentials.
    await tier(["--actor", "erin", "--tier", "architect"]);
    await tier(["--repo", REPO, "--tier", "architect"]);
    await tier(["--repo", REPO, "--stack", "app", "--tier", "architect"]);
    try {
      const { number, sha } = await slowPr();
      await say(number, "/agent deploy app", "erin");
      const stopped = await completed("agent/deploy (app)", sha);
      expect(stopped.body).toMatchObject({ conclusion: "action_required" });
      expect(JSON.stringify(stopped.body)).toContain("the task's credentials reached their lifetime under trust tier architect (2 s), so it was stopped while it was applying");
      const deploys = await f.db.query("SELECT state FROM deploys WHERE pr_number = $1 AND repo = $2", [number, REPO]);
      expect(deploys.rows).toEqual([{ state: "NEEDS_ATTENTION" }]);
      expect(gh.find("PUT", new RegExp(`/pulls/${number}/merge$`))).toHaveLength(0);
      expect(gh.find("PUT", new RegExp(`/pulls/${control.number}/merge$`))).toHaveLength(1);
      expect((await f.db.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'deploy.needs_attention' AND pr_number = $1", [number])).rows).toEqual([{ n: 1 }]);
    } finally {
      await tier(["--actor", "erin", "--tier", "default"]);
      await tier(["--repo", REPO, "--tier", "default"]);
      await tier(["--repo", REPO, "--stack", "app", "--tier", "default"]);
    }
  });
});
