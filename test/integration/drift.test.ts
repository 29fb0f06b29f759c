/**
 * Drift detection end to end: real Redis (BullMQ job schedulers), Postgres and sandboxes (the
 * stand-in `pulumi`, whose fixture's "refreshed" resources are what `--refresh` reveals);
 * GitHub at the HTTP boundary. Schedules follow the default branch's config (one per stack,
 * however many times or processes sync it; removed with the config); a check previews the
 * default branch's head with `--refresh` and keeps one issue per stack: opened, updated in
 * place, reopened when drift returns after someone closed it, closed when a check is clean.
 */
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { createRedis, DRIFT_QUEUE, type DriftJobData } from "../../src/connectors/queues.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { until } from "../helpers/app-process.js";
import { deliver, issueCommentPayload, pushPayload, startAppFixture, TEST_REDIS_URL, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/drift";
const TOKEN = "ghs_driftInstallationToken00000000000025";
const config = (drift: string) => `version: 1
stacks:
  - name: prod
    dir: infra
    engine: pulumi
${drift}`;
const WITH_DRIFT = config('    drift: { schedule: "0 6 * * *" }\n');
const logs = { type: "aws:s3/bucket:Bucket", name: "logs", inputs: { acl: "private" } };
/** The program as the code declares it; `outOfBand`: what a refresh finds changed by hand. */
const program = (outOfBand: boolean) =>
  JSON.stringify({
    config: { "aws:region": "eu-west-1" },
    providers: { aws: "6.0.0" },
    resources: [{ ...logs, op: "same" }],
    ...(outOfBand ? { refreshed: [{ ...logs, op: "update", diff: ["acl"], oldInputs: { acl: "public-read" }, inputs: { acl: "private" } }] } : {}),
  });

describe("drift detection", () => {
  let f: AppFixture;
  let gh: GitHubFake;

  beforeAll(async () => {
    // GitHub first: the app syncs every installed repository's schedules as it starts.
    gh = new GitHubFake(REPO, TOKEN);
    gh.appInstallations = [{ id: 4242 }];
    gh.installationRepos = [{ full_name: REPO, clone_url: "http://127.0.0.1:1/unused.git", default_branch: "main" }];
    gh.files.set("main:.github/agent.yml", WITH_DRIFT);
    f = await startAppFixture(TOKEN, { env: { DRIFT_SYNC_ON_START: "true" }, credentials: staticCredentials(() => ({ PULUMI_BACKEND_URL: "file:///tmp/pulumi-state", PULUMI_CONFIG_PASSPHRASE: "drift-test-passphrase-000001" })) });
    gh.permissions.set("alice", "write");
    gh.permissions.set("bob", "write");
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });

  const cloneUrl = () => f.git.cloneUrl(REPO);
  async function mainAt(outOfBand: boolean) {
    const sha = await f.git.commit(REPO, { "infra/Pulumi.yaml": "name: shop\nruntime: nodejs\n", "infra/pulumi-standin.json": program(outOfBand) }, "main");
    gh.branchHeads.set("main", sha);
    return sha;
  }
  async function pushConfig() {
    const p = pushPayload({ repo: REPO, cloneUrl: cloneUrl(), before: "1".repeat(40), after: gh.branchHeads.get("main") ?? "2".repeat(40) });
    p.commits = [{ id: "3".repeat(40), added: [], removed: [], modified: [".github/agent.yml"] }];
    await f.watcher.handled((await deliver(f.app.port!, "push", p)).id);
  }
  const schedulers = async () => (await f.app.deps.queues.drift.getJobSchedulers(0, -1)).filter((j) => j.key.startsWith(`drift:${REPO}:`));
  /** `/agent drift prod` in an issue, then the next issue write the check makes. */
  async function checkNow(): Promise<RecordedCall> {
    const start = gh.calls.length;
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: cloneUrl(), prNumber: 900, body: "/agent drift prod", login: "alice", onPullRequest: false }));
    await f.watcher.handled(res.id);
    return gh.waitFor((c) => gh.calls.indexOf(c) >= start && /\/issues(\/\d+)?$/.test(c.path) && (c.method === "POST" || c.method === "PATCH") && !/\/issues\/900\//.test(c.path), "the drift issue's update", 60_000);
  }
  /** The stack's drift record once the check of `sha` is committed (the issue is written inside that transaction). */
  const row = (sha: string) =>
    until(async () => (await f.db.query("SELECT state, issue_number, since FROM drift_stacks WHERE repo = $1 AND stack = 'prod' AND sha = $2", [REPO, sha])).rows[0], `the drift record of ${sha.slice(0, 7)}`);

  it("syncs every installed repository's schedules on start-up", async () => {
    // The sync's last step is its audit row.
    const synced = await until(async () => (await f.db.query("SELECT actor, detail FROM audit_log WHERE action = 'drift.scheduled'")).rows[0], "the start-up sync");
    expect(synced).toEqual({ actor: "pr-infra-agent", detail: { scheduled: ["prod"], removed: [] } });
    expect((await schedulers()).map((j) => [j.key, j.pattern])).toEqual([[`drift:${REPO}:prod`, "0 6 * * *"]]);
    expect(gh.find("GET", /^\/app\/installations$/)).toHaveLength(1);
  });

  it("keeps one scheduler per stack, whoever syncs it and how often, and removes it with the config", async () => {
    await pushConfig();
    await pushConfig();
    expect((await schedulers()).map((j) => [j.key, j.pattern, j.tz])).toEqual([[`drift:${REPO}:prod`, "0 6 * * *", "UTC"]]);
    // Another process (its own Queue object on the same Redis) upserting the same scheduler keeps one.
    const other = new Queue<DriftJobData>(DRIFT_QUEUE, { connection: createRedis(TEST_REDIS_URL), prefix: f.env.queuePrefix });
    await other.upsertJobScheduler(`drift:${REPO}:prod`, { pattern: "0 6 * * *", tz: "UTC" }, { name: "drift", data: { repo: REPO, installationId: 4242, stack: "prod", cloneUrl: cloneUrl(), defaultBranch: "main" } });
    expect(await schedulers()).toHaveLength(1);
    // One job waits for the next tick, not one per upsert.
    expect((await other.getDelayed()).filter((j) => j.data.repo === REPO)).toHaveLength(1);
    await other.close();

    gh.files.set("main:.github/agent.yml", config(""));
    await pushConfig();
    expect(await schedulers()).toEqual([]);
    gh.files.set("main:.github/agent.yml", WITH_DRIFT);
    await pushConfig();
    expect(await schedulers()).toHaveLength(1);
  });

  it("opens one issue on drift, updates it in place, reopens it when drift returns after a close, closes it when clean", async () => {
    const first = await mainAt(true);
    const opened = await checkNow();
    expect(opened.method).toBe("POST");
    const number = [...gh.issues.keys()].at(-1)!;
    const issue = gh.issues.get(number)!;
    expect(issue).toMatchObject({ title: "Drift: prod differs from the default branch", state: "open", labels: ["agent:drift"] });
    expect(issue.body).toContain(`a preview with \`--refresh\` of \`${first.slice(0, 7)}\` would change **1** resource`);
    expect(issue.body).toMatch(/update \| `aws:s3\/bucket:Bucket` \| `logs` \| `acl` \|/);
    expect(issue.body).toContain("comment `/agent deploy prod` here");
    const drifted = await row(first);
    expect(drifted).toMatchObject({ state: "drifted", issue_number: number });

    // Still drifted on a later commit: the same issue, updated; "since" kept.
    const second = await mainAt(true);
    const updated = await checkNow();
    expect(updated).toMatchObject({ method: "PATCH", path: `/repos/${REPO}/issues/${number}` });
    expect(gh.issues.size).toBe(1);
    expect(gh.issues.get(number)!.body).toContain(`\`${second.slice(0, 7)}\``);
    expect((await row(second)).since).toEqual(drifted.since);

    // Someone closes it while the drift stays: the next check reopens it.
    gh.issues.get(number)!.state = "closed";
    const third = await mainAt(true);
    await checkNow();
    await row(third);
    expect(gh.issues.get(number)!.state).toBe("open");

    // Fixed by hand: the next check is clean, says so and closes the issue.
    const clean = await mainAt(false);
    const closing = await checkNow();
    expect(closing).toMatchObject({ method: "PATCH", path: `/repos/${REPO}/issues/${number}`, body: { state: "closed", state_reason: "completed" } });
    expect(gh.issues.get(number)!.state).toBe("closed");
    const said = gh.find("POST", new RegExp(`/issues/${number}/comments$`)).at(-1)!;
    expect(gh.calls.indexOf(said)).toBeLessThan(gh.calls.indexOf(closing));
    expect(String(said.body!.body)).toContain(`No drift any more: a check of \`prod\` at \`${clean.slice(0, 7)}\``);
    expect(await row(clean)).toMatchObject({ state: "clean", issue_number: number, since: null });
    // The check's audit row follows its drift record's commit: wait for it, not for the record.
    const audit = await until(async () => {
      const rows = (await f.db.query("SELECT action FROM audit_log WHERE action LIKE 'drift.%' AND action NOT IN ('drift.scheduled', 'drift.check_started') ORDER BY id")).rows.map((r) => r.action as string);
      return rows.includes("drift.clean") ? rows : undefined;
    }, "the clean check's audit row");
    expect(audit).toEqual(["drift.detected", "drift.detected", "drift.detected", "drift.clean"]);
  });

  it("a scheduler's tick runs the same check (the worker takes the drift job)", async () => {
    await mainAt(true);
    const start = gh.calls.length;
    const job = await f.app.deps.queues.drift.add("drift", { repo: REPO, installationId: 4242, stack: "prod", cloneUrl: cloneUrl(), defaultBranch: "main" });
    expect(await until(async () => { const st = await job.getState(); return st === "completed" || st === "failed" ? st : null; }, "the drift job")).toBe("completed");
    const reopened = await gh.waitFor((c) => gh.calls.indexOf(c) >= start && c.method === "PATCH" && /\/issues\/\d+$/.test(c.path) && c.body?.state === "open", "the scheduled check's issue update", 60_000);
    expect(gh.issues.get(Number(reopened.path.split("/").pop()))!.state).toBe("open");
    expect(gh.issues.size).toBe(1);
    expect((await f.db.query("SELECT requested_by FROM workflows WHERE repo = $1 ORDER BY created_at DESC LIMIT 1", [REPO])).rows[0]).toEqual({ requested_by: "drift-schedule" });
  });
  it("`/agent deploy` on the drift issue previews the default branch and applies it once approved; elsewhere in an issue it is refused", async () => {
    const say = async (issue: number, body: string, login: string) => f.watcher.handled((await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: cloneUrl(), prNumber: issue, body, login, onPullRequest: false }))).id);
    const replies = (issue: number) => gh.find("POST", new RegExp(`/issues/${issue}/comments$`)).map((c) => String(c.body!.body));
    const { issue_number: issue } = (await f.db.query("SELECT issue_number FROM drift_stacks WHERE repo = $1 AND stack = 'prod'", [REPO])).rows[0];
    // Not the drift issue: nothing runs.
    await say(901, "/agent deploy prod", "alice");
    expect(replies(901).at(-1)).toContain("works on a stack's drift issue (label `agent:drift`), and this is not a drift issue. Nothing was run.");

    const head = await mainAt(true);
    await say(issue, "/agent deploy prod", "alice");
    expect(replies(issue).at(-1)).toContain(`fixing the drift of \`prod\`: previewing \`${head.slice(0, 7)}\``);
    await gh.waitFor(() => replies(issue).some((b) => /Drift fix of `prod` at `[0-9a-f]{7}` is planned .* waits for approval/s.test(b)), "the plan in the issue", 60_000);
    // Not approved yet: the checklist, nothing applied; the requester's own approval never counts.
    await say(issue, "/agent deploy prod", "alice");
    expect(replies(issue).at(-1)).toMatch(/Drift fix of `prod` at `[0-9a-f]{7}` is blocked/);
    await say(issue, "/approve", "bob");
    await say(issue, "/agent deploy prod", "alice");
    expect(replies(issue).at(-1)).toMatch(/applying the drift fix of `prod` at `[0-9a-f]{7}`/);
    const done = await gh.waitFor((c) => isCheckRunCompleted(c) && gh.checkRuns.get(Number(c.path.split("/").pop()))?.name === "agent/deploy (prod)", "the drift fix's apply", 60_000);
    expect(done.body).toMatchObject({ conclusion: "success" });
    expect([...gh.deployments.values()]).toEqual([expect.objectContaining({ ref: head, environment: "prod", statuses: ["in_progress", "success"] })]);
  });
  it("fleet view: stacks drifting in the same resource types in the same run link to each other, and /agent status on a drift issue lists the group", async () => {
    gh.files.set("main:.github/agent.yml", `${WITH_DRIFT}  - name: edge\n    dir: edge\n    engine: pulumi\n    drift: { schedule: "0 6 * * *" }\n`);
    const both = async () => {
      const sha = await f.git.commit(REPO, { "infra/Pulumi.yaml": "name: shop\nruntime: nodejs\n", "infra/pulumi-standin.json": program(true), "edge/Pulumi.yaml": "name: edge\nruntime: nodejs\n", "edge/pulumi-standin.json": program(true) }, "main, both drifting");
      gh.branchHeads.set("main", sha);
      const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: cloneUrl(), prNumber: 902, body: "/agent drift", login: "alice", onPullRequest: false }));
      await f.watcher.handled(res.id);
      for (const stack of ["prod", "edge"]) await until(async () => (await f.db.query("SELECT 1 FROM drift_stacks WHERE repo = $1 AND stack = $2 AND sha = $3", [REPO, stack, sha])).rows[0], `${stack}'s check`);
    };
    await both();
    // Checked again: each issue now names the other (whichever recorded first saw none the first time).
    await both();
    const rows = (await f.db.query<{ stack: string; issue_number: number; types: string[] }>("SELECT stack, issue_number, types FROM drift_stacks WHERE repo = $1 ORDER BY stack", [REPO])).rows;
    expect(rows.map((r) => [r.stack, r.types])).toEqual([["edge", ["aws:s3/bucket:Bucket"]], ["prod", ["aws:s3/bucket:Bucket"]]]);
    const [edge, prod] = rows;
    expect(gh.issues.get(prod!.issue_number)!.body).toContain(`**Drifting together**`);
    expect(gh.issues.get(prod!.issue_number)!.body).toContain(`- \`edge\` #${edge!.issue_number}: \`aws:s3/bucket:Bucket\``);
    expect(gh.issues.get(edge!.issue_number)!.body).toContain(`- \`prod\` #${prod!.issue_number}: \`aws:s3/bucket:Bucket\``);

    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: cloneUrl(), prNumber: prod!.issue_number, body: "/agent status", login: "alice", onPullRequest: false }));
    await f.watcher.handled(res.id);
    const status = gh.find("POST", new RegExp(`/issues/${prod!.issue_number}/comments$`)).map((c) => String(c.body!.body)).at(-1)!;
    expect(status).toMatch(/\*\*Drift of `prod`\*\*: drifting since/);
    expect(status).toContain(`- \`edge\` #${edge!.issue_number}: \`aws:s3/bucket:Bucket\``);
  });
});
