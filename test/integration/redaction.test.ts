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

  it("masks plain, base64, base64url, URL-encoded, JSON, hex, base32 and od-dump forms in check runs, the comment, the database and logs", async () => {
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", 'version: 1\nstacks:\n  - name: prod\nsteps:\n  preview: ["node", "leak.js"]\n');
    const leak = `const t = process.env.PULUMI_ACCESS_TOKEN;
console.log("plain", t);
console.log("b64", Buffer.from(t).toString("base64"));
console.log("b64url", Buffer.from(t).toString("base64url"));
console.log("url", encodeURIComponent(t));
console.log("json", JSON.stringify({ token: t }));
console.log("hex", Buffer.from(t).toString("hex"));
// The sandbox image's own tools (Debian minbase coreutils), the way a script would call them.
const sh = (label, cmd) => (console.log(label), require("node:child_process").execSync(cmd, { stdio: ["ignore", "inherit", "inherit"], shell: "/bin/sh" }));
sh("od-tx1:", 'printf %s "$PULUMI_ACCESS_TOKEN" | od -An -tx1');
sh("od-addr:", 'printf "token=%s\\n" "$PULUMI_ACCESS_TOKEN" | od -tx1');
sh("od-x:", 'printf %s "$PULUMI_ACCESS_TOKEN" | od -x');
sh("od-b:", 'printf %s "$PULUMI_ACCESS_TOKEN" | od -b');
sh("od-c:", 'printf %s "$PULUMI_ACCESS_TOKEN" | od -c');
sh("base16:", 'printf %s "$PULUMI_ACCESS_TOKEN" | basenc --base16');
sh("base32:", 'printf %s "$PULUMI_ACCESS_TOKEN" | base32');
sh("base64-76:", 'printf "user:%s:%s" "$PULUMI_ACCESS_TOKEN" "$PULUMI_ACCESS_TOKEN" | base64');
console.log("ordinary-hex 3a79d47c0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7");
sh("od-other:", 'printf %s "not-the-token" | od -An -tx1');
process.stdout.write("split " + t.slice(0, 10));
setTimeout(() => { console.log(t.slice(10)); process.exit(1); }, 50);
`;
    const sha = await git.commit(REPO, { "leak.js": leak });
    gh.pulls.set(1, { headSha: sha });
    await deliver(app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: 1, body: "/agent preview", login: "alice" }));
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    await gh.waitFor((c) => c.method === "PATCH" && /issues\/comments/.test(c.path) && String(c.body?.body).includes("❌ failed"), "the sticky comment");

    const hex = Buffer.from(SECRET).toString("hex");
    const forms = [
      SECRET,
      Buffer.from(SECRET).toString("base64"),
      Buffer.from(SECRET).toString("base64url"),
      encodeURIComponent(SECRET),
      JSON.stringify(SECRET).slice(1, -1),
      hex,
      hex.toUpperCase(),
      "OB2WY5LNNEWWCY3DMVZXGLLUN5VTG3RPO5UXI2BLONYGKY3JMFWD2Y3IMFZHG", // base32
    ];
    const text = String((done.body!.output as { text: string }).text);
    // The step really printed them: each line is there, masked.
    for (const label of ["plain", "b64", "b64url", "url", "json", "hex", "split"]) expect(text).toMatch(new RegExp(`${label} .*\\[redacted\\]`));
    // The tools' output (several lines each) is one [redacted] where the secret was.
    expect(text).toContain("od-tx1:\n [redacted]\n");
    expect(text).toContain("od-addr:\n0000000 74 6f 6b 65 6e 3d [redacted] 0a\n0000055\n");
    expect(text).toContain("od-x:\n0000000 [redacted]\n0000046\n");
    expect(text).toContain("od-b:\n0000000 [redacted]\n0000046\n");
    expect(text).toContain("od-c:\n0000000   [redacted]\n0000046\n");
    expect(text).toContain("base16:\n[redacted]\n");
    expect(text).toContain("base32:\n[redacted]\n");
    expect(text).toMatch(/base64-76:\ndXNlcjp\[redacted\][A-Za-z0-9+/]{0,3}\[redacted\][A-Za-z0-9+/=]{0,4}\n/);
    // Positive control: hex that is not the secret's stays readable, dumps of other values too.
    expect(text).toContain("ordinary-hex 3a79d47c0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7\n");
    expect(text).toContain("od-other:\n 6e 6f 74 2d 74 68 65 2d 74 6f 6b 65 6e\n");
    const everything = [
      JSON.stringify(gh.calls.map((c) => c.body)),
      JSON.stringify((await db.query("SELECT steps, error FROM tasks")).rows),
      JSON.stringify((await db.query("SELECT detail FROM audit_log")).rows),
      JSON.stringify((await db.query("SELECT config FROM workflows")).rows),
      logs.join("\n"),
    ].join("\n");
    for (const form of forms) expect(everything).not.toContain(form);
    // Nor broken up: with whitespace (and JSON's escaped line breaks) taken out, no hex or octal
    // dump of the secret is left either.
    const squeezed = everything.replace(/\\[rn]|\s+/g, "");
    const octal = [...Buffer.from(SECRET)].map((b) => b.toString(8).padStart(3, "0")).join("");
    for (const dump of [hex, hex.toUpperCase(), octal]) expect(squeezed).not.toContain(dump);
    // Preview tasks ask for preview credentials only.
    expect(requests).toEqual([{ repo: REPO, stack: "prod", kind: "preview", taskId: expect.any(String), fork: false, ttlSeconds: 900 }]);
  });
});
