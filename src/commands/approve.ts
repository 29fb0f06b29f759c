import type { ApprovalVerdict } from "../approval/gate.js";
import { bindApproval, judgeClickedPreview } from "../approval/timeline.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import { getPull, type PullInfo } from "../connectors/github.js";
import { liveDeploysOf, recordApproval, withGateLock, type DeployRow, type NewApproval } from "../connectors/store/gate.js";
import { listPrEvents, successfulPreviews } from "../connectors/store/timeline.js";
import { approvableBranchPreviews, getTask } from "../connectors/store/workflows.js";
import { approvalVerdict } from "../deploys/gate-facts.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { audit, reply, type CommandContext } from "./context.js";

/** What one approval came to, for the reply and the audit log. */
interface Outcome {
  stack: string;
  /** `stack (plan …)` as the reply names it. */
  what: string;
  counts: boolean;
  /** Why it does not count (null when it does). */
  why: string | null;
}

/**
 * `/approve [reason]`: approves, per stack, the plan the commenter saw — the latest successful
 * preview of the stack that had finished before the comment's `created_at` — bound to the head
 * at that moment (src/approval/timeline.ts). If the head or the plan changed after the comment,
 * it is recorded as what it was but does not count, and the reply says so. Whether an approval
 * counts is the pure gate's answer (author, pushers and committers, bots, allowed approvers,
 * staleness), asked right away so the reply is the truth.
 */
export async function approvePlans(ctx: CommandContext, reason: string, stacks: ResolvedStack[]): Promise<void> {
  const at = ctx.createdAt ?? new Date();
  // A pending rollback (a branch preview asked for in this thread) is approved first, by stack.
  const branch = await approveBranchPreviews(ctx, reason, at);
  if (!ctx.isPullRequest) {
    if (branch.length === 0) {
      await audit(ctx, "approval.nothing_to_approve", {});
      await reply(ctx, "there is no rollback plan waiting for approval here. `/approve` in an issue approves a rollback previewed by `/agent rollback` in it.");
      return;
    }
    await audit(ctx, "approval.recorded", { branch: branch.map(auditOutcome), reason: reason || null });
    await reply(ctx, sayOutcomes(branch, null));
    return;
  }
  const pull = await getPull(ctx.gh, ctx.repo, ctx.threadNumber);
  const pushes = await listPrEvents(ctx.deps.db, ctx.repoFullName, ctx.threadNumber);
  const outcomes: Outcome[] = [];
  const unseen: string[] = [];
  // One comment approves one plan per stack (a pending rollback wins over the PR's preview).
  const branchStacks = new Set(branch.map((b) => b.stack));
  for (const stack of stacks) {
    if (branchStacks.has(stack.name)) continue;
    const previews = await successfulPreviews(ctx.deps.db, ctx.repoFullName, ctx.threadNumber, stack.name);
    if (previews.length === 0) continue;
    const binding = bindApproval({ at, currentHead: pull.headSha, pushes, previews });
    if (binding.kind === "nothing-seen") {
      unseen.push(`nothing was recorded for ${code(stack.name)}: ${binding.why}. Comment \`/approve\` again to approve it.`);
      continue;
    }
    const { id } = await recordApproval(ctx.deps.db, fromCommand(ctx, { kind: "approve", stack: stack.name, headSha: binding.headSha, planHash: binding.planHash, reason, at }));
    const verdict = binding.stale ? null : await approvalVerdict(ctx, stack, id);
    outcomes.push(outcomeOf(stack.name, binding.planHash, binding.headSha, verdict, binding.stale));
  }
  if (outcomes.length === 0 && branch.length === 0) {
    await audit(ctx, "approval.nothing_to_approve", { head_sha: pull.headSha });
    await reply(
      ctx,
      unseen.length ? unseen.join(" ") : `there is no successful preview of the head commit ${code(shortSha(pull.headSha))} to approve. Run \`/agent preview\` first; approvals are bound to the plan they saw.`,
    );
    return;
  }
  await audit(ctx, "approval.recorded", { head_sha: pull.headSha, at: at.toISOString(), stacks: outcomes.map(auditOutcome), branch: branch.map(auditOutcome), reason: reason || null });
  const said = [sayOutcomes(outcomes, pull, ctx.actor), ...(branch.length ? [sayOutcomes(branch, null)] : []), ...unseen].filter(Boolean);
  await reply(ctx, said.join(" "));
}

/**
 * The check run's Approve button: approves the clicked check run's own preview (its commit and
 * plan), and only while that is still the current plan of the head; otherwise nothing is
 * recorded and the reply says what the button was for and what is current.
 */
