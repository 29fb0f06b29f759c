import { z } from "zod";
import { GITHUB_LOGIN_RE, STACK_NAME_RE } from "./fields.js";
import { describeZodIssues, issueLines } from "./issues.js";

/**
 * Slack settings, from the server's environment only (never from a repository): where approval
 * requests and notifications go, and which Slack user is which GitHub login. A pull request
 * cannot change either, so it cannot redirect an approval request or make a Slack user an
 * approver.
 *
 * Slack is optional: without SLACK_BOT_TOKEN it is off and {@link slackConfigFromEnv} returns
 * null; with it, every other variable must be right or start-up fails with a message that names
 * the variable (values are never echoed: two of them are secrets).
 */

export interface SlackConfig {
  /** Bot token (`xoxb-…`). A secret: never log it or this object. */
  botToken: string;
  /** Signing secret of the Slack app, for verifying interaction requests. A secret. */
  signingSecret: string;
  /**
   * Channel ID per `owner/repo:stack` key (repository part lower-cased; either side may be `*`;
   * `*:*` is stored as `*`). Read it through {@link channelFor}.
   */
  channels: Readonly<Record<string, string>>;
  /** Slack user ID → GitHub login. Only mapped users can approve or deny from Slack. */
  users: Readonly<Record<string, string>>;
  /** Web API base URL, ending in `/` (https://slack.com/api/ unless SLACK_API_URL is set). */
  apiUrl: string;
}

export class SlackConfigError extends Error {
  override name = "SlackConfigError";
}

export const DEFAULT_SLACK_API_URL = "https://slack.com/api/";

const REPO_RE = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
/** Public (C), private (G) or direct-message (D) conversation IDs. */
export const SLACK_CHANNEL_ID_RE = /^[CGD][A-Z0-9]{2,30}$/;
/** Workspace (U) or Enterprise Grid (W) user IDs. */
export const SLACK_USER_ID_RE = /^[UW][A-Z0-9]{2,30}$/;

const Schema = z.object({
  SLACK_BOT_TOKEN: z.string().regex(/^xoxb-[A-Za-z0-9-]+$/, "must be a bot token (xoxb-…)"),
  SLACK_SIGNING_SECRET: z
    .string({ error: "required when SLACK_BOT_TOKEN is set (the app's Signing Secret, under Basic Information)" })
    .regex(/^[A-Za-z0-9]{16,}$/, "must be the app's Signing Secret (letters and digits, no spaces or newlines)"),
  SLACK_CHANNELS: z.string({
    error: 'required when SLACK_BOT_TOKEN is set: JSON such as {"owner/repo:prod": "C0123ABC", "*": "C0999XYZ"}',
  }),
  SLACK_USERS: z.string().default("{}"),
  SLACK_API_URL: z
    .url({ protocol: /^https?$/, error: "must be an http(s) URL such as https://slack.com/api/" })
    .transform((u) => (u.endsWith("/") ? u : `${u}/`))
    .default(DEFAULT_SLACK_API_URL),
});

function fail(variable: string, message: string): never {
  throw new SlackConfigError(`invalid Slack configuration:\n  ${variable}: ${message}`);
}

function jsonObject(variable: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail(variable, "not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) fail(variable, "must be a JSON object");
  return value as Record<string, unknown>;
}

/** `owner/repo:stack`, `owner/repo:*`, `*:stack`, `*:*` or `*` → normalized key, or null. */
function channelKey(key: string): string | null {
  if (key === "*" || key === "*:*") return "*";
  const i = key.lastIndexOf(":");
  if (i < 0) return null;
  const repo = key.slice(0, i);
  const stack = key.slice(i + 1);
  if (repo !== "*" && !REPO_RE.test(repo)) return null;
  if (stack !== "*" && !STACK_NAME_RE.test(stack)) return null;
  return `${repo.toLowerCase()}:${stack}`;
}

function parseChannels(text: string): Record<string, string> {
  const raw = jsonObject("SLACK_CHANNELS", text);
  const out: Record<string, string> = {};
  for (const [key, channel] of Object.entries(raw)) {
    const norm = channelKey(key);
    if (norm === null) fail("SLACK_CHANNELS", `key ${JSON.stringify(key)} must be owner/repo:stack (either side may be *) or *`);
    if (typeof channel !== "string" || !SLACK_CHANNEL_ID_RE.test(channel)) {
      fail("SLACK_CHANNELS", `${JSON.stringify(key)} must map to a channel ID such as C0123ABC (not a #name)`);
    }
    if (Object.hasOwn(out, norm)) fail("SLACK_CHANNELS", `${JSON.stringify(key)} duplicates another key`);
    out[norm] = channel;
  }
  if (Object.keys(out).length === 0) fail("SLACK_CHANNELS", "has no entries: give at least one channel (\"*\" for all)");
  return out;
}

function parseUsers(text: string): Record<string, string> {
  const raw = jsonObject("SLACK_USERS", text);
  const out: Record<string, string> = {};
  for (const [user, login] of Object.entries(raw)) {
    if (!SLACK_USER_ID_RE.test(user)) fail("SLACK_USERS", `key ${JSON.stringify(user)} must be a Slack user ID such as U0123ABC`);
    const clean = typeof login === "string" ? login.replace(/^@/, "") : "";
    if (!GITHUB_LOGIN_RE.test(clean)) fail("SLACK_USERS", `${JSON.stringify(user)} must map to a GitHub login`);
    out[user] = clean;
  }
  return out;
}

/**
 * The Slack configuration, or null when SLACK_BOT_TOKEN is unset or empty (Slack off).
 * Throws {@link SlackConfigError} naming the variable when Slack is on but misconfigured.
 */
export function slackConfigFromEnv(env: Record<string, string | undefined> = process.env): SlackConfig | null {
  if (!env.SLACK_BOT_TOKEN) return null;
  // An empty value (`SLACK_API_URL=` in a compose file) means "not set".
  const present = Object.fromEntries(
    Object.entries(env).filter(([k, v]) => k.startsWith("SLACK_") && v !== undefined && v !== ""),
  );
  const parsed = Schema.safeParse(present);
  if (!parsed.success) {
    throw new SlackConfigError(`invalid Slack configuration:\n${issueLines(describeZodIssues(parsed.error.issues, { data: present, schema: Schema }))}`);
  }
  const e = parsed.data;
  return {
    botToken: e.SLACK_BOT_TOKEN,
    signingSecret: e.SLACK_SIGNING_SECRET,
    channels: parseChannels(e.SLACK_CHANNELS),
    users: parseUsers(e.SLACK_USERS),
    apiUrl: e.SLACK_API_URL,
  };
}

/**
 * The channel for a repository's stack; the most specific entry wins: `repo:stack`, then
 * `repo:*`, then `*:stack`, then `*`. Repository names compare case-insensitively (as on
 * GitHub), stack names exactly. Null when nothing matches (nothing is posted).
 */
export function channelFor(config: Pick<SlackConfig, "channels">, repo: string, stack: string): string | null {
  const r = repo.toLowerCase();
  for (const key of [`${r}:${stack}`, `${r}:*`, `*:${stack}`, "*"]) {
    if (Object.hasOwn(config.channels, key)) return config.channels[key]!;
  }
  return null;
}
