import { readdir } from "node:fs/promises";
import type Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STICKY_MARKER } from "../../src/render/sticky-comment.js";
import { jobIdFrom } from "../../src/connectors/queues.js";
import { isCheckRunCompleted, isCheckRunInProgress, type RecordedCall } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, TEST_IMAGE } from "../helpers/harness.js";
import { sandboxesUnder, startFaultFixture, until, type AppProcess, type FaultFixture } from "../helpers/app-process.js";
import { PrivateDockerd } from "../helpers/private-dockerd.js";

const REPO = "octo-org/fault-docker";
const TOKEN = "ghs_faultDockerInstallationToken0000000014";
const CONFIG = `version: 1
stacks:
  - name: dev
steps:
  preview: ["./preview.sh"]
`;
/**
 * SIGKILL (the default): the engine dies at once, in the middle of the step; its containers run
 * on in their shims until the restarted daemon kills them (live restore off; the restore waits
 * the 10 s stop timeout, since a sandbox's `sleep infinity` ignores SIGTERM).
 * FAULT_DOCKERD_SIGNAL=SIGTERM is a graceful restart (`systemctl restart docker`): the daemon
 * stops its containers with that same 10 s timeout, so an 8 s step may well finish first.
 */
const SIGNAL = (process.env.FAULT_DOCKERD_SIGNAL ?? "SIGKILL") as "SIGTERM" | "SIGKILL";

/** This test's sandbox containers (running or not) on `docker`: labelled, workspace under `root`. */
async function sandboxesOn(docker: Docker, root: string): Promise<Array<{ id: string; state: string }>> {
  return sandboxesUnder(root, docker);
}

const completedFor = (checkRunId: string) => (c: RecordedCall) => isCheckRunCompleted(c) && c.path.endsWith(`/check-runs/${checkRunId}`);

/**
 * The engine a worker's sandboxes run on is restarted while a preview step runs in one: the
 * container dies with it (live restore off). The task must end cleanly (retried to success, or
 * failed with a clear message, never stuck RUNNING), be reported on GitHub exactly once, leave
 * no container behind, and the worker must go on serving the next preview.
 *
 * One worker process (SANDBOX_POOL_SIZE=0: every sandbox is created cold, so each container on
 * the engine belongs to a task) on a private engine (test/helpers/private-dockerd.ts), reached
 * through DOCKER_HOST; the shared engine is never touched.
 */
