/**
 * One plan: what reviewers see and the plan policy checks is what is hashed, approved and
 * applied. Each attack is performed by the pull request's own code inside a real sandbox
 * (the stand-in `pulumi` runs the fixture's "exec" as the program would), against the running
 * app on real Redis and Postgres; GitHub is the nock fake.
 *
 * - a lint step leaves a process behind that rewrites the preview's JSON to "no changes"
 *   after `pulumi preview` exits (reviewers and the DENY rule would see nothing while the
 *   saved plan deletes the database): it is killed before the engine runs;
 * - the Pulumi program itself rewrites the JSON while the engine runs: the digest and the
 *   saved plan disagree, the preview fails with an integrity error and nothing is approvable;
 * - the program rewrites both consistently: what is shown (nothing) is what the plan allows,
 *   so the deploy applies nothing unseen;
 * - the `command` engine's deploy step is handed the approved preview output read-only.
 * Positive controls: the same stacks without the attack preview and deploy as usual.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { commandPlanHash } from "../../src/plan/hash.js";
import { executable as exe } from "../helpers/git-server.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, leftoverSandboxes, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/integrity";
const TOKEN = "ghs_planIntegrityInstallationToken0000061";
const POLICY_FILE = join(mkdtempSync(join(tmpdir(), "agent-integrity-")), "plan-policy.yml");
writeFileSync(POLICY_FILE, `"*":\n  protect:\n    - name: databases\n      types: ["aws:rds/*"]\n`);
const CONFIG = `version: 1
stacks:
  - name: db
    dir: infra/db
    engine: pulumi
    steps:
      lint: ["sh", "lint.sh"]
    gate: { approvals: 1, require: { lock: false } }
  - name: mf
    dir: infra/mf
    engine: pulumi
    gate: { approvals: 1, mode: merge-then-deploy, require: { lock: false } }
  - name: app
    dir: app
    gate: { approvals: 1, require: { lock: false } }
    steps:
      preview: ["sh", "-c", "echo 'plan: restart 2 services'"]
      deploy: ["./deploy.sh"]
`;
const PROTECTED = JSON.parse(readFileSync(new URL("../fixtures/pulumi/protected.json", import.meta.url), "utf8")) as Record<string, unknown>;
/** What a tampered `preview --json` says: nothing changes. */
const NOTHING_SHOWN = JSON.stringify({ steps: [], diagnostics: [], changeSummary: { same: 8 } });
/** A saved plan that agrees with it: no resource may change. */
const NOTHING_PLANNED = JSON.stringify({ manifest: { time: "2026-12-01T00:00:00Z", magic: "", version: "v3.270.0" }, resourcePlans: {} });
const OUT_FILES = "/tmp/.agent-engine-*/preview.json /tmp/agent/preview.json";
const LINT_OK = "#!/bin/sh\necho 'lint: 0 problems'\n";
/** A lint step that leaves a process rewriting whatever preview JSON appears, until it is killed. */
const LINT_DAEMON = `#!/bin/sh
setsid sh -c 'while :; do for f in ${OUT_FILES}; do [ -f "$f" ] && cp /workspace/infra/db/shown.json "$f.x" 2>/dev/null && mv -f "$f.x" "$f" 2>/dev/null; done; sleep 0.01; done' >/dev/null 2>&1 </dev/null &
echo 'lint: 0 problems'
`;
/** The program rewrites the JSON once now (after the engine opened it) and keeps at it in the background. */
const TAMPER_SHOWN = `#!/bin/sh
t() { for f in ${OUT_FILES}; do [ -f "$f" ] && cp /workspace/infra/db/shown.json "$f.x" && mv -f "$f.x" "$f"; done; }
t
setsid sh -c 'while :; do for f in ${OUT_FILES}; do [ -f "$f" ] && cp /workspace/infra/db/shown.json "$f.x" 2>/dev/null && mv -f "$f.x" "$f" 2>/dev/null; done; sleep 0.01; done' >/dev/null 2>&1 </dev/null &
`;
/** Both files, consistently: the JSON at once, the saved plan as soon as the engine has written it. */
const TAMPER_BOTH = `#!/bin/sh
${TAMPER_SHOWN}
setsid sh -c 'while :; do for d in /tmp/.agent-engine-*; do [ -s "$d/plan.json" ] && ! cmp -s "$d/plan.json" /workspace/infra/db/planned.json && cp /workspace/infra/db/planned.json "$d/plan.x" 2>/dev/null && mv -f "$d/plan.x" "$d/plan.json" 2>/dev/null; done; sleep 0.01; done' >/dev/null 2>&1 </dev/null &
`;

