/**
 * The `pulumi` and `command` engines end to end: `/agent preview` in a PR comment runs the
 * stand-in `pulumi` (test/sandbox-image/rootfs/usr/local/bin/pulumi) inside a real sandbox
 * container, the app parses `--json`, keeps the saved plan and its hash, and renders the plan
 * in the check run and the sticky comment. Each failure mode gets its own clear message.
 */
import { readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials, type CredentialSource } from "../../src/connectors/credentials.js";
import { commandPlanHash } from "../../src/plan/hash.js";
import type { PreviewOutcome, PulumiPreview } from "../../src/plan/types.js";
import { summaryLine } from "../../src/render/plan.js";
import { STICKY_MARKER } from "../../src/render/sticky-comment.js";
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/infra";
const TOKEN = "ghs_pulumiEngineInstallationToken00000009";
const PASSPHRASE = "correct-horse-battery-staple-0042";
const CLOUD_TOKEN = "pul-0123456789abcdef0123456789abcdef01234567";
const fixture = (name: string) => readFileSync(new URL(`../fixtures/pulumi/${name}.json`, import.meta.url), "utf8");

/** One Pulumi project per scenario; the stand-in's "program" is its fixture file. */
const SCENARIOS = ["mixed", "locked", "program-error", "pending-operations", "no-changes"] as const;
const stackYaml = (name: string, extra = "") => `  - name: ${name}\n    dir: infra/${name}\n    engine: pulumi\n${extra}`;
const CONFIG = `version: 1
stacks:
${SCENARIOS.map((s) => stackYaml(s)).join("")}${stackYaml("nopass", "    pulumi: { stack: org/nopass }\n")}${stackYaml("cloud")}${stackYaml("cloud-ok")}  - name: cmd
    dir: cmd
    steps:
      preview: ["sh", "-c", "echo 'Plan: 2 to add, 0 to change, 0 to destroy.'"]
  - name: linted
    dir: cmd
    steps:
      lint: ["sh", "-c", "echo 'src/main.ts:3:5: error: x is assigned a value but never used'; echo '../../etc/passwd:1:1: error: escape'; exit 1"]
      preview: ["true"]
`;

/** Server-side credentials per stack, as the Vault connector will provide them. */
const credentials: CredentialSource = staticCredentials(({ stack }): Record<string, string> => {
  if (stack === "cloud") return {};
  if (stack === "cloud-ok") return { PULUMI_ACCESS_TOKEN: CLOUD_TOKEN };
  const backend = { PULUMI_BACKEND_URL: "file:///tmp/pulumi-state" };
  return stack === "nopass" ? backend : { ...backend, PULUMI_CONFIG_PASSPHRASE: PASSPHRASE };
});

