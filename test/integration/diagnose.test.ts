/**
 * Issue diagnostics end to end: signed webhooks (a comment, the label, an issue opened from a
 * template, a close, a push) into the running app on a real Redis and Postgres; GitHub and
 * Lambda Labs answered by nock. The report is built from a seeded database and the knowledge
 * base lives in the PostgreSQL store (no QDRANT_URL).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QueueEvents } from "bullmq";
import nock from "nock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials, type CredentialRequest } from "../../src/connectors/credentials.js";
import { REPORT_MARKER } from "../../src/render/diagnose.js";
import { createRedis, DIAGNOSE_QUEUE } from "../../src/connectors/queues.js";
import { GitHubFake, type RecordedCall } from "../helpers/github-fake.js";
import { deliver, INSTALLATION_ID, issueCommentPayload, startAppFixture, TEST_REDIS_URL, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/diagnosed";
const TOKEN = "ghs_diagnoseInstallationToken000000000031";
const LAMBDA_KEY = "secret_lambda_probe_key_0123456789abcdef";
const LAMBDA = "https://cloud.lambdalabs.com";
const CONFIG = `version: 1
stacks:
  - name: prod
    dir: infra
    steps: { preview: ["true"] }
  - name: dev
    dir: infra
    steps: { preview: ["true"] }
diagnose:
  label: "incident:diagnose"
  templates: [incident.md]
  runbooks: docs/runbooks
`;
const TEMPLATE = "---\nname: Incident\nabout: Something is broken\ntitle: '[incident] '\nlabels: incident, sev2\n---\n\n## What happened\n";
const RUNBOOK_RDS = `# RDS runbook

## Instance stuck modifying after a class change
The deploy fails with "timeout while waiting for state to become 'available'" on aws:rds:Instance.
1. Check the instance in the RDS console: modifying means AWS is still working.
2. Wait for available, run pulumi refresh, then re-run /agent deploy.
`;
const RUNBOOK_NPM = `# Dependencies

## npm install times out
ETIMEDOUT or EAI_AGAIN while fetching packages from the registry.
1. Retry; check the egress allowlist for the registry host.
`;
const FAILURE_LOG = (id: string) =>
  [
    "Updating (prod):",
    `   aws:rds:Instance orders-db updating (0s) [diff: ~instanceClass] id=${id}`,
    " error: update failed: waiting for RDS DB Instance (orders-db) to be available: timeout while waiting for state to become 'available'",
    "   pulumi:pulumi:Stack platform-prod **failed** 1 error",
  ].join("\n");

const require = createRequire(import.meta.url);
type Example = { name: string; examples: Array<Record<string, any>> };
const examples = require("@octokit/webhooks-examples/api.github.com/index.json") as Example[];

/** An `issues` payload from @octokit/webhooks-examples, pointed at the test repo and issue. */
function issuesPayload(action: "opened" | "labeled" | "closed", o: { number: number; title: string; body: string; sender: string; labels?: string[]; label?: string }): Record<string, any> {
  const base = examples.find((e) => e.name === "issues")!.examples.find((e) => e.action === action) ?? examples.find((e) => e.name === "issues")!.examples[0]!;
  const p = structuredClone(base);
  const [owner, name] = REPO.split("/") as [string, string];
  p.action = action;
  p.repository = { ...p.repository, name, full_name: REPO, owner: { ...p.repository.owner, login: owner }, default_branch: "main" };
  const labels = (o.labels ?? []).map((l, i) => ({ id: 700 + i, name: l, color: "ededed", default: false }));
  p.issue = {
    ...p.issue,
    number: o.number,
    title: o.title,
    body: o.body,
    labels,
    state: action === "closed" ? "closed" : "open",
    state_reason: action === "closed" ? "completed" : null,
    closed_at: action === "closed" ? "2026-12-04T16:00:00Z" : null,
    html_url: `https://github.com/${REPO}/issues/${o.number}`,
    user: { ...p.issue.user, login: o.sender, type: "User" },
  };
  delete p.issue.pull_request;
  if (o.label) p.label = { id: 800, name: o.label, color: "d73a4a", default: false };
  p.sender = { ...p.sender, login: o.sender, type: "User" };
  p.installation = { id: INSTALLATION_ID, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg==" };
  return p;
}

describe("issue diagnostics", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let dir: string;
  let diagnoses: QueueEvents;
  const credentialRequests: CredentialRequest[] = [];

  async function seed(): Promise<void> {
    const wf = async (pr: number, sha: string, kind = "deploy") =>
      (
        await f.db.query<{ id: string }>(
          `INSERT INTO workflows (kind, state, repo, installation_id, pr_number, head_sha, requested_by, config) VALUES ($1, 'DONE', $2, $3, $4, $5, 'bob', '{}') RETURNING id`,
          [kind, REPO, INSTALLATION_ID, pr, sha],
        )
      ).rows[0]!.id;
    const task = async (workflowId: string, stack: string, state: string, minutesAgo: number, steps: unknown[], kind = "deploy", error: string | null = null) =>
      (
        await f.db.query<{ id: string }>(
          `INSERT INTO tasks (workflow_id, kind, stack, state, job_id, steps, error, created_at, started_at, finished_at)
           VALUES ($1, $2, $3, $4::task_state, $5, $6, $7, now() - make_interval(mins => $8),
                   CASE WHEN $4::text = 'PENDING' THEN NULL ELSE now() - make_interval(mins => $8) END,
                   CASE WHEN $4::text IN ('PENDING', 'RUNNING') THEN NULL ELSE now() - make_interval(mins => $8 - 2) END) RETURNING id`,
          [workflowId, kind, stack, state, `job-${Math.random()}`, JSON.stringify(steps), error, minutesAgo],
        )
      ).rows[0]!.id;
    const failedStep = { name: "deploy", status: "failed", exitCode: 255, durationMs: 150_000, outputTail: "tail", truncated: false };
    // An old failure of the same kind on prod (PR 12), fixed by PR 14's deploy two hours later.
    const old = await task(await wf(12, "a".repeat(40)), "prod", "FAILED", 60 * 24 * 30, [failedStep], "deploy", "step deploy exited with code 255");
    await f.db.query("INSERT INTO task_logs (task_id, step, content) VALUES ($1, 'deploy', $2)", [old, FAILURE_LOG("i-0f3a")]);
    const fixWf = await wf(14, "b".repeat(40));
    const fix = await task(fixWf, "prod", "SUCCEEDED", 60 * 24 * 30 - 120, [{ ...failedStep, status: "succeeded", exitCode: 0 }]);
    await f.db.query(
      `INSERT INTO deploys (task_id, repo, stack, pr_number, head_sha, plan_hash, state, requested_by, finished_at) VALUES ($1, $2, 'prod', 14, $3, 'sha256:fix', 'SUCCEEDED', 'carol', now() - interval '29 days')`,
      [fix, REPO, "b".repeat(40)],
    );
    // An unrelated old failure on dev.
    const npm = await task(await wf(13, "c".repeat(40)), "dev", "FAILED", 60 * 24 * 20, [{ ...failedStep, name: "preview" }], "preview", "step preview exited with code 1");
    await f.db.query("INSERT INTO task_logs (task_id, step, content) VALUES ($1, 'preview', $2)", [npm, "npm ERR! code ETIMEDOUT\nnpm ERR! network request to registry failed, reason: connect ETIMEDOUT 104.16.0.35:443"]);
    // Today's failure on prod (PR 41) — the incident.
    const today = await task(await wf(41, "d".repeat(40)), "prod", "FAILED", 40, [failedStep], "deploy", "step deploy exited with code 255");
    await f.db.query("INSERT INTO task_logs (task_id, step, content) VALUES ($1, 'deploy', $2)", [today, FAILURE_LOG("i-77b1")]);
    await f.db.query("INSERT INTO stack_locks (repo, stack, pr_number, locked_by, expires_at) VALUES ($1, 'prod', 41, 'bob', now() + interval '1 day')", [REPO]);
    // A preview running for 3 hours (the test server's task timeout is 120 s): stuck.
    await f.db.query("UPDATE tasks SET state = 'RUNNING', finished_at = NULL WHERE id = $1", [await task(await wf(42, "f".repeat(40), "preview"), "prod", "SUCCEEDED", 180, [], "preview")]);
    // A deploy of PR 43 queued behind it: waiting.
    const queued = await task(await wf(43, "9".repeat(40)), "prod", "PENDING", 5, []);
    await f.db.query(
      `INSERT INTO deploys (task_id, repo, stack, pr_number, head_sha, plan_hash, state, requested_by) VALUES ($1, $2, 'prod', 43, $3, 'sha256:q', 'PENDING', 'alice')`,
      [queued, REPO, "9".repeat(40)],
    );
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "agent-diagnose-"));
    const configFile = join(dir, "diagnose.yml");
    await writeFile(
      configFile,
      `probes:
  timeout_ms: 2000
  redis: {}
  postgres: { url_env: PROBE_DATABASE_URL }
  lambda_labs: { api_key_env: LAMBDA_API_KEY, instance_names: [gpu-trainer-1] }
`,
    );
    f = await startAppFixture(TOKEN, {
      env: { DIAGNOSE_CONFIG: configFile },
      credentials: staticCredentials((req): Record<string, string> => {
        credentialRequests.push(req);
        return req.kind === "diagnose" ? { PROBE_DATABASE_URL: f.env.databaseUrl, LAMBDA_API_KEY: LAMBDA_KEY } : {};
      }),
    });
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["rita", "read"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
    gh.files.set("main:.github/ISSUE_TEMPLATE/incident.md", TEMPLATE);
    gh.files.set("main:docs/runbooks/rds.md", RUNBOOK_RDS);
    gh.files.set("main:docs/runbooks/deps/npm.md", RUNBOOK_NPM);
    await seed();
    diagnoses = new QueueEvents(DIAGNOSE_QUEUE, { connection: createRedis(TEST_REDIS_URL), prefix: f.env.queuePrefix });
    await diagnoses.waitUntilReady();
  });
  afterAll(async () => {
    await diagnoses?.close();
    gh?.stop();
    await f?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function lambdaUp(status: "active" | "unhealthy") {
    return nock(LAMBDA)
      .get("/api/v1/instances")
      .matchHeader("authorization", `Bearer ${LAMBDA_KEY}`)
      .reply(200, { data: [{ id: "0920582c7ff041399e34823a0be62549", name: "gpu-trainer-1", status, ip: "198.51.100.2", region: { name: "us-east-1", description: "Virginia, USA" }, instance_type: { name: "gpu_1x_a10" } }] });
  }
  const reports = (issue: number) => [...gh.comments.entries()].filter(([, c]) => c.issue === issue && c.body.startsWith(REPORT_MARKER));
  const isReportWrite = (issue: number) => (c: RecordedCall) =>
    (c.method === "POST" && c.path.endsWith(`/issues/${issue}/comments`) && String(c.body?.body).startsWith(REPORT_MARKER)) ||
    (c.method === "PATCH" && /\/issues\/comments\/\d+$/.test(c.path) && String(c.body?.body).startsWith(REPORT_MARKER) && reports(issue).some(([id]) => c.path.endsWith(`/${id}`)));
  const since = () => {
    const start = gh.calls.length;
    return (c: RecordedCall) => gh.calls.indexOf(c) >= start;
  };
  /** Resolves when the next diagnosis job completes (subscribe before triggering it). */
  const nextDiagnosis = () => new Promise<void>((resolve, reject) => {
    const done = () => (diagnoses.off("failed", failed), resolve());
    const failed = ({ failedReason }: { failedReason: string }) => (diagnoses.off("completed", done), reject(new Error(failedReason)));
    diagnoses.once("completed", done);
    diagnoses.once("failed", failed);
  });
  async function send(event: string, payload: unknown) {
    const res = await deliver(f.app.port!, event, payload);
    expect(res.status).toBe(202);
    await f.watcher.handled(res.id);
  }

  it("`/agent diagnose prod` on an issue: 👀, then one report from the database, probes, knowledge base and runbooks", async () => {
    const lambda = lambdaUp("unhealthy");
    const after = since();
    const finished = nextDiagnosis();
    const comment = issueCommentPayload({ repo: REPO, cloneUrl: "https://github.com/octo-org/diagnosed.git", prNumber: 77, body: "/agent diagnose prod", login: "alice", onPullRequest: false, commentId: 9001 });
    comment.issue = { ...comment.issue, title: "prod deploys broken since this afternoon", body: "Deploys of prod fail. Is it us or AWS?" };
    await send("issue_comment", comment);
    expect(gh.find("POST", /\/issues\/comments\/9001\/reactions$/).map((c) => c.body?.content)).toEqual(["eyes"]);
    const write = await gh.waitFor((c) => after(c) && isReportWrite(77)(c), "the report", 30_000);
    expect(write.method).toBe("POST");
    const body = String(write.body!.body);
    if (process.env.SHOW_REPORT) console.log(body);

    // Recent runs and the latest failure with its log tail, from Postgres.
    expect(body).toContain("## 🩺 Diagnosis of `octo-org/diagnosed`, stack `prod`");
    expect(body).toMatch(/\| #41 \| `prod` \| deploy \| ❌ failed \|/);
    expect(body).not.toContain("| #13 |"); // dev's run is not prod's
    expect(body).toContain("i-77b1");
    expect(body).toContain("`prod` held by #41");
    expect(body).toMatch(/\*\*Stuck:\*\* preview of `prod` for #42 running since 3 h ago \(limit 2 min 0 s\)/);
    expect(body).toMatch(/\*\*Waiting on a human:\*\* deploy of `prod` for #43 at `9999999` \(PENDING, /);
    // Probes: the app's Redis and the probe database for real, Lambda Labs through nock.
    expect(body).toMatch(/\| `redis` \| 🟢 OK \|/);
    expect(body).toMatch(/\| `postgres` \| 🟢 OK \|/);
    expect(body).toMatch(/\| `lambda-labs` \| 🔴 DOWN \|[^\n]*gpu-trainer-1/);
    expect(lambda.isDone()).toBe(true);
    expect(body).not.toContain(LAMBDA_KEY);
    expect(credentialRequests.filter((r) => r.kind === "diagnose")).toEqual([expect.objectContaining({ repo: REPO, stack: "prod", kind: "diagnose" })]);
    // The old failure of the same kind, with the deploy that fixed it; not today's failure itself.
    const similar = body.slice(body.indexOf("### Similar past incidents"), body.indexOf("### Suggested next steps"));
    expect(similar).toContain("deploy of prod failed at step deploy (\\#12)");
    // The same error as today's: near-identical once ids are normalised away.
    expect(Number(/\(https:\/\/github\.com\/[^)]+\/pull\/14\) — (\d+)% similar/.exec(similar)?.[1])).toBeGreaterThanOrEqual(80);
    expect(similar).toContain("Fixed by \\#14 (commit bbbbbbb)");
    expect(similar).toContain(`(https://github.com/${REPO}/pull/14)`);
    expect(similar).not.toContain("\\#41");
    // The runbook section about this failure comes first.
    const steps = body.slice(body.indexOf("### Suggested next steps"));
    expect(steps).toMatch(/^### Suggested next steps\n\n1\. From the runbook \[rds\.md › Instance stuck modifying after a class change\]\(https:\/\/github\.com\/octo-org\/diagnosed\/blob\/main\/docs\/runbooks\/rds\.md#instance-stuck-modifying-after-a-class-change\)/);

    await finished;
    const audit = await f.db.query<{ action: string; detail: Record<string, any> }>("SELECT action, detail FROM audit_log WHERE repo = $1 AND pr_number = 77 AND action LIKE 'diagnose.%' ORDER BY id", [REPO]);
    expect(audit.rows.map((r) => r.action)).toEqual(["diagnose.requested", "diagnose.reported"]);
    expect(audit.rows[1]!.detail).toMatchObject({ stack: "prod", trigger: "comment", updated: false });
  });

  it("the configured label re-runs it and updates the same comment in place", async () => {
    lambdaUp("active");
    const after = since();
    const finished = nextDiagnosis();
    await send("issues", issuesPayload("labeled", { number: 77, title: "orders-db deploy timing out", body: "prod deploy fails", sender: "alice", label: "incident:diagnose", labels: ["incident:diagnose"] }));
    expect(gh.find("POST", /\/issues\/77\/reactions$/).map((c) => c.body?.content)).toEqual(["eyes"]);
    const write = await gh.waitFor((c) => after(c) && isReportWrite(77)(c), "the updated report", 30_000);
    expect(write.method).toBe("PATCH");
    expect(reports(77)).toHaveLength(1);
    expect(String(write.body!.body)).toMatch(/\| `lambda-labs` \| 🟢 OK \|/);
    expect(String(write.body!.body)).toContain("via the diagnose label");
    await finished;
  });

  it("refuses a reader who adds the label, and ignores other labels", async () => {
    const after = since();
    await send("issues", issuesPayload("labeled", { number: 78, title: "x", body: "y", sender: "rita", label: "incident:diagnose" }));
    await send("issues", issuesPayload("labeled", { number: 78, title: "x", body: "y", sender: "alice", label: "bug" }));
    const replies = gh.calls.filter((c) => after(c) && c.method === "POST" && c.path.endsWith("/issues/78/comments"));
    expect(replies.map((c) => String(c.body!.body))).toEqual([expect.stringContaining("@rita a diagnosis needs **write** access to this repository and you have **read**")]);
    expect(gh.calls.some((c) => after(c) && c.path.endsWith("/issues/78/reactions"))).toBe(false);
    expect(await f.app.deps.queues.diagnostics.getJobCountByTypes("waiting", "active", "delayed")).toBe(0);
  });

  it("an issue opened from the incident template is diagnosed; one from another template is not", async () => {
    lambdaUp("active");
    const after = since();
    const finished = nextDiagnosis();
    await send("issues", issuesPayload("opened", { number: 90, title: "[incident] npm install fails in previews", body: "npm ERR! code ETIMEDOUT on dev previews", sender: "alice", labels: ["incident", "sev2"] }));
    await send("issues", issuesPayload("opened", { number: 91, title: "Feature request", body: "please", sender: "alice", labels: ["enhancement"] }));
    const write = await gh.waitFor((c) => after(c) && isReportWrite(90)(c), "the template report", 30_000);
    const body = String(write.body!.body);
    expect(body).toContain("via the incident template");
    // No stack given: the whole repository, so dev's npm failure is in; the npm runbook matches first.
    expect(body).toContain("| #13 | `dev` | preview | ❌ failed |");
    expect(body.slice(body.indexOf("### Suggested next steps"))).toMatch(/1\. From the runbook \[npm\.md › npm install times out\]/);
    await finished;
    expect(gh.calls.some((c) => after(c) && c.path.endsWith("/issues/91/comments"))).toBe(false);
  });

  it("closing a diagnosed issue indexes its resolution, and the next similar incident finds it", async () => {
    gh.comments.set(777_001, { issue: 77, body: "Root cause: storage autoscaling was still running on orders-db. Waited for available, re-ran the deploy.", login: "alice" });
    await send("issues", issuesPayload("closed", { number: 77, title: "orders-db deploy timing out", body: "prod deploy fails: timeout while waiting for state to become 'available' on aws:rds:Instance", sender: "alice" }));
    const { rows } = await f.db.query("SELECT id FROM knowledge_sources WHERE kind = 'issue'");
    expect(rows).toEqual([{ id: `issue:${REPO}#77` }]);

    lambdaUp("active");
    const after = since();
    const finished = nextDiagnosis();
    await send("issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: "https://github.com/octo-org/diagnosed.git", prNumber: 95, body: "RDS orders-db timeout while waiting for state to become available again\n/agent diagnose", login: "alice", onPullRequest: false }));
    const body = String((await gh.waitFor((c) => after(c) && isReportWrite(95)(c), "the second report", 30_000)).body!.body);
    const similar = body.slice(body.indexOf("### Similar past incidents"), body.indexOf("### Suggested next steps"));
    expect(similar).toContain(`[\\#77 orders-db deploy timing out](https://github.com/${REPO}/issues/77)`);
    expect(similar).toContain("storage autoscaling was still running");
    await finished;
  });

  it("a push to the default branch that touches the runbooks re-indexes them; stale sections go", async () => {
    gh.files.delete("main:docs/runbooks/deps/npm.md");
    const sha = "e".repeat(40);
    gh.files.set(`${sha}:.github/agent.yml`, CONFIG);
    gh.files.set(`${sha}:docs/runbooks/rds.md`, RUNBOOK_RDS);
    gh.files.set(`${sha}:docs/runbooks/vault.md`, "# Vault\n\n## Token expired\nVault answers 403 permission denied after the token TTL.\n1. Re-login the app role.\n");
    const push = structuredClone(examples.find((e) => e.name === "push")!.examples[0]!);
    push.ref = "refs/heads/main";
    push.after = sha;
    push.deleted = false;
    push.commits = [{ ...(push.commits?.[0] ?? {}), id: sha, added: ["docs/runbooks/vault.md"], modified: [], removed: ["docs/runbooks/deps/npm.md"] }];
    push.repository = { ...push.repository, full_name: REPO, name: "diagnosed", owner: { ...push.repository.owner, login: "octo-org", name: "octo-org" }, default_branch: "main" };
    push.installation = { id: INSTALLATION_ID, node_id: "x" };
    await send("push", push);
    const { rows } = await f.db.query<{ id: string }>("SELECT id FROM knowledge_sources WHERE kind = 'runbook' ORDER BY id");
    expect(rows.map((r) => r.id)).toEqual([
      `runbook:${REPO}:docs/runbooks/rds.md#instance-stuck-modifying-after-a-class-change`,
      `runbook:${REPO}:docs/runbooks/vault.md#token-expired`,
    ]);
    const stored = await f.db.query<{ id: string }>("SELECT id FROM knowledge_entries WHERE kind = 'runbook' ORDER BY id");
    expect(stored.rows.map((r) => r.id)).toEqual(rows.map((r) => r.id));
  });

  it("answers a bad stack with the declared ones and queues nothing", async () => {
    const after = since();
    await send("issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: "https://github.com/octo-org/diagnosed.git", prNumber: 96, body: "/agent diagnose prdo", login: "alice", onPullRequest: false }));
    const replies = gh.calls.filter((c) => after(c) && c.method === "POST" && c.path.endsWith("/issues/96/comments")).map((c) => String(c.body!.body));
    expect(replies).toEqual([expect.stringContaining("Unknown stack `prdo` — did you mean `prod`?")]);
    expect(await f.app.deps.queues.diagnostics.getJobCountByTypes("waiting", "active", "delayed")).toBe(0);
  });
});
