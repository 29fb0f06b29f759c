import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { deliver, pullRequestPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

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
});
