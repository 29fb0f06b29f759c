import { createHmac } from "node:crypto";
import nock from "nock";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { SlackNotifier } from "../../src/connectors/slack/client.js";
import { parseSlackInteraction, type SlackInteraction } from "../../src/connectors/slack/interactions.js";
import { approvalRequestMessage, decisionMessage } from "../../src/render/slack.js";
import { type ApprovalRequest } from "../../src/domain/slack-approval.js";
import { notifyChannel, postApprovalRequest } from "../../src/deploys/slack.js";

const SLACK = "https://slack.test";
const TOKEN = "xoxb-1111-2222-T0kenThatMustNeverBeLogged";
const SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const SHA = "0123456789abcdef0123456789abcdef01234567";
const PLAN = `sha256:${"ab".repeat(32)}`;
const NOW_MS = Date.UTC(2025, 0, 15, 12, 0, 0);
const NOW_S = Math.floor(NOW_MS / 1000);
const USERS = { U0ALICE: "alice", U0BOB: "bob" };

const request: ApprovalRequest = {
  kind: "deploy",
  repo: "acme/infra",
  prNumber: 42,
  prUrl: "https://github.com/acme/infra/pull/42",
  stack: "prod",
  sha: SHA,
  planHash: PLAN,
  summary: "+3 ~1 -2",
  destructive: [
    { op: "delete", type: "aws:s3/bucket:Bucket", name: "logs" },
    { op: "replace", type: "aws:rds/instance:Instance", name: "db" },
  ],
  requestedBy: "carol",
  expiresAt: new Date(NOW_MS + 3600_000),
  installationId: 99,
};

// -- logging: captured, so tests can assert what was (and was not) logged ---------------------

let logLines: string[] = [];
const log = pino({ level: "trace" }, { write: (s: string) => void logLines.push(s) });
const logged = () => logLines.join("");

function notifier(): SlackNotifier {
  return new SlackNotifier({ token: TOKEN, apiUrl: `${SLACK}/api/`, log, retryConfig: { retries: 0 } });
}

/** Slack's Web API takes form-encoded bodies; complex arguments (blocks) arrive as JSON strings. */
type FormBody = Record<string, string>;

beforeAll(() => {
  nock.disableNetConnect();
  nock.enableNetConnect(/127\.0\.0\.1|localhost/);
});

beforeEach(() => {
  logLines = [];
});

afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
  // Whatever happened, the token never reaches the log.
  expect(logged()).not.toContain(TOKEN);
  expect(logged()).not.toContain("T0kenThatMustNeverBeLogged");
});

afterAll(() => {
  nock.enableNetConnect();
});

