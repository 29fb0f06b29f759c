import { mayUnlock } from "../approval/locks.js";
import type { RepoPermission } from "../approval/permissions.js";
import { getPull } from "../connectors/github.js";
import { getStackLock, locksHeldBy, releaseStackLocks, type StackLock } from "../connectors/store/locks.js";
import { startLockQueue } from "../jobs/lock-queue.js";
import { notifySlack } from "../deploys/slack.js";
import { code } from "../render/markdown.js";
import { audit, reply, type CommandContext } from "./context.js";

/**
 * `/agent unlock [stack]`: without a stack, releases every lock this PR holds; with one,
 * releases that stack's lock whoever holds it — if the commenter may (see `mayUnlock`).
 */
export async function unlockStacks(ctx: CommandContext, stack: string | null, permission: RepoPermission): Promise<void> {
  const locks: StackLock[] = stack
    ? [await getStackLock(ctx.deps.db, ctx.repoFullName, stack)].filter((l): l is StackLock => l !== null)
    : await locksHeldBy(ctx.deps.db, ctx.repoFullName, ctx.threadNumber);
  if (locks.length === 0) {
    await reply(ctx, stack ? `${code(stack)} is not locked.` : "this pull request holds no stack locks.");
    return;
  }
  const author = ctx.isPullRequest ? (await getPull(ctx.gh, ctx.repo, ctx.threadNumber)).author : "";
  const released: string[] = [];
  const refused: string[] = [];
  for (const lock of locks) {
    const decision = mayUnlock({ actor: ctx.actor, actorPermission: permission, holderPr: lock.prNumber, commandPr: ctx.threadNumber, commandPrAuthor: author });
    if (!decision.allowed) {
      refused.push(`${code(lock.stack)}: ${decision.why}`);
      await audit(ctx, "lock.unlock_refused", { stack: lock.stack, holder_pr: lock.prNumber });
      continue;
    }
    const gone = await releaseStackLocks(ctx.deps.db, ctx.repoFullName, { stack: lock.stack, prNumber: lock.prNumber });
    if (gone.length) released.push(lock.prNumber === ctx.threadNumber ? code(lock.stack) : `${code(lock.stack)} (was held by #${lock.prNumber})`);
    await audit(ctx, "lock.released", { stack: lock.stack, holder_pr: lock.prNumber, by: "unlock" });
    // The next pull request in the stack's lock queue gets it, and its preview starts.
    if (gone.length) await startLockQueue(ctx.deps, ctx.repoFullName, [lock.stack]);
    // Taken from another PR: its people hear about it in the stack's channel.
    if (gone.length && lock.prNumber !== ctx.threadNumber) {
      await notifySlack(ctx.deps, { event: "lock.stolen", repo: ctx.repoFullName, prNumber: lock.prNumber, stack: lock.stack, detail: `released by @${ctx.actor} from #${ctx.threadNumber}` });
    }
  }
  const lines = [
    released.length ? `released ${released.join(", ")}.` : "",
    refused.length ? `not released:\n${refused.map((r) => `- ${r}`).join("\n")}` : "",
  ].filter(Boolean);
  await reply(ctx, lines.join("\n"));
}