export async function approveClickedPreview(ctx: CommandContext, stack: ResolvedStack, clicked: { taskId: string; headSha: string; planHash: string | null; state: string }): Promise<void> {
  const pull = await getPull(ctx.gh, ctx.repo, ctx.threadNumber);
  const previews = (await successfulPreviews(ctx.deps.db, ctx.repoFullName, ctx.threadNumber, stack.name)).filter((p) => p.headSha === pull.headSha);
  const currentPlan = previews.at(-1)?.planHash ?? null;
  const judged = judgeClickedPreview({ clicked, currentHead: pull.headSha, currentPlan });
  const was = `${code(stack.name)} at ${code(shortSha(clicked.headSha))} (plan ${code(shortPlanHash(clicked.planHash) ?? "none")})`;
  if (!judged.current) {
    await audit(ctx, "approval.stale_button", { stack: stack.name, clicked_task: clicked.taskId, clicked_sha: clicked.headSha, clicked_plan_hash: clicked.planHash, head_sha: pull.headSha, plan_hash: currentPlan, why: judged.why });
    await reply(ctx, `the Approve button you clicked was for ${was}, which is no longer current: ${judged.why}. Nothing was approved; approve the current plan from its check run, or comment \`/approve\`.`);
    return;
  }
  // A click has no comment (ctx.commentId is 0) and no created_at of its own: the row's time is now.
  const { id } = await recordApproval(ctx.deps.db, fromCommand(ctx, { kind: "approve", stack: stack.name, headSha: clicked.headSha, planHash: clicked.planHash, reason: "via the check run's Approve button", at: null }));
  const outcome = outcomeOf(stack.name, clicked.planHash, clicked.headSha, await approvalVerdict(ctx, stack, id), null);
  await audit(ctx, "approval.recorded", { head_sha: clicked.headSha, via: "check_run_button", clicked_task: clicked.taskId, stacks: [auditOutcome(outcome)] });
  await reply(ctx, sayOutcomes([outcome], pull, ctx.actor));
}

function outcomeOf(stack: string, planHash: string | null, headSha: string, verdict: ApprovalVerdict | null, stale: string | null): Outcome {
  const what = `${code(stack)} (plan ${code(shortPlanHash(planHash) ?? "none")})`;
  if (stale) return { stack, what: `${what} at ${code(shortSha(headSha))}`, counts: false, why: stale };
  if (!verdict) return { stack, what, counts: false, why: "the gate could not find it" };
  return { stack, what, counts: verdict.status !== "ignored", why: verdict.status === "ignored" ? verdict.why : null };
}

function auditOutcome(o: Outcome): Record<string, unknown> {
  return { stack: o.stack, counts: o.counts, why: o.why };
}

/**
 * The reply: what counted, and for everything else why not. `pull`: the PR (null for branch
 * previews, whose texts say it all); `actor`: who approved.
 */
function sayOutcomes(outcomes: Outcome[], pull: PullInfo | null, actor = ""): string {
  const counted = outcomes.filter((o) => o.counts);
  const ignored = outcomes.filter((o) => !o.counts);
  const said: string[] = [];
  if (counted.length) {
    said.push(pull ? `approved ${counted.map((o) => o.what).join(", ")} at ${code(shortSha(pull.headSha))}. A new push or a different plan makes this approval stale.` : `approved ${counted.map((o) => o.what).join(", ")}.`);
  }
  if (ignored.length) {
    // The PR author's own approval: the long-standing answer, once.
    const own = pull !== null && pull.author.toLowerCase() === actor.toLowerCase();
    if (own) said.push("noted, but the author of a pull request never counts as its approver. Ask a reviewer to `/approve` or approve the PR.");
    else for (const o of ignored) said.push(`noted for ${o.what}, but it does not count: ${o.why}.`);
  }
  return said.join(" ");
}

/**
 * Records an approval of every approvable branch preview in this thread (rollback, merge
 * commit) that had been posted before the comment, bound to its commit and plan, and asks the
 * branch gate whether it counts.
 */
async function approveBranchPreviews(ctx: CommandContext, reason: string, at: Date): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const preview of await approvableBranchPreviews(ctx.deps.db, ctx.repoFullName, ctx.threadNumber)) {
    const what = `${code(preview.stack)} (${preview.purpose === "rollback" ? "rollback plan" : "merge commit's plan"} ${code(shortPlanHash(preview.plan_hash) ?? "")} at ${code(shortSha(preview.head_sha))})`;
    if (!preview.finished_at || preview.finished_at.getTime() >= at.getTime()) {
      out.push({ stack: preview.stack, what, counts: false, why: "your comment was written before this plan was previewed, so nothing was recorded; comment `/approve` again to approve it" });
      continue;
    }
    const { id } = await recordApproval(ctx.deps.db, fromCommand(ctx, { kind: "approve", stack: preview.stack, headSha: preview.head_sha, planHash: preview.plan_hash, reason, at }));
    const found = await getTask(ctx.deps.db, preview.id);
    const stack = found?.workflow.config.stacks.find((s) => s.name === preview.stack);
    const verdict = found && stack ? await approvalVerdict(ctx, stack, id, found) : null;
    const counts = verdict !== null && verdict.status !== "ignored";
    out.push({ stack: preview.stack, what: counts ? `${what}; \`${preview.command}\` applies it` : what, counts, why: counts ? null : (verdict?.why ?? "the gate could not find it") });
  }
  return out;
}