/**
 * A program that, once run in a deploy's sandbox, leaves a process behind replacing every plan
 * file it can reach with garbage (before this change the approved plan was written into the
 * workspace, after the merge commit's preview had run its program there).
 */
const SWAP_PLAN = `#!/bin/sh
[ -e /workspace/.swapper ] && exit 0
touch /workspace/.swapper
setsid sh -c 'while :; do for f in /workspace/.agent-plan-*.json /agent/*.json; do [ -f "$f" ] && grep -q resourcePlans "$f" 2>/dev/null && { echo "{}" > "$f.x"; mv -f "$f.x" "$f"; } 2>/dev/null; done; sleep 0.005; done' >/dev/null 2>&1 </dev/null &
`;
const CREATES = JSON.parse(readFileSync(new URL("../fixtures/pulumi/creates.json", import.meta.url), "utf8")) as Record<string, unknown>;

function mfTree(): Record<string, string | { content: string; mode: number }> {
  return {
    "infra/mf/Pulumi.yaml": "name: web\nruntime: nodejs\n",
    "infra/mf/pulumi-standin.json": JSON.stringify({ ...CREATES, exec: ["sh", "/workspace/infra/mf/program.sh"] }),
    "infra/mf/program.sh": SWAP_PLAN,
  };
}

function dbTree(opts: { lint?: string; program?: string } = {}): Record<string, string | { content: string; mode: number }> {
  const program = opts.program ? { ...PROTECTED, exec: ["sh", "/workspace/infra/db/program.sh"] } : PROTECTED;
  return {
    "infra/db/Pulumi.yaml": "name: shop\nruntime: nodejs\n",
    "infra/db/pulumi-standin.json": JSON.stringify(program),
    "infra/db/lint.sh": opts.lint ?? LINT_OK,
    "infra/db/shown.json": NOTHING_SHOWN,
    "infra/db/planned.json": NOTHING_PLANNED,
    ...(opts.program ? { "infra/db/program.sh": opts.program } : {}),
    "app/deploy.sh": exe(
      '#!/bin/sh\necho "approved plan file: $AGENT_APPROVED_PLAN"\necho "approved hash: $AGENT_APPROVED_PLAN_HASH"\ncat "$AGENT_APPROVED_PLAN"\n(echo "plan: delete everything" > "$AGENT_APPROVED_PLAN") 2>/dev/null && echo "overwrote the plan" || echo "the plan is read-only"\n',
    ),
  };
}

