import type { ResolvedStack } from "../config/repo/resolve.js";
import { startDriftCheck } from "../deploys/drift.js";
import { code, shortSha } from "../render/markdown.js";
import { DRIFT_LABEL } from "../render/drift.js";
import { reply, type CommandContext } from "./context.js";

/**
 * `/agent drift [stack]`: a drift check now — of the named stack, or of every stack with a
 * `drift` schedule. Each previews the default branch's head with `--refresh`; the result goes
 * to the stack's drift issue (opened, updated or closed), as a scheduled check's does.
 */
export async function requestDriftCheck(ctx: CommandContext, stack: string | null, loaded: { stacks: ResolvedStack[] }): Promise<void> {
  const stacks = stack ? loaded.stacks.filter((s) => s.name === stack) : loaded.stacks.filter((s) => s.drift);
  if (stacks.length === 0) {
    await reply(ctx, stack ? `there is no stack ${code(stack)}.` : "no stack has a `drift` schedule in `.github/agent.yml`; name the stack to check: `/agent drift <stack>`.");
    return;
  }
  const lines: string[] = [];
  for (const s of stacks) {
    const started = await startDriftCheck(ctx.deps, ctx.gh, { repo: ctx.repoFullName, installationId: ctx.installationId, stack: s.name, cloneUrl: ctx.cloneUrl, defaultBranch: ctx.defaultBranch, requestedBy: ctx.actor, deliveryId: ctx.deliveryId });
    lines.push(started.ok ? `- ${code(s.name)}: checking ${code(shortSha(started.sha))} (the head of ${code(ctx.defaultBranch)}) with \`--refresh\`` : `- ${code(s.name)}: not checked — ${started.why}`);
  }
  await reply(ctx, [`drift check${stacks.length === 1 ? "" : "s"}:`, ...lines, "", `Drift opens (or updates) the stack's issue labelled \`${DRIFT_LABEL}\`; a clean check closes it.`].join("\n"));
}
