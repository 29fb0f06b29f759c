/**
 * Queued stack locks under contention: many pull requests line up for one stack at the same
 * moment, then the lock is handed down the queue. Each gets it exactly once, in the order they
 * queued, and each waiting preview runs exactly once. Real Redis, Postgres, Docker.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitHubFake } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/contended";
const TOKEN = "ghs_lockRaceInstallationToken0000000001";
const CONFIG = 'version: 1\nstacks:\n  - name: prod\nsteps:\n  preview: ["sh", "-c", "echo plan for $AGENT_PR_NUMBER"]\n';
const WAITERS = 12;

describe("a stack's lock queue under contention", () => {
  let f: AppFixture;
  let gh: GitHubFake;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { env: { WORKER_CONCURRENCY: "4" } });
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.permissions.set("mia", "maintain");
    gh.files.set("main:.github/agent.yml", CONFIG);
    for (let n = 1; n <= WAITERS + 1; n++) gh.pulls.set(n, { headSha: await f.git.commit(REPO, { "README.md": `pr ${n}\n` }), author: "alice" });
  });
  afterAll(async () => {
    gh.stop();
    await f.stop();
  });

  const comment = (pr: number, body: string, login = "alice") => issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: pr, body, login });
  const holder = async () => (await f.db.query("SELECT pr_number FROM stack_locks WHERE repo = $1 AND stack = 'prod' AND expires_at > now()", [REPO])).rows[0]?.pr_number ?? null;
  const prodTasks = async () =>
    (await f.db.query<{ pr: number; state: string; attempts: number }>("SELECT w.pr_number AS pr, t.state, t.attempts FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.repo = $1 AND t.kind = 'preview' ORDER BY w.pr_number", [REPO])).rows;

  it("PRs that queue at once get distinct places, and the lock goes down the queue once each, first come first served", async () => {
    const first = await deliver(f.app.port!, "issue_comment", comment(1, "/agent preview prod"));
    await f.watcher.handled(first.id);
    await gh.waitFor(() => [...gh.checkRuns.values()].some((cr) => cr.head_sha === gh.pulls.get(1)!.headSha && cr.status === "completed"), "PR 1's preview");
    expect(await holder()).toBe(1);

    // Everyone else at the same moment.
    const burst = await Promise.all(Array.from({ length: WAITERS }, (_, i) => deliver(f.app.port!, "issue_comment", comment(i + 2, "/agent preview prod"))));
    for (const d of burst) await f.watcher.handled(d.id);
    const queue = (await f.db.query<{ pr: number }>("SELECT w.pr_number AS pr FROM lock_waits w WHERE w.repo = $1 ORDER BY w.created_at, w.task_id", [REPO])).rows.map((r) => r.pr);
    expect(queue).toHaveLength(WAITERS);
    expect(new Set(queue).size).toBe(WAITERS);
    // Each waiter's check run names its own place: 1…n, no two alike.
    await gh.waitFor(
      () => queue.every((pr, i) => [...gh.checkRuns.values()].some((cr) => cr.head_sha === gh.pulls.get(pr)!.headSha && (cr.output as { title?: string } | undefined)?.title === `Waiting for #1's lock on prod, position ${i + 1}`)),
      "every waiter's place",
    );
    expect((await prodTasks()).filter((t) => t.state === "PENDING")).toHaveLength(WAITERS);

    // Hand the lock down: a maintainer releases it from whoever holds it, twice at once each
    // time (two releasers racing must not hand it to two PRs).
    const order: number[] = [];
    for (let step = 0; step < WAITERS; step++) {
      const before = await holder();
      await Promise.all([1, 2].map(async () => f.watcher.handled((await deliver(f.app.port!, "issue_comment", comment(before!, "/agent unlock prod", "mia"))).id)));
      const next = await holder();
      expect(next, `after releasing #${before}`).not.toBe(before);
      order.push(next!);
      await gh.waitFor(() => [...gh.checkRuns.values()].some((cr) => cr.head_sha === gh.pulls.get(next!)!.headSha && cr.status === "completed"), `PR ${next}'s preview`, 60_000);
    }
    expect(order).toEqual(queue);
    const tasks = await prodTasks();
    expect(tasks.map((t) => [t.pr, t.state, t.attempts])).toEqual(Array.from({ length: WAITERS + 1 }, (_, i) => [i + 1, "SUCCEEDED", 1]).sort((a, b) => Number(a[0]) - Number(b[0])));
    expect((await f.db.query("SELECT count(*)::int AS n FROM lock_waits WHERE repo = $1", [REPO])).rows[0].n).toBe(0);
    const { rows } = await f.db.query("SELECT pr_number AS pr FROM audit_log WHERE repo = $1 AND action = 'lock.acquired' AND detail->>'from_queue' = 'true' ORDER BY id", [REPO]);
    expect(rows.map((r) => r.pr)).toEqual(queue);
  }, 240_000);
});
