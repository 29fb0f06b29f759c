import { describe, expect, it } from "vitest";
import { SlackConfigError, channelFor, slackConfigFromEnv } from "../../src/config/slack-config.js";
import { BUTTON_VALUE_MAX, type ApprovalRequest } from "../../src/domain/slack-approval.js";
import { approvalButtonValue, approvalRequestMessage, decisionMessage, notificationMessage, type NotificationEvent } from "../../src/render/slack.js";
import { escapeMrkdwn } from "../../src/connectors/slack/mrkdwn.js";

const SHA = "0123456789abcdef0123456789abcdef01234567";
const PLAN = `sha256:${"ab".repeat(32)}`;
const EXPIRES = new Date("2025-01-15T13:00:00.000Z");

function req(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
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
    expiresAt: EXPIRES,
    installationId: 99,
    ...over,
  };
}

type Block = { type: string; block_id?: string; text?: { text: string }; fields?: Array<{ text: string }>; elements?: any[] };

const blocksOf = (m: { blocks: unknown[] }) => m.blocks as Block[];
const allText = (m: { text: string; blocks: unknown[] }) => `${m.text}\n${JSON.stringify(m.blocks)}`;
/** Every mrkdwn / plain text string in the message, parsed back out of the JSON. */
function texts(m: { text: string; blocks: unknown[] }): string[] {
  const out = [m.text];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if ((o.type === "mrkdwn" || o.type === "plain_text") && typeof o.text === "string") out.push(o.text);
      Object.values(o).forEach(walk);
    }
  };
  walk(m.blocks);
  return out;
}

