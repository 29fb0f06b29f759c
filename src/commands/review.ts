/**
 * `--review` commands: `/agent preview --review [stack…]`, `/agent deploy --review [stack…]`
 * and `/agent destroy --review [stack]` (src/deploys/review.ts does the work). A stack is named
 * by its declared name (`web`) or its review stack's (`pr-12-web`); none named means every
 * stack with `review`.
 */
import type { RepoPermission } from "../approval/permissions.js";
import { reviewStackName, type ResolvedStack } from "../config/repo/resolve.js";
import type { RepoConfig } from "../config/repo/schema.js";
import { getReviewStack, reviewStacksOfPr } from "../connectors/store/review-stacks.js";
import { renderReviewFull, reviewRoom, startReviewDestroy } from "../deploys/review.js";
import { code } from "../render/markdown.js";
import { audit, reply, type CommandContext } from "./context.js";
import { requestDeploy } from "./deploy.js";
import { startPreview } from "./preview.js";

type Loaded = { config: RepoConfig; stacks: ResolvedStack[] };

/** The review stacks meant: by declared or review name; none named, every stack with `review`. */
function reviewStacksNamed(ctx: CommandContext, names: string[], loaded: Loaded): { ok: true; stacks: ResolvedStack[] } | { ok: false; message: string } {
  const own = loaded.stacks.filter((s) => s.review?.pr === ctx.threadNumber);
  if (names.length === 0) {
    if (own.length === 0) return { ok: false, message: "no stack of this repository declares `review` (a template to make review stacks from), so there is no review stack to work on. Nothing was run." };
    return { ok: true, stacks: own };
  }
  const stacks: ResolvedStack[] = [];
  for (const name of names) {
    const found = own.find((s) => s.name === name || s.name === reviewStackName(name, ctx.threadNumber));
    if (!found) return { ok: false, message: `stack ${code(name)} declares no \`review\` in \`.github/agent.yml\`, so it has no review stack. Nothing was run.` };
    if (!stacks.includes(found)) stacks.push(found);
  }
  return { ok: true, stacks };
}

/**
 * `/agent preview --review`: previews the review stacks (each then deploys through its gate,
 * src/jobs/preview-task.ts). The cost guard is asked first, so a full repository hears it now
 * rather than after the preview; the deploy asks it again, atomically.
 */
export async function previewReviewStacks(ctx: CommandContext, names: string[], loaded: Loaded, permission: RepoPermission): Promise<void> {
  const chosen = reviewStacksNamed(ctx, names, loaded);
  if (!chosen.ok) {
    await audit(ctx, "preview.rejected", { reason: "no review stack", named: names });
    await reply(ctx, chosen.message);
    return;
  }
  const full = (await reviewRoom(ctx.deps, ctx.repoFullName, chosen.stacks)).refused[0];
  if (full) {
    await audit(ctx, "review.refused", { stack: full.stack.name, reason: "cost guard", max: full.max, live: full.live.map((l) => l.stack) });
    await reply(ctx, renderReviewFull(full.stack.name, full.live, full.max));
    return;
  }
  await startPreview(ctx, chosen.stacks.map((s) => s.name), loaded, permission, { vouch: false });
}

/** `/agent deploy --review [stack…]`: each review stack's approved preview, through its gate (never merging). */
export async function deployReviewStacks(ctx: CommandContext, names: string[], loaded: Loaded, permission: RepoPermission): Promise<void> {
  const chosen = reviewStacksNamed(ctx, names, loaded);
  if (!chosen.ok) {
    await audit(ctx, "deploy.refused", { reason: "no review stack", named: names });
    await reply(ctx, chosen.message);
    return;
  }
  for (const s of chosen.stacks) await requestDeploy(ctx, s.name, loaded, permission);
}

/**
 * `/agent destroy --review [stack]`: this pull request's live review stacks (or the one named)
 * are destroyed. Only review stacks: a declared stack is never destroyed by a command.
 */
export async function destroyReviewStacks(ctx: CommandContext, name: string | null, review: boolean, loaded: Loaded): Promise<void> {
  if (!review) {
    await audit(ctx, "command.rejected", { command: "destroy", reason: "not a review stack", stack: name });
    await reply(ctx, `\`/agent destroy\` only destroys this pull request's review stacks: write \`/agent destroy --review${name ? ` ${name.replace(/^pr-\d+-/, "")}` : ""}\`. A declared stack is never destroyed by a command. Nothing was run.`);
    return;
  }
  let stacks: string[];
  if (name === null) {
    stacks = (await reviewStacksOfPr(ctx.deps.db, ctx.repoFullName, ctx.threadNumber)).map((r) => r.stack);
  } else {
    const chosen = reviewStacksNamed(ctx, [name], loaded);
    if (!chosen.ok) {
      await reply(ctx, chosen.message);
      return;
    }
    stacks = chosen.stacks.map((s) => s.name);
  }
  const started: string[] = [];
  const busy: string[] = [];
  const none: string[] = [];
  for (const stack of stacks) {
    const row = await getReviewStack(ctx.deps.db, ctx.repoFullName, stack);
    if (!row || row.state === "destroyed" || row.pr_number !== ctx.threadNumber) none.push(stack);
    else if (await startReviewDestroy(ctx.deps, ctx.repoFullName, stack, `\`/agent destroy --review\` by @${ctx.actor}`, ctx.actor)) started.push(stack);
    else busy.push(stack);
  }
  const lines = [
    ...(started.length ? [`destroying ${started.map((s) => code(s)).join(", ")}: the destroy is previewed, applied and reported here.`] : []),
    ...(busy.length ? [`${busy.map((s) => code(s)).join(", ")} ${busy.length === 1 ? "is" : "are"} already being destroyed.`] : []),
    ...(none.length || stacks.length === 0 ? [`${stacks.length === 0 ? "this pull request has no live review stack" : `${none.map((s) => code(s)).join(", ")}: no live review stack`}; nothing to destroy.`] : []),
  ];
  await reply(ctx, lines.join("\n"));
}
