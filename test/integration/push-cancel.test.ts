import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GitHubFake, isCheckRunInProgress } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import {
  deliver,
  issueCommentPayload,
  leftoverSandboxes,
  pullRequestPayload,
  startAppFixture,
  type AppFixture,
} from "../helpers/harness.js";

const REPO = "octo-org/pushy";
const TOKEN = "ghs_pushInstallationToken0000000000000007";

/** A push makes earlier previews meaningless: queued ones are dropped, running ones stopped. */
describe("a new push cancels previews of the older commit", () => {
  let f: AppFixture;
  let gh: GitHubFake;

  beforeAll(async () => {
    // One task at a time, so a second stack stays queued behind the first.
    f = await startAppFixture(TOKEN, { env: { WORKER_CONCURRENCY: "1" } });
  });
  // Every test is its own PR on the same stacks: the earlier tests' stack locks go first
  // (a preview command takes its stacks' locks; locks have their own test file).
  beforeEach(async () => {
    await f.db.query("DELETE FROM stack_locks");
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });

  it("stops the running preview's container, drops the queued one, and closes both check runs as cancelled", async () => {
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", 'version: 1\nstacks:\n  - name: a\n  - name: b\nsteps:\n  preview: ["./slow.sh"]\n');
    const old = await f.git.commit(REPO, { "slow.sh": exe("#!/bin/sh\necho started\nsleep 120\necho never\n") });
    gh.pulls.set(5, { headSha: old });
    await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 5, body: "/agent preview a b", login: "alice" }));
    await gh.waitFor((c) => isCheckRunInProgress(c) && String((c.body?.output as { text?: string })?.text).includes("started"), "the first preview to be running");

    const pushed = await f.git.commit(REPO, { "slow.sh": exe("#!/bin/sh\necho new\n") });
    gh.pulls.set(5, { headSha: pushed });
    const started = Date.now();
    const res = await deliver(f.app.port!, "pull_request", pullRequestPayload("synchronize", { repo: REPO, prNumber: 5, headSha: pushed, sender: "alice" }));
    await f.watcher.handled(res.id);

    const cancelled = (id: string) =>
      gh.waitFor((c) => c.method === "PATCH" && c.path.endsWith(`/check-runs/${id}`) && c.body?.conclusion === "cancelled", `check run ${id} cancelled`);
    const { rows } = await f.db.query("SELECT id, stack, state, check_run_id FROM tasks ORDER BY stack");
    expect(rows.map((r) => [r.stack, r.state])).toEqual([["a", "CANCELLED"], ["b", "CANCELLED"]]);
    for (const r of rows) await cancelled(r.check_run_id);
    // The worker running stack a stopped its container and reported it once it was gone.
    const running = rows.find((r) => r.stack === "a")!;
    await gh.waitFor(
      (c) => gh.calls.filter((x) => x.method === "PATCH" && x.path.endsWith(`/check-runs/${running.check_run_id}`) && x.body?.conclusion === "cancelled").length >= 2 && c.method === "PATCH",
      "the worker's own cancellation report",
    );
    expect(String(gh.checkRuns.get(Number(running.check_run_id))!.output && (gh.checkRuns.get(Number(running.check_run_id))!.output as { summary: string }).summary)).toMatch(/running steps were stopped/);
    // The running container is stopped at once, not after its 120 s sleep.
    expect(await leftoverSandboxes(f.app)).toBe(0);
    expect(Date.now() - started).toBeLessThan(60_000);
    // The queued job is gone: nothing runs for the old commit any more.
    expect(await f.app.deps.queues.tasks.getWaitingCount()).toBe(0);
    expect(gh.calls.filter((c) => c.method === "PATCH" && c.body?.conclusion === "success")).toEqual([]);
    const { rows: audit } = await f.db.query("SELECT actor FROM audit_log WHERE action = 'preview.cancelled'");
    expect(audit).toEqual([{ actor: "alice" }]);
  });

  it("cancels the running shared checks and the previews waiting for them", async () => {
    gh?.stop();
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", 'version: 1\nstacks:\n  - name: c\n  - name: d\nsteps:\n  lint: ["./slow.sh"]\n  preview: ["echo", "plan"]\n');
    const old = await f.git.commit(REPO, { "slow.sh": exe("#!/bin/sh\necho linting\nsleep 120\n") });
    gh.pulls.set(6, { headSha: old });
    await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 6, body: "/agent preview c d", login: "alice" }));
    await gh.waitFor((c) => isCheckRunInProgress(c) && String((c.body?.output as { text?: string })?.text).includes("linting"), "the shared checks to be running");

    const pushed = await f.git.commit(REPO, { "slow.sh": exe("#!/bin/sh\necho new\n") });
    gh.pulls.set(6, { headSha: pushed });
    const res = await deliver(f.app.port!, "pull_request", pullRequestPayload("synchronize", { repo: REPO, prNumber: 6, headSha: pushed, sender: "alice" }));
    await f.watcher.handled(res.id);
    const { rows } = await f.db.query(
      "SELECT t.kind, t.stack, t.state, t.check_run_id FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = 6 ORDER BY t.kind, t.stack",
    );
    expect(rows.map((r) => [r.kind, r.stack, r.state])).toEqual([
      ["checks", "checks (c, d)", "CANCELLED"],
      ["preview", "c", "CANCELLED"],
      ["preview", "d", "CANCELLED"],
    ]);
    for (const r of rows) {
      await gh.waitFor((c) => c.method === "PATCH" && c.path.endsWith(`/check-runs/${r.check_run_id}`) && c.body?.conclusion === "cancelled", `${r.stack} cancelled`);
    }
    // The checks' worker saw the cancellation and stopped its container; no preview ever started.
    const checksRun = rows[0]!.check_run_id;
    await gh.waitFor(
      () => gh.calls.filter((x) => x.method === "PATCH" && x.path.endsWith(`/check-runs/${checksRun}`) && x.body?.conclusion === "cancelled").length >= 2,
      "the checks worker's own cancellation report",
    );
    expect(await leftoverSandboxes(f.app)).toBe(0);
    expect(gh.calls.filter((c) => isCheckRunInProgress(c) && rows.slice(1).some((r) => c.path.endsWith(`/check-runs/${r.check_run_id}`)))).toEqual([]);
  });

  it("/agent cancel stops this PR's running preview and drops its queued one", async () => {
    gh?.stop();
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", 'version: 1\nstacks:\n  - name: a\n  - name: b\nsteps:\n  preview: ["./slow.sh"]\n');
    const sha = await f.git.commit(REPO, { "slow.sh": exe("#!/bin/sh\necho started\nsleep 120\n") });
    gh.pulls.set(7, { headSha: sha });
    const say = async (body: string) => {
      const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 7, body, login: "alice" }));
      await f.watcher.handled(res.id);
    };
    await say("/agent preview a b");
    await gh.waitFor((c) => isCheckRunInProgress(c) && String((c.body?.output as { text?: string })?.text).includes("started"), "the first preview to be running");
    await say("/agent cancel");
    const reply = gh.find("POST", /\/issues\/7\/comments$/).map((c) => String(c.body!.body)).find((b) => b.startsWith("@alice cancelled"));
    expect(reply).toMatch(/cancelled preview of `[ab]`, preview of `[ab]`\./);
    const { rows } = await f.db.query("SELECT t.stack, t.state, t.check_run_id FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = 7 ORDER BY t.stack");
    expect(rows.map((r) => [r.stack, r.state])).toEqual([["a", "CANCELLED"], ["b", "CANCELLED"]]);
    // The running one is stopped by its worker, which reports why.
    await gh.waitFor(
      (c) => c.method === "PATCH" && /\/check-runs\/\d+$/.test(c.path) && String((c.body?.output as { summary?: string })?.summary).includes("Cancelled (cancelled by @alice); the running steps were stopped."),
      "the worker's report",
    );
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });
});
