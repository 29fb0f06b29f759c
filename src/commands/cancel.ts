import { cancelPrTasks } from "../connectors/store/workflows.js";
import { announceCancelledPreviews } from "../jobs/cancel-previews.js";
import { code } from "../render/markdown.js";
import { audit, reply, writeTarget, type CommandContext } from "./context.js";

/** `/agent cancel`: stops this PR's queued and running previews (their sandboxes too) and its queued deploys. */
export async function cancelPr(ctx: CommandContext): Promise<void> {
  const { cancelled, applying } = await cancelPrTasks(ctx.deps.db, ctx.repoFullName, ctx.threadNumber, ctx.actor);
  await announceCancelledPreviews(ctx.deps, writeTarget(ctx), ctx.threadNumber, cancelled, `Cancelled by @${ctx.actor}.`, ctx.actor);
  await audit(ctx, "command.cancelled_tasks", { tasks: cancelled.map((t) => ({ id: t.id, kind: t.kind, stack: t.stack })), applying: applying.map((t) => t.stack) });
  const what = cancelled.length ? `cancelled ${cancelled.map((t) => `${t.kind} of ${code(t.stack)}`).join(", ")}.` : "nothing was queued or running for this pull request.";
  const still = applying.length
    ? ` A deploy of ${applying.map((t) => code(t.stack)).join(", ")} is already applying and was left to finish: stopping it half-way would leave the stack in an unknown state.`
    : "";
  await reply(ctx, what + still);
}
