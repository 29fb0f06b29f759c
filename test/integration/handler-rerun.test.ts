/**
 * A `/agent preview` handler that dies part-way and runs again for the same delivery (BullMQ
 * retries a failed webhook job; a killed worker's job is stalled and run again): each audit
 * row and each GitHub effect is written once. Real Redis, Postgres and Docker; GitHub at the
 * HTTP boundary.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WEBHOOK_JOB_OPTIONS } from "../../src/connectors/queues.js";
import { STICKY_MARKER } from "../../src/render/sticky-comment.js";
import { GitHubFake, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/handler-rerun";
const TOKEN = "ghs_handlerRerunInstallationToken000000017";
const AGENT_YML = `version: 1
stacks:
  - name: dev
steps:
  preview: ["./preview.sh"]
`;

describe("a /agent preview handler re-run for the same delivery writes each audit row and GitHub effect once", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  let pr = 100;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN);
  });
  afterEach(() => gh?.stop());
  afterAll(() => f.stop());

  async function setup() {
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", AGENT_YML);
    const sha = await f.git.commit(REPO, { "preview.sh": exe("#!/bin/sh\necho planned\n") });
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha });
    await f.db.query("DELETE FROM stack_locks");
    return { number, payload: issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: number, body: "/agent preview dev", login: "alice" }) };
  }

  const settled = (number: number) =>
    gh.waitFor((c) => String(c.body?.body ?? "").includes(STICKY_MARKER) && String(c.body?.body).includes("✅ succeeded") && (c.method === "PATCH" || c.path.endsWith(`/issues/${number}/comments`)), `#${number} to settle`);

  /** What the delivery left: its audit actions, its outbox rows by kind, and GitHub's writes. */
  async function effects(deliveryId: string, number: number, commentId: number) {
    const audit = (await f.db.query<{ action: string }>("SELECT action FROM audit_log WHERE delivery_id = $1 ORDER BY seq", [deliveryId])).rows.map((r) => r.action);
    const tasks = (await f.db.query<{ n: number }>("SELECT count(*)::int AS n FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 AND w.repo = $2", [number, REPO])).rows[0]!.n;
    const isOurs = (c: RecordedCall) => c.path.endsWith(`/issues/comments/${commentId}/reactions`) || (c.path.endsWith("/check-runs") && c.method === "POST");
    return { audit, tasks, reactions: gh.find("POST", /\/reactions$/).filter(isOurs).length, checkRunsCreated: gh.find("POST", /\/check-runs$/).length };
  }

  // Where the handler dies: after the permission check (👀 and command.received written), after
  // the config was read, after the pull request was read (the workflow not yet recorded).
  const steps: Array<{ name: string; match: (c: Pick<RecordedCall, "method" | "path">) => boolean }> = [
    { name: "reading the repository config", match: (c) => c.method === "GET" && c.path.includes("/contents/") },
    { name: "reading the pull request", match: (c) => c.method === "GET" && /\/pulls\/\d+$/.test(c.path) },
  ];

  for (const step of steps) {
    it(`ATTACK (fault): the handler fails while ${step.name}, BullMQ runs it again: one command.received, one 👀, one check run, one task`, async () => {
      const { number, payload } = await setup();
      gh.failOnce(step.match);
      const res = await deliver(f.app.port!, "issue_comment", payload);
      expect(res.status).toBe(202);
      await f.watcher.handled(res.id, 30_000);
      await settled(number);
      await f.app.deps.writes.idle();
      expect(gh.failed).toHaveLength(1); // the fault happened: the handler ran twice
      const e = await effects(res.id, number, payload.comment.id);
      expect(e.audit.filter((a) => a === "command.received")).toHaveLength(1);
      expect(e.audit.filter((a) => a === "preview.queued")).toHaveLength(1);
      expect(e).toMatchObject({ tasks: 1, reactions: 1, checkRunsCreated: 1 });
    });
  }

  it("ATTACK (killed after the last step): the same delivery handled again from the start adds no audit row and no GitHub write", async () => {
    const { number, payload } = await setup();
    const res = await deliver(f.app.port!, "issue_comment", payload);
    await f.watcher.handled(res.id, 30_000);
    await settled(number);
    await f.app.deps.writes.idle();
    const before = await effects(res.id, number, payload.comment.id);
    const writesBefore = gh.calls.filter((c) => c.method !== "GET" && !c.path.endsWith("/access_tokens")).length;
    // The job of a worker killed before BullMQ recorded its completion is run again: here, the same delivery as a new job.
    await f.app.deps.queues.webhooks.add("issue_comment", { id: res.id, name: "issue_comment", payload } as never, { ...WEBHOOK_JOB_OPTIONS, jobId: `rerun-${res.id}` });
    await f.watcher.jobFinished(`rerun-${res.id}`, 30_000);
    const after = await effects(res.id, number, payload.comment.id);
    expect(after).toEqual(before);
    expect(before.audit).toEqual(["command.received", "lock.acquired", "preview.queued"]);
    expect(gh.calls.filter((c) => c.method !== "GET" && !c.path.endsWith("/access_tokens"))).toHaveLength(writesBefore);
  });

  it("positive control: a second, different delivery of the same command is its own event (audited, answered as a duplicate)", async () => {
    const { number, payload } = await setup();
    const first = await deliver(f.app.port!, "issue_comment", payload);
    await f.watcher.handled(first.id, 30_000);
    const second = await deliver(f.app.port!, "issue_comment", { ...payload, comment: { ...payload.comment, id: payload.comment.id + 1 } });
    await f.watcher.handled(second.id, 30_000);
    await settled(number);
    const e2 = await effects(second.id, number, payload.comment.id + 1);
    expect(e2.audit[0]).toBe("command.received");
    expect(e2.reactions).toBe(1);
  });
});
