import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { STICKY_MARKER } from "../../src/render/sticky-comment.js";
import { GitHubFake, isCheckRunCompleted, isCheckRunInProgress } from "../helpers/github-fake.js";
import { executable as exe, type GitHttpServer } from "../helpers/git-server.js";
import {
  deliver,
  issueCommentPayload,
  leftoverSandboxes,
  startAppFixture,
  type AppFixture,
  type DeliveryWatcher,
  TEST_REDIS_URL,
  type TestEnv,
} from "../helpers/harness.js";
import { createRedis } from "../../src/connectors/queues.js";

const REPO = "octo-org/infra-live";
const TOKEN = "ghs_previewFlowInstallationToken000000001";

const AGENT_YML = `version: 1
default_stack: dev
stacks:
  - name: dev
    dir: infra
  - name: prod
    dir: infra
steps:
  lint: ["./lint.sh"]
  test: "./test.sh && echo \\"tests ran for $AGENT_STACK\\""
  preview: ["./preview.sh"]
`;
const GOOD_TREE = {
  "infra/lint.sh": exe("#!/bin/sh\necho 'lint: 0 problems'\n"),
  "infra/test.sh": exe("#!/bin/sh\necho 'tests: 3 passed'\n"),
  "infra/preview.sh": exe("#!/bin/sh\necho \"preview of $AGENT_STACK at $AGENT_HEAD_SHA\"\nid -u\necho '+ 1 to create'\n"),
};