describe("SlackNotifier: Web API calls", () => {
  it("posts the approval request to the channel with the rendered blocks and the bot token", async () => {
    let body: FormBody | undefined;
    const scope = nock(SLACK, { reqheaders: { authorization: `Bearer ${TOKEN}` } })
      .post("/api/chat.postMessage", (b: FormBody) => {
        body = b;
        return true;
      })
      .reply(200, { ok: true, channel: "C0123ABC", ts: "1736942400.000100" });

    const posted = await postApprovalRequest(notifier(), "C0123ABC", request);

    expect(posted).toEqual({ channel: "C0123ABC", ts: "1736942400.000100" });
    expect(scope.isDone()).toBe(true);
    expect(body!.channel).toBe("C0123ABC");
    expect(body!.unfurl_links).toBe("false");
    const expected = approvalRequestMessage(request);
    expect(body!.text).toBe(expected.text);
    const blocks = JSON.parse(body!.blocks!) as Array<Record<string, unknown>>;
    expect(blocks).toEqual(expected.blocks);
    const actions = blocks.find((b) => b.type === "actions") as { elements: Array<{ action_id: string; value: string }> };
    expect(actions.elements.map((e) => e.action_id)).toEqual(["agent_approve", "agent_deny"]);
    expect(JSON.parse(actions.elements[0]!.value)).toEqual({
      v: 1,
      repo: "acme/infra",
      pr: 42,
      stack: "prod",
      sha: SHA,
      plan: PLAN,
      kind: "deploy",
      inst: 99,
    });
    expect(JSON.stringify(blocks)).toContain("aws:s3/bucket:Bucket");
  });

  it("replaces the message with the decision (no buttons) through chat.update", async () => {
    let body: FormBody | undefined;
    nock(SLACK, { reqheaders: { authorization: `Bearer ${TOKEN}` } })
      .post("/api/chat.update", (b: FormBody) => {
        body = b;
        return true;
      })
      .reply(200, { ok: true, channel: "C0123ABC", ts: "1736942400.000100" });

    const message = decisionMessage(request, { decision: "approved", by: "U0ALICE", githubLogin: "alice" });
    expect(await notifier().updateMessage("C0123ABC", "1736942400.000100", message)).toBe(true);

    expect(body!.channel).toBe("C0123ABC");
    expect(body!.ts).toBe("1736942400.000100");
    const blocks = JSON.parse(body!.blocks!) as Array<{ type: string }>;
    expect(blocks).toEqual(message.blocks);
    expect(blocks.some((b) => b.type === "actions")).toBe(false);
    expect(body!.blocks).toContain("Approved");
    expect(body!.blocks).toContain("<@U0ALICE>");
  });

  it("posts a notification", async () => {
    let body: FormBody | undefined;
    nock(SLACK)
      .post("/api/chat.postMessage", (b: FormBody) => {
        body = b;
        return true;
      })
      .reply(200, { ok: true, channel: "C0999", ts: "1.2" });

    const ok = await notifyChannel(notifier(), "C0999", {
      event: "deploy.failed",
      repo: "acme/infra",
      prNumber: 42,
      stack: "prod",
      sha: SHA,
      detail: "error: <boom> & more",
      url: "https://github.com/acme/infra/runs/7",
    });

    expect(ok).toBe(true);
    expect(body!.channel).toBe("C0999");
    expect(body!.text).toBe("Deploy failed: acme/infra prod (PR #42)");
    expect(body!.blocks).toContain("error: &lt;boom&gt; &amp; more");
    expect(body!.blocks).toContain("<https://github.com/acme/infra/runs/7|Details>");
  });

  it("logs and swallows a Slack error answer (channel_not_found)", async () => {
    nock(SLACK).post("/api/chat.postMessage").reply(200, { ok: false, error: "channel_not_found" });
    nock(SLACK).post("/api/chat.postMessage").reply(200, { ok: false, error: "channel_not_found" });
    nock(SLACK).post("/api/chat.update").reply(200, { ok: false, error: "message_not_found" });

    const n = notifier();
    await expect(postApprovalRequest(n, "C0GONE", request)).resolves.toBeNull();
    await expect(notifyChannel(n, "C0GONE", { event: "lock.stolen", repo: "acme/infra", stack: "prod" })).resolves.toBe(false);
    await expect(n.updateMessage("C0GONE", "1.2", decisionMessage(request, { decision: "denied", by: "U0BOB", githubLogin: "bob" }))).resolves.toBe(false);

    const entries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const failures = entries.filter((e) => e.slackError !== undefined);
    expect(failures.map((e) => [e.method, e.channel, e.slackError])).toEqual([
      ["chat.postMessage", "C0GONE", "channel_not_found"],
      ["chat.postMessage", "C0GONE", "channel_not_found"],
      ["chat.update", "C0GONE", "message_not_found"],
    ]);
  });

  it("logs and swallows an HTTP 500 (no retry when retries are off)", async () => {
    nock(SLACK).post("/api/chat.postMessage").reply(500, "upstream broke");
    nock(SLACK).post("/api/chat.update").reply(500, "upstream broke");

    const n = notifier();
    await expect(postApprovalRequest(n, "C0123ABC", request)).resolves.toBeNull();
    await expect(n.updateMessage("C0123ABC", "1.2", approvalRequestMessage(request))).resolves.toBe(false);

    const entries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.status === 500);
    expect(entries.map((e) => e.method)).toEqual(["chat.postMessage", "chat.update"]);
  });

  it("logs and swallows a network failure", async () => {
    nock(SLACK).post("/api/chat.postMessage").replyWithError("socket hang up");
    await expect(notifyChannel(notifier(), "C0123ABC", { event: "deploy.started", repo: "acme/infra", stack: "prod" })).resolves.toBe(false);
    expect(logged()).toContain("slack: post failed");
  });
});

// -- interactions ----------------------------------------------------------------------------