describe("pulumi and command engines", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  const PR = 7;

  async function pushProgram(files: Record<string, string>) {
    const sha = await f.git.commit(REPO, files);
    gh.pulls.set(PR, { headSha: sha, author: "alice" });
    return sha;
  }

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { credentials });
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", CONFIG);
    const files: Record<string, string> = { "cmd/.keep": "" };
    for (const s of [...SCENARIOS, "nopass", "cloud", "cloud-ok"]) {
      files[`infra/${s}/Pulumi.yaml`] = `name: shop\nruntime: nodejs\n`;
      files[`infra/${s}/pulumi-standin.json`] = fixture(SCENARIOS.includes(s as never) ? s : "creates");
    }
    await pushProgram(files);
  });
  afterEach(() => {
    gh.calls.length = 0;
  });
  afterAll(async () => {
    gh.stop();
    await f.stop();
  });

  const checkRunOf = (c: RecordedCall) => gh.checkRuns.get(Number(c.path.split("/").pop()));

  /** Runs `/agent preview <stack>` and resolves with the completed check run once the sticky comment shows the result. */
  async function preview(stack: string): Promise<{ checkRun: Record<string, unknown>; sticky: string; task: { state: string; plan: PreviewOutcome | null; plan_hash: string | null; error: string | null; id: string } }> {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: PR, body: `/agent preview ${stack}`, login: "alice" }));
    await f.watcher.handled(res.id);
    const done = await gh.waitFor((c) => isCheckRunCompleted(c) && checkRunOf(c)?.name === `agent/preview (${stack})`, `the ${stack} preview`, 90_000);
    const after = gh.calls.indexOf(done);
    const sticky = await gh.waitFor(
      (c) => gh.calls.indexOf(c) > after && /\/comments(\/\d+)?$/.test(c.path) && String(c.body?.body).startsWith(STICKY_MARKER),
      "the sticky comment after the check run",
    );
    const { rows } = await f.db.query(
      `SELECT t.id, t.state, t.plan, t.plan_hash, t.error FROM tasks t JOIN workflows w ON w.id = t.workflow_id
       WHERE w.pr_number = $1 AND t.stack = $2 ORDER BY t.created_at DESC LIMIT 1`,
      [PR, stack],
    );
    return { checkRun: checkRunOf(done)!, sticky: String(sticky.body!.body), task: rows[0] };
  }
  const output = (cr: Record<string, unknown>) => cr.output as { title: string; summary: string; text?: string };

  it("parses the preview into typed resource ops, stores the saved plan and its hash, renders destructive ops first", async () => {
    const { checkRun, sticky, task } = await preview("mixed");
    expect(task.state).toBe("SUCCEEDED");
    expect(checkRun.conclusion).toBe("success");
    const plan = task.plan as PulumiPreview;
    expect(plan.engine).toBe("pulumi");
    expect(plan.stack).toBe("mixed");
    // The fixture: 3 creates, 1 update, 2 deletes, 1 replace, 1 same, 1 read (+ the root stack, new in this fresh backend).
    expect(plan.summary).toMatchObject({ update: 1, delete: 2, replace: 1, read: 1 });
    expect(plan.resources.every((r) => r.urn.startsWith("urn:pulumi:mixed::shop::"))).toBe(true);
    expect(plan.diagnostics.some((d) => d.severity === "warning")).toBe(true);
    expect(task.plan_hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    const saved = await f.db.query("SELECT content FROM task_saved_plans WHERE task_id = $1", [task.id]);
    expect(Object.keys(JSON.parse(saved.rows[0].content).resourcePlans)).toEqual(expect.arrayContaining(plan.resources.filter((r) => r.op !== "read").map((r) => r.urn)));

    const line = summaryLine(plan.summary);
    expect(output(checkRun).title).toContain(line);
    expect(sticky).toContain(line);
    // Destructive operations come before the creates, in the summary part of the comment.
    const destructive = plan.resources.filter((r) => r.op === "delete" || r.op === "replace");
    const firstCreate = plan.resources.find((r) => r.op === "create" && r.type !== "pulumi:pulumi:Stack")!;
    for (const r of destructive) expect(sticky.indexOf(r.name)).toBeGreaterThan(0);
    expect(Math.max(...destructive.map((r) => sticky.indexOf(r.name)))).toBeLessThan(sticky.indexOf(firstCreate.name));
    expect(sticky).toContain("<details>");
    // The secret the stack ran with is nowhere in what left the worker.
    expect(JSON.stringify(gh.calls.map((c) => c.body))).not.toContain(PASSPHRASE);
  });

  it("a re-preview of the same commit yields the same plan hash (the saved plan's volatile parts are left out)", async () => {
    const first = (await f.db.query("SELECT plan_hash FROM tasks WHERE stack = 'mixed' AND plan_hash IS NOT NULL")).rows[0].plan_hash;
    const again = await preview("mixed");
    expect(again.task.plan_hash).toBe(first);
  });

  it("a stack with no changes says so", async () => {
    const { task, sticky } = await preview("no-changes");
    expect(task.state).toBe("SUCCEEDED");
    expect((task.plan as PulumiPreview).summary).toMatchObject({ update: 0, delete: 0, replace: 0 });
    expect(sticky).toMatch(/no-changes/);
  });

  const failures: [string, RegExp][] = [
    ["locked", /locked by another update.*pulumi cancel/],
    ["pending-operations", /pending operations.*pulumi refresh/],
    ["program-error", /the Pulumi program failed: TypeError: Cannot read properties of undefined/],
    ["nopass", /PULUMI_CONFIG_PASSPHRASE/],
    ["cloud", /PULUMI_ACCESS_TOKEN/],
  ];
  it.each(failures)("%s: fails with one clear message in the check run, the task and the comment", async (stack, message) => {
    const { checkRun, sticky, task } = await preview(stack);
    expect(task.state).toBe("FAILED");
    expect(task.plan_hash).toBeNull();
    expect(checkRun.conclusion).toBe("failure");
    expect(output(checkRun).summary).toMatch(message);
    expect(sticky).toMatch(message);
    const saved = await f.db.query("SELECT 1 FROM task_saved_plans WHERE task_id = $1", [task.id]);
    expect(saved.rowCount).toBe(0);
  });

  it("Pulumi Cloud: the access token is used and never shown", async () => {
    const { task } = await preview("cloud-ok");
    expect(task.state).toBe("SUCCEEDED");
    expect(JSON.stringify(gh.calls.map((c) => c.body))).not.toContain(CLOUD_TOKEN);
    const logs = await f.db.query("SELECT content FROM task_logs WHERE task_id = $1", [task.id]);
    expect(JSON.stringify(logs.rows)).not.toContain(CLOUD_TOKEN);
  });

  it("command engine: the preview command's output is the plan, shown as text and hashed", async () => {
    const { task, sticky, checkRun } = await preview("cmd");
    expect(task.state).toBe("SUCCEEDED");
    expect(task.plan).toEqual({ engine: "command", output: "Plan: 2 to add, 0 to change, 0 to destroy.\n", truncated: false });
    expect(task.plan_hash).toBe(commandPlanHash("Plan: 2 to add, 0 to change, 0 to destroy.\n"));
    expect(sticky).toContain("Plan: 2 to add, 0 to change, 0 to destroy.");
    expect(checkRun.conclusion).toBe("success");
  });

  it("a preview too large for one comment continues in numbered comments; a smaller one deletes them", async () => {
    const resources = Array.from({ length: 1200 }, (_, i) => ({
      type: i % 50 === 0 ? "aws:s3/bucket:Bucket" : "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
      name: `attachment-${String(i).padStart(4, "0")}-${"x".repeat(60)}`,
      op: i % 50 === 0 ? "delete" : "create",
    }));
    await pushProgram({ "infra/mixed/pulumi-standin.json": JSON.stringify({ resources }) });
    const big = await preview("mixed");
    expect(big.task.state).toBe("SUCCEEDED");
    const parts = () => [...gh.comments.entries()].filter(([, c]) => c.issue === PR && c.body.includes("pr-infra-agent:sticky-part"));
    // Parts are written in order after the main comment: the table's last row (or a note of what
    // was left out) marks the last one.
    const last = resources.at(-1)!.name;
    await gh.waitFor(() => parts().some(([, c]) => c.body.includes(last) || /not shown/.test(c.body)), "the last continuation comment");
    const created = parts();
    expect(created.length).toBeGreaterThan(0);
    for (const [, c] of created) expect(c.body.length).toBeLessThanOrEqual(65_536);
    const stickyBody = [...gh.comments.values()].find((c) => c.issue === PR && c.body.startsWith(STICKY_MARKER))!.body;
    expect(stickyBody.length).toBeLessThanOrEqual(65_536);
    // Every resource that changes is in exactly one of the parts (nothing cut silently).
    const all = [stickyBody, ...created.map(([, c]) => c.body)].join("\n");
    for (const r of resources.filter((_, i) => i % 97 === 0)) expect(all).toContain(r.name);

    gh.calls.length = 0;
    await pushProgram({ "infra/mixed/pulumi-standin.json": fixture("creates") });
    await preview("mixed");
    await gh.waitFor(() => parts().length === 0, "the continuation comments to be deleted");
    // Exactly the parts of the earlier preview were deleted: the app kept track of every one.
    const deleted = gh.find("DELETE", /\/issues\/comments\/\d+$/).map((c) => Number(c.path.split("/").pop()));
    expect(deleted.sort()).toEqual(created.map(([id]) => id).sort());
  });

  it("a failing lint step's file/line findings become check-run annotations, relative to the repository root", async () => {
    const { checkRun, task } = await preview("linted");
    expect(task.state).toBe("FAILED");
    const annotations = (checkRun.output as { annotations?: Array<Record<string, unknown>> }).annotations;
    // The path outside the repository is dropped; the other is made relative to the root.
    expect(annotations).toEqual([
      expect.objectContaining({ path: "cmd/src/main.ts", start_line: 3, end_line: 3, annotation_level: "failure", message: expect.stringContaining("never used") }),
    ]);
  });
});
