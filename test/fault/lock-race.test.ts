/**
 * Queued stack locks across processes: 20 pull requests ask, all at once, for overlapping pairs
 * of stacks (in both orders) through a web tier and two worker processes. At every step each
 * PR holds all of its set or none of it; nobody deadlocks; closing the holders hands the locks
 * down until every PR has previewed its set exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, pullRequestPayload } from "../helpers/harness.js";
import { startFaultFixture, until, type FaultFixture } from "../helpers/app-process.js";

const REPO = "octo-org/fault-lock-race";
const TOKEN = "ghs_faultLockRaceInstallationToken0000001";
const STACKS = ["s1", "s2", "s3", "s4"];
const CONFIG = `version: 1\nstacks:\n${STACKS.map((s) => `  - name: ${s}`).join("\n")}\nsteps:\n  preview: ["./preview.sh"]\n`;
const PRS = Array.from({ length: 20 }, (_, i) => 101 + i);
/** PR n asks for two neighbouring stacks, every other one in the reverse order. */
const setOf = (n: number): string[] => {
  const i = n % STACKS.length;
  const pair = [STACKS[i]!, STACKS[(i + 1) % STACKS.length]!];
  return n % 2 ? pair.reverse() : pair;
};

describe("queued locks: 20 PRs, overlapping sets, two worker processes", () => {
  let f: FaultFixture;

  beforeAll(async () => {
    f = await startFaultFixture({ repo: REPO, token: TOKEN, workers: 2, env: { WORKER_CONCURRENCY: "3" } });
  });
  afterAll(() => f?.stop());

  it("every PR gets its whole set once, never half of it, and the queue drains", async () => {
    const { gh, git, db, web } = f;
    gh.fake.permissions.set("alice", "write");
    gh.fake.files.set("main:.github/agent.yml", CONFIG);
    const sha = await git.commit(REPO, { "preview.sh": exe('#!/bin/sh\necho "preview of $AGENT_STACK for #$AGENT_PR_NUMBER"\n') });
    for (const n of PRS) gh.fake.pulls.set(n, { headSha: sha });

    const statuses = await Promise.all(PRS.map((n) => deliver(web.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: n, body: `/agent preview ${setOf(n).join(" ")}`, login: "alice" }))));
    expect(statuses.map((s) => s.status)).toEqual(PRS.map(() => 202));
    await until(async () => (await db.query("SELECT count(*)::int AS n FROM tasks WHERE kind = 'preview'")).rows[0].n === PRS.length * 2 || undefined, "every command recorded", 60_000, 200);

    const tasks = async () => (await db.query<{ pr: number; stack: string; state: string; attempts: number }>("SELECT w.pr_number AS pr, t.stack, t.state, t.attempts FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE t.kind = 'preview'")).rows;
    const held = async () => {
      const byPr = new Map<number, string[]>();
      for (const r of (await db.query<{ pr: number; stack: string }>("SELECT pr_number AS pr, stack FROM stack_locks WHERE expires_at > now() ORDER BY stack")).rows) byPr.set(r.pr, [...(byPr.get(r.pr) ?? []), r.stack]);
      return byPr;
    };
    /** All or none: a holder holds exactly its set; a PR not done and not holding waits for its whole set. */
    const checkSets = async (closed: Set<number>) => {
      const holders = await held();
      for (const [pr, stacks] of holders) expect(stacks, `#${pr} holds its whole set`).toEqual([...setOf(pr)].sort());
      const waits = new Map<number, string[]>();
      for (const r of (await db.query<{ pr: number; stack: string }>("SELECT pr_number AS pr, stack FROM lock_waits ORDER BY stack")).rows) waits.set(r.pr, [...(waits.get(r.pr) ?? []), r.stack]);
      for (const pr of PRS) {
        if (closed.has(pr) || holders.has(pr)) {
          expect(waits.has(pr), `#${pr} holds or is done, and does not wait`).toBe(false);
          continue;
        }
        expect(waits.get(pr), `#${pr} waits for its whole set`).toEqual([...setOf(pr)].sort());
      }
      return holders;
    };

    const closed = new Set<number>();
    let rounds = 0;
    while (closed.size < PRS.length) {
      expect(++rounds, "rounds (a deadlock would never finish)").toBeLessThanOrEqual(PRS.length);
      // The holders' previews finish; then the sets are checked and the holders close.
      const holders = await until(async () => {
        const h = await held();
        const open = [...h.keys()].filter((pr) => !closed.has(pr));
        if (open.length === 0) return undefined;
        const t = await tasks();
        return open.every((pr) => t.filter((x) => x.pr === pr).every((x) => x.state === "SUCCEEDED")) ? h : undefined;
      }, `round ${rounds}: the holders' previews`, 60_000, 200);
      await checkSets(closed);
      const now = [...holders.keys()].filter((pr) => !closed.has(pr));
      // Two PRs never hold overlapping sets at once.
      const stacksHeld = now.flatMap((pr) => setOf(pr));
      expect(new Set(stacksHeld).size).toBe(stacksHeld.length);
      await Promise.all(now.map((pr) => deliver(web.port!, "pull_request", pullRequestPayload("closed", { repo: REPO, prNumber: pr, merged: true }))));
      for (const pr of now) closed.add(pr);
      // Their locks are gone (and handed on) before the next round looks.
      await until(async () => ([...(await held()).keys()].some((pr) => now.includes(pr)) ? undefined : true), `round ${rounds}: the closed PRs' locks released`, 30_000, 200);
    }
    const all = await tasks();
    expect(all).toHaveLength(PRS.length * 2);
    expect(all.every((t) => t.state === "SUCCEEDED" && t.attempts === 1)).toBe(true);
    expect((await db.query("SELECT count(*)::int AS n FROM lock_waits")).rows[0].n).toBe(0);
    expect((await db.query("SELECT count(*)::int AS n FROM stack_locks")).rows[0].n).toBe(0);
    // Sets of two out of four stacks: at most two PRs at a time, so it took at least ten rounds.
    expect(rounds).toBeGreaterThanOrEqual(PRS.length / 2);
  }, 300_000);
});
