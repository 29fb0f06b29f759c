import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { ACKNOWLEDGING_CHECK_RUNS } from "../../src/commands/preview.js";
import { PRIORITY } from "../../src/connectors/outbox/pacer.js";
import { deliver, issueCommentPayload, pullRequestPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/auto";
const TOKEN = "ghs_autoplanInstallationToken00000000008";
const CONFIG = `version: 1
stacks:
  - name: net
    paths: ["network/**", "modules/**"]
  - name: app
    dir: app
steps:
  preview: ["sh", "-c", "echo plan $AGENT_STACK"]
`;

/** Atlantis-style autoplan: a push previews exactly the stacks whose files it touches. */
describe("autoplan on pull_request opened / synchronize", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 40;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN);
  });
  afterEach(() => gh?.stop());
  afterAll(() => f.stop());

  async function open(files: string[], opts: { author?: string; fork?: boolean; config?: string; action?: "opened" | "synchronize" } = {}) {
    await f.db.query("DELETE FROM stack_locks");
    gh?.stop(); // one fake at a time: nock would answer from the first one registered
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.permissions.set("rita", "read");
    gh.files.set("main:.github/agent.yml", opts.config ?? CONFIG);
    const sha = await f.git.commit(REPO, { "README.md": `pr ${pr}\n`, "app/.keep": "", "network/.keep": "" });
    const number = ++pr;
    const author = opts.author ?? "alice";
    gh.pulls.set(number, { headSha: sha, author, files });
    const payload = pullRequestPayload(opts.action ?? "opened", {
      repo: REPO,
      prNumber: number,
      headSha: sha,
      author,
      sender: author,
      headRepo: opts.fork ? "mallory/auto" : REPO,
    });
    payload.repository.clone_url = f.git.cloneUrl(REPO);
    const res = await deliver(f.app.port!, "pull_request", payload);
    await f.watcher.handled(res.id);
    return number;
  }

  /** The preview's last write (the sticky comment) has happened: nothing of this test is still in flight. */
  const settled = () => gh.waitFor((c) => /\/comments(\/\d+)?$/.test(c.path) && String(c.body?.body).includes("✅ succeeded"), "the sticky comment");
  const audit = async (number: number) =>
    (await f.db.query("SELECT action, detail FROM audit_log WHERE pr_number = $1 ORDER BY id", [number])).rows as Array<{ action: string; detail: Record<string, unknown> }>;

  it("previews only the stacks whose paths changed, as the PR author", async () => {
    const number = await open(["app/src/main.ts", "docs/readme.md"]);
    const done = await gh.waitFor(isCheckRunCompleted, "the autoplanned preview");
    expect(done.body).toMatchObject({ conclusion: "success" });
    expect(gh.find("POST", /\/check-runs$/).map((c) => c.body!.name)).toEqual(["agent/preview (app)"]);
    expect(String((done.body!.output as { text: string }).text)).toContain("plan app");
    const events = await audit(number);
    expect(events[0]).toMatchObject({ action: "autoplan.requested", detail: { stacks: ["app"], trigger: "opened" } });
    const { rows } = await f.db.query("SELECT w.requested_by FROM workflows w WHERE w.pr_number = $1", [number]);
    expect(rows).toEqual([{ requested_by: "alice" }]);
    await settled();
  });

  it("custom globs select their stack on a push, dotfiles included", async () => {
    await open(["modules/vpc/.terraform-version"], { action: "synchronize" });
    await gh.waitFor(isCheckRunCompleted, "the autoplanned preview");
    expect(gh.find("POST", /\/check-runs$/).map((c) => c.body!.name)).toEqual(["agent/preview (net)"]);
    await settled();
  });

  it("does nothing when no stack's paths changed, or when autoplan is off", async () => {
    await open(["README.md"]);
    expect(gh.find("GET", /\/files$/)).toHaveLength(1);
    expect(gh.find("POST", /\/check-runs$/)).toEqual([]);
    await open(["app/x.ts"], { config: CONFIG.replace("version: 1\n", "version: 1\nautoplan: false\n") });
    expect(gh.find("POST", /\/check-runs$/)).toEqual([]);
    expect(gh.find("GET", /\/files$/)).toEqual([]);
  });

  it("never autoplans code from a fork or from an author without write access", async () => {
    const fork = await open(["app/x.ts"], { fork: true });
    const reader = await open(["app/x.ts"], { author: "rita" });
    expect(gh.find("POST", /\/check-runs$/)).toEqual([]);
    expect((await audit(fork))[0]).toMatchObject({ action: "autoplan.skipped", detail: { reason: "pull request from a fork" } });
    expect((await audit(reader))[0]).toMatchObject({ action: "autoplan.skipped", detail: { reason: "author has read permission" } });
    const { rows } = await f.db.query("SELECT count(*)::int AS n FROM workflows WHERE pr_number = ANY($1)", [[fork, reader]]);
    expect(rows[0].n).toBe(0);
  });

  describe("blast radius (autoplan_max_stacks)", () => {
    const limited = (max: number) => CONFIG.replace("version: 1\n", `version: 1\nautoplan_max_stacks: ${max}\n`);
    const checkRunNames = () => gh.find("POST", /\/check-runs$/).map((c) => String(c.body!.name)).sort();

    it("a push matching more stacks than the limit previews nothing and says how to go on; `/agent preview --all` then previews them all", async () => {
      const number = await open(["app/x.ts", "network/vpc.ts"], { config: limited(1), action: "synchronize" });
      expect(gh.find("POST", /\/check-runs$/)).toEqual([]);
      const held = gh.find("POST", new RegExp(`/issues/${number}/comments$`));
      expect(held).toHaveLength(1);
      expect(String(held[0]!.body!.body)).toMatch(/Autoplan held:\*\* 2 stacks match .* limit of 1 .*Nothing was previewed/);
      expect(String(held[0]!.body!.body)).toContain("`/agent preview --all`");
      expect((await audit(number))[0]).toMatchObject({ action: "autoplan.held", detail: { stacks: ["net", "app"], max_stacks: 1, trigger: "synchronize" } });
      const { rows } = await f.db.query("SELECT count(*)::int AS n FROM workflows WHERE pr_number = $1", [number]);
      expect(rows[0].n).toBe(0);

      const comment = issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body: "/agent preview --all", login: "alice" });
      await f.watcher.handled((await deliver(f.app.port!, "issue_comment", comment)).id);
      await gh.waitFor((c) => gh.calls.filter(isCheckRunCompleted).length === 2 && isCheckRunCompleted(c), "both previews completed");
      expect(checkRunNames()).toEqual(["agent/preview (app)", "agent/preview (net)"]);
      expect(gh.calls.filter(isCheckRunCompleted).map((c) => c.body!.conclusion)).toEqual(["success", "success"]);
      expect((await audit(number)).map((e) => e.action)).toContain("preview.queued");
      await settled();
    });

    it("positive control: at the limit, the same push previews both stacks by itself", async () => {
      const number = await open(["app/x.ts", "network/vpc.ts"], { config: limited(2), action: "synchronize" });
      await gh.waitFor((c) => gh.calls.filter(isCheckRunCompleted).length === 2 && isCheckRunCompleted(c), "both previews completed");
      expect(checkRunNames()).toEqual(["agent/preview (app)", "agent/preview (net)"]);
      expect(gh.find("POST", new RegExp(`/issues/${number}/comments$`)).filter((c) => String(c.body?.body).includes("Autoplan held"))).toEqual([]);
      expect((await audit(number))[0]).toMatchObject({ action: "autoplan.requested", detail: { stacks: ["net", "app"] } });
      await settled();
    });

    it("a fan-out's first queued check runs are acknowledgements; past them they wait behind finished stacks' results (progress)", async () => {
      const many = `version: 1\nstacks:\n${Array.from({ length: ACKNOWLEDGING_CHECK_RUNS + 2 }, (_, i) => `  - name: s${i}\n`).join("")}steps:\n  preview: ["sh", "-c", "echo plan $AGENT_STACK"]\n`;
      const number = await open(["README.md"], { config: many });
      const comment = issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body: "/agent preview", login: "alice" });
      await f.watcher.handled((await deliver(f.app.port!, "issue_comment", comment)).id);
      const { rows } = await f.db.query<{ priority: number }>(
        `SELECT o.priority FROM github_outbox o JOIN tasks t ON o.idempotency_key = 'task:' || t.id || ':queued'
         JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 ORDER BY o.id`,
        [number],
      );
      expect(rows).toHaveLength(ACKNOWLEDGING_CHECK_RUNS + 2);
      expect(rows.slice(0, ACKNOWLEDGING_CHECK_RUNS).map((r) => r.priority)).toEqual(Array(ACKNOWLEDGING_CHECK_RUNS).fill(PRIORITY.ack));
      // Progress, or final when the stack's result merged into its unsent creation: never ahead of acknowledgements.
      for (const r of rows.slice(ACKNOWLEDGING_CHECK_RUNS)) expect([PRIORITY.progress, PRIORITY.final]).toContain(r.priority);
      // The summary comment acknowledges the stacks whose check runs wait: its first write is an acknowledgement.
      const { rows: sticky } = await f.db.query<{ priority: number }>("SELECT priority FROM github_outbox WHERE object_key = $1 ORDER BY id LIMIT 1", [`sticky:${REPO}#${number}:1`]);
      expect(sticky).toEqual([{ priority: PRIORITY.ack }]);
      await gh.waitFor(() => gh.calls.filter(isCheckRunCompleted).length + gh.find("POST", /\/check-runs$/).filter((c) => c.body?.status === "completed").length >= ACKNOWLEDGING_CHECK_RUNS + 2, "every preview completed");
      await settled();
    }, 120_000);

    it("`/agent preview --all` when no stack's paths match: a clear reply, nothing queued", async () => {
      const number = await open(["README.md"], { config: limited(1) });
      const comment = issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body: "/agent preview --all", login: "alice" });
      await f.watcher.handled((await deliver(f.app.port!, "issue_comment", comment)).id);
      const replies = gh.find("POST", new RegExp(`/issues/${number}/comments$`));
      expect(replies.map((c) => String(c.body!.body))).toEqual([expect.stringContaining("`--all` has nothing to preview")]);
      expect(gh.find("POST", /\/check-runs$/)).toEqual([]);
    });
  });
});
