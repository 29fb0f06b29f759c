// Bolt's own verifier, from its module: the package root loads all of Bolt (express, the
// receivers; ~40 MB of RSS) into the web tier for one HMAC check.
import { verifySlackRequest } from "@slack/bolt/dist/receivers/verify-request.js";
import { z } from "zod";
import { STACK_NAME_RE } from "../../config/fields.js";
import { APPROVE_ACTION_ID, DENY_ACTION_ID, type ApprovalButtonValue } from "../../domain/slack-approval.js";

/**
 * An Approve / Deny click, as Slack POSTs it to the app's interactivity URL
 * (`application/x-www-form-urlencoded`, one `payload` field of JSON). This module only decides
 * whether the request is genuine and well formed and who clicked; the caller then runs the same
 * approval policy as for a GitHub approval, bound to the SHA and plan hash in the value.
 *
 * Pure except for the clock: no I/O. The caller must pass the body exactly as received (the
 * signature covers the raw bytes), answer Slack within 3 s, and must use `replayKey` to drop a
 * request it has already handled: a captured request stays valid for the 5-minute window
 * (`requestTs` ± SLACK_MAX_SKEW_SECONDS). The web tier records it in Postgres
 * (src/connectors/store/slack-replay.ts).
 */

/** How far a request's timestamp may be from our clock, either way (Bolt's window). */
export const SLACK_MAX_SKEW_SECONDS = 5 * 60;

const REPO_RE = /^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/;
const SHA_RE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const PLAN_HASH_RE = /^sha256:[0-9a-f]{64}$/;
const USER_ID_RE = /^[UW][A-Z0-9]{2,30}$/;

const ButtonValue = z.strictObject({
  v: z.literal(1),
  repo: z.string().regex(REPO_RE),
  pr: z.number().int().positive(),
  stack: z.string().regex(STACK_NAME_RE),
  sha: z.string().regex(SHA_RE),
  plan: z.string().regex(PLAN_HASH_RE),
  kind: z.enum(["deploy", "rollback"]),
  inst: z.number().int().positive(),
}) satisfies z.ZodType<ApprovalButtonValue>;

const BlockActionsPayload = z.object({
  type: z.literal("block_actions"),
  user: z.object({ id: z.string().regex(USER_ID_RE) }),
  actions: z
    .array(
      z.object({
        type: z.literal("button"),
        action_id: z.enum([APPROVE_ACTION_ID, DENY_ACTION_ID]),
        value: z.string().max(2000),
      }),
    )
    .length(1),
  response_url: z.string().optional(),
  channel: z.object({ id: z.string() }).nullish(),
  container: z.object({ channel_id: z.string().optional(), message_ts: z.string().optional() }).nullish(),
  message: z.object({ ts: z.string().optional() }).nullish(),
});

export type SlackInteraction =
  | { ok: false; status: 401 | 400; message: string }
  | {
      ok: true;
      /** Slack user ID of whoever clicked. */
      slackUser: string;
      /** The GitHub login mapped to that user server-side; null when unmapped (the click must not count). */
      githubLogin: string | null;
      action: "approve" | "deny";
      value: Omit<ApprovalButtonValue, "v">;
      /** Where to send a reply (ephemeral or replacing the message); https only. */
      responseUrl: string | null;
      channel: string | null;
      messageTs: string | null;
      /** The request's signature: the same key means the same request (for dropping replays). */
      replayKey: string;
      /** The request's x-slack-request-timestamp (unix seconds, covered by the signature). */
      requestTs: number;
    };

export interface SlackInteractionInput {
  /** The request body exactly as received. */
  rawBody: string;
  headers: Record<string, string | string[] | undefined>;
  signingSecret: string;
  /** The clock, for tests. */
  nowMs?: number;
  /** Slack user ID → GitHub login. */
  users: Record<string, string>;
}

function header(headers: SlackInteractionInput["headers"], name: string): string | null {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    if (typeof value === "string") return value;
    if (Array.isArray(value) && value.length === 1 && typeof value[0] === "string") return value[0];
    return null;
  }
  return null;
}

const unauthorized = (message: string) => ({ ok: false, status: 401, message }) as const;
const badRequest = (message: string) => ({ ok: false, status: 400, message }) as const;

export function parseSlackInteraction(input: SlackInteractionInput): SlackInteraction {
  const signature = header(input.headers, "x-slack-signature");
  const timestamp = header(input.headers, "x-slack-request-timestamp");
  if (!signature || !timestamp) return unauthorized("missing Slack signature headers");
  if (!/^\d{1,12}$/.test(timestamp)) return unauthorized("invalid x-slack-request-timestamp");
  if (!/^v0=[0-9a-f]{64}$/.test(signature)) return unauthorized("invalid x-slack-signature");
  const nowMs = input.nowMs ?? Date.now();
  const ts = Number(timestamp);
  // Bolt only rejects old timestamps; one far in the future is as suspect.
  if (Math.abs(Math.floor(nowMs / 1000) - ts) > SLACK_MAX_SKEW_SECONDS) return unauthorized("stale request timestamp");
  try {
    verifySlackRequest({
      signingSecret: input.signingSecret,
      body: input.rawBody,
      headers: { "x-slack-signature": signature, "x-slack-request-timestamp": ts },
      nowMilliseconds: nowMs,
    });
  } catch {
    return unauthorized("signature verification failed");
  }

  const payloadText = new URLSearchParams(input.rawBody).get("payload");
  if (payloadText === null) return badRequest("no payload");
  let json: unknown;
  try {
    json = JSON.parse(payloadText);
  } catch {
    return badRequest("payload is not JSON");
  }
  const payload = BlockActionsPayload.safeParse(json);
  if (!payload.success) return badRequest("not an approval button click");
  const p = payload.data;
  const action = p.actions[0]!;

  let valueJson: unknown;
  try {
    valueJson = JSON.parse(action.value);
  } catch {
    return badRequest("button value is not JSON");
  }
  const value = ButtonValue.safeParse(valueJson);
  if (!value.success) return badRequest("invalid button value");
  const { v: _v, ...bound } = value.data;

  const slackUser = p.user.id;
  const githubLogin = Object.hasOwn(input.users, slackUser) ? (input.users[slackUser] ?? null) : null;
  const responseUrl = p.response_url && /^https:\/\//.test(p.response_url) ? p.response_url : null;

  return {
    ok: true,
    slackUser,
    githubLogin,
    action: action.action_id === APPROVE_ACTION_ID ? "approve" : "deny",
    value: bound,
    responseUrl,
    channel: p.channel?.id ?? p.container?.channel_id ?? null,
    messageTs: p.container?.message_ts ?? p.message?.ts ?? null,
    replayKey: signature.slice(3),
    requestTs: ts,
  };
}
