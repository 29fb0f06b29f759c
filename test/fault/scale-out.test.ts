import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STICKY_MARKER } from "../../src/render/sticky-comment.js";
import { jobIdFrom } from "../../src/connectors/queues.js";
import { isCheckRunCompleted } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload } from "../helpers/harness.js";
import { sandboxesUnder, startFaultFixture, until, type FaultFixture } from "../helpers/app-process.js";

const REPO = "octo-org/fault-scale";
const TOKEN = "ghs_faultScaleInstallationToken00000000012";
const CONFIG = `version: 1
stacks:
  - name: s1
  - name: s2
  - name: s3
steps:
  preview: ["./preview.sh"]
`;

/**
 * One web tier and two worker processes behave like one app: with several PRs previewing at
 * once, a delivery GitHub sends twice and a command given twice, every preview runs once, in
 * one sandbox, each PR has one sticky comment, and stack locks end up with one holder each.
 */
describe("two worker processes behave like one", () => {
  let f: FaultFixture;

  beforeAll(async () => {
    f = await startFaultFixture({ repo: REPO, token: TOKEN, workers: 2 });
  });
  afterAll(() => f?.stop());

  it("runs each preview once across processes, with duplicates collapsed and stack locks consistent", async () => {
    const { gh, git, db, web } = f;
    gh.fake.permissions.set("alice", "write");
    gh.fake.files.set("main:.github/agent.yml", CONFIG);
    // Long enough that the duplicate command arrives while the first preview is still live.
    const sha = await git.commit(REPO, { "preview.sh": exe('#!/bin/sh\necho "preview of $AGENT_STACK"\nsleep 8\necho done\n') });
    const prs = [11, 12, 13, 14];
    for (const n of [...prs, 15]) gh.fake.pulls.set(n, { headSha: sha });
    const comment = (n: number, body: string) => issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: n, body, login: "alice" });

    const p11 = comment(11, "/agent preview s1");
    const dupId = "11111111-2222-3333-4444-555555555555";
    const results = await Promise.all([
      // GitHub sends the same delivery twice (same X-GitHub-Delivery), at the same moment.
      deliver(web.port!, "issue_comment", p11, { id: dupId }),
      deliver(web.port!, "issue_comment", p11, { id: dupId }),
      // The same command twice on the same head (two comments, two deliveries).
      deliver(web.port!, "issue_comment", comment(12, "/agent preview s2")),
      deliver(web.port!, "issue_comment", comment(12, "/agent preview s2")),
      // Two PRs preview the same stack at once: only one may end up holding its lock.
      deliver(web.port!, "issue_comment", comment(13, "/agent preview s3")),
      deliver(web.port!, "issue_comment", comment(14, "/agent preview s3")),
    ]);
    expect(results.slice(0, 2).map((r) => r.status).sort()).toEqual([200, 202]);
    expect(results.find((r) => r.status === 200)!.json).toMatchObject({ duplicate: true });
    for (const r of results.slice(2)) expect(r.status).toBe(202);
    const { rows: seen } = await db.query("SELECT count(*)::int AS n FROM deliveries WHERE id = $1", [dupId]);
    expect(seen[0].n).toBe(1);

    // Everything completes.
    const previews = async () =>
      (
        await db.query<{ id: string; pr: number; stack: string; state: string; attempts: number }>(
          "SELECT t.id, w.pr_number AS pr, t.stack, t.state, t.attempts FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE t.kind = 'preview' ORDER BY w.pr_number, t.stack",
        )
      ).rows;
    // Of the two PRs on s3, the one whose command took the lock first previews; the other waits
    // in s3's lock queue (the lock is taken with the command, so they never both run).
    const all = await until(async () => {
      const rows = await previews();
      return rows.length === 4 && rows.filter((t) => t.state === "SUCCEEDED").length === 3 ? rows : undefined;
    }, "three previews to succeed", 75_000, 500);
    const waiting = all.filter((t) => t.state !== "SUCCEEDED");
    expect(waiting.map((t) => [t.stack, t.state, t.attempts])).toEqual([["s3", "PENDING", 0]]);
    expect((await db.query("SELECT task_id FROM lock_waits")).rows.map((r) => r.task_id)).toEqual([waiting[0]!.id]);
    const tasks = all.filter((t) => t.state === "SUCCEEDED");
    expect(tasks.map((t) => [t.stack, t.attempts])).toEqual([
      ["s1", 1],
      ["s2", 1],
      ["s3", 1],
    ]);
    for (const n of prs.filter((p) => p !== waiting[0]!.pr)) {
      await gh.waitFor((c) => {
        const id = Number(/\/issues\/comments\/(\d+)$/.exec(c.path)?.[1]);
        return c.method === "PATCH" && gh.fake.comments.get(id)?.issue === n && String(c.body?.body).includes("✅ succeeded");
      }, `the sticky comment of #${n} to settle`);
    }

    // Each preview ran once, in one sandbox, on one of the workers; both workers took part.
    const ran = (msg: string, taskId: string) => f.workers.flatMap((w) => w.lines.filter((l) => l.msg === msg && l.task_id === taskId && (msg !== "step finished" || l.step === "preview")).map(() => w.name));
    for (const t of tasks) {
      expect(ran("sandbox acquired", t.id), `sandboxes of #${t.pr}`).toHaveLength(1);
      expect(ran("step finished", t.id), `preview runs of #${t.pr}`).toHaveLength(1);
    }
    expect(new Set(tasks.flatMap((t) => ran("sandbox acquired", t.id))).size).toBe(2);

    // GitHub saw each thing once: a check run per preview (the waiting one queued), completed once; one sticky comment per PR.
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(4);
    expect(gh.calls.filter(isCheckRunCompleted)).toHaveLength(3);
    for (const n of prs.filter((p) => p !== waiting[0]!.pr)) {
      const sticky = gh.find("POST", new RegExp(`/issues/${n}/comments$`)).filter((c) => String(c.body?.body).includes(STICKY_MARKER));
      expect(sticky, `sticky comments created on #${n}`).toHaveLength(1);
    }
    // The duplicate delivery was never handled: one 👀 on that comment.
    expect(gh.find("POST", new RegExp(`/issues/comments/${p11.comment.id}/reactions$`))).toHaveLength(1);
    // The repeated command was told the preview is already running, and queued nothing.
    const replies12 = gh.find("POST", /\/issues\/12\/comments$/).filter((c) => !String(c.body?.body).includes(STICKY_MARKER));
    expect(replies12.map((c) => String(c.body?.body))).toEqual([expect.stringMatching(/already queued or running/)]);
    const { rows: audit } = await db.query<{ pr: number; action: string }>("SELECT pr_number AS pr, action FROM audit_log ORDER BY id");
    const actions = (n: number) => audit.filter((a) => a.pr === n).map((a) => a.action);
    expect(actions(11)).toEqual(["command.received", "lock.acquired", "preview.queued", "lock.acquired", "preview.succeeded"]);
    expect(actions(12).filter((a) => a.startsWith("preview."))).toEqual(expect.arrayContaining(["preview.queued", "preview.duplicate", "preview.succeeded"]));
    expect(actions(12).filter((a) => a === "preview.queued" || a === "preview.duplicate")).toHaveLength(2);

    // Stack locks: one holder per stack; of the two PRs on s3, one holds it and the other waits for it.
    const { rows: locks } = await db.query<{ stack: string; pr: number }>("SELECT stack, pr_number AS pr FROM stack_locks ORDER BY stack");
    expect(locks.map((l) => l.stack)).toEqual(["s1", "s2", "s3"]);
    expect(locks.slice(0, 2).map((l) => l.pr)).toEqual([11, 12]);
    const holder = locks[2]!.pr;
    const other = holder === 13 ? 14 : 13;
    expect([13, 14]).toContain(holder);
    expect(other).toBe(waiting[0]!.pr);
    expect(actions(holder)).toContain("lock.acquired");
    expect(actions(other)).not.toContain("lock.acquired");
    expect(actions(other)).toContain("preview.locked");

    // A later preview of a held stack by another PR waits in the stack's lock queue, naming the holder, and runs nothing.
    const queued = await deliver(web.port!, "issue_comment", comment(15, "/agent preview s1"));
    expect(queued.status).toBe(202);
    const reply = await gh.waitFor((c) => c.method === "POST" && c.path.endsWith("/issues/15/comments") && !String(c.body?.body).includes(STICKY_MARKER), "the queue reply on #15");
    expect(String(reply.body?.body)).toMatch(/`s1` is locked by #11: this preview waits in its queue \(position 1\)/);
    await until(async () => (await db.query("SELECT 1 FROM audit_log WHERE pr_number = 15 AND action = 'preview.locked'")).rowCount, "the wait to be audited");
    const { rows: t15 } = await db.query("SELECT t.state, (SELECT count(*)::int FROM lock_waits l WHERE l.task_id = t.id) AS waits FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = 15");
    expect(t15).toEqual([{ state: "PENDING", waits: 1 }]);

    // The webhook queue holds the duplicate delivery once; no sandbox is left.
    expect(await web.deps.queues.webhooks.getJob(jobIdFrom(["wh", dupId]))).toBeDefined();
    // Six deliveries handled (five distinct in the burst, then #15's), none failed.
    await until(async () => (await web.deps.queues.webhooks.getJobCounts("completed")).completed === 6, "six handled deliveries", 10_000);
    expect(await web.deps.queues.webhooks.getJobCounts("failed", "waiting", "active", "delayed")).toEqual({ failed: 0, waiting: 0, active: 0, delayed: 0 });
    expect(await sandboxesUnder(f.workspaceRoot)).toEqual([]);
    expect(gh.fake.unexpected).toEqual([]);
  }, 90_000);
});
