/**
 * `/agent deploy a b c` and `/agent deploy --all`: several stacks applied in dependency order
 * (depends_on), one layer at a time, each through its own gate and its own approved plan, the
 * pull request merged once at the end; a failure stops what is downstream; a stack whose plan
 * changed once its upstream was applied is never applied unseen. Real Redis, Postgres, Docker;
 * GitHub is the nock fake.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { GitHubFake } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, leftoverSandboxes, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/platform-runs";
const TOKEN = "ghs_deployRunInstallationToken00000000001";

/** network → database, cache → api (`b depends_on a`: a first). */
const CONFIG = `version: 1
gate: { approvals: 1 }
steps:
  preview: ["./plan.sh"]
  deploy: ["./deploy.sh"]
stacks:
  - { name: api, depends_on: [database, cache] }
  - { name: database, depends_on: [network] }
  - { name: cache, depends_on: [network] }
  - { name: network }
`;
const UPSTREAM: Record<string, string[]> = { network: [], database: ["network"], cache: ["network"], api: ["database", "cache"] };

/** `failDeploy`: stacks whose deploy fails; `unstablePlan`: stacks whose plan differs on every preview. */
function tree(opts: { failDeploy?: string[]; unstablePlan?: string[] } = {}) {
  const list = (xs: string[] | undefined) => (xs?.length ? xs.join(" ") : "none");
  return {
    "plan.sh": exe(`#!/bin/sh\necho "plan for $AGENT_STACK: ~ 1 to update"\nfor s in ${list(opts.unstablePlan)}; do if [ "$AGENT_STACK" = "$s" ]; then echo "reads upstream output: $(cat /proc/sys/kernel/random/uuid)"; fi; done\n`),
    "deploy.sh": exe(`#!/bin/sh\nfor s in ${list(opts.failDeploy)}; do if [ "$AGENT_STACK" = "$s" ]; then echo "apply of $s: provider error"; exit 3; fi; done\necho "applied $AGENT_STACK"\n`),
  };
}

