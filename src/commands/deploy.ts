import { hasAtLeast, type RepoPermission } from "../approval/permissions.js";
import { judgeClickedPreview } from "../approval/timeline.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { RepoConfig } from "../config/repo/schema.js";
import { deployOfPreview } from "../connectors/store/gate.js";
import { latestMainlinePreview } from "../connectors/store/workflows.js";
import { gatePolicy, gatherFacts } from "../deploys/gate-facts.js";
import { requestApply } from "../deploys/request-apply.js";
import { approvedBy, renderApplyConflict, renderGateChecklist } from "../render/gate.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { decideImage } from "../approval/images.js";
import { applyRequester, audit, reply, type CommandContext } from "./context.js";
import { applyIfApproved } from "./rollback.js";
import { stackGraph } from "../config/repo/resolve.js";
import { layersOf, upstreamWithin } from "../domain/stack-graph.js";
import { getPull, membershipIn } from "../connectors/github.js";
import { latestPreviewPerStack } from "../connectors/store/workflows.js";
import { requestDeployRun as requestRun, type RunStack } from "../deploys/deploy-run.js";
import { renderReviewFull, requestReviewApply, REVIEW_BEING_DESTROYED } from "../deploys/review.js";
import { evaluateGate } from "../approval/gate.js";
import { observedDeploy, refusedInObserve } from "./phase.js";
import { mayRunCommand } from "../approval/tiers.js";
import { tierOf } from "../connectors/store/tiers.js";

/** `gate.mode: merge-queue`: the apply follows the merge through GitHub's merge queue, never a command. */
const MERGE_QUEUE_ONLY = (stacks: string) =>
  `\`${stacks}\` deploys through the merge queue (\`gate.mode: merge-queue\`): once the plan is approved here, add the pull request to the merge queue. The app checks the merge group (\`agent/merge-queue\`) and applies the group's checked plan after it lands on the default branch. Nothing was run.`;

/** The preview a check run's Deploy button was clicked on: it deploys that plan or nothing. */
export interface ClickedPreview {
  taskId: string;
  headSha: string;
  planHash: string | null;
  state: string;
}

/**
 * `/agent deploy [stack]`: asks the gate; when anything is unmet, one reply with the whole
 * checklist and nothing runs. Otherwise records the deploy (at most one live per stack, one
 * apply per preview) and enqueues it; the deploy job asks the gate once more before it applies.
 * `clicked`: the Deploy button of that preview's check run — only its plan, never a newer one.
 */
