import type { Context } from "probot";
import { isBotActor } from "../approval/permissions.js";
import { commandContextFor } from "../commands/context.js";
import { dispatchCommands } from "../commands/dispatch.js";
import { mentionsCommand, parseComment } from "../commands/grammar.js";
import type { AppDeps } from "../deps.js";

/** `issue_comment.created`: filter early (bots, no command), then hand over to the commands. */
export async function onIssueComment(context: Context<"issue_comment.created">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  if (isBotActor(payload.comment.user) || isBotActor(payload.sender)) return;
  if (!mentionsCommand(payload.comment.body)) return;
  const installationId = payload.installation?.id;
  if (!installationId) return;

  const parsed = parseComment(payload.comment.body);
  if (parsed.commands.length === 0 && parsed.errors.length === 0) return;

  const ctx = commandContextFor(deps, context, payload.repository, {
    installationId,
    threadNumber: payload.issue.number,
    isPullRequest: Boolean(payload.issue.pull_request),
    commentId: payload.comment.id,
    actor: payload.comment.user?.login ?? "ghost",
    issue: { title: payload.issue.title, body: payload.issue.body ?? null },
    ...commentTime(payload.comment.created_at),
  });
  await dispatchCommands(ctx, parsed);
}

/** The comment's `created_at` (what `/approve` and `/agent ok-to-test` bind to), when it is a valid time. */
function commentTime(createdAt: string | null | undefined): { createdAt?: Date } {
  const at = createdAt ? new Date(createdAt) : null;
  return at && !Number.isNaN(at.getTime()) ? { createdAt: at } : {};
}
