import { getStackLock, type StackLock } from "../connectors/store/locks.js";
import { latestPreviewPerStack } from "../connectors/store/workflows.js";
import { renderStatus } from "../render/status.js";
import { reply, type CommandContext } from "./context.js";

/** `/agent status`: where each stack stands for this PR (task states, locks), in one reply. */
export async function replyStatus(ctx: CommandContext, stacks: string[]): Promise<void> {
  const previews = await latestPreviewPerStack(ctx.deps.db, ctx.repoFullName, ctx.issueNumber);
  const locks = new Map<string, StackLock>();
  for (const stack of stacks) {
    const lock = await getStackLock(ctx.deps.db, ctx.repoFullName, stack);
    if (lock) locks.set(stack, lock);
  }
  await reply(ctx, `status of #${ctx.issueNumber}:\n\n${renderStatus({ prNumber: ctx.issueNumber, stacks, previews, locks, webBaseUrl: ctx.deps.config.github.webBaseUrl, repo: ctx.repoFullName })}`);
}