describe("deploy runs: several stacks in dependency order", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 300;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { env: { WORKER_CONCURRENCY: "3" }, credentials: staticCredentials(() => ({ DEPLOY_TOKEN: "run-test-deploy-token-000000000001" })) });
  });
  afterEach(() => gh?.stop());
  afterAll(() => f.stop());

  async function openPr(files: Record<string, string | { content: string; mode: number }>, config = CONFIG) {
    await f.db.query("DELETE FROM stack_locks WHERE repo = $1", [REPO]);
    gh?.stop();
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.permissions.set("bob", "write");
    gh.files.set("main:.github/agent.yml", config);
    const sha = await f.git.commit(REPO, files);
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha, author: "alice" });
    return { number, sha };
  }
  async function say(number: number, body: string, login = "alice") {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    await f.watcher.handled(res.id);
  }
  const replies = (number: number) => gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent"));
  const checkRun = (name: string) => [...gh.checkRuns.values()].find((cr) => cr.name === name);
  const completed = (names: string[], what: string) => gh.waitFor(() => names.every((n) => checkRun(n)?.status === "completed"), what, 120_000);

  async function previewAll(number: number) {
    await say(number, "/agent preview network database cache api");
    await completed(Object.keys(UPSTREAM).map((s) => `agent/preview (${s})`), "the four previews");
    for (const s of Object.keys(UPSTREAM)) expect(checkRun(`agent/preview (${s})`)!.conclusion, s).toBe("success");
  }
  async function deploys(number: number) {
    const { rows } = await f.db.query<{ stack: string; state: string; error: string | null; merged: boolean | null; started_at: Date | null; finished_at: Date | null; run_id: string | null; task_id: string }>(
      "SELECT stack, state, error, merged, started_at, finished_at, run_id, task_id FROM deploys WHERE repo = $1 AND pr_number = $2",
      [REPO, number],
    );
    return new Map(rows.map((r) => [r.stack, r]));
  }
  const deployLog = async (taskId: string) => (await f.db.query<{ content: string }>("SELECT content FROM task_logs WHERE task_id = $1 AND step = 'deploy'", [taskId])).rows[0]?.content ?? "";
  const summary = (number: number) => gh.waitFor(() => replies(number).some((b) => /stacks at `[0-9a-f]{7}`|deploy run at/.test(b) && /^(🚀|❌)/u.test(b)), "the run's summary comment", 120_000).then(() => replies(number).find((b) => /^(🚀 Deployed \d+ stacks|❌ The deploy run)/u.test(b))!);

  it("--all applies every previewed stack layer by layer, re-previews each stack after its upstream, and merges once at the end", async () => {
    const { number, sha } = await openPr(tree());
    await previewAll(number);
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy --all");
    const queued = replies(number).at(-1)!;
    expect(queued).toContain("deploying 4 stacks");
    // The layers, in dependency order.
    expect(queued).toMatch(/1\. `network` [^\n]*\n2\. `database` [^\n]*`cache` [^\n]*\n3\. `api` /);
    const text = await summary(number);
    expect(text).toMatch(/^🚀 Deployed 4 stacks at `[0-9a-f]{7}` in dependency order/u);
    expect(text).toContain("The pull request was merged.");
    const rows = await deploys(number);
    expect([...rows.values()].map((r) => r.state)).toEqual(["SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]);
    expect(new Set([...rows.values()].map((r) => r.run_id)).size).toBe(1);
    for (const [stack, ups] of Object.entries(UPSTREAM)) {
      for (const up of ups) expect(rows.get(stack)!.started_at!.getTime(), `${stack} started after ${up} was applied`).toBeGreaterThanOrEqual(rows.get(up)!.finished_at!.getTime());
    }
    // One merge, of exactly the approved head, after the last apply.
    const merges = gh.find("PUT", new RegExp(`/pulls/${number}/merge$`));
    expect(merges).toHaveLength(1);
    expect(merges[0]!.body).toMatchObject({ sha });
    expect([...rows.values()].every((r) => r.merged === true)).toBe(true);
    // Stacks with an upstream in the run planned again before applying; the first layer applied its saved plan.
    expect(await deployLog(rows.get("api")!.task_id)).toMatch(/\$ preview of [0-9a-f]{40}[\s\S]*applied api/);
    expect(await deployLog(rows.get("network")!.task_id)).not.toContain("$ preview of");
    // No per-stack "deployed and merged" comments: the run speaks once.
    expect(replies(number).filter((b) => b.includes("and merged the pull request"))).toHaveLength(0);
    const { rows: audit } = await f.db.query("SELECT action, detail->>'stack' AS stack FROM audit_log WHERE repo = $1 AND pr_number = $2 AND action IN ('deploy.queued', 'deploy.run_queued', 'deploy.run_finished', 'merge.succeeded') ORDER BY id", [REPO, number]);
    expect(audit.map((a) => a.action)).toEqual(["deploy.queued", "deploy.queued", "deploy.queued", "deploy.queued", "deploy.run_queued", "merge.succeeded", "deploy.run_finished"]);
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });

  it("a failed apply in the middle stops everything downstream, leaves the rest applied, and does not merge", async () => {
    const { number } = await openPr(tree({ failDeploy: ["database"] }));
    await previewAll(number);
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy api cache database network");
    const text = await summary(number);
    const rows = await deploys(number);
    expect(Object.fromEntries([...rows].map(([s, r]) => [s, r.state]))).toEqual({ network: "SUCCEEDED", cache: "SUCCEEDED", database: "FAILED", api: "BLOCKED" });
    expect(rows.get("api")!.error).toBe("not started: database failed");
    expect(rows.get("api")!.started_at).toBeNull();
    expect(checkRun("agent/deploy (api)")).toMatchObject({ status: "completed", conclusion: "cancelled" });
    expect(text).toMatch(/^❌ The deploy run at `[0-9a-f]{7}` stopped: 2 of 4 stacks applied/u);
    expect(text).toMatch(/✅ `network`: applied/);
    expect(text).toMatch(/❌ `database`: failed/);
    expect(text).toMatch(/⏭️ `api`: not started: database failed/u);
    expect(gh.find("PUT", new RegExp(`/pulls/${number}/merge$`))).toHaveLength(0);
    // The plan of api was never applied: its deploy never ran.
    expect(await deployLog(rows.get("api")!.task_id)).toBe("");
  });

  it("attack: a stack whose plan changed after its upstream was applied is not applied unseen (control: the stable plan above was applied)", async () => {
    const { number } = await openPr(tree({ unstablePlan: ["api"] }));
    await previewAll(number);
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy network database cache api");
    const text = await summary(number);
    const rows = await deploys(number);
    expect(rows.get("api")!.state).toBe("FAILED");
    expect(rows.get("api")!.error).toMatch(/after the stacks it depends on were applied, api plans differently .* from the approved plan .*; nothing was applied/);
    expect(await deployLog(rows.get("api")!.task_id)).not.toContain("applied api");
    expect(checkRun("agent/deploy (api)")).toMatchObject({ conclusion: "action_required" });
    expect(["network", "database", "cache"].map((s) => rows.get(s)!.state)).toEqual(["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]);
    expect(text).toContain("3 of 4 stacks applied");
    expect(gh.find("PUT", new RegExp(`/pulls/${number}/merge$`))).toHaveLength(0);
  });

  it("parallel_applies: 1 applies independent stacks of a layer one after the other", async () => {
    const { number } = await openPr(tree(), CONFIG.replace("gate: { approvals: 1 }", "gate: { approvals: 1 }\nparallel_applies: 1"));
    await previewAll(number);
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy --all");
    expect(replies(number).at(-1)).toContain("up to 1 at once");
    expect(await summary(number)).toMatch(/^🚀 Deployed 4 stacks/u);
    const rows = [...(await deploys(number)).values()].sort((a, b) => a.started_at!.getTime() - b.started_at!.getTime());
    // Never two applying at once: each started after the one before it finished.
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.started_at!.getTime(), `${rows[i]!.stack} after ${rows[i - 1]!.stack}`).toBeGreaterThanOrEqual(rows[i - 1]!.finished_at!.getTime());
  });

  it("one stack's unmet gate queues nothing for any of them, with that stack's checklist", async () => {
    const { number } = await openPr(tree());
    await previewAll(number);
    // No approval: every gate is unmet.
    await say(number, "/agent deploy network database");
    const reply = replies(number).at(-1)!;
    expect(reply).toContain("nothing was queued");
    expect(reply).toMatch(/Deploy of `network` at `[0-9a-f]{7}` is blocked/);
    expect(reply).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect((await deploys(number)).size).toBe(0);
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(0);
  });
});
