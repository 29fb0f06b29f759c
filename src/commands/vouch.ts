import { decideVouch } from "../approval/timeline.js";
import { withGateLock } from "../connectors/store/gate.js";
import { listPrEvents, recordPrEvent } from "../connectors/store/timeline.js";
import { audit, reply, type CommandContext } from "./context.js";

/**
 * A maintainer's `/agent ok-to-test` (or `/agent preview` of a fork) vouches for the commit that
 * was the head when they wrote it — the latest push recorded before the comment's `created_at`
 * — never for one pushed after it. True when that is still the head (the preview then runs that
 * very commit); otherwise the maintainer is told why and nothing runs. With no push on record
 * at all, the current head is recorded as observed now, and the maintainer is asked to look at
 * it and comment again (their next comment is then after a known head).
 */
export async function confirmVouchedHead(ctx: CommandContext, currentHead: string): Promise<boolean> {
  if (!ctx.createdAt) return true; // not a comment (autoplan never runs untrusted code)
  const pushes = await listPrEvents(ctx.deps.db, ctx.repoFullName, ctx.threadNumber);
  const decision = decideVouch({ at: ctx.createdAt, currentHead, pushes });
  if (decision.ok) return true;
  if (decision.observe) {
    await withGateLock(ctx.deps.db, ctx.repoFullName, ctx.threadNumber, (q) =>
      recordPrEvent(q, { repo: ctx.repoFullName, prNumber: ctx.threadNumber, kind: "observed", actor: ctx.actor, headSha: currentHead, at: new Date(), deliveryId: null }),
    );
  }
  await audit(ctx, "preview.rejected", { reason: "vouch", head_sha: currentHead, comment_at: ctx.createdAt.toISOString(), observed: decision.observe, why: decision.why });
  await reply(ctx, decision.why);
  return false;
}
