/**
 * The GitHub stand-in's content-creation limit (test/helpers/github-fake.ts, `contentLimit`):
 * GitHub's secondary limit of 80 content-creating writes a minute per installation, answered as
 * GitHub answers it. A fake clock moves the rolling window; nothing sleeps.
 */
import { ProbotOctokit } from "probot";
import { afterEach, describe, expect, it } from "vitest";
import { forOutboxWrites } from "../../src/connectors/github.js";
import { rateLimitOf } from "../../src/connectors/outbox/sender.js";
import { GitHubFake, SECONDARY_LIMIT_BODY, type ContentLimitOptions, type Reply } from "../helpers/github-fake.js";
import { GitHubServer } from "../helpers/github-server.js";

const REPO = "octo-org/limits";
const TOKEN = "ghs_limitTestToken";
const AUTH = { authorization: `token ${TOKEN}` };

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function fakeWith(contentLimit?: ContentLimitOptions): GitHubFake {
  const gh = new GitHubFake(REPO, TOKEN, "https://api.github.com", { intercept: false, ...(contentLimit ? { contentLimit } : {}) });
  gh.pulls.set(7, { headSha: "a".repeat(40) });
  return gh;
}

const send = (gh: GitHubFake, method: string, path: string, body?: unknown): Reply => gh.respond(method, `https://api.github.com${path}`, body === undefined ? "" : JSON.stringify(body), AUTH);

/**
 * 80 content-creating writes of every kind the app makes (comments, a comment update and
 * delete, reactions, check runs created and updated, a deployment and its status, a merge),
 * then one more check run: the 81st.
 */
function eightyOneWrites(gh: GitHubFake, advance: (ms: number) => void = () => {}): Reply[] {
  const replies: Reply[] = [];
  const go = (method: string, path: string, body?: unknown) => {
    replies.push(send(gh, method, path, body));
    advance(100);
  };
  /** The id of what the last write created. */
  const lastId = () => Number((replies[replies.length - 1]![1] as { id: number }).id);
  go("POST", `/repos/${REPO}/issues/7/comments`, { body: "sticky" });
  const sticky = lastId();
  go("PATCH", `/repos/${REPO}/issues/comments/${sticky}`, { body: "sticky, updated" });
  go("POST", `/repos/${REPO}/issues/comments/${sticky}/reactions`, { content: "eyes" });
  go("POST", `/repos/${REPO}/issues/7/reactions`, { content: "eyes" });
  go("POST", `/repos/${REPO}/deployments`, { ref: "main", environment: "prod" });
  const deployment = lastId();
  go("POST", `/repos/${REPO}/deployments/${deployment}/statuses`, { state: "success" });
  go("PUT", `/repos/${REPO}/pulls/7/merge`, { sha: "a".repeat(40) });
  go("POST", `/repos/${REPO}/issues/7/comments`, { body: "to delete" });
  go("DELETE", `/repos/${REPO}/issues/comments/${lastId()}`);
  // 9 so far; 71 more: check runs created and completed, and comments.
  for (let i = 0; replies.length < 79; i++) {
    go("POST", `/repos/${REPO}/check-runs`, { name: `preview: s${i}`, head_sha: "a".repeat(40), status: "queued" });
    if (replies.length < 79) go("PATCH", `/repos/${REPO}/check-runs/${lastId()}`, { status: "completed", conclusion: "success" });
  }
  go("POST", `/repos/${REPO}/issues/7/comments`, { body: "the 80th" });
  expect(replies).toHaveLength(80);
  go("POST", `/repos/${REPO}/check-runs`, { name: "preview: the-81st", head_sha: "a".repeat(40), status: "queued" });
  return replies;
}

