import { statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, leftoverSandboxes, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/hostile";
const TOKEN = "ghs_limitsInstallationToken000000000000004";
const CONFIG = `version: 1
stacks:
  - name: dev
steps:
  test: ["./attack.sh"]
  preview: ["sh", "-c", "echo preview-ran"]
`;

/**
 * Hostile pull requests, end to end through the task worker: each attack ends as a FAILED
 * task whose check run says why, the later step is skipped, and the worker keeps serving.
 */
describe("sandbox limits at the task level", () => {
  let f: AppFixture;
  let app: RunningApp;
  let git: AppFixture["git"];
  let gh: GitHubFake;
  let db: pg.Client;
  let pr = 300;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, {
      env: { SANDBOX_MEMORY_MB: "64", SANDBOX_PIDS: "64", SANDBOX_TIMEOUT_SECONDS: "3", SANDBOX_OUTPUT_LIMIT_BYTES: "200000", SANDBOX_POOL_SIZE: "1", SANDBOX_WORKSPACE_MB: "16" },
    });
    ({ app, git, db } = f);
  });
  afterEach(() => gh?.stop());
  afterAll(() => f.stop());

  async function attack(script: string) {
    // Each attack is another PR on the same stack: earlier locks must not refuse it.
    await db.query("DELETE FROM stack_locks");
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", CONFIG);
    const sha = await git.commit(REPO, { "attack.sh": exe(`#!/bin/sh\n${script}\n`) });
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha });
    await deliver(app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: number, body: "/agent preview", login: "alice" }));
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    const { rows } = await db.query("SELECT t.state, t.error FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1", [number]);
    const output = done.body!.output as { title: string; summary: string; text: string };
    return { conclusion: done.body!.conclusion, output, task: rows[0] as { state: string; error: string | null } };
  }

  it("a memory hog is OOM-killed and reported as out of memory", async () => {
    const r = await attack(`node -e "const a=[]; for(;;) a.push(Buffer.alloc(1<<20, 1))"`);
    expect(r.conclusion).toBe("failure");
    expect(r.task.state).toBe("FAILED");
    expect(r.task.error).toMatch(/out of memory \(the sandbox limit is 64 MB\)/);
    expect(r.output.summary).toMatch(/❌ test .*out of memory/);
    expect(r.output.summary).toContain("⏭️ preview");
  });

  it("a fork bomb hits the process limit and is reported so", async () => {
    const r = await attack(`bomb() { bomb | bomb & }; bomb; sleep 1; exit 1`);
    expect(r.conclusion).toBe("failure");
    expect(r.task.state).toBe("FAILED");
    expect(r.task.error).toMatch(/process limit \(64 processes\)/);
  });

  it("a step that fills the disk hits the workspace's size limit and is reported so; the worker's disk is untouched", async () => {
    const before = (await statfs(tmpdir())).bavail * (await statfs(tmpdir())).bsize;
    const r = await attack(`head -c 268435456 /dev/zero > /workspace/fill.bin`);
    expect(r.conclusion).toBe("failure");
    expect(r.task.state).toBe("FAILED");
    expect(r.task.error).toMatch(/filled the workspace \(the sandbox's disk limit is 16 MB\)/);
    expect(r.output.summary).toContain("⏭️ preview");
    // 256 MB were asked for; the worker's own disk did not take them.
    const after = (await statfs(tmpdir())).bavail * (await statfs(tmpdir())).bsize;
    expect(before - after).toBeLessThan(64 * 1024 * 1024);
  });

  it("an infinite loop is stopped at the wall-clock limit", async () => {
    const r = await attack(`while :; do :; done`);
    expect(r.conclusion).toBe("timed_out");
    expect(r.task.state).toBe("FAILED");
    expect(r.task.error).toMatch(/ran past its time limit/);
    expect(r.output.summary).toContain("⏱️ test");
  });

  it("a step printing without end is cut off with a marker while the worker's memory stays flat", async () => {
    const before = process.memoryUsage().rss;
    const r = await attack(`yes 'flood flood flood flood flood flood flood'`);
    expect(r.conclusion).toBe("failure");
    expect(r.task.error).toMatch(/printed more than 200000 bytes/);
    expect(r.output.text).toContain("[output cut: the step printed more than the sandbox output limit]");
    expect(r.output.text.length).toBeLessThanOrEqual(65_535);
    // Bounded by the tail buffer, not by what the step printed (generous: GC is not forced).
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });

  it("after all that, the worker still runs a well-behaved preview and nothing is left over", async () => {
    const r = await attack(`echo all good`);
    expect(r.conclusion).toBe("success");
    expect(r.output.text).toContain("preview-ran");
    expect(await leftoverSandboxes(app)).toBe(0);
  });
});