describe("one plan: shown = checked = hashed = applied", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 60;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, {
      // The scenarios are independent: one's integrity failure (a procedure violation) would
      // exhaust the stack's error budget for the next (test/integration/error-budget.test.ts).
      env: { PLAN_POLICY_CONFIG: POLICY_FILE, ERROR_BUDGET_MAX_VIOLATIONS: "0" },
      credentials: staticCredentials(() => ({ PULUMI_BACKEND_URL: "file:///tmp/pulumi-state", PULUMI_CONFIG_PASSPHRASE: "integrity-test-passphrase-1" })),
    });
  });
  afterEach(() => gh?.stop());
  afterAll(() => f.stop());

  async function openPr(tree: ReturnType<typeof dbTree>, mergeTree?: ReturnType<typeof dbTree>) {
    // Each scenario is its own PR; an earlier one's preview holds the stack's lock.
    await f.db.query("DELETE FROM stack_locks");
    gh?.stop();
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
    const sha = await f.git.commit(REPO, tree);
    // Merge-first: the commit GitHub's merge API answers with.
    const mergeSha = mergeTree ? await f.git.commit(REPO, mergeTree, "merge commit") : undefined;
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha, author: "alice", ...(mergeSha ? { mergeSha } : {}) });
    return { number, sha, mergeSha };
  }
  async function say(number: number, body: string, login: string) {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body, login }));
    await f.watcher.handled(res.id);
  }
  const checkRunNamed = (c: RecordedCall) => String(gh.checkRuns.get(Number(c.path.split("/").pop()))?.name);
  /** Previews a stack; resolves with the completed check run's body. */
  async function preview(number: number, stack: string) {
    const start = gh.calls.length;
    await say(number, `/agent preview ${stack}`, "alice");
    const done = await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c) && checkRunNamed(c) === `agent/preview (${stack})`, `the ${stack} preview`, 90_000);
    return done.body as { conclusion: string; output: { title: string; summary: string; text?: string }; actions?: unknown[] };
  }
  const previewRow = async (number: number, stack: string) =>
    (await f.db.query("SELECT t.state, t.plan, t.plan_hash, t.error FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 AND t.stack = $2 AND t.kind = 'preview' ORDER BY t.created_at DESC LIMIT 1", [number, stack])).rows[0];
  const replies = (number: number) => gh.find("POST", new RegExp(`/issues/${number}/comments$`)).map((c) => String(c.body!.body)).filter((b) => !b.startsWith("<!-- pr-infra-agent"));

  it("control: an honest preview shows the deletion of the protected database and the policy denies it", async () => {
    const { number } = await openPr(dbTree());
    const done = await preview(number, "db");
    expect(done.conclusion).toBe("success");
    expect(done.output.summary).toContain("⛔ Plan policy: **DENY**");
    expect(done.output.summary).toMatch(/orders-db/);
    const row = await previewRow(number, "db");
    expect(row.state).toBe("SUCCEEDED");
    expect(row.plan.summary.delete).toBe(2);
  });

  it("a process a lint step left behind cannot rewrite the preview: it is killed before the engine runs", async () => {
    const { number } = await openPr(dbTree({ lint: LINT_DAEMON }));
    const done = await preview(number, "db");
    // What reviewers and the policy see is the real plan: the database is deleted, DENY.
    expect(done.conclusion).toBe("success");
    expect(done.output.summary).toContain("⛔ Plan policy: **DENY**");
    expect(done.output.summary).toMatch(/orders-db/);
    const row = await previewRow(number, "db");
    expect(row.plan.summary.delete).toBe(2);
    const { rows } = await f.db.query("SELECT policy->>'decision' AS decision FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 AND t.kind = 'preview'", [number]);
    expect(rows).toEqual([{ decision: "DENY" }]);
    expect(await leftoverSandboxes(f.app)).toBe(0);
  });

  it("a program that rewrites the preview while the engine runs fails the preview with an integrity error; nothing is shown or approvable", async () => {
    const { number } = await openPr(dbTree({ program: TAMPER_SHOWN }));
    const done = await preview(number, "db");
    expect(done.conclusion).toBe("failure");
    const text = `${done.output.summary}\n${done.output.text ?? ""}`;
    expect(text).toContain("integrity check failed");
    // The destructive disagreements lead the message.
    expect(text).toMatch(/integrity check failed: the preview's output does not match its saved plan: \S+ is planned to delete but shown as unchanged/);
    expect(text).toMatch(/orders-db is planned to delete but shown as unchanged/);
    expect(done.actions).toBeUndefined();
    const row = await previewRow(number, "db");
    expect(row).toMatchObject({ state: "FAILED", plan: null, plan_hash: null });
    // The audit row follows the check run's final update.
    const audited = async () => (await f.db.query("SELECT detail->>'integrity_failed' AS integrity FROM audit_log WHERE pr_number = $1 AND action = 'preview.failed'", [number])).rows;
    await expect.poll(audited, { timeout: 10_000 }).toEqual([{ integrity: "true" }]);
    await say(number, "/approve", "bob");
    expect(replies(number).at(-1)).toMatch(/no successful preview|nothing to approve|there is no/i);
    await say(number, "/agent deploy db", "alice");
    expect(replies(number).at(-1)).toMatch(/- \[ \] Preview of the head commit succeeded/);
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(0);
  });

  it("a program that rewrites both the preview and the saved plan consistently cannot get anything unseen applied", async () => {
    const { number } = await openPr(dbTree({ program: TAMPER_BOTH }));
    const done = await preview(number, "db");
    // It shows nothing, and nothing is what its plan allows.
    expect(done.conclusion).toBe("success");
    expect(done.output.summary).not.toContain("DENY");
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy db", "alice");
    expect(replies(number).at(-1)).toContain("deploying `db`");
    const deployed = await gh.waitFor((c) => isCheckRunCompleted(c) && checkRunNamed(c) === "agent/deploy (db)", "the deploy", 90_000);
    // `pulumi up --plan` refuses every change the approved (empty) plan does not hold.
    expect(deployed.body).toMatchObject({ conclusion: "failure" });
    const { rows } = await f.db.query("SELECT d.state, l.content FROM deploys d JOIN task_logs l ON l.task_id = d.task_id WHERE d.pr_number = $1", [number]);
    expect(rows[0].state).toBe("FAILED");
    expect(rows[0].content).toMatch(/is not allowed by the plan/);
    expect(rows[0].content).not.toMatch(/orders-db.*deleted/);
    expect(gh.find("PUT", /\/merge$/)).toHaveLength(0);
  });

  it("merge-first: what the merge commit's preview left running cannot swap the approved plan before `pulumi up` reads it", async () => {
    const { number, mergeSha } = await openPr(mfTree(), { ...mfTree(), "README.md": "base moved, plan did not\n" });
    expect((await preview(number, "mf")).conclusion).toBe("success");
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy mf", "alice");
    const deployed = await gh.waitFor((c) => isCheckRunCompleted(c) && checkRunNamed(c) === "agent/deploy (mf)", "the deploy", 90_000);
    const { rows } = await f.db.query("SELECT d.state, d.head_sha, d.merge_sha, l.content FROM deploys d JOIN task_logs l ON l.task_id = d.task_id WHERE d.pr_number = $1", [number]);
    // The merge commit planned the approved plan and exactly that plan was applied.
    expect(rows[0].content).not.toMatch(/could not read plan/);
    expect(deployed.body).toMatchObject({ conclusion: "success" });
    expect(rows[0]).toMatchObject({ state: "SUCCEEDED", merge_sha: mergeSha });
  });

  it("the command engine's deploy step gets exactly the approved preview output, read-only", async () => {
    const { number } = await openPr(dbTree());
    const done = await preview(number, "app");
    expect(done.conclusion).toBe("success");
    await say(number, "/approve", "bob");
    await say(number, "/agent deploy app", "alice");
    const deployed = await gh.waitFor((c) => isCheckRunCompleted(c) && checkRunNamed(c) === "agent/deploy (app)", "the deploy", 90_000);
    expect(deployed.body).toMatchObject({ conclusion: "success" });
    const { rows } = await f.db.query("SELECT d.plan_hash, l.content FROM deploys d JOIN task_logs l ON l.task_id = d.task_id WHERE d.pr_number = $1", [number]);
    const log = String(rows[0].content);
    expect(rows[0].plan_hash).toBe(commandPlanHash("plan: restart 2 services\n"));
    expect(log).toContain("approved plan file: /agent/approved-preview.txt");
    expect(log).toContain(`approved hash: ${rows[0].plan_hash}`);
    expect(log).toContain("plan: restart 2 services");
    expect(log).toContain("the plan is read-only");
    expect(log).not.toContain("overwrote the plan");
  });
});