export async function requestDeploy(
  ctx: CommandContext,
  stackName: string,
  loaded: { config: RepoConfig; stacks: ResolvedStack[] },
  permission: RepoPermission,
  clicked: ClickedPreview | null = null,
): Promise<void> {
  const stack = loaded.stacks.find((s) => s.name === stackName)!;
  if (!hasAtLeast(permission, stack.gate.deployPermission)) {
    await audit(ctx, "deploy.refused", { stack: stack.name, reason: "permission", required: stack.gate.deployPermission, actual: permission });
    await reply(ctx, `deploying ${code(stack.name)} needs **${stack.gate.deployPermission}** access and you have **${permission}**. Nothing was run.`);
    return;
  }
  // The stack's own trust tier counts too (dispatch asked the actor's and the repository's).
  const tier = await tierOf(ctx.deps.db, { actor: ctx.actor, repo: ctx.repoFullName, stack: stack.name, teams: membershipIn(ctx.gh, ctx.repoFullName, ctx.actor) }, ctx.deps.config.defaultTier);
  const byTier = mayRunCommand(tier, "deploy");
  if (!byTier.allowed) {
    await audit(ctx, "tier.refused", { stack: stack.name, command: "deploy", tier: tier.tier.name, why: byTier.why });
    await reply(ctx, `sorry, ${byTier.why}. Nothing was run.`);
    return;
  }
  if (stack.gate.mode === "merge-queue") {
    await audit(ctx, "deploy.refused", { stack: stack.name, reason: "merge-queue" });
    await reply(ctx, MERGE_QUEUE_ONLY(stack.name));
    return;
  }
  const image = decideImage(loaded.config.sandbox?.image, ctx.deps.config.sandbox);
  if (!image.ok) {
    await reply(ctx, `I can't run the deploy: ${image.message}.`);
    return;
  }
  // Merge-first left a merge commit to approve: `/agent deploy` now applies that plan.
  const pending = await latestMainlinePreview(ctx.deps.db, ctx.repoFullName, ctx.threadNumber, stack.name);
  // (Not from a Deploy button: that stands for its own preview of the PR head, nothing else.)
  // (So does a merged PR's merge commit in `act` that was not applied by itself.)
  if (!clicked && (pending?.workflow.config.branch?.purpose === "merge-commit" || pending?.workflow.config.branch?.purpose === "act") && !(await deployOfPreview(ctx.deps.db, pending.task.id))) {
    if (pending.task.state === "SUCCEEDED") {
      await applyIfApproved(ctx, stack, pending.workflow, pending.task);
      return;
    }
    if (pending.task.state === "PENDING" || pending.task.state === "RUNNING") {
      await reply(ctx, `the preview of the merge commit ${code(shortSha(pending.workflow.head_sha))} for ${code(stack.name)} is still running; its plan will be posted here.`);
      return;
    }
  }
  const policy = gatePolicy(stack, ctx.deps.config.gate);
  const gathered = await gatherFacts(ctx, stack, policy);
  const { facts } = gathered;
  if (clicked) {
    const current = facts.preview && facts.preview.headSha === facts.pr.headSha && facts.preview.state === "SUCCEEDED" ? facts.preview.planHash : null;
    const judged = judgeClickedPreview({ clicked, currentHead: facts.pr.headSha, currentPlan: current });
    if (!judged.current) {
      await audit(ctx, "deploy.stale_button", { stack: stack.name, clicked_task: clicked.taskId, clicked_sha: clicked.headSha, clicked_plan_hash: clicked.planHash, head_sha: facts.pr.headSha, plan_hash: current, why: judged.why });
      await reply(ctx, `the Deploy button you clicked was for ${code(stack.name)} at ${code(shortSha(clicked.headSha))} (plan ${code(shortPlanHash(clicked.planHash) ?? "none")}), which is no longer current: ${judged.why}. Nothing was queued; use the current preview's check run, or comment \`/agent deploy ${stack.name}\`.`);
      return;
    }
  }
  // `observe`: what would happen, and nothing else.
  if (await observedDeploy(ctx, stack.name, evaluateGate(policy, facts), facts.pr.headSha, stack.gate.mode)) return;
  const subject = { kind: "pull" as const, stack, policy, gathered, config: { image: image.image, cloneUrl: ctx.cloneUrl, defaultBranch: ctx.defaultBranch } };
  // A review stack goes through the same gate, behind the cost guard (src/deploys/review.ts).
  const outcome = stack.review ? await requestReviewApply(applyRequester(ctx), subject, subject.config) : await requestApply(applyRequester(ctx), subject);
  switch (outcome.status) {
    case "full":
      await reply(ctx, renderReviewFull(stack.name, outcome.live, outcome.max));
      return;
    case "destroying":
      await reply(ctx, REVIEW_BEING_DESTROYED(stack.name));
      return;
    case "blocked":
      await reply(ctx, renderGateChecklist(stack.name, outcome.gate, outcome.headSha));
      return;
    case "conflict":
      await reply(ctx, renderApplyConflict(stack.name, outcome.conflict, `this preview of ${code(stack.name)} (plan ${code(shortPlanHash(outcome.gate.planHash) ?? "")})`, `To apply again, run \`/agent preview ${stack.name}\` for a fresh plan and get it approved.`));
      return;
    case "queued": {
      const by = approvedBy(outcome.gate);
      const after = stack.review ? "It is a review stack: nothing is merged, and its outputs are posted here once it is up." : stack.gate.mode === "merge-then-deploy" ? "The PR is merged first; the merge commit is applied only if it plans the same." : "The PR is merged once it succeeds.";
      await reply(ctx, `deploying ${code(stack.name)} at ${code(shortSha(outcome.headSha))} (plan ${code(shortPlanHash(outcome.planHash) ?? "")})${by ? `, approved by ${by}` : ""}. ${after}`);
    }
  }
}

/**
 * `/agent deploy a b c` or `/agent deploy --all` (every stack with a successful preview of the
 * head): the stacks in dependency order, one layer at a time, each through its own gate with its
 * own approved plan. Every gate must pass now or nothing is queued (one reply with the checklists
 * that are not met); see src/deploys/deploy-run.ts.
 */
