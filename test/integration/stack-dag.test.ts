import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { GitHubFake } from "../helpers/github-fake.js";
import { executable as exe, type GitHttpServer } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, leftoverSandboxes, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/platform";
const TOKEN = "ghs_stackDagInstallationToken0000000000001";

/**
 * A diamond of six stacks (`b depends_on a`: a first):
 *   network → database, cache;  database, cache → api;  database → worker;  api → frontend
 */
const AGENT_YML = `version: 1
steps:
  preview: ["./preview.sh"]
stacks:
  - { name: frontend, depends_on: [api] }
  - { name: api, depends_on: [database, cache] }
  - { name: worker, depends_on: [database] }
  - { name: database, depends_on: [network] }
  - { name: cache, depends_on: [network] }
  - { name: network }
`;
const UPSTREAM: Record<string, string[]> = { network: [], database: ["network"], cache: ["network"], api: ["database", "cache"], worker: ["database"], frontend: ["api"] };
const ALL = Object.keys(UPSTREAM);

/** The preview fails for the stacks named in FAIL (a file in the tree). */
function tree(fail: string[] = []) {
  return {
    "preview.sh": exe(`#!/bin/sh\nfor s in ${fail.join(" ") || "none"}; do if [ "$AGENT_STACK" = "$s" ]; then echo "preview of $s: provider error"; exit 1; fi; done\necho "preview of $AGENT_STACK"\necho '+ 1 to create'\n`),
  };
}