describe("the GitHub stand-in's content-creation limit", () => {
  it("answers the 81st write within a minute 403 with retry-after and GitHub's message, and the refused write changes nothing", () => {
    const c = clock();
    const gh = fakeWith({ now: c.now });
    const replies = eightyOneWrites(gh, c.advance);
    for (const [status] of replies.slice(0, 80)) expect(status).toBeLessThan(300);

    const [status, body, headers] = replies[80]!;
    expect(status).toBe(403);
    expect(body).toEqual(SECONDARY_LIMIT_BODY);
    expect(body).toEqual({
      message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
      documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
    });
    // The first write was 8.0 s ago (80 × 100 ms): its slot frees in 52 s.
    expect(headers).toEqual({ "retry-after": "52" });
    expect(gh.limited).toBe(1);
    expect(gh.limitedCalls[0]).toMatchObject({ method: "POST", path: `/repos/${REPO}/check-runs` });
    // Nothing was created, nor recorded as answered.
    expect([...gh.checkRuns.values()].some((r) => r.name === "preview: the-81st")).toBe(false);
    expect(gh.calls).toHaveLength(80);

    // Reads and the installation-token endpoint are not content creation: still answered.
    expect(send(gh, "GET", `/repos/${REPO}/pulls/7`)[0]).toBe(200);
    expect(send(gh, "POST", "/app/installations/4242/access_tokens")[0]).toBe(201);
    // A refused write does not take a slot: still refused, the wait shorter as time passes.
    c.advance(51_000);
    const again = send(gh, "PATCH", `/repos/${REPO}/issues/comments/5000`, { body: "x" });
    expect(again[0]).toBe(403);
    expect(again[2]).toEqual({ "retry-after": "1" });
    expect(gh.limited).toBe(2);
    expect(gh.comments.get(5000)?.body).toBe("sticky, updated");

    // 60 s after the first write it leaves the window: one slot, and one only (the second
    // write, 100 ms younger, is still in it).
    c.advance(900);
    expect(send(gh, "POST", `/repos/${REPO}/check-runs`, { name: "preview: the-81st", head_sha: "a".repeat(40) })[0]).toBe(201);
    expect(send(gh, "POST", `/repos/${REPO}/issues/7/comments`, { body: "too soon" })[0]).toBe(403);
    expect(gh.limited).toBe(3);
  });

  it("positive control: without the option the same 81 writes all succeed", () => {
    const gh = fakeWith();
    const replies = eightyOneWrites(gh);
    expect(replies.map(([s]) => s).filter((s) => s >= 300)).toEqual([]);
    expect([...gh.checkRuns.values()].some((r) => r.name === "preview: the-81st")).toBe(true);
    expect(gh.limited).toBe(0);
    expect(gh.calls).toHaveLength(81);
  });

  it("counts each installation on its own (GitHub's limit is per installation)", () => {
    const c = clock();
    const gh = fakeWith({ now: c.now, perMinute: 2 });
    const as = (token: string) => gh.respond("POST", `https://api.github.com/repos/${REPO}/issues/7/comments`, JSON.stringify({ body: "x" }), { authorization: `token ${token}` })[0];
    expect([as("ghs_one"), as("ghs_one"), as("ghs_one")]).toEqual([201, 201, 403]);
    expect([as("ghs_two"), as("ghs_two"), as("ghs_two")]).toEqual([201, 201, 403]);
  });

  describe("over HTTP (test/helpers/github-server.ts), as the app's outbox client sees it", () => {
    let server: GitHubServer | null = null;
    afterEach(async () => {
      await server?.stop();
      server = null;
    });

    it("is a secondary rate limit the outbox pauses for (rateLimitOf: retry-after × 1000 ms)", async () => {
      const c = clock();
      server = await GitHubServer.start(REPO, TOKEN, { contentLimit: { perMinute: 2, now: c.now } });
      server.fake.pulls.set(7, { headSha: "a".repeat(40) });
      const Writer = forOutboxWrites(ProbotOctokit);
      const octokit = new Writer({ auth: TOKEN, baseUrl: server.apiBaseUrl } as never) as InstanceType<typeof ProbotOctokit>;
      const comment = () => octokit.request("POST /repos/{owner}/{repo}/issues/{n}/comments", { owner: "octo-org", repo: "limits", n: 7, body: "hi" });
      await comment();
      c.advance(10_000);
      await comment();
      const err = (await comment().catch((e: unknown) => e)) as { status: number; response: { headers: Record<string, string>; data: unknown } };
      expect(err.status).toBe(403);
      expect(err.response.headers["retry-after"]).toBe("50");
      expect(err.response.data).toEqual(SECONDARY_LIMIT_BODY);
      expect(rateLimitOf(err)).toEqual({ pauseMs: 50_000 });
      expect(server.limited).toBe(1);
      expect(server.fake.comments.size).toBe(2);
    });
  });
});
