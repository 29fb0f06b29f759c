/**
 * The expiry sweep: expired stack locks and Slack approval requests are announced once (audit
 * row, Slack notification, the request's buttons taken away), however many workers sweep.
 * Real Postgres; Slack's Web API is nock.
 */
import nock from "nock";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlackNotifier } from "../../src/connectors/slack/client.js";
import type { Db } from "../../src/connectors/store/db.js";
import { claimSlackRequest, setSlackMessage } from "../../src/connectors/store/slack.js";
import { sweepExpired } from "../../src/jobs/expiry.js";
import { migratedTestDb } from "../helpers/harness.js";

const SLACK = "https://slack.test";
type Form = Record<string, string>;
const form = (body: unknown): Form => (typeof body === "string" ? Object.fromEntries(new URLSearchParams(body)) : (body as Form));

describe("sweeping expired locks and approval requests", () => {
  let t: Awaited<ReturnType<typeof migratedTestDb>>;
  let db: Db;
  beforeAll(async () => {
    nock.disableNetConnect();
    nock.enableNetConnect(/127\.0\.0\.1|localhost/);
    t = await migratedTestDb("x");
    db = t.db;
  });
  afterAll(async () => {
    await t.drop();
    nock.cleanAll();
  });

  it("announces each expiry once, leaves live ones alone, and takes the buttons off the expired request", async () => {
    const posted: Form[] = [];
    const updated: Form[] = [];
    // Recorded per scope (a body matcher may also run for requests to other paths).
    nock(SLACK).persist().post("/api/chat.postMessage").reply(200, { ok: true, channel: "C0OPS", ts: "1.2" }).on("request", (_r: unknown, _i: unknown, body: unknown) => posted.push(form(body)));
    nock(SLACK).persist().post("/api/chat.update").reply(200, { ok: true, channel: "C0OPS", ts: "1.1" }).on("request", (_r: unknown, _i: unknown, body: unknown) => updated.push(form(body)));
    const slack = {
      notifier: new SlackNotifier({ token: "xoxb-expiry-test-token-000000", apiUrl: `${SLACK}/api/`, log: pino({ level: "silent" }), retryConfig: { retries: 0 } }),
      config: { botToken: "xoxb-expiry-test-token-000000", signingSecret: "s", channels: { "*": "C0OPS" }, users: {}, apiUrl: `${SLACK}/api/` },
    };
    await db.query(
      `INSERT INTO stack_locks (repo, stack, pr_number, locked_by, acquired_at, expires_at) VALUES
       ('o/r', 'prod', 4, 'alice', now() - interval '2 days', now() - interval '1 hour'),
       ('o/r', 'dev', 5, 'bob', now(), now() + interval '1 hour')`,
    );
    const request = (sha: string, expiresAt: Date) => ({
      kind: "deploy" as const, repo: "o/r", prNumber: 4, prUrl: "https://github.com/o/r/pull/4", stack: "prod", sha, planHash: "sha256:" + "a".repeat(64),
      summary: "+1", destructive: [], requestedBy: "alice", expiresAt, installationId: 1,
    });
    const old = request("1".repeat(40), new Date(Date.now() - 60_000));
    const live = request("2".repeat(40), new Date(Date.now() + 3_600_000));
    for (const r of [old, live]) {
      const id = await claimSlackRequest(db, { repo: r.repo, prNumber: r.prNumber, stack: r.stack, sha: r.sha, planHash: r.planHash }, r);
      await setSlackMessage(db, id!, "C0OPS", r === old ? "1.1" : "1.9");
    }

    // Two workers sweeping at once: each expiry is claimed by exactly one of them.
    const results = await Promise.all([sweepExpired({ db, slack }), sweepExpired({ db, slack })]);
    expect(results.reduce((n, r) => n + r.locks, 0)).toBe(1);
    expect(results.reduce((n, r) => n + r.approvals, 0)).toBe(1);
    // The freed stack is named once, for its lock queue to move on.
    expect(results.flatMap((r) => r.freed)).toEqual([{ repo: "o/r", stack: "prod" }]);
    expect(await sweepExpired({ db, slack })).toEqual({ locks: 0, approvals: 0, freed: [] });

    const { rows: locks } = await db.query("SELECT stack FROM stack_locks");
    expect(locks).toEqual([{ stack: "dev" }]);
    const { rows: audit } = await db.query("SELECT action, detail->>'stack' AS stack FROM audit_log ORDER BY id");
    expect(audit).toEqual([{ action: "lock.expired", stack: "prod" }, { action: "approval.expired", stack: "prod" }]);
    expect(posted.map((p) => p.channel)).toEqual(["C0OPS", "C0OPS"]);
    expect(posted.map((p) => p.text).join("\n")).toMatch(/lock[\s\S]*expired/i);
    // The expired request lost its buttons; the live one was not touched.
    expect(updated).toHaveLength(1);
    expect(updated[0]!.ts).toBe("1.1");
    expect(String(updated[0]!.blocks)).not.toContain("agent_approve");
    const { rows: decided } = await db.query("SELECT head_sha, decided FROM slack_messages ORDER BY head_sha");
    expect(decided).toEqual([{ head_sha: "1".repeat(40), decided: "expired" }, { head_sha: "2".repeat(40), decided: null }]);
  });
});
