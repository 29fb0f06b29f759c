/**
 * Queued stack locks under contention: many pull requests line up for one stack at the same
 * moment, then the lock is handed down the queue. Each gets it exactly once, in the order they
 * queued, and each waiting preview runs exactly once. Real Redis, Postgres, Docker.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLockQueue } from "../../src/jobs/lock-queue.js";
import { GitHubFake } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/contended";
const TOKEN = "ghs_lockRaceInstallationToken0000000001";
const CONFIG = 'version: 1\nstacks:\n  - name: prod\n  - name: net\n  - name: db\nsteps:\n  preview: ["sh", "-c", "echo plan for $AGENT_PR_NUMBER"]\n';
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
    for (let n = 1; n <= WAITERS + 6; n++) gh.pulls.set(n, { headSha: await f.git.commit(REPO, { "README.md": `pr ${n}\n` }), author: "alice" });
  });
  afterAll(async () => {
    gh.stop();
    await f.stop();
  });

  const comment = (pr: number, body: string, login = "alice") => issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: pr, body, login });
  const holder = async (stack = "prod") => (await f.db.query("SELECT pr_number FROM stack_locks WHERE repo = $1 AND stack = $2 AND expires_at > now()", [REPO, stack])).rows[0]?.pr_number ?? null;
  const previewed = (pr: number, stack: string) => [...gh.checkRuns.values()].some((cr) => cr.name === `agent/preview (${stack})` && cr.head_sha === gh.pulls.get(pr)!.headSha && cr.status === "completed");
  const prodTasks = async () =>
    (await f.db.query<{ pr: number; state: string; attempts: number }>("SELECT w.pr_number AS pr, t.state, t.attempts FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.repo = $1 AND t.kind = 'preview' AND t.stack = 'prod' ORDER BY w.pr_number", [REPO])).rows;

  it("PRs that queue at once get distinct places, and the lock goes down the queue once each, first come first served", async () => {
    const first = await deliver(f.app.port!, "issue_comment", comment(1, "/agent preview prod"));
    await f.watcher.handled(first.id);
    await gh.waitFor(() => [...gh.checkRuns.values()].some((cr) => cr.head_sha === gh.pulls.get(1)!.headSha && cr.status === "completed"), "PR 1's preview");
    expect(await holder()).toBe(1);

    // Everyone else at the same moment.
    const burst = await Promise.all(Array.from({ length: WAITERS }, (_, i) => deliver(f.app.port!, "issue_comment", comment(i + 2, "/agent preview prod"))));
    for (const d of burst) await f.watcher.handled(d.id);
    const queue = (await f.db.query<{ pr: number }>("SELECT w.pr_number AS pr FROM lock_waits w WHERE w.repo = $1 AND w.stack = 'prod' ORDER BY w.requested_at, w.request_id", [REPO])).rows.map((r) => r.pr);
    expect(queue).toHaveLength(WAITERS);
    expect(new Set(queue).size).toBe(WAITERS);
    // Each waiter's check run names its own place: 1…n, no two alike.
    await gh.waitFor(
      () => queue.every((pr, i) => [...gh.checkRuns.values()].some((cr) => cr.head_sha === gh.pulls.get(pr)!.headSha && (cr.output as { title?: string } | undefined)?.title === `Waiting for #1's lock on prod, position ${i + 1}`)),
      "every waiter's place",
    );
    expect((await prodTasks()).filter((t) => t.state === "PENDING")).toHaveLength(WAITERS);

    // Hand the lock down: a maintainer releases it from whoever holds it while another process
    // runs the queue at the same moment (two releasers racing must not hand it to two PRs).
    const order: number[] = [];
    for (let step = 0; step < WAITERS; step++) {
      const before = await holder();
      await Promise.all([
        deliver(f.app.port!, "issue_comment", comment(before!, "/agent unlock prod", "mia")).then((d) => f.watcher.handled(d.id)),
        startLockQueue(f.app.deps, REPO, ["prod"]),
        startLockQueue(f.app.deps, REPO, ["prod"]),
      ]);
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

  it("overlapping sets: two PRs asking for {net, db} and {db, net} at once never each hold half; the later one waits for both, and a newcomer does not jump it", async () => {
    const [x, y, z, w] = [WAITERS + 2, WAITERS + 3, WAITERS + 4, WAITERS + 5];
    const both = await Promise.all([deliver(f.app.port!, "issue_comment", comment(x, "/agent preview net db")), deliver(f.app.port!, "issue_comment", comment(y, "/agent preview db net"))]);
    for (const d of both) await f.watcher.handled(d.id);
    const first = await holder("net");
    expect([x, y]).toContain(first);
    // All or none: the same PR holds both; the other holds none and waits for both.
    expect(await holder("db")).toBe(first);
    const second = first === x ? y : x;
    const waits = (await f.db.query<{ stack: string }>("SELECT stack FROM lock_waits WHERE repo = $1 AND pr_number = $2 ORDER BY stack", [REPO, second])).rows.map((r) => r.stack);
    expect(waits).toEqual(["db", "net"]);
    await gh.waitFor(() => previewed(first, "net") && previewed(first, "db"), "the first PR's previews");

    // A newcomer for db alone queues behind the waiting pair, even once net and db are free of #first.
    await f.watcher.handled((await deliver(f.app.port!, "issue_comment", comment(z, "/agent preview db"))).id);
    expect((await f.db.query("SELECT 1 FROM lock_waits WHERE repo = $1 AND pr_number = $2", [REPO, z])).rowCount).toBe(1);
    // One of the pair's stacks released: still not enough for the waiting PR (all or none), and z stays behind it.
    await f.watcher.handled((await deliver(f.app.port!, "issue_comment", comment(first, "/agent unlock net", "mia"))).id);
    expect(await holder("net")).toBeNull();
    expect(await holder("db")).toBe(first);
    // Free, but reserved for the head of its queue: a newcomer for net alone waits too.
    await f.watcher.handled((await deliver(f.app.port!, "issue_comment", comment(w, "/agent preview net"))).id);
    expect(await holder("net")).toBeNull();
    // The other one released: the waiting PR gets both at once, and its previews run; then z, then w.
    await f.watcher.handled((await deliver(f.app.port!, "issue_comment", comment(first, "/agent unlock db", "mia"))).id);
    expect([await holder("net"), await holder("db")]).toEqual([second, second]);
    await gh.waitFor(() => previewed(second, "net") && previewed(second, "db"), "the second PR's previews");
    await f.watcher.handled((await deliver(f.app.port!, "issue_comment", comment(second, "/agent unlock", "mia"))).id);
    expect([await holder("db"), await holder("net")]).toEqual([z, w]);
    await gh.waitFor(() => previewed(z, "db") && previewed(w, "net"), "z's and w's previews");
  }, 120_000);
});
