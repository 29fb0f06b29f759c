import nock from "nock";
import { ProbotOctokit } from "probot";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { forOutboxWrites, withGitHubPacing } from "../../src/connectors/github.js";
import { DEFAULT_PACING, InstallationPacer, PRIORITY } from "../../src/connectors/outbox/pacer.js";
import { rateLimitOf } from "../../src/connectors/outbox/sender.js";

const API = "https://api.github.com";
/** Installation clients as Probot makes them carry `auth.installationId`; the token is fixed here. */
const authStrategy = () => Object.assign(async () => ({ type: "token", token: "ghs_x" }), { hook: (request: any, route: any, params: any) => request(route, params) });

describe("the write budget of an installation (InstallationPacer)", () => {
  function clock(start = 1_000_000) {
    let t = start;
    return { now: () => t, advance: (ms: number) => void (t += ms) };
  }

  it("spends the burst, then keeps the last tokens for acknowledgements: progress stops first, final next, ack last", () => {
    const c = clock();
    const p = new InstallationPacer(DEFAULT_PACING, c.now);
    // 10 tokens: progress may go while ≥ 5 remain (reserve 4), final while ≥ 3, ack while ≥ 1.
    let progress = 0;
    while (p.maxPriorityNow() >= PRIORITY.progress) {
      p.take();
      progress++;
    }
    expect(progress).toBe(DEFAULT_PACING.burst - DEFAULT_PACING.reserve.progress);
    expect(p.maxPriorityNow()).toBe(PRIORITY.final);
    p.take();
    p.take();
    expect(p.maxPriorityNow()).toBe(PRIORITY.ack);
    expect(p.waitMs("ack")).toBe(0);
    expect(p.waitMs("final")).toBe(1000);
    p.take();
    p.take();
    expect(p.maxPriorityNow()).toBe(-1);
    expect(p.waitMs("ack")).toBe(1000);
    // The steady rate refills it: one a second.
    c.advance(1000);
    expect(p.maxPriorityNow()).toBe(PRIORITY.ack);
    c.advance(60_000);
    expect(p.maxPriorityNow()).toBe(PRIORITY.progress);
  });

  it("a pause (GitHub's retry-after) stops every class until it has passed, then starts from an empty bucket", () => {
    const c = clock();
    const p = new InstallationPacer(DEFAULT_PACING, c.now);
    p.pause(5000);
    expect(p.maxPriorityNow()).toBe(-1);
    expect(p.waitMs("ack")).toBe(5000);
    c.advance(4999);
    expect(p.paused).toBe(true);
    c.advance(1);
    expect(p.paused).toBe(false);
    expect(p.maxPriorityNow()).toBe(-1); // no token yet
    c.advance(1000);
    expect(p.maxPriorityNow()).toBe(PRIORITY.ack);
  });

  it("without pacing (a stand-in GitHub) everything may go, except while paused", () => {
    const c = clock();
    const p = new InstallationPacer(null, c.now);
    for (let i = 0; i < 100; i++) p.take();
    expect(p.maxPriorityNow()).toBe(PRIORITY.progress);
    p.pause(2000);
    expect(p.maxPriorityNow()).toBe(-1);
    c.advance(2000);
    expect(p.maxPriorityNow()).toBe(PRIORITY.progress);
  });
});

describe("GitHub's slow-down answers (rateLimitOf)", () => {
  const err = (status: number, headers: Record<string, string>, message = "x") => Object.assign(new Error(message), { status, response: { headers } });
  it("reads retry-after, the primary limit's reset, and a secondary limit without a header", () => {
    expect(rateLimitOf(err(429, { "retry-after": "7" }))).toEqual({ pauseMs: 7000 });
    expect(rateLimitOf(err(403, { "retry-after": "2" }))).toEqual({ pauseMs: 2000 });
    expect(rateLimitOf(err(403, { "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030" }), 1_000_000)).toEqual({ pauseMs: 30_000 });
    expect(rateLimitOf(err(403, {}, "You have exceeded a secondary rate limit"))).toEqual({ pauseMs: 60_000 });
  });
  it("positive control: a 403 for permissions and a 500 are not rate limits", () => {
    expect(rateLimitOf(err(403, {}, "Resource not accessible by integration"))).toBeNull();
    expect(rateLimitOf(err(500, { "retry-after": "1" }))).toBeNull();
  });
});