describe("/agent preview from PR comment to check run (real Redis, Postgres, Docker)", () => {
  let f: AppFixture;
  let env: TestEnv;
  let app: RunningApp;
  let git: GitHttpServer;
  let gh: GitHubFake;
  let watcher: DeliveryWatcher;
  let db: pg.Client;
  let pr = 1;
  const logs: string[] = [];

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { logs, env: { SANDBOX_ALLOWED_IMAGES: "agent-sandbox:does-not-exist", PUBLIC_URL: "https://agent.example.test" } });
    ({ env, app, git, watcher, db } = f);
  });
  afterEach(() => {
    gh?.stop();
  });
  afterAll(() => f.stop());

  /**
   * A fresh fake GitHub and PR for each test: the PR head is a real commit on the git server.
   * Every test is a different PR on the same stacks, so earlier tests' stack locks are
   * released first (locks have their own test file).
   */
  async function setup(tree: Record<string, string | { content: string; mode: number }> = GOOD_TREE, config = AGENT_YML) {
    await db.query("DELETE FROM stack_locks");
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.permissions.set("rita", "read");
    gh.files.set("main:.github/agent.yml", config);
    const sha = await git.commit(REPO, tree);
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha });
    return { sha, number };
  }

  /** The sticky comment of a PR reached a final state: all of that PR's work is done. */
  function stickySettled(number: number) {
    return gh.waitFor((c) => {
      const id = Number(/\/issues\/comments\/(\d+)$/.exec(c.path)?.[1]);
      const body = String(c.body?.body ?? "");
      const onPr = c.method === "PATCH" ? gh.comments.get(id)?.issue === number : c.method === "POST" && c.path.endsWith(`/issues/${number}/comments`);
      return onPr && body.includes(STICKY_MARKER) && !body.includes("in progress");
    }, `the sticky comment of #${number} to settle`);
  }

  function comment(number: number, body: string, login = "alice", extra: Partial<Parameters<typeof issueCommentPayload>[0]> = {}) {
    return issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: number, body, login, ...extra });
  }

  it("runs lint, test and preview in a sandbox at the head SHA and reports them", async () => {
    const { sha, number } = await setup();
    const payload = comment(number, "Looks good.\n/agent preview dev");
    const res = await deliver(app.port!, "issue_comment", payload);
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ ok: true, queued: true });

    const reaction = await gh.waitFor((c) => c.method === "POST" && c.path.endsWith(`/issues/comments/${payload.comment.id}/reactions`), "the 👀 reaction");
    expect(reaction.body).toEqual({ content: "eyes" });
    const created = await gh.waitFor((c) => c.method === "POST" && c.path.endsWith("/check-runs"), "check run creation");
    expect(created.body).toMatchObject({ name: "agent/preview (dev)", head_sha: sha, status: "queued" });

    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    expect(done.body).toMatchObject({ conclusion: "success" });
    const output = done.body!.output as { title: string; summary: string; text: string };
    expect(output.title).toBe("Preview of dev succeeded");
    expect(output.summary).toMatch(/✅ lint[\s\S]*✅ test[\s\S]*✅ preview/);
    expect(output.text).toContain("lint: 0 problems");
    expect(output.text).toContain("tests ran for dev");
    // The preview ran on exactly the PR head commit, as the unprivileged sandbox user.
    expect(output.text).toContain(`preview of dev at ${sha}`);
    expect(output.text).toMatch(/\n65534\n/);
    // in_progress came between queued and completed.
    const checkRunId = Number(done.path.split("/").pop());
    const patches = gh.find("PATCH", new RegExp(`check-runs/${checkRunId}$`));
    expect(patches[0]!.body).toMatchObject({ status: "in_progress" });

    // The git server was asked with the installation token, never without it.
    expect(git.requests.length).toBeGreaterThan(0);
    expect(git.requests.every((r) => r.authorized)).toBe(true);

    // One sticky comment, created once and then updated to the final state.
    const stickyPosts = gh.find("POST", new RegExp(`/issues/${number}/comments$`)).filter((c) => String(c.body?.body).includes(STICKY_MARKER));
    expect(stickyPosts).toHaveLength(1);
    const stickyId = [...gh.comments.entries()].find(([, c]) => c.issue === number && c.body.includes(STICKY_MARKER))![0];
    await gh.waitFor((c) => c.method === "PATCH" && c.path.endsWith(`/issues/comments/${stickyId}`) && String(c.body?.body).includes("✅ succeeded"), "the sticky comment update");
    const sticky = gh.comments.get(stickyId)!.body;
    expect(sticky).toContain("`dev`");
    expect(sticky).toContain(sha.slice(0, 7));

    const { rows: tasks } = await db.query("SELECT t.state, t.steps, w.head_sha, w.state AS wstate FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1", [number]);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ state: "SUCCEEDED", head_sha: sha, wstate: "READY_FOR_APPLY" });
    const { rows: audit } = await db.query("SELECT action, actor FROM audit_log WHERE pr_number = $1 ORDER BY id", [number]);
    expect(audit.map((a) => a.action)).toEqual(["command.received", "lock.acquired", "preview.queued", "lock.acquired", "preview.succeeded"]);
    expect(audit[0].actor).toBe("alice");
    expect(await leftoverSandboxes(app)).toBe(0);
    expect(gh.unexpected).toEqual([]);
  });

  it("links the check run to the full, stored log behind a signed URL", async () => {
    const big = "#!/bin/sh\necho FIRST-LINE\nseq 1 20000\necho LAST-LINE\n";
    const { number } = await setup({ ...GOOD_TREE, "infra/preview.sh": exe(big) });
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev"));
    const created = await gh.waitFor((c) => c.method === "POST" && c.path.endsWith("/check-runs"), "check run creation");
    const link = String(created.body!.details_url);
    expect(link).toMatch(/^https:\/\/agent\.example\.test\/logs\/[0-9a-f-]{36}\?exp=\d{10}&sig=[0-9a-f]{64}$/);
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    const output = done.body!.output as { summary: string; text: string };
    expect(output.summary).toContain(`[Full log](${link})`);
    // The check run shows head and tail with a marker; the middle is only in the full log.
    expect(output.text).toContain("FIRST-LINE");
    expect(output.text).toContain("LAST-LINE");
    expect(output.text).toMatch(/… \[\d+ characters omitted\] …/);
    expect(output.text).not.toContain("\n10000\n");
    await stickySettled(number);

    const { pathname, search } = new URL(link);
    const res = await fetch(`http://127.0.0.1:${app.port}${pathname}${search}`);
    expect(res.status).toBe(200);
    const full = await res.text();
    expect(full).toContain("==> preview <==");
    expect(full).toContain("FIRST-LINE\n1\n2\n");
    expect(full).toContain("\n10000\n");
    expect(full).toContain("20000\nLAST-LINE");
    expect(full).toContain("==> lint <==\nlint: 0 problems");
    // Without the right signature there is nothing to read.
    const taskId = pathname.split("/").pop()!;
    expect((await fetch(`http://127.0.0.1:${app.port}/logs/${taskId}?sig=${"0".repeat(64)}`)).status).toBe(403);
    expect((await fetch(`http://127.0.0.1:${app.port}/logs/${taskId}`)).status).toBe(403);
    expect((await fetch(`http://127.0.0.1:${app.port}/logs/../../etc/passwd${search}`)).status).toBe(404);
  });

  it("a failing step fails the check run, skips later steps, and shows in the same sticky comment on re-run", async () => {
    const { number } = await setup({
      ...GOOD_TREE,
      "infra/test.sh": exe("#!/bin/sh\necho 'expected 2, got 3' >&2\nexit 3\n"),
    });
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview"));
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    expect(done.body).toMatchObject({ conclusion: "failure" });
    const output = done.body!.output as { title: string; summary: string; text: string };
    expect(output.title).toBe("Preview of dev failed at test");
    expect(output.summary).toContain("❌ test");
    expect(output.summary).toContain("exit 3");
    expect(output.summary).toContain("⏭️ preview");
    expect(output.text).toContain("expected 2, got 3");
    expect(output.text).not.toContain("preview of dev");

    // Second preview of the same PR (a fix pushed): the sticky comment is edited, not re-posted.
    const fixed = await git.commit(REPO, GOOD_TREE);
    gh.pulls.set(number, { headSha: fixed });
    const before = gh.calls.length;
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev"));
    await gh.waitFor((c) => gh.calls.indexOf(c) >= before && isCheckRunCompleted(c), "the second completed check run");
    const stickyPosts = gh.find("POST", new RegExp(`/issues/${number}/comments$`)).filter((c) => String(c.body?.body).includes(STICKY_MARKER));
    expect(stickyPosts).toHaveLength(1);
    const stickyId = [...gh.comments.entries()].find(([, c]) => c.issue === number && c.body.includes(STICKY_MARKER))![0];
    await gh.waitFor((c) => c.method === "PATCH" && c.path.endsWith(`/issues/comments/${stickyId}`) && String(c.body?.body).includes(fixed.slice(0, 7)) && String(c.body?.body).includes("✅ succeeded"), "the sticky comment showing the new commit");
    expect(await leftoverSandboxes(app)).toBe(0);
  });

  it("streams a running step's output into the in-progress check run before it completes", async () => {
    const { number } = await setup({ ...GOOD_TREE, "infra/preview.sh": exe("#!/bin/sh\necho 'halfway through the plan'\nsleep 1\necho 'plan done'\n") });
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev"));
    const live = await gh.waitFor(
      (c) => isCheckRunInProgress(c) && String((c.body?.output as { text?: string } | undefined)?.text).includes("halfway through the plan"),
      "an in-progress update with the partial output",
    );
    expect(String((live.body!.output as { summary: string }).summary)).toContain("🔄 preview");
    expect(String((live.body!.output as { text: string }).text)).not.toContain("plan done");
    expect(gh.calls.indexOf(live)).toBeLessThan(gh.calls.findIndex(isCheckRunCompleted) === -1 ? Infinity : gh.calls.findIndex(isCheckRunCompleted));
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    expect(String((done.body!.output as { text: string }).text)).toContain("plan done");
    await stickySettled(number);
  });

  const checkRunNamed = (c: { path: string }) => String(gh.checkRuns.get(Number(c.path.split("/").pop()))?.name);

  it("previews several stacks as a DAG: their shared lint and test run once, then the previews in parallel", async () => {
    const { number } = await setup();
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev prod"));
    const names = () => gh.find("POST", /\/check-runs$/).map((c) => c.body?.name);
    const prodDone = await gh.waitFor((c) => isCheckRunCompleted(c) && checkRunNamed(c) === "agent/preview (prod)", "prod completed");
    const devDone = await gh.waitFor((c) => isCheckRunCompleted(c) && checkRunNamed(c) === "agent/preview (dev)", "dev completed");
    expect(names().sort()).toEqual(["agent/checks (dev, prod)", "agent/preview (dev)", "agent/preview (prod)"]);
    // The checks completed before either preview started.
    const checksDone = gh.calls.findIndex((c) => isCheckRunCompleted(c) && checkRunNamed(c) === "agent/checks (dev, prod)");
    const started = gh.calls.filter((c) => isCheckRunInProgress(c) && checkRunNamed(c).startsWith("agent/preview")).map((c) => gh.calls.indexOf(c));
    expect(checksDone).toBeGreaterThanOrEqual(0);
    expect(Math.min(...started)).toBeGreaterThan(checksDone);
    // Each preview shows the shared lint and test results, and only the preview ran again.
    for (const done of [devDone, prodDone]) {
      expect(done.body).toMatchObject({ conclusion: "success" });
      expect(String((done.body!.output as { summary: string }).summary)).toMatch(/✅ lint[\s\S]*✅ test[\s\S]*✅ preview/);
    }
    const { rows } = await db.query(
      `SELECT t.kind, t.stack, t.state, array_length(t.depends_on, 1) AS deps, (SELECT array_agg(step ORDER BY step) FROM task_logs l WHERE l.task_id = t.id) AS logged
       FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 ORDER BY t.kind, t.stack`,
      [number],
    );
    expect(rows).toEqual([
      { kind: "checks", stack: "checks (dev, prod)", state: "SUCCEEDED", deps: null, logged: ["lint", "test"] },
      { kind: "preview", stack: "dev", state: "SUCCEEDED", deps: 1, logged: ["preview"] },
      { kind: "preview", stack: "prod", state: "SUCCEEDED", deps: 1, logged: ["preview"] },
    ]);
    await stickySettled(number);
  });

  it("when the shared checks fail, the previews waiting for them end without running, saying why", async () => {
    const { number } = await setup({ ...GOOD_TREE, "infra/lint.sh": exe("#!/bin/sh\necho 'main.ts:1:1: error: nope'\nexit 1\n") });
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev prod"));
    for (const stack of ["dev", "prod"]) {
      const done = await gh.waitFor((c) => isCheckRunCompleted(c) && checkRunNamed(c) === `agent/preview (${stack})`, `${stack} completed`);
      expect(done.body).toMatchObject({ conclusion: "failure" });
      const out = done.body!.output as { summary: string };
      expect(out.summary).toContain("not run: lint failed in the shared checks (dev, prod)");
      expect(out.summary).toMatch(/❌ lint[\s\S]*⏭️ test[\s\S]*⏭️ preview/);
    }
    const checks = gh.calls.find((c) => isCheckRunCompleted(c) && checkRunNamed(c) === "agent/checks (dev, prod)")!;
    expect(checks.body).toMatchObject({ conclusion: "failure" });
    const { rows } = await db.query(
      "SELECT t.kind, t.state, (SELECT count(*)::int FROM task_logs l WHERE l.task_id = t.id) AS logs FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 ORDER BY t.kind, t.stack",
      [number],
    );
    // No preview container ran: nothing was logged for them.
    expect(rows).toEqual([
      { kind: "checks", state: "FAILED", logs: 1 },
      { kind: "preview", state: "FAILED", logs: 0 },
      { kind: "preview", state: "FAILED", logs: 0 },
    ]);
    await stickySettled(number);
    expect(await leftoverSandboxes(app)).toBe(0);
  });

  it("a duplicate delivery runs nothing twice", async () => {
    const { number } = await setup();
    const payload = comment(number, "/agent preview dev");
    const first = await deliver(app.port!, "issue_comment", payload);
    const second = await deliver(app.port!, "issue_comment", payload, { id: first.id });
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.json).toMatchObject({ duplicate: true });
    await watcher.handled(first.id);
    await gh.waitFor(isCheckRunCompleted, "the completed check run");
    const { rows } = await db.query("SELECT count(*)::int AS n FROM workflows WHERE pr_number = $1", [number]);
    expect(rows[0].n).toBe(1);
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(1);
    expect(gh.find("POST", /\/reactions$/)).toHaveLength(1);
    await stickySettled(number);
  });

  it("the same command twice while the first is queued collapses into one task", async () => {
    const { number, sha } = await setup({ ...GOOD_TREE, "infra/lint.sh": exe("#!/bin/sh\necho slow lint\nsleep 1\n") });
    const a = await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev"));
    const b = await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev"));
    await Promise.all([watcher.handled(a.id), watcher.handled(b.id)]);
    await gh.waitFor(isCheckRunCompleted, "the completed check run");
    const { rows } = await db.query("SELECT t.job_id FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1", [number]);
    expect(rows).toHaveLength(1);
    expect(rows[0].job_id).toContain(sha);
    expect(rows[0].job_id).not.toContain(":");
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(1);
    await stickySettled(number);
  });

  it("rejects a forged signature with 401 and enqueues nothing", async () => {
    const { number } = await setup();
    const payload = comment(number, "/agent preview dev");
    const forged = await deliver(app.port!, "issue_comment", payload, { signature: "sha256=" + "0".repeat(64) });
    expect(forged.status).toBe(401);
    const unsigned = await deliver(app.port!, "issue_comment", payload, { signature: null });
    expect(unsigned.status).toBe(401);
    // A correct signature for a different body does not carry over.
    const other = await deliver(app.port!, "issue_comment", { ...payload, comment: { ...payload.comment, body: "/agent preview prod" } });
    expect(other.status).toBe(202);
    const { rows } = await db.query("SELECT id FROM deliveries WHERE id = ANY($1)", [[forged.id, unsigned.id]]);
    expect(rows).toHaveLength(0);
    expect(await app.deps.queues.webhooks.getJob(`wh__${forged.id}`)).toBeUndefined();
    await watcher.handled(other.id);
    await stickySettled(number);
  });

  it("refuses a commenter without write permission and runs nothing", async () => {
    const { number } = await setup();
    const res = await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev", "rita"));
    await watcher.handled(res.id);
    const refusal = gh.find("POST", new RegExp(`/issues/${number}/comments$`));
    expect(refusal).toHaveLength(1);
    expect(String(refusal[0]!.body!.body)).toMatch(/^@rita sorry, `preview` needs \*\*write\*\* access.*you have \*\*read\*\*/);
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(0);
    expect(gh.find("POST", /\/reactions$/)).toHaveLength(0);
    const { rows } = await db.query("SELECT count(*)::int AS n FROM workflows WHERE pr_number = $1", [number]);
    expect(rows[0].n).toBe(0);
    const { rows: audit } = await db.query("SELECT action, actor FROM audit_log WHERE pr_number = $1", [number]);
    expect(audit).toEqual([{ action: "command.refused", actor: "rita" }]);
  });

  it("ignores comments by bots, including its own", async () => {
    const { number } = await setup();
    const own = await deliver(app.port!, "issue_comment", comment(number, `${STICKY_MARKER}\n/agent preview dev`, "pr-infra-agent[bot]", { userType: "Bot" }));
    const other = await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev", "renovate[bot]", { userType: "Bot" }));
    await Promise.all([watcher.handled(own.id), watcher.handled(other.id)]);
    expect(gh.calls).toEqual([]);
  });

  it("answers /agent help with the command list, and unknown or bad commands with what is valid", async () => {
    const { number } = await setup();
    const help = await deliver(app.port!, "issue_comment", comment(number, "/agent help"));
    await watcher.handled(help.id);
    const helpReply = String(gh.find("POST", new RegExp(`/issues/${number}/comments$`))[0]!.body!.body);
    expect(helpReply).toContain("/agent preview");
    expect(helpReply).toContain("/approve");
    expect(helpReply).toMatch(/`dev`.*`prod`/);

    const typo = await deliver(app.port!, "issue_comment", comment(number, "/agent previw dev"));
    await watcher.handled(typo.id);
    const injection = await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev; rm -rf /"));
    await watcher.handled(injection.id);
    const replies = gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body));
    expect(replies[1]).toMatch(/previw/);
    expect(replies[1]).toMatch(/did you mean `preview`/);
    expect(replies[2]).toMatch(/`dev;`/);
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(0);
    const { rows } = await db.query("SELECT count(*)::int AS n FROM workflows WHERE pr_number = $1", [number]);
    expect(rows[0].n).toBe(0);
  });

  it("reports an invalid default-branch config with path and line, and runs nothing", async () => {
    const { number } = await setup(GOOD_TREE, "version: 1\nstacks:\n  - name: dev\n    dir: ../../etc\nsteps:\n  lint: [\"true\"]\n");
    const res = await deliver(app.port!, "issue_comment", comment(number, "/agent preview"));
    await watcher.handled(res.id);
    const reply = String(gh.find("POST", new RegExp(`/issues/${number}/comments$`))[0]!.body!.body);
    expect(reply).toContain("not valid");
    expect(reply).toMatch(/line 4.*stacks\[0\]\.dir/);
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(0);
  });

  it("uses the default branch's config, not the one the PR edits (a PR cannot change its own steps)", async () => {
    const { number } = await setup({
      ...GOOD_TREE,
      // The PR head rewrites the config to run something else; it must be ignored.
      ".github/agent.yml": "version: 1\nstacks:\n  - name: dev\n    dir: .\nsteps:\n  preview: [\"sh\", \"-c\", \"echo PWNED-BY-PR\"]\n",
    });
    gh.files.set(`${gh.pulls.get(number)!.headSha}:.github/agent.yml`, "version: 1\nstacks:\n  - name: dev\nsteps:\n  preview: [\"sh\", \"-c\", \"echo PWNED-BY-PR\"]\n");
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev"));
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    const text = (done.body!.output as { text: string }).text;
    expect(text).not.toContain("PWNED-BY-PR");
    expect(text).toContain("lint: 0 problems");
    const contentReads = gh.find("GET", /\/contents\//);
    expect(contentReads.length).toBeGreaterThan(0);
    // By the branch's full ref: a tag named like the branch cannot stand in for it.
    expect(contentReads.every((c) => c.query.get("ref") === "refs/heads/main")).toBe(true);
    await stickySettled(number);
  });

  it("a head commit the repository no longer has fails the task once, clearly, without retries", async () => {
    const { number } = await setup();
    gh.pulls.set(number, { headSha: "e".repeat(40) });
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev"));
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    expect(done.body).toMatchObject({ conclusion: "failure" });
    expect(String((done.body!.output as { summary: string }).summary)).toMatch(/could not be fetched/);
    await stickySettled(number);
    const { rows } = await db.query("SELECT t.state, t.attempts, t.error FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1", [number]);
    expect(rows[0]).toMatchObject({ state: "FAILED", attempts: 1 });
  });

  it("an engine error is retried with backoff, then reported as an internal error", async () => {
    const { number } = await setup(GOOD_TREE, AGENT_YML + "sandbox:\n  image: agent-sandbox:does-not-exist\n");
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev"));
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    expect(done.body).toMatchObject({ conclusion: "failure" });
    expect(String((done.body!.output as { summary: string }).summary)).toMatch(/internal error after 3 attempts: could not create the sandbox container/);
    await stickySettled(number);
    const { rows } = await db.query("SELECT t.state, t.attempts FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1", [number]);
    expect(rows[0]).toMatchObject({ state: "FAILED", attempts: 3 });
    expect(await leftoverSandboxes(app)).toBe(0);
  });

  it("the installation token never lands in Redis, Postgres, logs, comments or check runs; job data holds ids only", async () => {
    const { number } = await setup();
    const enqueued: Array<{ data: object }> = [];
    const onWaiting = (job: { data: object }) => void enqueued.push(job);
    app.deps.queues.tasks.on("waiting", onWaiting);
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview dev"));
    await gh.waitFor(isCheckRunCompleted, "the completed check run");
    await stickySettled(number);
    app.deps.queues.tasks.off("waiting", onWaiting);
    expect(enqueued).toHaveLength(1);
    expect(Object.keys(enqueued[0]!.data).sort()).toEqual(["deliveryId", "taskId", "workflowId"]);
    const redis = createRedis(TEST_REDIS_URL);
    const keys = await redis.keys(`${env.queuePrefix}:*`);
    for (const key of keys) {
      const type = await redis.type(key);
      const dump = type === "string" ? await redis.get(key) : type === "hash" ? JSON.stringify(await redis.hgetall(key)) : type === "list" ? JSON.stringify(await redis.lrange(key, 0, -1)) : type === "zset" ? JSON.stringify(await redis.zrange(key, 0, -1)) : type === "stream" ? JSON.stringify(await redis.xrange(key, "-", "+")) : "";
      expect(dump ?? "", key).not.toContain(TOKEN);
    }
    await redis.quit();
    const { rows: dbHits } = await db.query(
      `SELECT 'audit' AS t FROM audit_log WHERE detail::text LIKE $1 UNION ALL SELECT 'tasks' FROM tasks WHERE steps::text LIKE $1 OR coalesce(error, '') LIKE $1
       UNION ALL SELECT 'workflows' FROM workflows WHERE config::text LIKE $1`,
      [`%${TOKEN}%`],
    );
    expect(dbHits).toEqual([]);
    expect(logs.join("\n")).not.toContain(TOKEN);
    expect(JSON.stringify(gh.calls.map((c) => c.body))).not.toContain(TOKEN);
    // The token was really used, as a header on git's requests.
    expect(git.requests.every((r) => r.authorized)).toBe(true);
  });

  it("logs are JSON with delivery_id, workflow_id and task_id", async () => {
    const entries = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const queued = entries.find((e) => e.msg === "delivery queued");
    expect(queued?.delivery_id).toEqual(expect.any(String));
    const step = entries.find((e) => e.msg === "step finished");
    expect(step).toMatchObject({ task_id: expect.any(String), workflow_id: expect.any(String), delivery_id: expect.any(String), step: expect.any(String) });
  });

  it("user text never reaches a shell: a crafted stack name is rejected before anything runs", async () => {
    const { number } = await setup();
    const res = await deliver(app.port!, "issue_comment", comment(number, "/agent preview $(touch${IFS}/workspace/pwned)"));
    await watcher.handled(res.id);
    const reply = String(gh.find("POST", new RegExp(`/issues/${number}/comments$`))[0]!.body!.body);
    expect(reply).toMatch(/stack/i);
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(0);
  });
});
