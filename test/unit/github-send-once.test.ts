/**
 * Writes that must not repeat reach GitHub once, with the production client: Probot's Octokit
 * (its retry plugin on, as Probot ships it), wrapped as src/app.ts wraps it (write pacing,
 * rate-limit report), authenticated as an installation through Probot. GitHub is nock.
 */
import { generateKeyPairSync } from "node:crypto";
import nock from "nock";
import { pino } from "pino";
import { Probot, ProbotOctokit } from "probot";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDeployment, getPull, mergePull, withGitHubPacing, withRateLimitReport, type GitHub } from "../../src/connectors/github.js";

const API = "https://api.github.com";
const INSTALLATION = 4242;
const SHA = "a".repeat(40);
const r = { owner: "octo-org", repo: "infra" };

describe("GitHub writes that must not repeat are sent once (production Octokit)", () => {
  let gh: GitHub;

  beforeAll(async () => {
    nock.disableNetConnect();
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } });
    const log = pino({ level: "silent" });
    const probot = new Probot({
      appId: 12345,
      privateKey,
      secret: "unused",
      log,
      // As src/app.ts builds it, with Probot's own ProbotOctokit (no test overrides).
      Octokit: withRateLimitReport(withGitHubPacing(ProbotOctokit, log), () => {}),
    });
    nock(API).post(`/app/installations/${INSTALLATION}/access_tokens`).reply(201, { token: "ghs_sendOnceInstallationToken000000000001", expires_at: new Date(Date.now() + 3600_000).toISOString() });
    gh = (await probot.auth(INSTALLATION)) as GitHub;
  });
  afterEach(() => {
    const pending = nock.pendingMocks();
    nock.cleanAll();
    expect(pending).toEqual([]);
  });
  afterAll(() => nock.enableNetConnect());

  /** Counts the requests nock answered for one route. */
  const counted = (scope: nock.Scope) => {
    let n = 0;
    scope.on("request", () => n++);
    return () => n;
  };

  it("ATTACK: a merge GitHub refuses with 409 (head moved) is requested exactly once and reported, not resent", async () => {
    const requests = counted(
      nock(API)
        .persist()
        .put(`/repos/octo-org/infra/pulls/7/merge`, { sha: SHA, merge_method: "squash" })
        .reply(409, { message: "Head branch was modified. Review and try the merge again.", documentation_url: "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request", status: "409" }),
    );
    expect(await mergePull(gh, r, 7, SHA, "squash")).toEqual({ merged: false, status: 409, message: expect.stringContaining("Head branch was modified") });
    expect(requests()).toBe(1);
  });

  it("ATTACK: a merge refused with 405 (not mergeable) is requested exactly once", async () => {
    const requests = counted(nock(API).persist().put(`/repos/octo-org/infra/pulls/8/merge`).reply(405, { message: "Pull Request is not mergeable", status: "405" }));
    expect(await mergePull(gh, r, 8, SHA, "merge")).toMatchObject({ merged: false, status: 405 });
    expect(requests()).toBe(1);
  });

  it("ATTACK: a deployment whose answer is a 502 is requested exactly once (a duplicate would send duplicate deployment webhooks)", async () => {
    const requests = counted(nock(API).persist().post(`/repos/octo-org/infra/deployments`).reply(502, { message: "Server Error" }));
    await expect(createDeployment(gh, r, { sha: SHA, environment: "prod", description: "deploy", payload: {} })).rejects.toMatchObject({ status: 502 });
    expect(requests()).toBe(1);
  });

  it("positive control: a read answered 500 is retried by the same client, then succeeds", async () => {
    const scope = nock(API)
      .get("/repos/octo-org/infra/pulls/9")
      .reply(500, { message: "Server Error" })
      .get("/repos/octo-org/infra/pulls/9")
      .reply(200, {
        number: 9,
        state: "open",
        draft: false,
        mergeable: true,
        head: { sha: SHA, ref: "feature", repo: { full_name: "octo-org/infra" } },
        base: { sha: "b".repeat(40), ref: "main", repo: { full_name: "octo-org/infra" } },
        user: { login: "alice", type: "User" },
      });
    const requests = counted(scope);
    expect(await getPull(gh, r, 9)).toMatchObject({ number: 9, headSha: SHA, author: "alice" });
    expect(requests()).toBe(2);
  });

  it("positive control: a merge that succeeds is one request too", async () => {
    nock(API).put(`/repos/octo-org/infra/pulls/10/merge`).reply(200, { sha: "c".repeat(40), merged: true, message: "Pull Request successfully merged" });
    expect(await mergePull(gh, r, 10, SHA, "merge")).toEqual({ merged: true, sha: "c".repeat(40) });
  });
});
