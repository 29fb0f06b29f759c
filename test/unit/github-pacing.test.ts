import nock from "nock";
import { ProbotOctokit } from "probot";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { githubWriteLimiter, withGitHubPacing, WRITE_BURST } from "../../src/connectors/github.js";

const API = "https://api.github.com";
/** Installation clients as Probot makes them carry `auth.installationId`; the token is fixed here. */
const authStrategy = () => Object.assign(async () => ({ type: "token", token: "ghs_x" }), { hook: (request: any, route: any, params: any) => request(route, params) });

describe("GitHub pacing: writes per installation, secondary limits retried", () => {
  const warnings: Array<Record<string, unknown>> = [];
  const log = { warn: (obj: object) => void warnings.push(obj as Record<string, unknown>) };
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    nock.cleanAll();
    warnings.length = 0;
  });

  function client(write: ReturnType<typeof githubWriteLimiter>, installationId: number) {
    const Paced = withGitHubPacing(ProbotOctokit, log, write);
    return new Paced({ authStrategy, auth: { installationId }, retry: { enabled: false } } as never) as InstanceType<typeof ProbotOctokit>;
  }

  it("gives each installation its own bucket: one busy installation does not hold up another", async () => {
    const write = githubWriteLimiter();
    nock(API).persist().patch(/\/repos\/o\/r\/check-runs\/\d+/).reply(200, {});
    const a = client(write, 7);
    const b = client(write, 8);
    await Promise.all([1, 2, 3].map((n) => a.request("PATCH /repos/o/r/check-runs/{id}", { id: n })));
    await b.request("PATCH /repos/o/r/check-runs/{id}", { id: 9 });
    expect(await write.key("installation-7").currentReservoir()).toBe(WRITE_BURST - 3);
    expect(await write.key("installation-8").currentReservoir()).toBe(WRITE_BURST - 1);
    // Reads are not paced.
    nock(API).get("/repos/o/r").reply(200, { id: 1 });
    await a.request("GET /repos/o/r");
    expect(await write.key("installation-7").currentReservoir()).toBe(WRITE_BURST - 3);
  });

  it("retries a secondary rate limit after retry-after, and gives up on a long one", async () => {
    const write = githubWriteLimiter();
    const secondary = { message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again." };
    nock(API).post("/repos/o/r/issues/1/comments").reply(403, secondary, { "retry-after": "1" }).post("/repos/o/r/issues/1/comments").reply(201, { id: 5 });
    const c = client(write, 7);
    const res = await c.request("POST /repos/o/r/issues/{n}/comments", { n: 1, body: "hi" });
    expect(res.status).toBe(201);
    expect(warnings).toEqual([expect.objectContaining({ method: "POST", retry_after: 1, retry_count: 0, retry: true })]);

    nock(API).post("/repos/o/r/issues/2/comments").reply(403, secondary, { "retry-after": "600" });
    await expect(c.request("POST /repos/o/r/issues/{n}/comments", { n: 2, body: "hi" })).rejects.toMatchObject({ status: 403 });
    expect(warnings.at(-1)).toMatchObject({ retry_after: 600, retry: false });
    expect(nock.pendingMocks()).toEqual([]);
  });
});
