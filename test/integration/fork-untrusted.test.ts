/**
 * A fork's code gets nothing: after a maintainer's `/agent ok-to-test` it runs, but with no
 * credentials (the source is never asked, and would refuse), no egress proxy, and under the
 * untrusted runtime (gVisor). The positive control is a branch of the repository itself,
 * previewed the same way: it gets its stack's credentials and the default runtime. Real
 * sandbox, Redis and Postgres; GitHub is the nock fake.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials, type CredentialRequest, type CredentialSource } from "../../src/connectors/credentials.js";
import { CredentialError } from "../../src/connectors/vault/errors.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, leftoverSandboxes, pullRequestPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/forked";
const TOKEN = "ghs_forkUntrustedInstallationToken000071";
const SECRET = "preview-credential-0f9e8d7c6b5a";
/** Prints what the step was given: the credential, a proxy, the kernel it runs on, its interfaces. */
const PROBE = [
  "sh",
  "-c",
  'echo "secret=${AGENT_TEST_SECRET:-absent}"; echo "proxy=${HTTPS_PROXY:-none}"; echo "kernel=$(uname -r)"; dmesg 2>&1 | head -n1; echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" " ")"',
];
const CONFIG = `version: 1
default_stack: app
stacks:
  - name: app
    dir: app
    steps:
      preview: ${JSON.stringify(PROBE)}
`;

describe("a fork's pull request gets no credentials, no egress and the untrusted runtime", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  const asked: CredentialRequest[] = [];
  const recording: CredentialSource = {
    async forTask(req) {
      asked.push(req);
      return staticCredentials(() => ({ AGENT_TEST_SECRET: SECRET })).forTask(req);
    },
  };

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, {
      credentials: recording,
      // The stack has an egress allowlist: the repository's own code would get the proxy.
      env: { SANDBOX_EGRESS_ALLOWLIST: JSON.stringify({ [`${REPO}:app`]: ["registry.example.com:443"] }), SANDBOX_EGRESS_NETWORK: "agent-egress-test-absent", SANDBOX_EGRESS_PROXY_LISTEN: "127.0.0.1", SANDBOX_EGRESS_PROXY_PORT: "0" },
    });
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["carol", "maintain"], ["mallory", "read"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
  });
  afterAll(async () => {
    gh.stop();
    await f.stop();
  });

  const checkRunNamed = (c: RecordedCall) => String(gh.checkRuns.get(Number(c.path.split("/").pop()))?.name);
  async function send(event: string, payload: Record<string, unknown>) {
    const res = await deliver(f.app.port!, event, payload);
    await f.watcher.handled(res.id);
  }
  const taskOf = async (number: number) =>
    (await f.db.query("SELECT t.id, t.state, t.steps, w.config->>'fork' AS fork FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 AND t.kind = 'preview' ORDER BY t.created_at DESC LIMIT 1", [number])).rows[0];

  it("a maintainer's ok-to-test runs the fork's code with nothing: no credentials, no proxy, gVisor", async () => {
    const sha = await f.git.commit(REPO, { "app/README.md": "from a fork\n" });
    gh.pulls.set(71, { headSha: sha, author: "mallory", headRepo: "mallory/forked" });
    await send("pull_request", pullRequestPayload("opened", { repo: REPO, prNumber: 71, headSha: sha, author: "mallory", sender: "mallory", headRepo: "mallory/forked" }));
    const start = gh.calls.length;
    await send("issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 71, body: "/agent ok-to-test", login: "carol" }));
    const done = await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c) && checkRunNamed(c) === "agent/preview (app)", "the fork's preview", 90_000);
    expect(done.body).toMatchObject({ conclusion: "success" });
    const task = await taskOf(71);
    expect(task.fork).toBe("true");
    const output = String(task.steps[0].outputTail);
    expect(output).toContain("secret=absent");
    expect(output).toContain("proxy=none");
    // gVisor's own kernel and boot log, not the host's.
    expect(output).toContain("Starting gVisor");
    expect(output).toMatch(/ifaces=lo $/m);
    // The credential source was never asked for this task.
    expect(asked.filter((r) => r.taskId === task.id)).toEqual([]);
    const { rows } = await f.db.query("SELECT detail->>'fork' AS fork, detail->>'runtime' AS runtime FROM audit_log WHERE task_id = $1 AND action = 'preview.succeeded'", [task.id]);
    expect(rows).toEqual([{ fork: "true", runtime: "runsc" }]);
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });

  it("and were the credential source asked for a fork's task anyway, it refuses", async () => {
    const req: CredentialRequest = { repo: REPO, stack: "app", kind: "preview", taskId: "00000000-0000-4000-8000-000000000071", fork: true };
    await expect(staticCredentials(() => ({ AGENT_TEST_SECRET: SECRET })).forTask(req)).rejects.toBeInstanceOf(CredentialError);
    // Control: the same request for the repository's own code is answered.
    await expect(staticCredentials(() => ({ AGENT_TEST_SECRET: SECRET })).forTask({ ...req, fork: false })).resolves.toMatchObject({ env: { AGENT_TEST_SECRET: SECRET } });
  });

  it("control: a branch of the repository itself gets its credentials and the default runtime", async () => {
    // No egress allowlist here: the test network for the proxy does not exist on this machine.
    gh.files.set("main:.github/agent.yml", CONFIG.replace("name: app", "name: web").replace("default_stack: app", "default_stack: web"));
    const sha = await f.git.commit(REPO, { "app/README.md": "from a branch\n" });
    gh.pulls.set(72, { headSha: sha, author: "alice" });
    const start = gh.calls.length;
    await send("issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 72, body: "/agent preview", login: "alice" }));
    const done = await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c) && checkRunNamed(c) === "agent/preview (web)", "the branch's preview", 90_000);
    expect(done.body).toMatchObject({ conclusion: "success" });
    const task = await taskOf(72);
    expect(task.fork).toBe("false");
    const output = String(task.steps[0].outputTail);
    // It had the credential (shown redacted), on the host's kernel.
    expect(output).toContain("secret=[redacted]");
    expect(output).not.toContain("Starting gVisor");
    expect(asked.filter((r) => r.taskId === task.id)).toEqual([expect.objectContaining({ kind: "preview", fork: false })]);
  });
});
