import { evaluateGate } from "../approval/gate.js";
import { describeBudget } from "../approval/error-budget.js";
import { driftStackOfIssue, relatedDrift } from "../connectors/store/drift.js";
import { renderRelatedDrift } from "../render/drift.js";
import { code, shortSha } from "../render/markdown.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import { getStackLock, lockQueue, type StackLock } from "../connectors/store/locks.js";
import { getTasks, latestPreviewPerStack } from "../connectors/store/workflows.js";
import { stackGraph } from "../config/repo/resolve.js";
import { renderGateSummary } from "../render/gate.js";
import { renderAuditTail, renderStackGraph, renderStatus } from "../render/status.js";
import { listAudit } from "../connectors/store/audit.js";
import { reviewStacksOfPr } from "../connectors/store/review-stacks.js";
import { repoPhase } from "../connectors/store/phases.js";
import { reply, type CommandContext } from "./context.js";
import { gatePolicy, gatherFacts } from "../deploys/gate-facts.js";

/**
 * `/agent status`: where each stack stands for this PR (task states, locks) and, for every
 * previewed stack, what its deploy gate says now: approvals counted and what is missing.
 */
export async function replyStatus(ctx: CommandContext, all: ResolvedStack[]): Promise<void> {
  const previews = await latestPreviewPerStack(ctx.deps.db, ctx.repoFullName, ctx.threadNumber);
  // Review stacks are listed once this PR previewed them; the others would be noise.
  const stacks = all.filter((s) => !s.review || previews.some((p) => p.task.stack === s.name));
  const names = stacks.map((s) => s.name);
  const locks = new Map<string, StackLock>();
  for (const stack of names) {
    const lock = await getStackLock(ctx.deps.db, ctx.repoFullName, stack);
    if (lock) locks.set(stack, lock);
  }
  // What each waiting preview waits for: its shared checks and upstream stacks still to finish.
  const waitingFor = new Map<string, string[]>();
  for (const p of previews) {
    if (p.task.state !== "PENDING" || p.task.depends_on.length === 0) continue;
    waitingFor.set(p.task.id, (await getTasks(ctx.deps.db, p.task.depends_on)).filter((d) => d.state === "PENDING" || d.state === "RUNNING").map((d) => d.stack).sort());
  }
  const queued = new Map<string, number>();
  for (const stack of names) {
    const mine = (await lockQueue(ctx.deps.db, ctx.repoFullName, stack)).find((w) => w.prNumber === ctx.threadNumber);
    if (mine) queued.set(stack, mine.position);
  }
  const parts = [`status of #${ctx.threadNumber}:`, "", renderStatus({ prNumber: ctx.threadNumber, stacks: names, previews, locks, webBaseUrl: ctx.deps.config.github.webBaseUrl, repo: ctx.repoFullName, waitingFor, queued })];
  // The rollout phase, when it is not the human gate as usual: "ready" means nothing in `observe`.
  const phase = await repoPhase(ctx.deps.db, ctx.repoFullName, ctx.deps.config.defaultPhase);
  if (phase.phase === "observe") parts.push("", `**Rollout phase: \`observe\`** (set for ${code(phase.scope)}): read-only — nothing is deployed here, whatever the gate below says.`);
  if (phase.phase === "act") parts.push("", `**Rollout phase: \`act\`** (set for ${code(phase.scope)}): after a merge, a plan the policy allows with nothing destructive applies without an approval.`);
  const graph = renderStackGraph(stackGraph(stacks), previews);
  if (graph) parts.push("", "**Stack dependencies** (latest preview on this PR)", "", graph);
  // The gate asks GitHub about reviews, checks and permissions: only for stacks previewed here.
  const previewed = ctx.isPullRequest ? stacks.filter((s) => previews.some((p) => p.task.stack === s.name)) : [];
  if (previewed.length) {
    parts.push("", "**Deploy gate**", "");
    for (const stack of previewed) {
      const policy = gatePolicy(stack, ctx.deps.config.gate);
      const { facts } = await gatherFacts(ctx, stack, policy);
      parts.push(renderGateSummary(stack.name, evaluateGate(policy, facts)));
      if (facts.tier) parts.push(`  Trust tier for your deploy of ${code(stack.name)}: ${facts.tier.rule}${facts.tier.extraApprovals ? ` — ${facts.tier.extraApprovals} approval${facts.tier.extraApprovals === 1 ? "" : "s"} beyond the stack's own` : ""}.`);
      if (facts.budget) parts.push(`  Error budget of ${code(stack.name)}: ${describeBudget(facts.budget)}${facts.budget.exhausted ? ` — **exhausted** (${facts.budget.why.join("; ")})` : ""}.`);
    }
  }
  // A drift issue: the stack's drift and the stacks drifting with it (the fleet view).
  const drift = ctx.isPullRequest ? null : await driftStackOfIssue(ctx.deps.db, ctx.repoFullName, ctx.threadNumber);
  if (drift) {
    const related = await relatedDrift(ctx.deps.db, ctx.repoFullName, drift.stack, drift.types, drift.checked_at);
    parts.push("", `**Drift of ${code(drift.stack)}**: ${drift.state === "drifted" ? `drifting since ${drift.since?.toISOString()}` : drift.state === "clean" ? "clean" : "the last check failed"}; last checked ${drift.checked_at.toISOString()} at ${code(shortSha(drift.sha))}.`);
    const group = renderRelatedDrift(related.map((x) => ({ stack: x.stack, issue: x.issue_number, types: x.types.filter((t) => drift.types.includes(t)) })));
    if (group.length) parts.push("", ...group);
  }
  const reviews = ctx.isPullRequest ? await reviewStacksOfPr(ctx.deps.db, ctx.repoFullName, ctx.threadNumber) : [];
  if (reviews.length) {
    parts.push("", "**Review stacks**", "");
    for (const r of reviews) parts.push(`- ${code(r.stack)} (from ${code(r.base_stack)}): ${r.state === "live" ? `live${r.deployed_sha ? ` at ${code(shortSha(r.deployed_sha))}` : ""}, destroyed at ${r.expires_at.toISOString().replace(/\.\d+Z$/, "Z")} unless deployed again` : r.state === "destroying" ? "being destroyed" : "its destroy failed; `/agent destroy --review` tries again"}`);
  }
  const trail = renderAuditTail(await listAudit(ctx.deps.db, ctx.repoFullName, ctx.threadNumber));
  if (trail) parts.push("", trail);
  await reply(ctx, parts.join("\n"));
}