describe("Docker engine restart during a task", () => {
  let engine: PrivateDockerd | undefined;
  let f: FaultFixture | undefined;

  beforeAll(async () => {
    engine = await PrivateDockerd.start({ images: [TEST_IMAGE] });
    f = await startFaultFixture({ repo: REPO, token: TOKEN, workers: 1, env: { DOCKER_HOST: engine.host, SANDBOX_POOL_SIZE: "0" } });
  }, 90_000);

  afterAll(async () => {
    try {
      await f?.stop();
    } finally {
      if (process.env.FAULT_DEBUG && engine) console.info(`--- private dockerd ---\n${engine.logTail(40)}`);
      await engine?.stop();
    }
  }, 60_000);

  it("the task fails cleanly or is retried, and no container is left behind", async () => {
    const { gh, git, db, web } = f!;
    const docker = engine!.docker;
    const worker = f!.workers[0] as AppProcess;
    gh.fake.permissions.set("alice", "write");
    gh.fake.files.set("main:.github/agent.yml", CONFIG);
    const sha = await git.commit(REPO, { "preview.sh": exe("#!/bin/sh\necho started\nsleep 8\necho finished\n") });
    const number = 11;
    gh.fake.pulls.set(number, { headSha: sha });

    const res = await deliver(web.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: number, body: "/agent preview", login: "alice" }));
    expect(res.status).toBe(202);
    await until(async () => (await web.deps.queues.webhooks.getJob(jobIdFrom(["wh", res.id])))?.finishedOn, "the delivery to be handled", 30_000);
    await gh.waitFor(isCheckRunInProgress, "the check run to go in_progress");
    const taskId = await until(async () => {
      const { rows } = await db.query<{ id: string }>("SELECT t.id FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 AND t.state = 'RUNNING'", [number]);
      return rows[0]?.id;
    }, "the task to be RUNNING");
    const [container] = await until(async () => {
      const mine = (await sandboxesOn(docker, f!.workspaceRoot)).filter((c) => c.state === "running");
      return mine.length === 1 ? mine : undefined;
    }, "the task's sandbox container on the private engine");
    // The worker uses the private engine only (DOCKER_HOST), never the shared one.
    expect(await sandboxesUnder(f!.workspaceRoot)).toEqual([]);
    await until(async () => {
      const top = await docker.getContainer(container!.id).top().catch(() => ({ Processes: [] as string[][] }));
      return top.Processes.some((p: string[]) => p.join(" ").includes("sleep 8"));
    }, "the preview step to be running in the sandbox", 20_000);

    const restartedAt = Date.now();
    const { downMs, stopMs } = await engine!.restart(SIGNAL);
    // Live restore is off: the task's container did not survive the restart.
    const after = await sandboxesOn(docker, f!.workspaceRoot);
    expect(after.filter((c) => c.id === container!.id && c.state === "running")).toEqual([]);

    // The task ends (not stuck RUNNING), one way or the other.
    const ended = await until(
      async () => {
        const { rows } = await db.query<{ state: string; attempts: number; error: string | null; check_run_id: string | null }>(
          "SELECT state, attempts, error, check_run_id FROM tasks WHERE id = $1",
          [taskId],
        );
        return rows[0] && ["SUCCEEDED", "FAILED"].includes(rows[0].state) ? rows[0] : undefined;
      },
      "the task to end",
      45_000,
    );
    const endedSeconds = (Date.now() - restartedAt) / 1000;
    const done = await gh.waitFor(completedFor(ended.check_run_id!), "the completed check run", 15_000);
    const text = String((done.body!.output as { text?: string } | undefined)?.text ?? "");
    const summary = String((done.body!.output as { summary?: string } | undefined)?.summary ?? "");
    if (ended.state === "SUCCEEDED") {
      // Retried from the start in a fresh sandbox, and run to the end (after SIGKILL the step
      // cannot have finished in the first one; a graceful stop may have let it).
      if (SIGNAL === "SIGKILL") expect(ended.attempts).toBeGreaterThanOrEqual(2);
      expect(done.body).toMatchObject({ conclusion: "success" });
      expect(text).toContain("finished");
    } else {
      // Failed, saying why: the engine went away, not "the step failed".
      expect(done.body).toMatchObject({ conclusion: "failure" });
      expect(ended.error ?? "").toMatch(/sandbox|engine|docker/i);
      expect(`${summary}\n${text}`).toContain(ended.error!);
    }

    // Exactly once on GitHub: one check run, completed once; one sticky comment, final state.
    expect(gh.find("POST", /\/check-runs$/)).toHaveLength(1);
    expect(gh.calls.filter(isCheckRunCompleted)).toHaveLength(1);
    const stickyPosts = gh.find("POST", new RegExp(`/issues/${number}/comments$`)).filter((c) => String(c.body?.body).includes(STICKY_MARKER));
    expect(stickyPosts).toHaveLength(1);
    const stickyId = [...gh.fake.comments.entries()].find(([, c]) => c.issue === number)![0];
    const word = ended.state === "SUCCEEDED" ? "✅ succeeded" : "failed";
    await gh.waitFor((c) => c.method === "PATCH" && c.path.endsWith(`/issues/comments/${stickyId}`) && String(c.body?.body).includes(word), "the sticky comment's final state");

    // Nothing left on the engine: the dead container was removed by the task's own cleanup or
    // by the worker's reaper (SANDBOX_REAP_INTERVAL_SECONDS=2), and no workspace directory.
    await until(async () => (await sandboxesOn(docker, f!.workspaceRoot).catch(() => undefined))?.length === 0, "every sandbox container to be gone", 20_000, 500);
    expect(await readdir(f!.workspaceRoot)).toEqual([]);

    // The worker survived the engine's restart and serves the next preview: a new commit on the
    // same pull request (another PR would be refused: this one holds the stack's lock now).
    expect(worker.alive).toBe(true);
    const sha2 = await git.commit(REPO, { "preview.sh": exe("#!/bin/sh\necho next preview\n") });
    gh.fake.pulls.set(number, { headSha: sha2 });
    const res2 = await deliver(web.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: number, body: "/agent preview", login: "alice" }));
    expect(res2.status).toBe(202);
    const next = await until(
      async () => {
        const { rows } = await db.query<{ state: string; check_run_id: string | null }>(
          "SELECT t.state, t.check_run_id FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 AND w.head_sha = $2 AND t.state IN ('SUCCEEDED', 'FAILED')",
          [number, sha2],
        );
        return rows[0];
      },
      "the next preview to end",
      30_000,
    );
    expect(next.state).toBe("SUCCEEDED");
    const done2 = await gh.waitFor(completedFor(next.check_run_id!), "the next preview's completed check run", 15_000);
    expect(done2.body).toMatchObject({ conclusion: "success" });
    await until(async () => (await sandboxesOn(docker, f!.workspaceRoot)).length === 0, "the next preview's sandbox to be gone", 15_000, 500);
    expect(await readdir(f!.workspaceRoot)).toEqual([]);
    expect(worker.alive).toBe(true);
    expect(gh.fake.unexpected).toEqual([]);

    const attemptLogs = worker.lines.filter(
      (l) => (l.task_id === taskId && /attempt failed|task failed|could not remove/.test(String(l.msg))) || (l.msg === "removed orphaned sandbox containers" && Number(l.time) > restartedAt),
    );
    console.info(
      `docker-restart (${SIGNAL}): engine stopped in ${(stopMs / 1000).toFixed(1)} s, back after ${(downMs / 1000).toFixed(1)} s; ` +
        `task ${ended.state} after ${ended.attempts} attempt(s), ${endedSeconds.toFixed(1)} s after the restart began` +
        (ended.error ? ` (error: ${ended.error})` : "") +
        `; worker said: ${attemptLogs.map((l) => `${String(l.msg)}${l.err ? ` [${String((l.err as { message?: string }).message)}]` : ""}${l.reaped ? ` (${String(l.reaped)})` : ""}`).join("; ") || "nothing"}`,
    );
  }, 90_000);
});
