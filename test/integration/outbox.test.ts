/**
 * The GitHub write outbox on real PostgreSQL, GitHub at the HTTP boundary (nock): priority
 * classes, coalescing, crash recovery, send-once writes, and a rate-limit pause that holds one
 * installation only.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import nock from "nock";
import { pino } from "pino";
import { ProbotOctokit } from "probot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { withGitHubPacing, type GitHub } from "../../src/connectors/github.js";
import { DEFAULT_PACING, PRIORITY, type PacingOptions } from "../../src/connectors/outbox/pacer.js";
import { OutboxSender } from "../../src/connectors/outbox/sender.js";
import { claimNext, enqueueWrite, markSent, objectKeys, outboxDepth, recoverAbandoned } from "../../src/connectors/outbox/store.js";
import { GitHubWrites } from "../../src/connectors/outbox/writes.js";
import type { Db } from "../../src/connectors/store/db.js";
import { migratedTestDb } from "../helpers/harness.js";

const API = "https://api.github.com";
const REPO = { owner: "octo-org", repo: "outbox" };
const FULL = "octo-org/outbox";
const authStrategy = () => Object.assign(async () => ({ type: "token", token: "ghs_x" }), { hook: (request: any, route: any, params: any) => request(route, params) });
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

/** The production client (throttling as shipped), retries off so each reply is seen once. */
function clientFor(installationId: number): Promise<GitHub> {
  const Paced = withGitHubPacing(ProbotOctokit, log);
  return Promise.resolve(new Paced({ authStrategy, auth: { installationId }, retry: { enabled: false } } as never) as GitHub);
}

interface Seen {
  method: string;
  path: string;
  body: Record<string, unknown>;
}