describe("approvalRequestMessage", () => {
  it("has a header, the fields, the plan and the destructive operations, then the buttons", () => {
    const m = approvalRequestMessage(req());
    const blocks = blocksOf(m);
    expect(blocks.map((b) => b.type)).toEqual(["header", "section", "section", "section", "actions"]);
    expect(blocks[0]!.text!.text).toBe("Approval needed: deploy to prod");

    const fields = blocks[1]!.fields!.map((f) => f.text);
    expect(fields).toEqual([
      "*Repository*\n`acme/infra`",
      "*Pull request*\n<https://github.com/acme/infra/pull/42|#42>",
      "*Stack*\n`prod`",
      "*Commit*\n`0123456`",
      "*Plan*\n`abababababab`",
      "*Requested by*\n`carol`",
      `*Expires*\n<!date^${EXPIRES.getTime() / 1000}^{date_short_pretty} {time}|2025-01-15T13:00:00.000Z>`,
    ]);
    expect(blocks[2]!.text!.text).toBe("*Plan:* +3 ~1 -2");
    expect(blocks[3]!.text!.text).toBe(
      ":warning: *2 destructive operations*\n• *delete* `aws:s3/bucket:Bucket` `logs`\n• *replace* `aws:rds/instance:Instance` `db`",
    );
    expect(m.text).toBe("Approval needed: deploy to prod in acme/infra (PR #42, 0123456), plan +3 ~1 -2, 2 destructive");
  });

  it("has Approve (primary, with a confirmation) and Deny (danger) buttons carrying the bound value", () => {
    const actions = blocksOf(approvalRequestMessage(req())).at(-1)!;
    expect(actions.type).toBe("actions");
    const [approve, deny] = actions.elements!;
    expect([approve.action_id, approve.style, approve.type]).toEqual(["agent_approve", "primary", "button"]);
    expect([deny.action_id, deny.style, deny.type]).toEqual(["agent_deny", "danger", "button"]);
    expect(approve.confirm.text.text).toBe("Approve the deploy to prod of acme/infra at 0123456, which deletes or replaces 2 resources?");
    expect(deny.confirm).toBeUndefined();
    const expected = { v: 1, repo: "acme/infra", pr: 42, stack: "prod", sha: SHA, plan: PLAN, kind: "deploy", inst: 99 };
    expect(JSON.parse(approve.value)).toEqual(expected);
    expect(JSON.parse(deny.value)).toEqual(expected);
    // Compact: no whitespace.
    expect(approve.value).toBe(JSON.stringify(expected));
  });

  it("says rollback for a rollback and when nothing is destructive", () => {
    const m = approvalRequestMessage(req({ kind: "rollback", destructive: [] }));
    expect(blocksOf(m)[0]!.text!.text).toBe("Approval needed: rollback of prod");
    expect(blocksOf(m)[3]!.text!.text).toBe("No destructive operations.");
    expect(JSON.parse(blocksOf(m).at(-1)!.elements![0].value).kind).toBe("rollback");
    expect(m.text).not.toContain("destructive");
  });

  it("lists at most 10 destructive operations and counts the rest", () => {
    const destructive = Array.from({ length: 13 }, (_, i) => ({ op: "delete" as const, type: "t:x:Y", name: `r${i}` }));
    const text = blocksOf(approvalRequestMessage(req({ destructive })))[3]!.text!.text;
    expect(text.split("\n")).toHaveLength(1 + 10 + 1);
    expect(text).toContain("`r9`");
    expect(text).not.toContain("`r10`");
    expect(text.endsWith("…and 3 more")).toBe(true);
    expect(text.startsWith(":warning: *13 destructive operations*")).toBe(true);
  });

  it("escapes repository-controlled text: no links, mentions or broadcasts", () => {
    const m = approvalRequestMessage(
      req({
        requestedBy: "<script>alert(1)</script>",
        summary: "<!channel> @here & <https://evil.example|click>",
        destructive: [{ op: "delete", type: "<@U0ADMIN>", name: "x`</code>@everyone" }],
      }),
    );
    const all = texts(m).join("\n");
    expect(all).not.toMatch(/<script|<!channel>|<@U0ADMIN>|<https:\/\/evil/);
    expect(all).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(all).toContain("&lt;!channel&gt;");
    expect(all).toContain("&amp; &lt;https://evil.example|click&gt;");
    // A bare @here / @everyone is broken by a zero-width space.
    expect(all).not.toMatch(/@(here|everyone|channel)/);
    expect(all).toContain("@\u200bhere");
    // A backtick cannot close the code span early.
    expect(all).toContain("`x'&lt;/code&gt;@\u200beveryone`");
  });

  it("only links http(s) pull request URLs", () => {
    const fields = (url: string) => blocksOf(approvalRequestMessage(req({ prUrl: url })))[1]!.fields!.map((f) => f.text);
    expect(fields("javascript:alert(1)")[1]).toBe("*Pull request*\n#42");
    expect(fields("https://github.com/a/b/pull/42?x=1&y=|z>")[1]).toBe(
      "*Pull request*\n<https://github.com/a/b/pull/42?x=1&amp;y=%7Cz%3E|#42>",
    );
  });

  it("keeps the button value within Slack's 2,000 characters, and refuses a longer one", () => {
    const longest = req({ repo: `${"o".repeat(39)}/${"r".repeat(100)}`, stack: "s".repeat(63), sha: "f".repeat(64) });
    expect(approvalButtonValue(longest).length).toBeLessThanOrEqual(BUTTON_VALUE_MAX);
    expect(() => approvalButtonValue(req({ repo: `a/${"r".repeat(2000)}` }))).toThrow(/2000/);
  });

  it("keeps blocks within Slack's limits for long names", () => {
    const long = "&".repeat(5000);
    const m = approvalRequestMessage(
      req({ summary: long, requestedBy: long, destructive: Array.from({ length: 20 }, () => ({ op: "replace" as const, type: long, name: long })) }),
    );
    for (const b of blocksOf(m)) {
      if (b.type === "section" && b.text) expect(b.text.text.length).toBeLessThanOrEqual(3000);
      for (const f of b.fields ?? []) expect(f.text.length).toBeLessThanOrEqual(2000);
      if (b.type === "header") expect(b.text!.text.length).toBeLessThanOrEqual(150);
    }
    // Cut between entities, never inside one.
    expect(allText(m)).not.toMatch(/&(a|am|amp)?…/);
  });
});

describe("decisionMessage", () => {
  it("replaces the buttons with who approved", () => {
    const m = decisionMessage(req(), { decision: "approved", by: "U0ALICE", githubLogin: "alice" });
    const blocks = blocksOf(m);
    expect(blocks.some((b) => b.type === "actions")).toBe(false);
    expect(blocks[0]!.text!.text).toBe("Approved: deploy to prod");
    expect(blocks.at(-1)).toEqual({
      type: "context",
      elements: [{ type: "mrkdwn", text: ":white_check_mark: *Approved* by <@U0ALICE> (GitHub `alice`)" }],
    });
    // The request details stay.
    expect(blocks[1]!.fields![0]!.text).toBe("*Repository*\n`acme/infra`");
  });

  it("says denied, and refused with the (escaped) reason", () => {
    const denied = decisionMessage(req(), { decision: "denied", by: "U0BOB", githubLogin: "bob" });
    expect(blocksOf(denied).at(-1)!.elements![0].text).toBe(":no_entry: *Denied* by <@U0BOB> (GitHub `bob`)");
    const refused = decisionMessage(req(), { decision: "refused", by: "U0EVE", githubLogin: null, reason: "no GitHub login <mapped>" });
    expect(blocksOf(refused).at(-1)!.elements![0].text).toBe(":warning: *Not accepted* from <@U0EVE>: no GitHub login &lt;mapped&gt;");
    expect(blocksOf(refused).some((b) => b.type === "actions")).toBe(false);
  });

  it("does not turn a non-ID `by` into a mention", () => {
    const m = decisionMessage(req(), { decision: "denied", by: "!channel>", githubLogin: null });
    expect(blocksOf(m).at(-1)!.elements![0].text).toBe(":no_entry: *Denied* by !channel&gt;");
  });
});

