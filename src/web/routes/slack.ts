/**
 * POST /slack/interactions: Bolt's signature check (signing secret, 5-minute window) on the
 * raw body, then the click is queued for a worker and Slack gets its 200 at once (it wants
 * an answer within 3 s).
 *
 * Replays: the request's signature is recorded in Postgres (unique) before the click is
 * queued, and kept for the whole window; a request seen before is answered 200 with an empty
 * body and not queued. 200, not 409: Slack shows the clicking user an error for anything but
 * a 200 within 3 s, and a replay should teach its sender nothing. (The job id is still derived
 * from the signature, so two replicas racing on one request also collapse in the queue.)
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
// Bolt's verifier from its own module (not the package root, which loads all of Bolt).
import { parseSlackInteraction, SLACK_MAX_SKEW_SECONDS } from "../../connectors/slack/interactions.js";
import type { Db } from "../../connectors/store/db.js";
import { claimSlackReplayKey, forgetSlackReplayKey } from "../../connectors/store/slack-replay.js";
import { WEBHOOK_JOB_OPTIONS, jobIdFrom, type Queues } from "../../connectors/queues.js";
import { traceField } from "../../ops/tracing.js";
import { boundedAdd, ENQUEUE_TIMEOUT_MS } from "../enqueue.js";
import { HttpError, readBody, refuseDeclaredOver } from "../http.js";
import type { Route } from "../router.js";

export const SLACK_INTERACTIONS_PATH = "/slack/interactions";
/** The job a verified Slack click becomes, on the webhooks queue. */
export const SLACK_CLICK_JOB = "slack-click";
/** A click's job id, from the request's signature (BullMQ job ids may not contain `:`). */
export function slackClickJobId(replayKey: string): string {
  return jobIdFrom(["slack", createHash("sha256").update(replayKey).digest("hex").slice(0, 32)]);
}
const MAX_SLACK_BODY_BYTES = 64 * 1024;

export interface SlackRouteDeps {
  db: Db;
  queues: Pick<Queues, "webhooks">;
  log: Logger;
  enqueueTimeoutMs?: number | undefined;
  slack: { signingSecret: string; users: Readonly<Record<string, string>> };
}

export function slackRoutes(deps: SlackRouteDeps): Route[] {
  const { slack } = deps;

  async function onSlack(req: IncomingMessage, res: ServerResponse): Promise<void> {
    refuseDeclaredOver(req, MAX_SLACK_BODY_BYTES);
    const rawBody = await readBody(req, MAX_SLACK_BODY_BYTES);
    const click = parseSlackInteraction({ rawBody, headers: req.headers, signingSecret: slack.signingSecret, users: { ...slack.users } });
    if (!click.ok) {
      deps.log.warn({ status: click.status, reason: click.message, remote: req.socket.remoteAddress }, "slack interaction refused");
      throw new HttpError(click.status, click.message);
    }
    const first = await claimSlackReplayKey(deps.db, { signature: click.replayKey, requestTs: click.requestTs, windowSeconds: SLACK_MAX_SKEW_SECONDS });
    if (!first) {
      deps.log.warn({ slack_user: click.slackUser, remote: req.socket.remoteAddress }, "replayed slack interaction ignored");
      res.writeHead(200);
      res.end();
      return;
    }
    try {
      const queue = deps.queues.webhooks;
      const jobId = slackClickJobId(click.replayKey);
      await boundedAdd(queue, () => queue.add(SLACK_CLICK_JOB as never, { ...click, ...traceField() } as never, { ...WEBHOOK_JOB_OPTIONS, jobId }), deps.enqueueTimeoutMs ?? ENQUEUE_TIMEOUT_MS);
    } catch (err) {
      // Not queued, so not handled: the key goes, and nothing is left claiming otherwise.
      await forgetSlackReplayKey(deps.db, click.replayKey).catch(() => {});
      deps.log.error({ err }, "could not enqueue slack interaction");
      throw new HttpError(503, "queue unavailable");
    }
    res.writeHead(200);
    res.end();
  }

  return [{ method: "POST", path: SLACK_INTERACTIONS_PATH, handle: onSlack }];
}
