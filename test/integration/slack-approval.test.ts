/**
 * Slack approvals end to end: a blocked `/agent deploy` posts the approval request to the
 * stack's channel; a signed Approve click on the running server (queued by the web tier,
 * handled by a worker) records an approval bound to that SHA and plan, updates the message and
 * tells the PR; the gate then counts it like `/approve`. Forged, stale, replayed clicks and
 * unknown or unauthorised users change nothing. Slack's Web API is nock; the rest is real.
 */
import { createHmac } from "node:crypto";
import { EventEmitter, once } from "node:events";
import nock from "nock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { executable as exe } from "../helpers/git-server.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/slacked";
const TOKEN = "ghs_slackApprovalInstallationToken00000060";
const SLACK = "https://slack.test";
const BOT_TOKEN = "xoxb-1234567890-0987654321-TestBotTokenValue00";
const SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const CONFIG = `version: 1
stacks:
  - name: prod
    dir: app
    gate: { approvals: 1, require: { lock: false } }
    steps:
      preview: ["echo", "plan: scale web to 3"]
      deploy: ["./deploy.sh"]
`;
type Form = Record<string, string>;
const form = (body: unknown): Form => (typeof body === "string" ? Object.fromEntries(new URLSearchParams(body)) : (body as Form));

describe("approving a deploy from Slack", () => {
  let f: AppFixture;
  let gh: GitHubFake;
  const posted: Form[] = [];
  const updated: Form[] = [];
  const ephemeral: Form[] = [];
  // Slack calls are not GitHub calls: they announce themselves here, so waits need no polling.
  const slackCalls = new EventEmitter();
  const slackWait = async (pred: () => boolean, what: string) => {
    const deadline = AbortSignal.timeout(30_000);
    while (!pred()) await once(slackCalls, "call", { signal: deadline }).catch(() => { throw new Error(`timed out waiting for ${what}`); });
  };

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, {
      env: {
        SLACK_BOT_TOKEN: BOT_TOKEN,
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_CHANNELS: JSON.stringify({ "*": "C0DEPLOYS" }),
        SLACK_USERS: JSON.stringify({ U0BOB: "bob", U0RITA: "rita" }),
        SLACK_API_URL: `${SLACK}/api/`,
      },
      credentials: staticCredentials(() => ({})),
    });
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });

  const say = async (body: string, login: string) => {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 9, body, login }));
    await f.watcher.handled(res.id);
  };
  const replies = () => gh.find("POST", /\/issues\/9\/comments$/).map((c) => String(c.body!.body));
  const click = (user: string, value: string, opts: { at?: number; secret?: string; action?: string } = {}) => {
    const payload = {
      type: "block_actions",
      user: { id: user, username: user.toLowerCase(), team_id: "T0TEAM" },
      channel: { id: "C0DEPLOYS", name: "deploys" },
      container: { type: "message", message_ts: "1763800000.000100", channel_id: "C0DEPLOYS" },
      message: { type: "message", ts: "1763800000.000100", text: "Approval needed" },
      response_url: "https://hooks.slack.com/actions/T0TEAM/1/abc",
      actions: [{ action_id: opts.action ?? "agent_approve", block_id: "agent_approval", value, type: "button", action_ts: "1763800000.000200" }],
    };
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const ts = opts.at ?? Math.floor(Date.now() / 1000);
    const sig = `v0=${createHmac("sha256", opts.secret ?? SIGNING_SECRET).update(`v0:${ts}:${body}`).digest("hex")}`;
    return { body, headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": String(ts), "x-slack-signature": sig } };
  };
  const send = (req: { body: string; headers: Record<string, string> }) => fetch(`http://127.0.0.1:${f.app.port}/slack/interactions`, { method: "POST", headers: req.headers, body: req.body });
  const approvals = async () => (await f.db.query("SELECT actor, reason, kind FROM approvals ORDER BY id")).rows;

  it("asks in the channel, counts a mapped writer's click, refuses the rest, and the deploy goes through", async () => {
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"], ["rita", "read"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
    const auth = { reqheaders: { authorization: `Bearer ${BOT_TOKEN}` } };
    // Recorded per scope (a body matcher may also run for requests to other paths).
    const record = (into: Form[]) => (_r: unknown, _i: unknown, body: unknown) => (into.push(form(body)), setImmediate(() => slackCalls.emit("call")));
    nock(SLACK, auth).persist().post("/api/chat.postMessage").reply(200, { ok: true, channel: "C0DEPLOYS", ts: "1763800000.000100" }).on("request", record(posted));
    nock(SLACK, auth).persist().post("/api/chat.postEphemeral").reply(200, { ok: true, message_ts: "1763800001.000100" }).on("request", record(ephemeral));
    nock(SLACK, auth).persist().post("/api/chat.update").reply(200, { ok: true, channel: "C0DEPLOYS", ts: "1763800000.000100" }).on("request", record(updated));
    const sha = await f.git.commit(REPO, { "app/deploy.sh": exe("#!/bin/sh\necho scaled\n") });
    gh.pulls.set(9, { headSha: sha, author: "alice" });

    await say("/agent preview prod", "alice");
    await gh.waitFor((c) => isCheckRunCompleted(c), "the preview");
    await say("/agent deploy prod", "alice");
    expect(replies().at(-1)).toContain("is blocked");
    // One message to the stack's channel, with the plan and the two buttons.
    await slackWait(() => posted.length === 1, "the Slack request");
    const request = posted[0]!;
    expect(request.channel).toBe("C0DEPLOYS");
    const blocks = JSON.parse(request.blocks!) as Array<{ type: string; elements?: Array<{ action_id: string; value: string }> }>;
    const buttons = blocks.find((b) => b.type === "actions")!.elements!;
    expect(buttons.map((b) => b.action_id)).toEqual(["agent_approve", "agent_deny"]);
    expect(JSON.stringify(blocks)).toContain(REPO);
    const value = buttons[0]!.value;
    expect(JSON.parse(value)).toMatchObject({ repo: REPO, pr: 9, stack: "prod", sha, kind: "deploy" });
    // Asking again for the same plan posts nothing new.
    await say("/agent deploy prod", "alice");
    expect(posted).toHaveLength(1);

    // Forged and stale requests are refused at the door.
    expect((await send(click("U0BOB", value, { secret: "0".repeat(32) }))).status).toBe(401);
    expect((await send(click("U0BOB", value, { at: Math.floor(Date.now() / 1000) - 6 * 60 }))).status).toBe(401);
    // An unmapped Slack user and a reader: handled, refused, nothing recorded.
    expect((await send(click("U0ZED", value))).status).toBe(200);
    expect((await send(click("U0RITA", value))).status).toBe(200);
    // Each is told privately; the request and its buttons stay for others.
    await slackWait(() => ephemeral.length === 2, "the two refusals");
    // (Two jobs: either may finish first.)
    expect(ephemeral.map((e) => [e.user, e.text]).sort()).toEqual([
      ["U0RITA", "Your click did not count: @\u200brita has read access; approving needs write."],
      ["U0ZED", "Your click did not count: this Slack user is not mapped to a GitHub login."],
    ]);
    expect(updated).toHaveLength(0);
    expect(await approvals()).toEqual([]);

    // bob approves from Slack; the same request replayed is a no-op.
    const good = click("U0BOB", value);
    expect((await send(good)).status).toBe(200);
    expect((await send(good)).status).toBe(200);
    await gh.waitFor(() => replies().some((b) => b.includes("in Slack")), "the PR comment");
    expect(replies().find((b) => b.includes("in Slack"))).toMatch(/^@\u200bbob approved `prod` \(plan `[0-9a-f]{12}`\) at `[0-9a-f]{7}` in Slack/);
    expect(await approvals()).toEqual([{ actor: "bob", reason: "via Slack (U0BOB)", kind: "approve" }]);
    expect(updated.at(-1)!.ts).toBe("1763800000.000100");
    expect(JSON.stringify(updated.at(-1))).not.toContain("agent_approve");

    // The gate counts it like /approve; the deploy runs and is announced in the channel.
    const start = gh.calls.length;
    await say("/agent deploy prod", "alice");
    expect(replies().at(-1)).toContain("approved by @\u200bbob");
    await gh.waitFor((c) => gh.calls.indexOf(c) >= start && isCheckRunCompleted(c), "the deploy");
    await slackWait(() => posted.some((p) => String(p.text).includes("succeeded")), "the succeeded notification");
    const { rows } = await f.db.query("SELECT action FROM audit_log WHERE action LIKE 'slack.%' OR detail->>'via' = 'slack' ORDER BY id");
    expect(rows.map((r) => r.action)).toEqual(["slack.approval_requested", "slack.refused", "slack.refused", "approval.recorded"]);
    if (process.env.SHOW_REPLIES) console.log(JSON.stringify({ channel: request.channel, text: request.text, blocks }, null, 2));
  });
});
