import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { staticCredentials, type CredentialRequest } from "../../src/connectors/credentials.js";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/secrets";
const TOKEN = "ghs_redactionInstallationToken00000000005";
const SECRET = "pulumi-access-tok3n/with+special=chars";

/** A step that prints its credential in several encodings: none of them may leave the worker. */
describe("secrets are redacted from everything a step prints", () => {
  let f: AppFixture;
  let app: RunningApp;
  let git: AppFixture["git"];
  let gh: GitHubFake;
  let db: pg.Client;
  const logs: string[] = [];
  const requests: CredentialRequest[] = [];

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, {
      logs,
      credentials: staticCredentials((req) => {
        requests.push(req);
        return { PULUMI_ACCESS_TOKEN: SECRET };
      }),
    });
    ({ app, git, db } = f);
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });

  it("masks plain, base64, base64url, URL-encoded and JSON forms in check runs, the comment, the database and logs", async () => {
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", 'version: 1\nstacks:\n  - name: prod\nsteps:\n  preview: ["node", "leak.js"]\n');
    const leak = `const t = process.env.PULUMI_ACCESS_TOKEN;
console.log("plain", t);
console.log("b64", Buffer.from(t).toString("base64"));
console.log("b64url", Buffer.from(t).toString("base64url"));
console.log("url", encodeURIComponent(t));
console.log("json", JSON.stringify({ token: t }));
process.stdout.write("split " + t.slice(0, 10));
setTimeout(() => { console.log(t.slice(10)); process.exit(1); }, 50);
`;
    const sha = await git.commit(REPO, { "leak.js": leak });
    gh.pulls.set(1, { headSha: sha });
    await deliver(app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: 1, body: "/agent preview", login: "alice" }));
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    await gh.waitFor((c) => c.method === "PATCH" && /issues\/comments/.test(c.path) && String(c.body?.body).includes("❌ failed"), "the sticky comment");

    const forms = [
      SECRET,
      Buffer.from(SECRET).toString("base64"),
      Buffer.from(SECRET).toString("base64url"),
      encodeURIComponent(SECRET),
      JSON.stringify(SECRET).slice(1, -1),
    ];
    const text = String((done.body!.output as { text: string }).text);
    // The step really printed them: each line is there, masked.
    for (const label of ["plain", "b64", "b64url", "url", "json", "split"]) expect(text).toMatch(new RegExp(`${label} .*\\[redacted\\]`));
    const everything = [
      JSON.stringify(gh.calls.map((c) => c.body)),
      JSON.stringify((await db.query("SELECT steps, error FROM tasks")).rows),
      JSON.stringify((await db.query("SELECT detail FROM audit_log")).rows),
      JSON.stringify((await db.query("SELECT config FROM workflows")).rows),
      logs.join("\n"),
    ].join("\n");
    for (const form of forms) expect(everything).not.toContain(form);
    // Preview tasks ask for preview credentials only.
    expect(requests).toEqual([{ repo: REPO, stack: "prod", kind: "preview", taskId: expect.any(String) }]);
  });
});
