/**
 * Review stacks end to end: real Redis (the review queue and its sweep scheduler), Postgres and
 * sandboxes running the stand-in `pulumi`; GitHub at the HTTP boundary. `/agent preview --review`
 * makes `pr-<n>-<stack>` from the template's config (`stack init --copy-config-from`), deploys it
 * through its gate without merging and comments its outputs; it is destroyed on close, on
 * `/agent destroy --review`, when its TTL passes (warned first) and, orphaned, by the reaper.
 *
 * The sandbox's Pulumi backend is `file://./.state` inside the checkout: a real backend outlives
 * the sandbox, this one does not, so a commit carries the state a real backend would hold (the
 * template stack, and for the destroy of a stack with resources, the review stack as an earlier
 * deploy left it). That state is made by running the same stand-in on the host.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EnvCredentialSource } from "../../src/connectors/env-credentials.js";
import { reapReviewOrphans } from "../../src/deploys/review.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { until } from "../helpers/app-process.js";
import { deliver, issueCommentPayload, leftoverSandboxes, pullRequestPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/review-apps";
const TOKEN = "ghs_reviewStacksInstallationToken00000031";
const PASSPHRASE = "review-test-passphrase-00000001";
const PROD_SECRET = "prod-token-never-in-review-0001";
const REVIEW_SECRET = "review-token-for-review-only-01";
const STANDIN = new URL("../sandbox-image/rootfs/usr/local/bin/pulumi", import.meta.url).pathname;
const config = (max: number) => `version: 1
review_max_live: ${max}
stacks:
  - name: web
    dir: infra
    engine: pulumi
    review: { template: staging, ttl: 72h }
  - name: api
    dir: infra
    engine: pulumi
    review: { template: staging, approvals: 1 }
`;
/** The program: one bucket and two outputs; what it runs prints which tokens it was given. */
const RESOURCES = {
  config: { "aws:region": "eu-west-1" },
  providers: { aws: "6.0.0" },
  resources: [{ type: "aws:s3/bucket:Bucket", name: "site", op: "create", inputs: { acl: "private" } }],
  outputs: { url: "https://site.review.example.test/", adminPassword: { secret: "s3cr3t-admin-password" } },
};
const PROGRAM = JSON.stringify({ ...RESOURCES, exec: ["sh", "-c", 'echo "program sees prod=${PROD_TOKEN:-none} review=${REVIEW_TOKEN:-none}" >&2'] });