export async function requestDeployRun(ctx: CommandContext, names: string[] | null, loaded: { config: RepoConfig; stacks: ResolvedStack[] }, permission: RepoPermission): Promise<void> {
  let chosen = names;
  if (chosen === null) {
    const pull = await getPull(ctx.gh, ctx.repo, ctx.threadNumber);
    const previews = await latestPreviewPerStack(ctx.deps.db, ctx.repoFullName, ctx.threadNumber);
    // Review stacks deploy on their own (`--review`): `--all` means the declared stacks.
    chosen = loaded.stacks.filter((s) => !s.review).map((s) => s.name).filter((n) => previews.some((p) => p.task.stack === n && p.task.state === "SUCCEEDED" && p.headSha === pull.headSha));
    if (chosen.length === 0) {
      await audit(ctx, "deploy.run_refused", { reason: "no successful preview of the head", all: true });
      await reply(ctx, `no stack has a successful preview of the head ${code(shortSha(pull.headSha))}, so \`--all\` has nothing to deploy. Preview first: \`/agent preview <stack>…\`.`);
      return;
    }
    if (chosen.length === 1) return requestDeploy(ctx, chosen[0]!, loaded, permission);
  }
  if (await refusedInObserve(ctx, `/agent deploy ${chosen.join(" ")}`, { stacks: chosen })) return;
  const graph = stackGraph(loaded.stacks);
  const ordered = layersOf(graph, chosen).flat();
  const upstream = upstreamWithin(graph, ordered);
  const stacks = ordered.map((n) => loaded.stacks.find((s) => s.name === n)!);
  const refuse = async (reason: string, detail: Record<string, unknown>, text: string) => {
    await audit(ctx, "deploy.run_refused", { reason, stacks: ordered, ...detail });
    await reply(ctx, text);
  };
  const reviews = stacks.filter((s) => s.review);
  if (reviews.length) return refuse("review", { stacks_review: reviews.map((s) => s.name) }, `${reviews.map((s) => code(s.name)).join(", ")} ${reviews.length === 1 ? "is a review stack, which deploys" : "are review stacks, which deploy"} on ${reviews.length === 1 ? "its" : "their"} own, never in a run with other stacks: \`/agent deploy --review ${reviews.map((s) => s.review!.base).join(" ")}\`. Nothing was run.`);
  const short = stacks.filter((s) => !hasAtLeast(permission, s.gate.deployPermission));
  if (short.length) return refuse("permission", { actual: permission }, `deploying ${short.map((s) => `${code(s.name)} needs **${s.gate.deployPermission}** access`).join(", ")} and you have **${permission}**. Nothing was run.`);
  // Merge-first applies the merge commit: a run cannot merge before its later layers apply.
  const mergeFirst = stacks.filter((s) => s.gate.mode === "merge-then-deploy");
  if (mergeFirst.length) return refuse("merge-then-deploy", { stacks_merge_first: mergeFirst.map((s) => s.name) }, `${mergeFirst.map((s) => code(s.name)).join(", ")} ${mergeFirst.length === 1 ? "uses" : "use"} \`gate.mode: merge-then-deploy\`, which merges before it applies, so ${mergeFirst.length === 1 ? "it" : "they"} cannot be part of a multi-stack deploy. Deploy ${mergeFirst.length === 1 ? "it" : "them"} on ${mergeFirst.length === 1 ? "its" : "their"} own. Nothing was run.`);
  const queued = stacks.filter((s) => s.gate.mode === "merge-queue");
  if (queued.length) return refuse("merge-queue", { stacks_merge_queue: queued.map((s) => s.name) }, MERGE_QUEUE_ONLY(queued.map((s) => s.name).join("`, `")));
  const image = decideImage(loaded.config.sandbox?.image, ctx.deps.config.sandbox);
  if (!image.ok) return refuse("image", {}, `I can't run the deploy: ${image.message}.`);
  const run: RunStack[] = [];
  for (const stack of stacks) {
    const policy = gatePolicy(stack, ctx.deps.config.gate);
    run.push({ stack, policy, gathered: await gatherFacts(ctx, stack, policy), after: upstream.get(stack.name) ?? [] });
  }
  const outcome = await requestRun(applyRequester(ctx), run, { image: image.image, cloneUrl: ctx.cloneUrl, defaultBranch: ctx.defaultBranch, runParallelism: loaded.config.parallel_applies });
  switch (outcome.status) {
    case "moved":
      await reply(ctx, "the pull request's head moved while the gates were read; nothing was queued. Comment the command again.");
      return;
    case "blocked": {
      const blocked = outcome.gates.filter((g) => !g.gate.allowed || !g.gate.planHash);
      const passed = outcome.gates.filter((g) => !blocked.includes(g)).map((g) => code(g.stack));
      await reply(ctx, [`nothing was queued: every stack of a multi-stack deploy must pass its gate first, and ${blocked.length === 1 ? "this one does" : "these do"} not.`, ...blocked.map((g) => `\n${renderGateChecklist(g.stack, g.gate, outcome.headSha)}`), ...(passed.length ? ["", `Ready: ${passed.join(", ")}.`] : [])].join("\n"));
      return;
    }
    case "conflict":
      await reply(ctx, `nothing was queued: ${renderApplyConflict(outcome.stack, outcome.conflict, `the approved preview of ${code(outcome.stack)}`, `Preview ${code(outcome.stack)} again for a fresh plan and get it approved.`)}`);
      return;
    case "queued": {
      await audit(ctx, "deploy.run_queued", { run_id: outcome.runId, head_sha: outcome.headSha, stacks: outcome.stacks.map((s) => ({ stack: s.stack, plan_hash: s.planHash, after: s.after })) });
      const layers = layersOf(graph, ordered);
      const lines = layers.map((layer, i) => `${i + 1}. ${layer.map((n) => { const s = outcome.stacks.find((x) => x.stack === n)!; return `${code(n)} (plan ${code(shortPlanHash(s.planHash) ?? "")}${s.approvedBy.length ? `, approved by ${s.approvedBy.map((a) => `@${a}`).join(", ")}` : ""})`; }).join(", ")}`);
      await reply(ctx, [`deploying ${outcome.stacks.length} stacks at ${code(shortSha(outcome.headSha))} in dependency order, one layer at a time, up to ${loaded.config.parallel_applies} at once (each stack's gate is asked again just before it applies; a failure stops what depends on it):`, "", ...lines, "", "The pull request is merged once every stack is applied."].join("\n"));
    }
  }
}
