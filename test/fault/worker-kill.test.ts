import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { STICKY_MARKER } from "../../src/render/sticky-comment.js";
import { jobIdFrom } from "../../src/connectors/queues.js";
import { isCheckRunCompleted, isCheckRunInProgress } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload } from "../helpers/harness.js";
import { sandboxesUnder, startFaultFixture, until, type AppProcess, type FaultFixture } from "../helpers/app-process.js";

const REPO = "octo-org/fault-kill";
const TOKEN = "ghs_faultKillInstallationToken000000000011";
const CONFIG = `version: 1
stacks:
  - name: dev
steps:
  preview: ["./preview.sh"]
`;

/**
 * Two real worker processes share one queue. The one running a preview is SIGKILLed mid-step:
 * its job's lock lapses (WORKER_LOCK_SECONDS), the other worker's stalled check puts the job
 * back (WORKER_STALLED_INTERVAL_SECONDS) and runs it to the end, and the dead worker's sandbox
 * is reaped once its heartbeat has expired. Nothing is lost and nothing is done twice on GitHub.
 */
describe("a worker process killed mid-task", () => {
  let f: FaultFixture;

  beforeAll(async () => {
    f = await startFaultFixture({ repo: REPO, token: TOKEN, workers: 2 });
  });
  afterAll(() => f?.stop());

  it("its job is taken over by the other worker and completes once; its sandbox is reaped", async () => {
    const { gh, git, db, web } = f;
    gh.fake.permissions.set("alice", "write");
    gh.fake.files.set("main:.github/agent.yml", CONFIG);
    // Long enough to be killed in the middle of it, short enough to run again in full.
    const sha = await git.commit(REPO, { "preview.sh": exe("#!/bin/sh\necho started\nsleep 6\necho finished\n") });
    const number = 7;
    gh.fake.pulls.set(number, { headSha: sha });

    const res = await deliver(web.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: number, body: "/agent preview", login: "alice" }));
    expect(res.status).toBe(202);

    // The handler is done (the webhook job completed; a handler killed half-way is re-run
    // after the webhook queue's own stall timeout, another scenario), and the task is RUNNING,
    // on one of the two workers, with its sandbox up.
    await until(async () => (await web.deps.queues.webhooks.getJob(jobIdFrom(["wh", res.id])))?.finishedOn, "the delivery to be handled", 30_000);
    await gh.waitFor(isCheckRunInProgress, "the check run to go in_progress");
    const taskId = await until(async () => {
      const { rows } = await db.query<{ id: string }>("SELECT t.id FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 AND t.state = 'RUNNING'", [number]);
      return rows[0]?.id;
    }, "the task to be RUNNING");
    // On failure, what the workers said about this task (warnings and errors first).
    onTestFailed(() => {
      for (const w of f.workers) {
        const mine = w.lines.filter((l) => l.task_id === taskId || Number(l.level) >= 40);
        console.error(`${w.name}:\n${mine.map((l) => JSON.stringify(l).slice(0, 600)).join("\n")}`);
      }
    });
    const acquiredBy = (w: AppProcess) => w.lines.some((l) => l.msg === "sandbox acquired" && l.task_id === taskId);
    const [a, b] = f.workers as [AppProcess, AppProcess];
    const victim = await until(async () => (acquiredBy(a) ? a : acquiredBy(b) ? b : undefined), "a worker to acquire the task's sandbox");
    const survivor = victim === a ? b : a;
    const [victimContainer] = await until(async () => {
      const mine = (await sandboxesUnder(f.workspaceRoot)).filter((c) => c.state === "running");
      return mine.length === 1 ? mine : undefined;
    }, "the task's sandbox container");
    // Killed in the middle of the step: the preview script is sleeping in the container.
    await until(async () => {
      const top = await new Docker().getContainer(victimContainer!.id).top().catch(() => ({ Processes: [] as string[][] }));
      return top.Processes.some((p: string[]) => p.join(" ").includes("sleep 6"));
    }, "the preview step to be running in the sandbox", 20_000);

    const killedAt = Date.now();
    await victim.kill();
    expect(victim.alive).toBe(false);

    // The survivor takes the stalled job over and runs it from the start, in its own sandbox.
    await survivor.waitForLog((l) => l.msg === "sandbox acquired" && l.task_id === taskId, "the survivor to take the task over", 45_000);
    const takeoverSeconds = (Date.now() - killedAt) / 1000;
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run", 45_000);
    // Conclusion and log together, so a failure shows why the run failed.
    expect({ conclusion: done.body!.conclusion, text: String((done.body!.output as { text: string }).text) }).toMatchObject({ conclusion: "success", text: expect.stringContaining("finished") });
    await until(async () => {
      const { rows } = await db.query<{ state: string }>("SELECT state FROM tasks WHERE id = $1", [taskId]);
      return rows[0]?.state === "SUCCEEDED";
    }, "the task to be SUCCEEDED");

    // The dead worker's container is removed by the survivor's reaper once the victim's
    // heartbeat (30 s) has expired; none of the survivor's are left once its task is done.
    await until(async () => (await sandboxesUnder(f.workspaceRoot)).length === 0, "every sandbox container to be gone", 45_000, 500);
    expect(survivor.lines.some((l) => l.msg === "removed orphaned sandbox containers" && Number(l.reaped) >= 1 && Number(l.time) > killedAt)).toBe(true);

    // Exactly once on GitHub: one check run created and completed once, one sticky comment created.
    const { rows: tasks } = await db.query("SELECT t.state, t.attempts, t.check_run_id FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1", [number]);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ state: "SUCCEEDED", attempts: 2 });
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(1);
    expect(gh.calls.filter(isCheckRunCompleted)).toHaveLength(1);
    expect(done.path).toBe(`/repos/${REPO}/check-runs/${tasks[0].check_run_id}`);
    const stickyPosts = gh.find("POST", new RegExp(`/issues/${number}/comments$`)).filter((c) => String(c.body?.body).includes(STICKY_MARKER));
    expect(stickyPosts).toHaveLength(1);
    const stickyId = [...gh.fake.comments.entries()].find(([, c]) => c.issue === number)![0];
    await gh.waitFor((c) => c.method === "PATCH" && c.path.endsWith(`/issues/comments/${stickyId}`) && String(c.body?.body).includes("✅ succeeded"), "the sticky comment's final state");
    expect(gh.find("POST", /\/comments$/)).toHaveLength(1);
    const { rows: audit } = await db.query("SELECT action FROM audit_log WHERE pr_number = $1 ORDER BY id", [number]);
    expect(audit.map((r) => r.action)).toEqual(["command.received", "lock.acquired", "preview.queued", "lock.acquired", "preview.succeeded"]);
    expect(gh.fake.unexpected).toEqual([]);
    console.info(`worker-kill: takeover ${takeoverSeconds.toFixed(1)} s after SIGKILL`);
  }, 120_000);
});
