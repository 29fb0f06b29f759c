import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { installationToken } from "../../src/connectors/github.js";
import { STICKY_MARKER } from "../../src/render/sticky-comment.js";
import { GitHubFake } from "../helpers/github-fake.js";
import { GitHttpServer } from "../helpers/git-server.js";
import { deliver, destroyTestEnv, isolateNetwork, issueCommentPayload, makeTestEnv, startTestApp, type TestEnv } from "../helpers/harness.js";

const REPO = "platform/infra";
const TOKEN = "ghs_gheInstallationToken00000000000000003";

describe("GitHub Enterprise Server (GHE_HOST, GHE_PROTOCOL)", () => {
  let env: TestEnv;
  let app: RunningApp;
  let git: GitHttpServer;
  let ghe: GitHubFake;
  let dotcom: GitHubFake;

  beforeAll(async () => {
    isolateNetwork();
    env = await makeTestEnv({ GHE_HOST: "ghe.example.test", GHE_PROTOCOL: "https" });
    git = await GitHttpServer.start(TOKEN);
    app = await startTestApp(env);
  });
  afterAll(async () => {
    ghe?.stop();
    await app?.stop();
    await git?.stop();
    await destroyTestEnv(env);
  });

  it("sends every API call, including the installation token, to the GHES API base", async () => {
    ghe = new GitHubFake(REPO, TOKEN, "https://ghe.example.test/api/v3");
    dotcom = new GitHubFake(REPO, TOKEN, "https://api.github.com");
    ghe.permissions.set("alice", "write");
    ghe.files.set("main:.github/agent.yml", 'version: 1\nstacks:\n  - name: dev\nsteps:\n  preview: ["sh", "-c", "echo on-ghes"]\n');
    const sha = await git.commit(REPO, { "README.md": "ghes\n" });
    ghe.pulls.set(9, { headSha: sha });
    // A worker's first use of an installation can be the git token (no API call cached one):
    // it too comes from the GHES API, not api.github.com.
    expect(await installationToken(await app.deps.github(4242))).toBe(TOKEN);
    const payload = issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: 9, body: "/agent preview", login: "alice" });
    await deliver(app.port!, "issue_comment", payload);

    const done = await ghe.waitFor((c) => c.method === "PATCH" && /check-runs/.test(c.path) && c.body?.status === "completed", "completed check run on GHES");
    expect(done.body).toMatchObject({ conclusion: "success" });
    expect(ghe.find("POST", /^\/app\/installations\/4242\/access_tokens$/)).toHaveLength(1);
    const sticky = await ghe.waitFor((c) => c.method === "PATCH" && /issues\/comments/.test(c.path) && String(c.body?.body).includes("✅ succeeded"), "sticky comment");
    expect(String(sticky.body!.body)).toContain(STICKY_MARKER);
    expect(String(sticky.body!.body)).toContain("https://ghe.example.test/platform/infra/runs/");
    expect(dotcom.calls).toEqual([]);
    expect(ghe.unexpected).toEqual([]);
  });
});