describe("stack dependencies: previews in topological layers (real Redis, Postgres, Docker)", () => {
  let f: AppFixture;
  let app: RunningApp;
  let git: GitHttpServer;
  let gh: GitHubFake;
  let db: pg.Client;
  let pr = 100;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, { env: { WORKER_CONCURRENCY: "3" } });
    ({ app, git, db } = f);
  });
  afterEach(() => gh?.stop());
  afterAll(() => f.stop());

  async function setup(files: Record<string, string | { content: string; mode: number }>) {
    await db.query("DELETE FROM stack_locks");
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", AGENT_YML);
    const sha = await git.commit(REPO, files);
    const number = ++pr;
    gh.pulls.set(number, { headSha: sha });
    return { sha, number };
  }

  const comment = (number: number, body: string) => issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: number, body, login: "alice" });

  /** Every named stack's check run has completed (whether its creation and completion went as one write or several). */
  function completed(stacks: string[]) {
    const done = () => stacks.every((s) => [...gh.checkRuns.values()].some((cr) => cr.name === `agent/preview (${s})` && cr.status === "completed"));
    return gh.waitFor(done, `check runs of ${stacks.join(", ")} to complete`, 120_000);
  }
  const checkRun = (stack: string) => [...gh.checkRuns.values()].find((cr) => cr.name === `agent/preview (${stack})`)!;

  async function taskRows(number: number) {
    const { rows } = await db.query<{ stack: string; state: string; error: string | null; started_at: Date | null; finished_at: Date | null; logs: number }>(
      `SELECT t.stack, t.state, t.error, t.started_at, t.finished_at, (SELECT count(*)::int FROM task_logs l WHERE l.task_id = t.id) AS logs
       FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 AND w.repo = $2 AND t.kind = 'preview'`,
      [number, REPO],
    );
    return new Map(rows.map((r) => [r.stack, r]));
  }

  it("each stack's preview starts only after the previews of the stacks it depends on succeeded", async () => {
    const { number } = await setup(tree());
    // Named out of order on purpose: the order comes from depends_on, not from the comment.
    expect((await deliver(app.port!, "issue_comment", comment(number, `/agent preview ${[...ALL].reverse().join(" ")}`))).status).toBe(202);
    await completed(ALL);
    const rows = await taskRows(number);
    expect([...rows.values()].map((r) => r.state)).toEqual(ALL.map(() => "SUCCEEDED"));
    for (const [stack, ups] of Object.entries(UPSTREAM)) {
      for (const up of ups) {
        expect(rows.get(stack)!.started_at!.getTime(), `${stack} started after ${up} finished`).toBeGreaterThanOrEqual(rows.get(up)!.finished_at!.getTime());
      }
    }
    for (const s of ALL) expect(checkRun(s).conclusion).toBe("success");
    // Stacks of one layer are independent: database and cache ran side by side (both waited only for network).
    const { rows: deps } = await db.query<{ stack: string; n: number }>(
      `SELECT t.stack, cardinality(t.depends_on) AS n FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = $1 AND w.repo = $2`,
      [number, REPO],
    );
    expect(Object.fromEntries(deps.map((d) => [d.stack, d.n]))).toEqual({ network: 0, database: 1, cache: 1, api: 2, worker: 1, frontend: 1 });
  });

  it("a failure in the middle stops everything downstream without running it, and leaves the rest alone", async () => {
    const { number } = await setup(tree(["database"]));
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview network database cache api worker frontend"));
    await completed(ALL);
    const rows = await taskRows(number);
    expect(Object.fromEntries([...rows].map(([s, r]) => [s, r.state]))).toEqual({
      network: "SUCCEEDED",
      cache: "SUCCEEDED",
      database: "FAILED",
      api: "FAILED",
      worker: "FAILED",
      frontend: "FAILED",
    });
    expect(rows.get("api")!.error).toBe("not run: database failed");
    expect(rows.get("worker")!.error).toBe("not run: database failed");
    expect(rows.get("frontend")!.error).toBe("not run: api did not run either (database failed)");
    // Nothing ran for them: no sandbox, no log; database itself ran and logged.
    for (const s of ["api", "worker", "frontend"]) expect(rows.get(s)!.logs, s).toBe(0);
    expect(rows.get("database")!.logs).toBeGreaterThan(0);
    expect(checkRun("api").conclusion).toBe("failure");
    expect(String((checkRun("frontend").output as { summary: string }).summary)).toContain("not run: api did not run either (database failed)");
    expect(checkRun("cache").conclusion).toBe("success");
    expect(await leftoverSandboxes(app)).toBe(0);
  });

  it("previewing a stack and one far downstream orders them through the stacks in between", async () => {
    const { number } = await setup(tree(["network"]));
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview frontend network"));
    await completed(["network", "frontend"]);
    const rows = await taskRows(number);
    expect(rows.get("network")!.state).toBe("FAILED");
    expect(rows.get("frontend")).toMatchObject({ state: "FAILED", error: "not run: network failed", logs: 0 });
    expect(rows.size).toBe(2);
  });

  it("/agent status draws the dependency graph with each stack's state", async () => {
    const { number } = await setup(tree(["database"]));
    await deliver(app.port!, "issue_comment", comment(number, "/agent preview network database cache"));
    await completed(["network", "database", "cache"]);
    const before = gh.calls.length;
    await deliver(app.port!, "issue_comment", comment(number, "/agent status"));
    const reply = await gh.waitFor((c) => gh.calls.indexOf(c) >= before && c.method === "POST" && c.path.endsWith(`/issues/${number}/comments`) && String(c.body?.body).includes("status of"), "the status reply");
    const body = String(reply.body!.body);
    const graph = /```mermaid\n([\s\S]*?)```/.exec(body)?.[1] ?? "";
    expect(graph).toMatch(/^graph LR\n/);
    const node = (stack: string) => new RegExp(`(s\\d+)\\["${stack}<br/>([a-z ]+)"\\]:::(\\w+)`).exec(graph);
    expect(node("network")?.slice(2)).toEqual(["succeeded", "ok"]);
    expect(node("database")?.slice(2)).toEqual(["failed", "failed"]);
    expect(node("frontend")?.slice(2)).toEqual(["not previewed", "idle"]);
    // Edges point from the upstream stack to the one that depends on it.
    expect(graph).toContain(`${node("network")![1]} --> ${node("database")![1]}`);
    expect(graph).toContain(`${node("api")![1]} --> ${node("frontend")![1]}`);
    expect(graph).not.toContain(`${node("database")![1]} --> ${node("network")![1]}`);
  });
});