/** Backend state files (`.state/.pulumi/stacks/shop/<stack>.json`) as the stand-in writes them on the host. */
async function backendState(make: Array<{ stack: string; up: boolean }>): Promise<Record<string, string>> {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "review-state-")));
  try {
    writeFileSync(join(root, "Pulumi.yaml"), "name: shop\nruntime: nodejs\n");
    writeFileSync(join(root, "pulumi-standin.json"), JSON.stringify(RESOURCES));
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, PULUMI_BACKEND_URL: `file://${root}/.state`, PULUMI_CONFIG_PASSPHRASE: PASSPHRASE };
    const run = (args: string[]) => promisify(execFile)(process.execPath, [STANDIN, ...args], { cwd: root, env });
    for (const s of make) {
      await run(["stack", "init", s.stack]);
      if (s.up) await run(["up", "--yes", "--skip-preview", "--stack", s.stack]);
    }
    const dir = join(root, ".state", ".pulumi", "stacks", "shop");
    return Object.fromEntries(readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => [`infra/.state/.pulumi/stacks/shop/${f}`, readFileSync(join(dir, f), "utf8")]));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe("review stacks", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 60;
  let templateState: Record<string, string>;

  beforeAll(async () => {
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"], ["rita", "read"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", config(2));
    // Review stacks get `review:*`; every other stack `*` (which here holds a production token).
    const credentials = new EnvCredentialSource(
      {
        stacks: {
          "*": { preview: {}, deploy: {}, diagnose: {}, env: { PULUMI_BACKEND_URL: "T_BACKEND", PULUMI_CONFIG_PASSPHRASE: "T_PASS", PROD_TOKEN: "T_PROD" } },
          "review:*": { preview: {}, deploy: {}, diagnose: {}, env: { PULUMI_BACKEND_URL: "T_BACKEND", PULUMI_CONFIG_PASSPHRASE: "T_PASS", REVIEW_TOKEN: "T_REVIEW" } },
        },
      },
      { log: pino({ level: "silent" }), env: { T_BACKEND: "file://./.state", T_PASS: PASSPHRASE, T_PROD: PROD_SECRET, T_REVIEW: REVIEW_SECRET } },
    );
    f = await startAppFixture(TOKEN, { credentials, env: { REVIEW_SWEEP_SECONDS: "1" } });
    templateState = await backendState([{ stack: "staging", up: false }]);
  });
  afterAll(async () => {
    gh?.stop();
    await f?.stop();
  });

  async function openPr(extra: Record<string, string> = {}) {
    await f.db.query("DELETE FROM stack_locks WHERE repo = $1", [REPO]);
    const number = ++pr;
    const sha = await f.git.commit(REPO, {
      "infra/Pulumi.yaml": "name: shop\nruntime: nodejs\n",
      "infra/Pulumi.staging.yaml": "config:\n  aws:region: eu-west-1\n",
      "infra/pulumi-standin.json": PROGRAM,
      ...templateState,
      ...extra,
    });
    gh.pulls.set(number, { headSha: sha, author: "alice" });
    return { number, sha };
  }
  async function say(number: number, body: string, login = "alice") {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    await f.watcher.handled(res.id);
  }
  const comments = (number: number) => gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent"));
  const commentSaying = (number: number, text: string | RegExp, what: string) =>
    gh.waitFor((c) => c.method === "POST" && c.path.endsWith(`/issues/${number}/comments`) && (typeof text === "string" ? String(c.body?.body).includes(text) : text.test(String(c.body?.body))), what, 90_000);
  const checkRunNamed = (c: RecordedCall) => String(gh.checkRuns.get(Number(c.path.split("/").pop()))?.name);
  const completed = (name: string, from: number) => gh.waitFor((c) => gh.calls.indexOf(c) >= from && isCheckRunCompleted(c) && checkRunNamed(c) === name, name, 90_000);
  const row = async (stack: string) => (await f.db.query("SELECT state, pr_number, deployed_sha, outputs, destroy_reason, warned_at FROM review_stacks WHERE repo = $1 AND stack = $2", [REPO, stack])).rows[0];
  /** The full log of the newest task of a stack and kind. */
  const taskLog = async (stack: string, kind: string, step: string) =>
    (await f.db.query("SELECT l.content FROM task_logs l JOIN tasks t ON t.id = l.task_id JOIN workflows w ON w.id = t.workflow_id WHERE w.repo = $1 AND t.stack = $2 AND t.kind = $3 AND l.step = $4 ORDER BY t.created_at DESC LIMIT 1", [REPO, stack, kind, step])).rows[0]?.content as string;

  it("makes the review stack from the template, deploys it with no approval, comments its outputs and merges nothing; it never gets the base stack's credentials", async () => {
    const { number, sha } = await openPr();
    const name = `pr-${number}-web`;
    const start = gh.calls.length;
    await say(number, "/agent preview --review web");
    expect((await completed(`agent/preview (${name})`, start)).body).toMatchObject({ conclusion: "success" });
    expect((await completed(`agent/deploy (${name})`, start)).body).toMatchObject({ conclusion: "success" });
    const deployed = await commentSaying(number, "🔍 Review stack", "the outputs comment");
    const body = String(deployed.body!.body);
    expect(body).toContain(`Review stack \`${name}\` deployed at \`${sha.slice(0, 7)}\``);
    expect(body).toContain("from `web` with the config of `staging`. Nothing was merged.");
    expect(body).toContain("| `url` | https://site.review.example.test/ |");
    // A secret output stays secret.
    expect(body).toContain("| `adminPassword` | `[secret]` |");
    expect(JSON.stringify(gh.calls.map((c) => c.body))).not.toContain("s3cr3t-admin-password");
    expect(gh.find("PUT", /\/merge$/)).toHaveLength(0);
    expect(await row(name)).toMatchObject({ state: "live", pr_number: number, deployed_sha: sha, outputs: { url: "https://site.review.example.test/", adminPassword: "[secret]" } });
    // The first use created it with the template's config; the deploy found it (ephemeral here) and made it again the same way.
    const preview = await taskLog(name, "preview", "preview");
    expect(preview).toContain(`Created stack '${name}'`);
    // The attack: the program of a review stack reads the production token. It has none (a
    // secret it has is redacted in the log); the declared stack's sandbox, the control, has it.
    expect(preview).toContain("program sees prod=none review=[redacted]");
    expect(await taskLog(name, "deploy", "deploy")).toContain("program sees prod=none review=[redacted]");
    const control = gh.calls.length;
    await say(number, "/agent preview web");
    expect((await completed("agent/preview (web)", control)).body).toMatchObject({ conclusion: "success" });
    expect(await taskLog("web", "preview", "preview")).toContain("program sees prod=[redacted] review=none");
    const { rows: audit } = await f.db.query("SELECT action FROM audit_log WHERE repo = $1 AND pr_number = $2 AND action LIKE 'review.%' ORDER BY id", [REPO, number]);
    expect(audit.map((a) => a.action)).toEqual(["review.deployed"]);
    // `/agent status` lists it, with its expiry.
    await say(number, "/agent status");
    expect(comments(number).at(-1)).toMatch(new RegExp(`\\*\\*Review stacks\\*\\*\\n\\n- \`${name}\` \\(from \`web\`\\): live at \`${sha.slice(0, 7)}\`, destroyed at \\d{4}-\\d\\d-\\d\\dT`));
  });

  it("with `review.auto`, autoplan previews and deploys the review stack of a stack the push changes", async () => {
    await f.db.query("DELETE FROM review_stacks WHERE repo = $1", [REPO]);
    gh.files.set("main:.github/agent.yml", config(2).replace("review: { template: staging, ttl: 72h }", "review: { template: staging, ttl: 72h, auto: true }"));
    try {
      const { number, sha } = await openPr();
      gh.pulls.get(number)!.files = ["infra/index.ts"];
      const start = gh.calls.length;
      const payload = pullRequestPayload("opened", { repo: REPO, prNumber: number, headSha: sha, author: "alice", sender: "alice" });
      payload.repository.clone_url = f.git.cloneUrl(REPO);
      await f.watcher.handled((await deliver(f.app.port!, "pull_request", payload)).id);
      // Both declared stacks are previewed; only `web` (auto) brings its review stack, which deploys.
      await completed("agent/preview (web)", start);
      await completed("agent/preview (api)", start);
      expect((await completed(`agent/deploy (pr-${number}-web)`, start)).body).toMatchObject({ conclusion: "success" });
      await commentSaying(number, `Review stack \`pr-${number}-web\` deployed`, "the outputs comment");
      expect(gh.find("POST", /\/check-runs$/).filter((c) => String(c.body?.name).includes(`pr-${number}-api`))).toHaveLength(0);
    } finally {
      gh.files.set("main:.github/agent.yml", config(2));
    }
  });

  it("a review stack that needs an approval waits for one: the requester's own does not count; approved, it deploys", async () => {
    const { number } = await openPr();
    const name = `pr-${number}-api`;
    const start = gh.calls.length;
    await say(number, "/agent preview --review api");
    await completed(`agent/preview (${name})`, start);
    const checklist = await commentSaying(number, "Once it is approved, `/agent deploy --review api` deploys it.", "the checklist");
    expect(String(checklist.body!.body)).toMatch(/- \[ \] Approvals — 0 of 1/);
    // Nothing was made: the slot the blocked deploy took was given back.
    expect(await row(name)).toBeUndefined();
    await say(number, "/approve", "alice");
    await say(number, "/agent deploy --review api");
    expect(comments(number).at(-1)).toMatch(/- \[ \] Approvals — 0 of 1/);
    expect(gh.find("POST", /\/deployments$/).filter((c) => c.body?.environment === name)).toHaveLength(0);
    // The control: a reviewer approves, the same command deploys it.
    await say(number, "/approve", "bob");
    const deployFrom = gh.calls.length;
    await say(number, "/agent deploy --review api");
    expect(comments(number).at(-1)).toContain(`deploying \`${name}\``);
    expect((await completed(`agent/deploy (${name})`, deployFrom)).body).toMatchObject({ conclusion: "success" });
    await commentSaying(number, `Review stack \`${name}\` deployed`, "the outputs comment");
    expect(await row(name)).toMatchObject({ state: "live" });
  });

  it("closing the pull request destroys its review stacks, and only the review stacks", async () => {
    await f.db.query("DELETE FROM review_stacks WHERE repo = $1", [REPO]);
    const { number } = await openPr();
    const name = `pr-${number}-web`;
    const start = gh.calls.length;
    await say(number, "/agent preview --review web");
    await completed(`agent/deploy (${name})`, start);
    await commentSaying(number, "🔍 Review stack", "the outputs comment");
    gh.pulls.get(number)!.state = "closed";
    const res = await deliver(f.app.port!, "pull_request", pullRequestPayload("closed", { repo: REPO, prNumber: number, sender: "alice", author: "alice" }));
    await f.watcher.handled(res.id);
    // This sandbox's backend did not keep the stack: its destroy finds it gone.
    const destroyed = await commentSaying(number, "🧹 Review stack", "the destroy comment");
    expect(String(destroyed.body!.body)).toContain(`Review stack \`${name}\` destroyed (the pull request was closed): it no longer existed, nothing to delete.`);
    expect(await row(name)).toMatchObject({ state: "destroyed", destroy_reason: "the pull request was closed" });
    const { rows } = await f.db.query("SELECT detail FROM audit_log WHERE repo = $1 AND action = 'review.destroyed' AND pr_number = $2", [REPO, number]);
    expect(rows).toEqual([{ detail: expect.objectContaining({ stack: name, gone: true, reason: "the pull request was closed" }) }]);
  });

  it("when its TTL is near the pull request is warned; once it passes, the stack's resources are destroyed after a destroy preview and the stack removed", async () => {
    await f.db.query("DELETE FROM review_stacks WHERE repo = $1", [REPO]);
    const number = pr + 1;
    const name = `pr-${number}-web`;
    // The backend as a real one would hold it after an earlier deploy: the review stack with its bucket.
    const state = await backendState([{ stack: "staging", up: false }, { stack: name, up: true }]);
    const opened = await openPr(state);
    expect(opened.number).toBe(number);
    const start = gh.calls.length;
    await say(number, "/agent preview --review web");
    await completed(`agent/deploy (${name})`, start);
    await commentSaying(number, "🔍 Review stack", "the outputs comment");
    // It existed: its config came from the template with `config cp`, not `stack init`.
    expect(await taskLog(name, "preview", "preview")).not.toContain(`Created stack '${name}'`);

    // Inside the warning window (a quarter of 72 h): the sweep (every second here) warns once.
    await f.db.query("UPDATE review_stacks SET expires_at = now() + interval '2 hours' WHERE repo = $1 AND stack = $2", [REPO, name]);
    const warned = await commentSaying(number, "⏳ Review stack", "the expiry warning");
    expect(String(warned.body!.body)).toMatch(new RegExp(`Review stack \`${name}\` expires in 2 h .* To keep it another 3 days, deploy it again: \`/agent deploy --review web\``));
    // Past it: destroyed.
    await f.db.query("UPDATE review_stacks SET expires_at = now() - interval '1 second' WHERE repo = $1 AND stack = $2", [REPO, name]);
    const destroyed = await commentSaying(number, "🧹 Review stack", "the destroy comment");
    expect(String(destroyed.body!.body)).toContain(`Review stack \`${name}\` destroyed (its TTL passed): 1 resource deleted and the stack removed.`);
    expect(comments(number).filter((c) => c.startsWith("⏳"))).toHaveLength(1);
    const { rows } = await f.db.query("SELECT detail FROM audit_log WHERE repo = $1 AND action = 'review.destroyed' AND pr_number = $2", [REPO, number]);
    // What the destroy's preview listed is on record; the destroy deleted it and removed the stack.
    expect(rows[0].detail.resources).toEqual([`urn:pulumi:${name}::shop::aws:s3/bucket:Bucket::site`]);
    const log = await taskLog(name, "destroy", "deploy");
    expect(log).toMatch(/- {2}aws:s3:Bucket site deleted/);
    expect(log).toContain("the history and configuration removed");
    expect(await row(name)).toMatchObject({ state: "destroyed", destroy_reason: "its TTL passed" });
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });

  it("the cost guard refuses a review stack past review_max_live with the list of live ones; destroying one makes room", async () => {
    await f.db.query("DELETE FROM review_stacks WHERE repo = $1", [REPO]);
    gh.files.set("main:.github/agent.yml", config(1));
    try {
      const first = await openPr();
      const start = gh.calls.length;
      await say(first.number, "/agent preview --review web");
      await completed(`agent/deploy (pr-${first.number}-web)`, start);
      const second = await openPr();
      await say(second.number, "/agent preview --review web");
      const refused = comments(second.number).at(-1)!;
      expect(refused).toContain(`\`pr-${second.number}-web\` was not created: this repository already has 1 live review stack, its limit (\`review_max_live\`: 1). Nothing was run.`);
      expect(refused).toContain(`- \`pr-${first.number}-web\` of #${first.number}, expires `);
      expect((await f.db.query("SELECT count(*)::int AS n FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.repo = $1 AND t.stack = $2", [REPO, `pr-${second.number}-web`])).rows[0].n).toBe(0);
      // The first pull request gives its stack up: the second now gets one.
      await say(first.number, "/agent destroy --review");
      expect(comments(first.number).at(-1)).toContain(`destroying \`pr-${first.number}-web\``);
      await commentSaying(first.number, "🧹 Review stack", "the destroy comment");
      const again = gh.calls.length;
      await say(second.number, "/agent preview --review web");
      expect((await completed(`agent/deploy (pr-${second.number}-web)`, again)).body).toMatchObject({ conclusion: "success" });
    } finally {
      gh.files.set("main:.github/agent.yml", config(2));
    }
  });

  it("only review stacks can be destroyed by command, and only the pull request's own", async () => {
    const { number } = await openPr();
    await say(number, "/agent destroy web");
    expect(comments(number).at(-1)).toContain("`/agent destroy` only destroys this pull request's review stacks: write `/agent destroy --review web`");
    await say(number, `/agent destroy --review pr-${number - 1}-web`);
    expect(comments(number).at(-1)).toContain(`Unknown stack \`pr-${number - 1}-web\``);
    await say(number, "/agent destroy --review web", "rita");
    expect(comments(number).at(-1)).toContain("needs **write** access");
    const { rows } = await f.db.query("SELECT count(*)::int AS n FROM audit_log WHERE repo = $1 AND pr_number = $2 AND action = 'review.destroy_started'", [REPO, number]);
    expect(rows[0].n).toBe(0);
  });

  it("the reaper destroys a live review stack whose pull request closed while the app was down", async () => {
    await f.db.query("DELETE FROM review_stacks WHERE repo = $1", [REPO]);
    const { number } = await openPr();
    const name = `pr-${number}-web`;
    const start = gh.calls.length;
    await say(number, "/agent preview --review web");
    await completed(`agent/deploy (${name})`, start);
    await commentSaying(number, "🔍 Review stack", "the outputs comment");
    // Closed without the webhook reaching the app.
    gh.pulls.get(number)!.state = "closed";
    const reaped = await reapReviewOrphans(f.app.deps);
    expect(reaped).toEqual({ reaped: [name], resumed: [], failed: 0 });
    await commentSaying(number, "🧹 Review stack", "the destroy comment");
    expect(await until(async () => ((await row(name))?.state === "destroyed" ? row(name) : undefined), "the destroyed row")).toMatchObject({ destroy_reason: "orphaned: its pull request closed while the app was down" });
    // Open pull requests' stacks are left alone.
    expect(await reapReviewOrphans(f.app.deps)).toEqual({ reaped: [], resumed: [], failed: 0 });
  });
});