describe("Probot's throttling with the outbox: reads retried, writes handed back", () => {
  const warnings: Array<Record<string, unknown>> = [];
  const log = { warn: (obj: object) => void warnings.push(obj as Record<string, unknown>) };
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    nock.cleanAll();
    warnings.length = 0;
  });

  function client(installationId: number) {
    const Paced = withGitHubPacing(ProbotOctokit, log);
    return new Paced({ authStrategy, auth: { installationId }, retry: { enabled: false } } as never) as InstanceType<typeof ProbotOctokit>;
  }

  const secondary = { message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again." };

  it("a read hitting a secondary limit is retried after retry-after; a long wait gives up", async () => {
    nock(API).get("/repos/o/r").reply(403, secondary, { "retry-after": "1" }).get("/repos/o/r").reply(200, { id: 1 });
    const c = client(7);
    const res = await c.request("GET /repos/o/r");
    expect(res.status).toBe(200);
    expect(warnings).toEqual([expect.objectContaining({ method: "GET", retry_after: 1, retry_count: 0, retry: true })]);
    nock(API).get("/repos/o/r2").reply(403, secondary, { "retry-after": "600" });
    await expect(c.request("GET /repos/o/r2")).rejects.toMatchObject({ status: 403 });
    expect(nock.pendingMocks()).toEqual([]);
  });

  it("a write hitting a secondary limit fails at once with its retry-after (the outbox pauses the installation and sends it again)", async () => {
    nock(API).post("/repos/o/r/issues/1/comments").reply(403, secondary, { "retry-after": "1" });
    const c = client(7);
    const err = await c.request("POST /repos/o/r/issues/{n}/comments", { n: 1, body: "hi" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 403 });
    expect(rateLimitOf(err)).toEqual({ pauseMs: 1000 });
    expect(warnings).toEqual([expect.objectContaining({ method: "POST", retry: false })]);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it("writes are not held back by the plugin: 15 writes of one installation go at once", async () => {
    nock(API).persist().patch(/\/repos\/o\/r\/check-runs\/\d+/).reply(200, {});
    const c = client(9);
    const results = await Promise.all(Array.from({ length: 15 }, (_, n) => c.request("PATCH /repos/o/r/check-runs/{id}", { id: n })));
    expect(results.every((r) => r.status === 200)).toBe(true);
  });

  it("the outbox's own client: a 429 comes back at once (the outbox pauses), a 502 is retried by the client", async () => {
    const Writer = forOutboxWrites(ProbotOctokit);
    const c = new Writer({ authStrategy, auth: { installationId: 11 }, retry: { retryAfterBaseValue: 1 } } as never) as InstanceType<typeof ProbotOctokit>;
    nock(API).post("/repos/o/r/issues/3/comments").reply(429, secondary, { "retry-after": "30" });
    const err = await c.request("POST /repos/o/r/issues/{n}/comments", { n: 3, body: "hi" }).catch((e: unknown) => e);
    expect(rateLimitOf(err)).toEqual({ pauseMs: 30_000 });
    nock(API).post("/repos/o/r/issues/4/comments").reply(502, { message: "bad gateway" }).post("/repos/o/r/issues/4/comments").reply(201, { id: 9 });
    const res = await c.request("POST /repos/o/r/issues/{n}/comments", { n: 4, body: "hi" });
    expect(res.status).toBe(201);
    expect(nock.pendingMocks()).toEqual([]);
  });
});
