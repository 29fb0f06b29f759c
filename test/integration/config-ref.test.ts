/**
 * The gate's configuration is read from the default branch by its full ref,
 * `refs/heads/<default>`. A bare name is resolved like git resolves it, and a tag named like
 * the branch can win; tags are pushed without a pull request or branch protection. Real
 * Redis, Postgres and sandbox; GitHub is the nock fake, which answers a bare `main` with the
 * tag's files when there is such a tag, as the real resolution would.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/tagged";
const TOKEN = "ghs_configRefInstallationToken00000000011";
const config = (approvals: number) => `version: 1
stacks:
  - name: app
    dir: app
    gate: { approvals: ${approvals}, require: { lock: false } }
    steps:
      preview: ["echo", "plan: restart 2 services"]
      deploy: ["./deploy.sh"]
`;
const GATED = config(1);
const LOWERED = config(0);

describe("configuration from refs/heads/<default>, never a name a tag could shadow", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 40;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials: staticCredentials(() => ({})) });
  });
  afterEach(() => gh?.stop());
  afterAll(() => f.stop());

  /** A PR whose default branch has `branch` as its agent.yml and, optionally, a tag `main` with `tag`. */
  async function openPr(branch: string, tag?: string) {
    await f.db.query("DELETE FROM stack_locks"); // the previous test's preview holds the stack
    gh?.stop();
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", branch);
    if (tag) gh.files.set("refs/tags/main:.github/agent.yml", tag);
    const sha = await f.git.commit(REPO, { "app/deploy.sh": exe("#!/bin/sh\necho deployed app\n") });
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha, author: "alice" });
    return number;
  }
  async function say(number: number, body: string, login: string) {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    await f.watcher.handled(res.id);
  }
  const lastReply = (number: number) =>
    gh
      .find("POST", new RegExp(`/issues/${number}/comments$`))
      .map((c) => String(c.body!.body))
      .filter((b) => !b.startsWith("<!-- pr-infra-agent"))
      .at(-1) ?? "";
  const checkRunNamed = (c: RecordedCall) => String(gh.checkRuns.get(Number(c.path.split("/").pop()))?.name);
  async function preview(number: number) {
    await say(number, "/agent preview app", "alice");
    const done = await gh.waitFor((c) => isCheckRunCompleted(c) && checkRunNamed(c) === "agent/preview (app)", "the preview");
    expect(done.body).toMatchObject({ conclusion: "success" });
  }
  /** The refs the app read `.github/agent.yml` at (Octokit sends the path's `/` encoded). */
  const isConfigRead = (c: RecordedCall) => c.method === "GET" && decodeURIComponent(c.path).endsWith("/contents/.github/agent.yml");
  const configReads = (from = 0) => gh.calls.slice(from).filter(isConfigRead).map((c) => c.query.get("ref"));

  it("ATTACK: a tag `main` whose agent.yml asks for 0 approvals does not unblock /agent deploy", async () => {
    const number = await openPr(GATED, LOWERED);
    // The fake answers as GitHub would with such a tag: the bare name gives the tag's file.
    expect(gh.respond("GET", `/repos/${REPO}/contents/.github/agent.yml?ref=main`, "", {})[1]).toBe(LOWERED);
    expect(gh.respond("GET", `/repos/${REPO}/contents/.github/agent.yml?ref=refs%2Fheads%2Fmain`, "", {})[1]).toBe(GATED);
    const probes = gh.calls.length;

    await preview(number);
    await say(number, "/agent deploy app", "alice");
    expect(lastReply(number)).toContain("is blocked");
    expect(lastReply(number)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(0);
    expect(gh.find("PUT", /\/merge$/)).toHaveLength(0);
    // Every read of the configuration named the branch by its full ref.
    const reads = configReads(probes);
    expect(reads.length).toBeGreaterThan(0);
    expect(reads).toEqual(reads.map(() => "refs/heads/main"));
  });

  it("positive control: the same lowered gate on the branch itself lets /agent deploy through", async () => {
    const number = await openPr(LOWERED);
    await preview(number);
    await say(number, "/agent deploy app", "alice");
    expect(lastReply(number)).toMatch(/deploying `app` at `[0-9a-f]{7}`/);
    // Past the gate: the deploy task creates its GitHub Deployment before it applies.
    await gh.waitFor((c) => c.method === "POST" && c.path.endsWith("/deployments"), "the deployment", 90_000);
    await gh.waitFor((c) => isCheckRunCompleted(c) && checkRunNamed(c) === "agent/deploy (app)", "the deploy to end", 90_000);
    expect(configReads().length).toBeGreaterThan(0);
    expect(configReads().every((ref) => ref === "refs/heads/main")).toBe(true);
  });
});