describe("notificationMessage", () => {
  const titles: Record<NotificationEvent, string> = {
    "deploy.started": "Deploy started",
    "deploy.succeeded": "Deploy succeeded",
    "deploy.failed": "Deploy failed",
    "approval.expired": "Approval request expired",
    "lock.stolen": "Stack lock taken over",
    "lock.expired": "Stack lock expired",
  };

  it("has a title for every event", () => {
    for (const [event, title] of Object.entries(titles)) {
      const m = notificationMessage({ event: event as NotificationEvent, repo: "acme/infra", stack: "prod" });
      expect(m.text).toBe(`${title}: acme/infra prod`);
      expect(blocksOf(m)[0]!.text!.text).toContain(`*${title}*`);
    }
  });

  it("shows PR, commit, escaped detail and an http(s) link only", () => {
    const m = notificationMessage({
      event: "lock.stolen",
      repo: "acme/infra",
      prNumber: 7,
      stack: "prod",
      sha: SHA,
      detail: "taken by <@U0X> @channel",
      url: "https://github.com/acme/infra/pull/7",
    });
    const blocks = blocksOf(m);
    expect(blocks[1]!.elements![0].text).toBe("*Repository* `acme/infra`  ·  *Stack* `prod`  ·  *PR* #7  ·  *Commit* `0123456`");
    expect(blocks[2]!.text!.text).toBe("taken by &lt;@\u200bU0X&gt; @\u200bchannel");
    expect(blocks[3]!.elements![0].text).toBe("<https://github.com/acme/infra/pull/7|Details>");
    const noLink = notificationMessage({ event: "deploy.failed", repo: "a/b", stack: "s", url: "javascript:alert(1)" });
    expect(JSON.stringify(noLink.blocks)).not.toContain("javascript");
  });
});

describe("escapeMrkdwn", () => {
  it("escapes &, <, >, defuses @ and drops control characters", () => {
    expect(escapeMrkdwn("a&b<c>d @here\u0007\n")).toBe("a&amp;b&lt;c&gt;d @\u200bhere\n");
  });
  it("cuts at a character boundary within the limit", () => {
    expect(escapeMrkdwn("&&&&", 12)).toBe("&amp;&amp;…");
    expect(escapeMrkdwn("abc", 3)).toBe("abc");
    expect(escapeMrkdwn("abcd", 3)).toBe("ab…");
  });
});

// ---------------------------------------------------------------------------------------------

const BASE = {
  SLACK_BOT_TOKEN: "xoxb-123-456-abcdef",
  SLACK_SIGNING_SECRET: "8f742231b10e8888abcd99yyyzzz85a5",
  SLACK_CHANNELS: JSON.stringify({
    "acme/infra:prod": "C0PROD",
    "acme/infra:*": "C0INFRA",
    "*:prod": "C0ALLPROD",
    "*": "C0999",
  }),
  SLACK_USERS: JSON.stringify({ U0ALICE: "alice", W0BOB: "@bob" }),
};

function configError(env: Record<string, string | undefined>): string {
  try {
    slackConfigFromEnv(env);
  } catch (err) {
    expect(err).toBeInstanceOf(SlackConfigError);
    return (err as Error).message;
  }
  throw new Error("expected slackConfigFromEnv to throw");
}