/** GitHub's write endpoints, recording each call in order; `fail` answers the next matching ones with an error first. */
function fakeGitHub() {
  const seen: Seen[] = [];
  const events = new EventEmitter();
  const faults: Array<{ match: (s: Seen) => boolean; status: number; headers?: Record<string, string>; message?: string }> = [];
  let nextId = 900;
  // nock 15 hands a one-argument reply function the fetch Request.
  const answer = (method: string) =>
    async (req: Request): Promise<[number, unknown, Record<string, string>]> => {
      const path = new URL(req.url).pathname;
      const text = await req.text();
      const s = { method, path, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
      const i = faults.findIndex((f) => f.match(s));
      if (i >= 0) {
        const [f] = faults.splice(i, 1);
        seen.push({ ...s, path: `${path} (${f!.status})` });
        events.emit("call");
        return [f!.status, { message: f!.message ?? "fault" }, f!.headers ?? {}];
      }
      seen.push(s);
      events.emit("call");
      if (method === "POST" && path.endsWith("/check-runs")) return [201, { id: ++nextId }, {}];
      if (method === "POST" && path.endsWith("/comments")) return [201, { id: ++nextId }, {}];
      if (method === "PUT" && path.endsWith("/merge")) return [200, { merged: true, sha: "f".repeat(40), message: "merged" }, {}];
      if (method === "POST" && path.endsWith("/deployments")) return [201, { id: ++nextId }, {}];
      return [method === "POST" ? 201 : 200, { id: 1 }, {}];
    };
  const scope = nock(API).persist();
  for (const method of ["POST", "PATCH", "PUT", "DELETE"]) scope.intercept(/.*/, method).reply(answer(method) as never);
  return {
    seen,
    fail(n: number, status: number, match: (s: Seen) => boolean, headers?: Record<string, string>, message?: string) {
      for (let i = 0; i < n; i++) faults.push({ match, status, ...(headers ? { headers } : {}), ...(message ? { message } : {}) });
    },
    calls: (method: string, re: RegExp) => seen.filter((s) => s.method === method && re.test(s.path)),
    /** Resolves (the event, not a poll) once the calls so far satisfy `done`. */
    until(done: (seen: Seen[]) => boolean): Promise<void> {
      if (done(seen)) return Promise.resolve();
      return new Promise((resolve) => {
        const on = () => {
          if (!done(seen)) return;
          events.off("call", on);
          resolve();
        };
        events.on("call", on);
      });
    },
  };
}

describe("GitHub write outbox (real PostgreSQL, GitHub at the HTTP boundary)", () => {
  let t: Awaited<ReturnType<typeof migratedTestDb>>;
  let db: Db;
  const senders: OutboxSender[] = [];

  beforeAll(async () => {
    nock.disableNetConnect();
    nock.enableNetConnect((host) => /^(127\.0\.0\.1|localhost)(:\d+)?$/.test(host));
    t = await migratedTestDb("outbox");
    db = t.db;
  });
  afterEach(async () => {
    await Promise.all(senders.splice(0).map((s) => s.stop(0)));
    nock.cleanAll();
    await db.query("TRUNCATE github_outbox, github_objects");
  });
  afterAll(async () => {
    nock.enableNetConnect();
    await t.drop();
  });

  function sender(pacing: PacingOptions | null, owner = `owner-${randomUUID().slice(0, 8)}`) {
    const s = new OutboxSender({ db, clientFor, owner, pacing, log, pollMs: 50 });
    senders.push(s);
    return s;
  }
  const target = (installationId: number) => ({ installationId, repo: REPO });
  const add = (installationId: number, kind: "comment" | "check_run", cls: keyof typeof PRIORITY, body: Record<string, unknown>, objectKey?: string) =>
    enqueueWrite(db, { installationId, repo: FULL, kind, priority: PRIORITY[cls], body, ...(objectKey ? { objectKey } : {}) });

  it("sends the most urgent class first: an acknowledgement added last goes before earlier progress and results", async () => {
    const gh = fakeGitHub();
    for (let i = 1; i <= 3; i++) await add(1, "comment", "progress", { issueNumber: i, body: `progress ${i}` });
    await add(1, "comment", "final", { issueNumber: 10, body: "result" });
    await add(1, "comment", "ack", { issueNumber: 20, body: "ack" });
    const s = sender(null);
    s.kick(1);
    await s.idle();
    expect(gh.seen.map((c) => String(c.body.body))).toEqual(["ack", "result", "progress 1", "progress 2", "progress 3"]);
  });

  it("positive control: within one class the order is the order added", async () => {
    const gh = fakeGitHub();
    for (let i = 1; i <= 4; i++) await add(1, "comment", "final", { issueNumber: 1, body: `r${i}` });
    const s = sender(null);
    s.kick(1);
    await s.idle();
    expect(gh.seen.map((c) => c.body.body)).toEqual(["r1", "r2", "r3", "r4"]);
  });

  it("with the budget spent, an acknowledgement still goes at once while progress waits for refills (reserve)", async () => {
    const gh = fakeGitHub();
    // Burst 5, reserve: final leaves 1, progress leaves 3; a slow refill so nothing refills during the test.
    const pacing: PacingOptions = { burst: 5, perSecond: 0.01, reserve: { final: 1, progress: 3 } };
    for (let i = 1; i <= 6; i++) await add(7, "comment", "progress", { issueNumber: i, body: `p${i}` });
    const s = sender(pacing);
    s.kick(7);
    await gh.until((seen) => seen.length >= 2);
    // Two progress writes took tokens 5 and 4; the rest must wait (3 tokens kept).
    const writes = new GitHubWrites(db, s, { progressMs: 0 });
    await writes.comment(target(7), 99, "👀 ack", { cls: "ack" });
    await writes.comment(target(7), 98, "result", { cls: "final" });
    await gh.until((seen) => seen.some((c) => c.body.body === "result"));
    const ack = gh.seen.findIndex((c) => c.body.body === "👀 ack");
    expect(gh.seen.slice(0, 2).map((c) => c.body.body)).toEqual(["p1", "p2"]);
    expect(ack).toBeLessThanOrEqual(3);
    expect(gh.seen.map((c) => c.body.body)).toContain("result");
    expect(gh.seen.filter((c) => String(c.body.body).startsWith("p"))).toHaveLength(2);
    const { rows } = await db.query("SELECT count(*)::int AS n FROM github_outbox WHERE state = 'pending' AND priority = 2");
    expect(rows[0].n).toBe(4);
  });

  it("coalesces: a check run that went queued → in_progress → completed before its turn is one create, completed", async () => {
    const gh = fakeGitHub();
    const s = sender(null);
    const writes = new GitHubWrites(db, s, { progressMs: 60_000 });
    const taskId = randomUUID();
    // Written while the sender is paused: nothing can go out until all three are in.
    s.pacer(3).pause(60_000);
    await writes.checkRun(target(3), taskId, { status: "queued", output: { title: "queued", summary: "q" } }, { cls: "ack", identity: { name: "agent/preview: dev", headSha: "a".repeat(40) } });
    await writes.checkRun(target(3), taskId, { status: "in_progress", output: { title: "running", summary: "r" } }, { cls: "progress" });
    await writes.checkRun(target(3), taskId, { status: "completed", conclusion: "success", output: { title: "done", summary: "d" } }, { cls: "final" });
    const { rows } = await db.query("SELECT priority, kind FROM github_outbox");
    expect(rows).toEqual([{ priority: PRIORITY.ack, kind: "check_run" }]);
    senders.splice(senders.indexOf(s), 1);
    await s.stop(0);
    const s2 = sender(null);
    s2.kick(3);
    await s2.idle();
    expect(gh.seen).toHaveLength(1);
    expect(gh.seen[0]).toMatchObject({ method: "POST", path: `/repos/${FULL}/check-runs`, body: { name: "agent/preview: dev", status: "completed", conclusion: "success", external_id: taskId, output: { title: "done" } } });
    // Later writes update the check run created.
    await writes.checkRun(target(3), taskId, { output: { title: "again", summary: "x" } });
    s2.kick(3);
    await s2.idle();
    expect(gh.seen[1]).toMatchObject({ method: "PATCH", path: `/repos/${FULL}/check-runs/${901}` });
  });

  it("positive control: without coalescing keys two comments are two writes", async () => {
    const gh = fakeGitHub();
    const s = sender(null);
    const writes = new GitHubWrites(db, s, { progressMs: 0 });
    await writes.comment(target(3), 1, "a");
    await writes.comment(target(3), 1, "b");
    await s.idle();
    expect(gh.seen.map((c) => c.body.body)).toEqual(["a", "b"]);
  });

  it("ATTACK (crash): a final check-run update claimed by a worker that died is sent by the next one, exactly once", async () => {
    const gh = fakeGitHub();
    const taskId = randomUUID();
    await db.query("INSERT INTO github_objects (key, github_id) VALUES ($1, 4242)", [objectKeys.checkRun(taskId)]);
    await enqueueWrite(db, { installationId: 5, repo: FULL, kind: "check_run", priority: PRIORITY.final, objectKey: objectKeys.checkRun(taskId), body: { status: "completed", conclusion: "success" } });
    // The dead worker claimed it and never answered.
    await db.query("UPDATE github_outbox SET state = 'sending', claimed_by = 'dead-worker', claimed_at = now(), attempts = 1");
    const alive = sender(null, "alive-worker");
    alive.kick(5);
    await alive.idle();
    expect(gh.seen).toHaveLength(0); // claimed elsewhere: not touched while that owner might be alive
    const recovered = await recoverAbandoned(db, async (o) => o === "alive-worker", "alive-worker");
    expect(recovered).toEqual({ requeued: 1, unknown: 0 });
    alive.kick(5);
    await alive.idle();
    expect(gh.calls("PATCH", /\/check-runs\/4242$/)).toHaveLength(1);
    expect(gh.seen[0]!.body).toMatchObject({ status: "completed", conclusion: "success" });
    const { rows } = await db.query("SELECT state FROM github_outbox");
    expect(rows).toEqual([{ state: "sent" }]);
  });

  it("a 502 on the final update is sent again from the outbox (backoff), then recorded as sent", async () => {
    const gh = fakeGitHub();
    gh.fail(2, 502, (c) => c.method === "PATCH");
    const taskId = randomUUID();
    await db.query("INSERT INTO github_objects (key, github_id) VALUES ($1, 77)", [objectKeys.checkRun(taskId)]);
    const s = sender(null);
    await new GitHubWrites(db, s, { progressMs: 0 }).checkRun(target(5), taskId, { status: "completed", conclusion: "failure" });
    await s.idle();
    expect(gh.seen.map((c) => c.path)).toEqual([`/repos/${FULL}/check-runs/77 (502)`, `/repos/${FULL}/check-runs/77 (502)`, `/repos/${FULL}/check-runs/77`]);
    const { rows } = await db.query("SELECT state, attempts FROM github_outbox");
    expect(rows).toEqual([{ state: "sent", attempts: 3 }]);
  });

  it("ATTACK (send once): a merge whose answer is lost is never sent again — neither by a retry of its cause nor by crash recovery", async () => {
    const gh = fakeGitHub();
    gh.fail(1, 502, (c) => c.method === "PUT");
    const s = sender(null, "merger");
    const writes = new GitHubWrites(db, s, { progressMs: 0 });
    const first = await writes.merge(target(5), "task:t1:after-apply", { number: 12, sha: "b".repeat(40), method: "squash" });
    expect(first).toEqual({ state: "unknown" });
    const again = await writes.merge(target(5), "task:t1:after-apply", { number: 12, sha: "b".repeat(40), method: "squash" });
    expect(again).toEqual({ state: "unknown" });
    // A merge claimed by a worker that died mid-request: unknown, not resent.
    await enqueueWrite(db, { installationId: 5, repo: FULL, kind: "merge", priority: 1, idempotencyKey: "task:t2:after-apply", sendOnce: true, claimAs: "dead", body: { number: 13, sha: "c".repeat(40), method: "merge" } });
    expect(await recoverAbandoned(db, async () => false, "merger")).toEqual({ requeued: 0, unknown: 1 });
    s.kick(5);
    await s.idle();
    expect(gh.calls("PUT", /\/merge/)).toHaveLength(1);
  });

  it("positive control: a merge that succeeds is one request, and asking again returns its recorded outcome", async () => {
    const gh = fakeGitHub();
    const writes = new GitHubWrites(db, sender(null), { progressMs: 0 });
    const first = await writes.merge(target(5), "task:t3:after-apply", { number: 14, sha: "d".repeat(40), method: "merge" });
    expect(first).toEqual({ state: "sent", result: { merged: true, sha: "f".repeat(40) } });
    expect(await writes.merge(target(5), "task:t3:after-apply", { number: 14, sha: "d".repeat(40), method: "merge" })).toEqual(first);
    expect(gh.calls("PUT", /\/pulls\/14\/merge$/)).toHaveLength(1);
  });

  it("GitHub's 403 with retry-after pauses that installation's writes only; the other installation's go meanwhile", async () => {
    const gh = fakeGitHub();
    gh.fail(1, 403, (c) => c.body.body === "inst-1 first", { "retry-after": "1" }, "You have exceeded a secondary rate limit");
    const s = sender(DEFAULT_PACING);
    const writes = new GitHubWrites(db, s, { progressMs: 0 });
    await writes.comment(target(1), 1, "inst-1 first");
    await writes.comment(target(1), 1, "inst-1 second");
    // Wait for the refusal, then write for another installation.
    await gh.until((seen) => seen.length >= 1);
    await writes.comment(target(2), 1, "inst-2");
    await s.idle();
    const order = gh.seen.map((c) => String(c.body.body ?? c.path));
    expect(order[0]).toBe("inst-1 first"); // the refused attempt (its body is recorded too)
    expect(gh.seen[0]!.path).toMatch(/\(403\)$/);
    expect(order.slice(1)).toEqual(["inst-2", "inst-1 first", "inst-1 second"]);
  });

  it("an idempotency key makes a re-run's write a no-op (a delivery's 👀 once)", async () => {
    const gh = fakeGitHub();
    const s = sender(null);
    const writes = new GitHubWrites(db, s, { progressMs: 0 });
    await writes.reactToComment(target(4), 555, "eyes", { idempotencyKey: "delivery:d1:eyes:1" });
    await s.idle();
    await writes.reactToComment(target(4), 555, "eyes", { idempotencyKey: "delivery:d1:eyes:1" });
    await s.idle();
    expect(gh.calls("POST", /\/issues\/comments\/555\/reactions$/)).toHaveLength(1);
    await writes.reactToComment(target(4), 555, "eyes", { idempotencyKey: "delivery:d2:eyes:1" });
    await s.idle();
    expect(gh.calls("POST", /\/issues\/comments\/555\/reactions$/)).toHaveLength(2);
  });

  it("a comment kept under a key is updated in place, and created again when someone deleted it", async () => {
    const gh = fakeGitHub();
    const s = sender(null);
    const writes = new GitHubWrites(db, s, { progressMs: 0 });
    const key = objectKeys.stickyPart(FULL, 8, 1);
    await writes.upsertComment(target(4), key, 8, "v1");
    await s.idle();
    await writes.upsertComment(target(4), key, 8, "v2");
    await s.idle();
    gh.fail(1, 404, (c) => c.method === "PATCH");
    await writes.upsertComment(target(4), key, 8, "v3");
    await s.idle();
    expect(gh.seen.map((c) => `${c.method} ${c.path.replace(/comments\/\d+/, "comments/N")} ${String(c.body.body)}`)).toEqual([
      `POST /repos/${FULL}/issues/8/comments v1`,
      `PATCH /repos/${FULL}/issues/comments/N v2`,
      `PATCH /repos/${FULL}/issues/comments/N (404) v3`,
      `POST /repos/${FULL}/issues/8/comments v3`,
    ]);
  });

  it("a sticky comment with a least interval: the first render goes at once, the renders after it merge into one write due an interval after it", async () => {
    const gh = fakeGitHub();
    const s = sender(null);
    const writes = new GitHubWrites(db, s, { progressMs: 0 });
    const key = objectKeys.stickyPart(FULL, 12, 1);
    const tenMinutes = 600_000;
    await writes.upsertComment(target(4), key, 12, "render 1", { minIntervalMs: tenMinutes });
    await s.idle();
    for (let i = 2; i <= 5; i++) {
      await enqueueWrite(db, { installationId: 4, repo: FULL, kind: "comment_upsert", priority: PRIORITY.final, objectKey: key, body: { issueNumber: 12, body: `render ${i}` }, minIntervalMs: tenMinutes });
    }
    // Not claimable now (by any sender), and nothing more went out.
    expect(await claimNext(db, 4, PRIORITY.progress, "owner-y")).toBeNull();
    expect(gh.seen.map((c) => c.body.body)).toEqual(["render 1"]);
    const { rows } = await db.query<{ body: { body: string }; wait: number }>(
      `SELECT p.body, EXTRACT(EPOCH FROM p.not_before - s.done_at)::float8 AS wait
       FROM github_outbox p JOIN github_outbox s ON s.object_key = p.object_key AND s.state = 'sent' WHERE p.state = 'pending'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.body.body).toBe("render 5");
    expect(rows[0]!.wait).toBeGreaterThanOrEqual(tenMinutes / 1000 - 0.001);
    expect(rows[0]!.wait).toBeLessThan(tenMinutes / 1000 + 5);
  });

  it("positive control: without an interval the render after a sent one goes at once", async () => {
    const gh = fakeGitHub();
    const s = sender(null);
    const writes = new GitHubWrites(db, s, { progressMs: 0 });
    const key = objectKeys.stickyPart(FULL, 13, 1);
    await writes.upsertComment(target(4), key, 13, "render 1");
    await s.idle();
    await writes.upsertComment(target(4), key, 13, "render 2");
    await s.idle();
    expect(gh.seen.map((c) => c.body.body)).toEqual(["render 1", "render 2"]);
  });

  it("a render added while the previous one is in flight keeps the interval from when that one was sent", async () => {
    const key = objectKeys.stickyPart(FULL, 14, 1);
    const upsert = (body: string) => enqueueWrite(db, { installationId: 6, repo: FULL, kind: "comment_upsert", priority: PRIORITY.final, objectKey: key, body: { issueNumber: 14, body }, minIntervalMs: 60_000 });
    await upsert("in flight");
    const inFlight = (await claimNext(db, 6, PRIORITY.progress, "owner-x"))!;
    expect(inFlight.body).toMatchObject({ body: "in flight" });
    await upsert("next");
    const due = async () => (await db.query<{ s: number }>("SELECT EXTRACT(EPOCH FROM not_before - clock_timestamp())::float8 AS s FROM github_outbox WHERE state = 'pending'")).rows[0]!.s;
    expect(await due()).toBeLessThanOrEqual(0);
    await markSent(db, inFlight, { id: 77 });
    expect(await due()).toBeGreaterThan(55);
  });

  it("the metrics read how many writes wait per class and how long the oldest due one has waited", async () => {
    expect(await outboxDepth(db)).toEqual({ pending: { ack: 0, final: 0, progress: 0 }, oldestDueSeconds: 0 });
    await add(8, "comment", "ack", { issueNumber: 1, body: "a" });
    await add(8, "comment", "final", { issueNumber: 1, body: "f1" });
    await add(8, "comment", "final", { issueNumber: 1, body: "f2" });
    await enqueueWrite(db, { installationId: 8, repo: FULL, kind: "comment", priority: PRIORITY.progress, body: { issueNumber: 1, body: "later" }, delayMs: 60_000 });
    await db.query("UPDATE github_outbox SET not_before = now() - interval '42 seconds' WHERE body->>'body' = 'a'");
    const depth = await outboxDepth(db);
    expect(depth.pending).toEqual({ ack: 1, final: 2, progress: 1 });
    // The debounced progress write is not due yet: it does not count as waiting.
    expect(depth.oldestDueSeconds).toBeGreaterThanOrEqual(42);
    expect(depth.oldestDueSeconds).toBeLessThan(60);
  });
});