/** Exactly what Slack sends: `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>`. */
function sign(body: string, timestamp: number, secret = SIGNING_SECRET): string {
  return `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
}

/** A block_actions payload for a click on one of the rendered message's buttons. */
function clickPayload(opts: { user?: string; actionId?: "agent_approve" | "agent_deny"; value?: string } = {}) {
  const actions = approvalRequestMessage(request).blocks.find((b) => (b as { type: string }).type === "actions") as {
    elements: Array<{ action_id: string; value: string; block_id?: string }>;
  };
  const button = actions.elements.find((e) => e.action_id === (opts.actionId ?? "agent_approve"))!;
  return {
    type: "block_actions",
    user: { id: opts.user ?? "U0ALICE", username: "alice.slack", name: "alice.slack", team_id: "T0TEAM" },
    api_app_id: "A0APP",
    token: "legacy-verification-token",
    container: { type: "message", message_ts: "1736942400.000100", channel_id: "C0123ABC", is_ephemeral: false },
    trigger_id: "123.456.abc",
    team: { id: "T0TEAM", domain: "acme" },
    channel: { id: "C0123ABC", name: "deploys" },
    message: { type: "message", ts: "1736942400.000100", text: "Approval needed" },
    response_url: "https://hooks.slack.com/actions/T0TEAM/1/abc",
    actions: [
      {
        action_id: button.action_id,
        block_id: "agent_approval",
        text: { type: "plain_text", text: "Approve", emoji: true },
        value: opts.value ?? button.value,
        type: "button",
        action_ts: `${NOW_S}.000200`,
      },
    ],
  };
}

/** Form-encoded like Slack's POST: a single `payload` field. */
function formBody(payload: unknown): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

function signedRequest(body: string, timestamp = NOW_S, secret = SIGNING_SECRET) {
  return {
    rawBody: body,
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-slack-request-timestamp": String(timestamp),
      "x-slack-signature": sign(body, timestamp, secret),
    },
    signingSecret: SIGNING_SECRET,
    nowMs: NOW_MS,
    users: USERS,
  };
}

function expectRejected(r: SlackInteraction, status: 400 | 401) {
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.status).toBe(status);
}

describe("parseSlackInteraction", () => {
  it("accepts a genuine Approve click and maps the user", () => {
    const r = parseSlackInteraction(signedRequest(formBody(clickPayload())));
    expect(r).toEqual({
      ok: true,
      slackUser: "U0ALICE",
      githubLogin: "alice",
      action: "approve",
      value: { repo: "acme/infra", pr: 42, stack: "prod", sha: SHA, plan: PLAN, kind: "deploy", inst: 99 },
      responseUrl: "https://hooks.slack.com/actions/T0TEAM/1/abc",
      channel: "C0123ABC",
      messageTs: "1736942400.000100",
      replayKey: expect.stringMatching(/^[0-9a-f]{64}$/),
      requestTs: NOW_S,
    });
  });

  it("accepts a Deny click", () => {
    const r = parseSlackInteraction(signedRequest(formBody(clickPayload({ user: "U0BOB", actionId: "agent_deny" }))));
    expect(r.ok && r.action).toBe("deny");
    expect(r.ok && r.githubLogin).toBe("bob");
  });

  it("reads headers whatever their case, and single-element arrays", () => {
    const body = formBody(clickPayload());
    const req = signedRequest(body);
    const r = parseSlackInteraction({
      ...req,
      headers: { "X-Slack-Signature": [req.headers["x-slack-signature"]], "X-Slack-Request-Timestamp": String(NOW_S) },
    });
    expect(r.ok).toBe(true);
  });

  it("rejects a forged signature (another secret) with 401", () => {
    const r = parseSlackInteraction(signedRequest(formBody(clickPayload()), NOW_S, "0000000000000000000000000000beef"));
    expectRejected(r, 401);
  });

  it("rejects missing or malformed signature headers with 401", () => {
    const req = signedRequest(formBody(clickPayload()));
    expectRejected(parseSlackInteraction({ ...req, headers: { "x-slack-request-timestamp": String(NOW_S) } }), 401);
    expectRejected(parseSlackInteraction({ ...req, headers: { ...req.headers, "x-slack-signature": "v1=abc" } }), 401);
    expectRejected(parseSlackInteraction({ ...req, headers: { ...req.headers, "x-slack-request-timestamp": "12ab" } }), 401);
    expectRejected(parseSlackInteraction({ ...req, signingSecret: "" }), 401);
  });

  it("rejects a correctly signed request whose timestamp is 6 minutes old with 401", () => {
    const old = NOW_S - 6 * 60;
    expectRejected(parseSlackInteraction(signedRequest(formBody(clickPayload()), old)), 401);
    // …and one from 6 minutes in the future; 4 minutes either way is within Slack's window.
    expectRejected(parseSlackInteraction(signedRequest(formBody(clickPayload()), NOW_S + 6 * 60)), 401);
    expect(parseSlackInteraction(signedRequest(formBody(clickPayload()), NOW_S - 4 * 60)).ok).toBe(true);
    expect(parseSlackInteraction(signedRequest(formBody(clickPayload()), NOW_S + 4 * 60)).ok).toBe(true);
  });

  it("rejects a replay of valid headers with a changed payload with 401", () => {
    const genuine = signedRequest(formBody(clickPayload({ actionId: "agent_deny" })));
    expect(parseSlackInteraction(genuine).ok).toBe(true);
    // Same signature and timestamp, but the click turned into Approve…
    expectRejected(parseSlackInteraction({ ...genuine, rawBody: formBody(clickPayload({ actionId: "agent_approve" })) }), 401);
    // …or the value bound to another SHA.
    const moved = clickPayload({ actionId: "agent_deny" });
    moved.actions[0]!.value = moved.actions[0]!.value.replace(SHA, "f".repeat(40));
    expectRejected(parseSlackInteraction({ ...genuine, rawBody: formBody(moved) }), 401);
  });

  it("accepts an unknown Slack user with githubLogin null (the click must not count)", () => {
    const r = parseSlackInteraction(signedRequest(formBody(clickPayload({ user: "U0MALLORY" }))));
    expect(r.ok).toBe(true);
    expect(r.ok && r.slackUser).toBe("U0MALLORY");
    expect(r.ok && r.githubLogin).toBeNull();
  });

  it("maps only the user's own entry (no prototype lookups)", () => {
    const users = Object.assign(Object.create({ U0PROTO: "inherited" }) as Record<string, string>, { U0ALICE: "alice" });
    const r = parseSlackInteraction({ ...signedRequest(formBody(clickPayload({ user: "U0PROTO" }))), users });
    expect(r.ok && r.githubLogin).toBeNull();
  });

  it("rejects malformed payloads with 400", () => {
    const cases: string[] = [
      "nothing=here",
      "payload=%7Bnot-json",
      formBody({ ...clickPayload(), type: "view_submission" }),
      formBody({ ...clickPayload(), actions: [] }),
      formBody(clickPayload({ value: "not json" })),
      formBody(clickPayload({ value: JSON.stringify({ v: 1, repo: "acme/infra" }) })),
      formBody(clickPayload({ value: JSON.stringify({ ...JSON.parse(clickPayload().actions[0]!.value), v: 2 }) })),
      formBody(clickPayload({ value: JSON.stringify({ ...JSON.parse(clickPayload().actions[0]!.value), sha: "HEAD" }) })),
      formBody(clickPayload({ value: JSON.stringify({ ...JSON.parse(clickPayload().actions[0]!.value), extra: true }) })),
      formBody({ ...clickPayload(), actions: [{ ...clickPayload().actions[0]!, action_id: "something_else" }] }),
      formBody({ ...clickPayload(), user: { id: "alice" } }),
    ];
    for (const body of cases) {
      const r = parseSlackInteraction(signedRequest(body));
      expect(r.ok ? `accepted: ${body}` : r.status).toBe(400);
    }
  });

  it("user not allowed: the click is parsed, the policy refuses, the message says so without buttons", async () => {
    // bob is mapped, but (say) not a required reviewer: the policy's answer is rendered and posted.
    const r = parseSlackInteraction(signedRequest(formBody(clickPayload({ user: "U0BOB" }))));
    expect(r.ok && r.githubLogin).toBe("bob");
    if (!r.ok) return;

    let body: FormBody | undefined;
    nock(SLACK)
      .post("/api/chat.update", (b: FormBody) => {
        body = b;
        return true;
      })
      .reply(200, { ok: true, channel: r.channel, ts: r.messageTs });
    const message = decisionMessage(request, {
      decision: "refused",
      by: r.slackUser,
      githubLogin: r.githubLogin,
      reason: "bob may not approve deploys to prod",
    });
    expect(await notifier().updateMessage(r.channel!, r.messageTs!, message)).toBe(true);
    expect(body!.channel).toBe("C0123ABC");
    expect(body!.ts).toBe("1736942400.000100");
    expect(body!.blocks).toContain("Not accepted");
    expect(body!.blocks).toContain("bob may not approve deploys to prod");
    expect(body!.blocks).not.toContain("agent_approve");
  });
});