describe("slackConfigFromEnv", () => {
  it("is null (Slack off) without SLACK_BOT_TOKEN, whatever else is set", () => {
    expect(slackConfigFromEnv({})).toBeNull();
    expect(slackConfigFromEnv({ SLACK_BOT_TOKEN: "" })).toBeNull();
    expect(slackConfigFromEnv({ ...BASE, SLACK_BOT_TOKEN: undefined })).toBeNull();
  });

  it("reads a full configuration", () => {
    const c = slackConfigFromEnv({ ...BASE, SLACK_API_URL: "https://slack.test/api" })!;
    expect(c.botToken).toBe(BASE.SLACK_BOT_TOKEN);
    expect(c.signingSecret).toBe(BASE.SLACK_SIGNING_SECRET);
    expect(c.users).toEqual({ U0ALICE: "alice", W0BOB: "bob" });
    expect(c.apiUrl).toBe("https://slack.test/api/");
    expect(slackConfigFromEnv({ ...BASE, SLACK_API_URL: "", SLACK_USERS: undefined })).toMatchObject({
      apiUrl: "https://slack.com/api/",
      users: {},
    });
  });

  it("names the variable when Slack is on but misconfigured, never echoing secrets", () => {
    expect(configError({ ...BASE, SLACK_SIGNING_SECRET: undefined })).toMatch(/SLACK_SIGNING_SECRET: required/);
    expect(configError({ ...BASE, SLACK_SIGNING_SECRET: "has spaces in it, 12345" })).toMatch(/SLACK_SIGNING_SECRET/);
    expect(configError({ ...BASE, SLACK_BOT_TOKEN: "xoxp-user-token" })).toMatch(/SLACK_BOT_TOKEN: must be a bot token/);
    expect(configError({ ...BASE, SLACK_CHANNELS: undefined })).toMatch(/SLACK_CHANNELS: required/);
    expect(configError({ ...BASE, SLACK_CHANNELS: "{not json" })).toMatch(/SLACK_CHANNELS: not valid JSON/);
    expect(configError({ ...BASE, SLACK_CHANNELS: "[]" })).toMatch(/SLACK_CHANNELS: must be a JSON object/);
    expect(configError({ ...BASE, SLACK_CHANNELS: "{}" })).toMatch(/SLACK_CHANNELS: has no entries/);
    expect(configError({ ...BASE, SLACK_CHANNELS: '{"acme/infra": "C0123"}' })).toMatch(/SLACK_CHANNELS: key "acme\/infra"/);
    expect(configError({ ...BASE, SLACK_CHANNELS: '{"*": "#deploys"}' })).toMatch(/SLACK_CHANNELS: "\*" must map to a channel ID/);
    expect(configError({ ...BASE, SLACK_CHANNELS: '{"*": "C01", "*:*": "C02"}' })).toMatch(/duplicates/);
    expect(configError({ ...BASE, SLACK_CHANNELS: '{"Acme/Infra:prod": "C01", "acme/infra:prod": "C02"}' })).toMatch(/duplicates/);
    expect(configError({ ...BASE, SLACK_USERS: "nope" })).toMatch(/SLACK_USERS: not valid JSON/);
    expect(configError({ ...BASE, SLACK_USERS: '{"alice": "alice"}' })).toMatch(/SLACK_USERS: key "alice" must be a Slack user ID/);
    expect(configError({ ...BASE, SLACK_USERS: '{"U0ALICE": "not a login!"}' })).toMatch(/SLACK_USERS: "U0ALICE" must map to a GitHub login/);
    expect(configError({ ...BASE, SLACK_API_URL: "ftp://x" })).toMatch(/SLACK_API_URL/);

    const msg = configError({ ...BASE, SLACK_SIGNING_SECRET: "short", SLACK_BOT_TOKEN: "xoxb-secret-value!" });
    expect(msg).not.toContain("xoxb-secret-value");
    expect(msg).not.toContain("short");
  });
});

describe("channelFor", () => {
  const c = slackConfigFromEnv(BASE)!;

  it("picks the most specific entry: repo:stack, repo:*, *:stack, *", () => {
    expect(channelFor(c, "acme/infra", "prod")).toBe("C0PROD");
    expect(channelFor(c, "acme/infra", "staging")).toBe("C0INFRA");
    expect(channelFor(c, "acme/other", "prod")).toBe("C0ALLPROD");
    expect(channelFor(c, "acme/other", "dev")).toBe("C0999");
    // repo:* beats *:stack when both match.
    const both = slackConfigFromEnv({ ...BASE, SLACK_CHANNELS: '{"*:prod": "C0ALLPROD", "acme/infra:*": "C0INFRA"}' })!;
    expect(channelFor(both, "acme/infra", "prod")).toBe("C0INFRA");
    expect(channelFor(both, "acme/other", "prod")).toBe("C0ALLPROD");
  });

  it("compares repositories case-insensitively and stacks exactly", () => {
    expect(channelFor(c, "ACME/Infra", "prod")).toBe("C0PROD");
    expect(channelFor(c, "acme/other", "Prod")).toBe("C0999");
  });

  it("is null when nothing matches", () => {
    const only = slackConfigFromEnv({ ...BASE, SLACK_CHANNELS: '{"acme/infra:prod": "C0PROD"}' })!;
    expect(channelFor(only, "acme/infra", "dev")).toBeNull();
    expect(channelFor(only, "acme/other", "prod")).toBeNull();
    expect(channelFor(only, "constructor", "")).toBeNull();
  });
});