/**
 * `/deny [reason]`: blocks deploys of this PR until a new push, or until the same person
 * approves. Recorded under the thread's gate lock, so it is exact about a deploy the worker is
 * claiming at that moment: a queued deploy will be blocked when it starts; one already applying
 * is too late for a /deny (break-glass stops it), and the reply says so.
 */
export async function denyDeploys(ctx: CommandContext, reason: string): Promise<void> {
  const at = ctx.createdAt ?? null;
  const pull = ctx.isPullRequest ? await getPull(ctx.gh, ctx.repo, ctx.threadNumber) : null;
  const { branch, live } = await withGateLock(ctx.deps.db, ctx.repoFullName, ctx.threadNumber, async (q) => {
    const deny = (stack: string | null, headSha: string) => recordApproval(q, fromCommand(ctx, { kind: "deny", stack, headSha, planHash: null, reason, at }));
    const branch: string[] = [];
    const live = await liveDeploysOf(q, ctx.repoFullName, ctx.threadNumber);
    // A branch apply (rollback, merge commit) already queued is denied too: its gate is asked
    // again when it starts, and must find this /deny bound to its commit.
    for (const d of live.filter((x) => x.kind === "branch" && x.state === "PENDING")) {
      await deny(d.stack, d.head_sha);
      branch.push(`the queued ${code(d.stack)} apply at ${code(shortSha(d.head_sha))}`);
    }
    for (const preview of await approvableBranchPreviews(ctx.deps.db, ctx.repoFullName, ctx.threadNumber)) {
      await deny(preview.stack, preview.head_sha);
      branch.push(`${code(preview.stack)} (${preview.purpose === "rollback" ? "rollback plan" : "merge commit's plan"} ${code(shortPlanHash(preview.plan_hash) ?? "")} at ${code(shortSha(preview.head_sha))}); \`${preview.command}\` applies it`);
    }
    if (pull) await deny(null, pull.headSha);
    return { branch, live };
  });
  const applying = live.filter((d) => d.state === "RUNNING");
  const queued = live.filter((d) => d.state === "PENDING");
  await audit(ctx, "denial.recorded", { head_sha: pull?.headSha ?? null, branch, reason: reason || null, too_late_for: applying.map((d) => d.task_id), blocks_queued: queued.map((d) => d.task_id) });
  const tail = [...queued.map((d) => `The queued deploy of ${deployName(d)} will not be applied: the gate is checked again when it starts.`), ...applying.map((d) => `This comes too late for the deploy of ${deployName(d)}: it is already applying and a /deny does not stop it. An operator's break-glass does (\`POST /admin/break-glass\`).`)];
  if (!pull) {
    const base = branch.length ? `denied ${branch.join(", ")} until you \`/approve\` it (if you are an allowed approver).` : "there is no rollback plan waiting for approval here, so there is nothing to deny.";
    await reply(ctx, [base, ...tail].join(" "));
    return;
  }
  await reply(ctx, [`deploys of this pull request are blocked at ${code(shortSha(pull.headSha))} until a new push, or until you \`/approve\` (if you are an allowed approver).`, ...tail].join(" "));
}

/** The approval or denial this command (a comment, or a button with no comment) records, bound to (stack, commit, plan). */
function fromCommand(
  ctx: CommandContext,
  a: { kind: "approve" | "deny"; stack: string | null; headSha: string; planHash: string | null; reason: string; at: Date | null },
): NewApproval {
  return {
    repo: ctx.repoFullName,
    prNumber: ctx.threadNumber,
    stack: a.stack,
    headSha: a.headSha,
    planHash: a.planHash,
    kind: a.kind,
    actor: ctx.actor,
    actorType: "User",
    reason: a.reason || null,
    commentId: ctx.commentId || null,
    deliveryId: ctx.deliveryId,
    ...(a.at ? { createdAt: a.at } : {}),
  };
}

function deployName(d: DeployRow): string {
  return `${code(d.stack)} at ${code(shortSha(d.head_sha))} (plan ${code(shortPlanHash(d.plan_hash) ?? "")})`;
}
