import type { Logger } from "pino";
import {
  WebClient,
  LogLevel,
  type ChatUpdateArguments,
  type Logger as SlackLogger,
  type RetryOptions,
} from "@slack/web-api";
import type { SlackConfig } from "../../config/slack-config.js";
import { escapeMrkdwn, type SlackMessage } from "./mrkdwn.js";

/**
 * Posts approval requests and notifications to Slack. Best effort by design: Slack being down,
 * a wrong channel or a revoked token is logged and reported as null / false, never thrown, so
 * it cannot fail or hold up a deploy. The token is only ever in the WebClient's Authorization
 * header: it is not logged, and neither are whole error objects (only method, channel, Slack's
 * error code and the HTTP status).
 */

export interface SlackNotifierOptions {
  /** Bot token (`xoxb-…`). */
  token: string;
  log: Logger;
  /** Web API base URL; https://slack.com/api/ by default. */
  apiUrl?: string;
  /** Retries of a failed call; a few quick ones by default (`{ retries: 0 }` in tests). */
  retryConfig?: RetryOptions;
  /** Per-request timeout; 10 s by default. */
  timeoutMs?: number;
}

export interface PostedMessage {
  /** Channel ID (as Slack answered: needed for chat.update). */
  channel: string;
  /** Message timestamp, the message's ID within the channel. */
  ts: string;
}

/** Short enough that a notification never holds a deploy for long. */
export const DEFAULT_SLACK_RETRY: RetryOptions = { retries: 2, factor: 2, minTimeout: 500, maxTimeout: 2000, randomize: true };
const DEFAULT_TIMEOUT_MS = 10_000;

/** The Web API's block type (from @slack/types); the renderers build plain JSON. */
type Blocks = Extract<ChatUpdateArguments, { blocks: unknown }>["blocks"];

/** The WebClient's own messages, into our log; debug and info (request dumps) are dropped. */
function webClientLogger(log: Logger): SlackLogger {
  let level = LogLevel.WARN;
  let name = "WebClient";
  const text = (msg: unknown[]) => msg.map((m) => (typeof m === "string" ? m : String(m))).join(" ");
  return {
    debug: () => {},
    info: () => {},
    warn: (...msg: unknown[]) => log.warn({ slack: name }, text(msg)),
    error: (...msg: unknown[]) => log.error({ slack: name }, text(msg)),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: (n: string) => {
      name = n;
    },
  };
}

/** What can be logged of a Web API failure: Slack's error code and the HTTP status, no payloads. */
function describeError(err: unknown): Record<string, unknown> {
  if (err === null || typeof err !== "object") return { error: String(err) };
  const e = err as { code?: unknown; data?: { error?: unknown }; statusCode?: unknown; message?: unknown };
  const out: Record<string, unknown> = {};
  if (typeof e.code === "string") out.code = e.code;
  if (e.data && typeof e.data.error === "string") out.slackError = e.data.error;
  if (typeof e.statusCode === "number") out.status = e.statusCode;
  if (typeof e.message === "string") out.error = e.message.slice(0, 300);
  return out;
}

export class SlackNotifier {
  readonly #client: WebClient;
  readonly #log: Logger;

  constructor(opts: SlackNotifierOptions) {
    this.#log = opts.log;
    this.#client = new WebClient(opts.token, {
      slackApiUrl: opts.apiUrl,
      retryConfig: opts.retryConfig ?? DEFAULT_SLACK_RETRY,
      timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      logger: webClientLogger(opts.log),
      // Only the methods named here are called; never a URL from elsewhere.
      allowAbsoluteUrls: false,
    });
  }

  static fromConfig(
    config: Pick<SlackConfig, "botToken" | "apiUrl">,
    opts: { log: Logger; retryConfig?: RetryOptions; timeoutMs?: number },
  ): SlackNotifier {
    return new SlackNotifier({ token: config.botToken, apiUrl: config.apiUrl, ...opts });
  }

  /** Replaces a posted message (e.g. with the decision); false when that failed. */
  async updateMessage(channel: string, ts: string, message: SlackMessage): Promise<boolean> {
    try {
      await this.#client.chat.update({ channel, ts, text: message.text, blocks: message.blocks as Blocks });
      return true;
    } catch (err) {
      this.#log.warn({ method: "chat.update", channel, ts, ...describeError(err) }, "slack: message update failed");
      return false;
    }
  }

  /** A message only `user` sees (a refused click must not take the buttons away from others). */
  async tellUser(channel: string, user: string, text: string): Promise<boolean> {
    try {
      await this.#client.chat.postEphemeral({ channel, user, text: escapeMrkdwn(text, 3000) });
      return true;
    } catch (err) {
      this.#log.warn({ method: "chat.postEphemeral", channel, ...describeError(err) }, "slack: ephemeral message failed");
      return false;
    }
  }

  /**
   * Posts a message; null when it could not be rendered, Slack refused it or could not be
   * reached. `render` runs here so a renderer bug is logged like a Slack failure, never thrown.
   */
  async post(channel: string, render: () => SlackMessage, about: Record<string, string>): Promise<PostedMessage | null> {
    let message: SlackMessage;
    try {
      message = render();
    } catch (err) {
      this.#log.error({ channel, ...about, ...describeError(err) }, "slack: cannot render message");
      return null;
    }
    try {
      const res = await this.#client.chat.postMessage({
        channel,
        text: message.text,
        blocks: message.blocks as Blocks,
        unfurl_links: false,
        unfurl_media: false,
      });
      if (typeof res.channel !== "string" || typeof res.ts !== "string") {
        this.#log.warn({ method: "chat.postMessage", channel, ...about }, "slack: answer without channel or ts");
        return null;
      }
      return { channel: res.channel, ts: res.ts };
    } catch (err) {
      this.#log.warn({ method: "chat.postMessage", channel, ...about, ...describeError(err) }, "slack: post failed");
      return null;
    }
  }
}
