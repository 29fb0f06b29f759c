import type { ResolvedStack } from "../config/repo-config.js";
import { getPull } from "../connectors/github.js";
import { recordApproval } from "../connectors/store/gate.js";
import { approvableBranchPreviews, latestPreviewOf } from "../connectors/store/workflows.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { audit, reply, type CommandContext } from "./context.js";

/**
 * `/approve [reason]`: approves the current plan of every stack previewed successfully on the
 * head commit — each approval bound to (stack, head SHA, plan hash). Whether it counts is the
 * gate's decision at deploy time (author, bots, allowed approvers, expiry, staleness).
 */
export async function approvePlans(ctx: CommandContext, reason: string, stacks: ResolvedStack[]): Promise<void> {
  // A pending rollback (a branch preview asked for in this thread) is approved first, by stack.
  const branchApproved = await approveBranchPreviews(ctx, reason, "approve");
  const branch = branchApproved.map((b) => b.text);
  if (!ctx.isPullRequest) {
    if (branch.length === 0) {
      await audit(ctx, "approval.nothing_to_approve", {});
      await reply(ctx, "there is no rollback plan waiting for approval here. `/approve` in an issue approves a rollback previewed by `/agent rollback` in it.");
      return;
    }
    await audit(ctx, "approval.recorded", { branch, reason: reason || null });
    await reply(ctx, `approved ${branch.join(", ")}.`);
    return;
  }
  const pull = await getPull(ctx.gh, ctx.repo, ctx.issueNumber);
  const approved: string[] = [];
  // One comment approves one plan per stack (a pending rollback wins over the PR's preview).
  const branchStacks = new Set(branchApproved.map((b) => b.stack));
  for (const stack of stacks) {
    if (branchStacks.has(stack.name)) continue;
    const preview = await latestPreviewOf(ctx.deps.db, ctx.repoFullName, ctx.issueNumber, stack.name);
    if (!preview || preview.state !== "SUCCEEDED" || preview.head_sha !== pull.headSha || !preview.plan_hash) continue;
    await recordApproval(ctx.deps.db, {
      repo: ctx.repoFullName,
      prNumber: ctx.issueNumber,
      stack: stack.name,
      headSha: pull.headSha,
      planHash: preview.plan_hash,
      kind: "approve",
      actor: ctx.actor,
      actorType: "User",
      reason: reason || null,
      commentId: ctx.commentId || null,
      deliveryId: ctx.deliveryId,
    });
    approved.push(`${code(stack.name)} (plan ${code(shortPlanHash(preview.plan_hash) ?? "")})`);
  }
  if (approved.length === 0 && branch.length === 0) {
    await audit(ctx, "approval.nothing_to_approve", { head_sha: pull.headSha });
    await reply(ctx, `there is no successful preview of the head commit ${code(shortSha(pull.headSha))} to approve. Run \`/agent preview\` first; approvals are bound to the plan they saw.`);
    return;
  }
  await audit(ctx, "approval.recorded", { head_sha: pull.headSha, stacks: approved, branch, reason: reason || null });
  const own = pull.author.toLowerCase() === ctx.actor.toLowerCase();
  const said: string[] = [];
  if (approved.length) {
    said.push(
      own
        ? `noted, but the author of a pull request never counts as its approver. Ask a reviewer to \`/approve\` or approve the PR.`
        : `approved ${approved.join(", ")} at ${code(shortSha(pull.headSha))}. A new push or a different plan makes this approval stale.`,
    );
  }
  if (branch.length) said.push(`approved ${branch.join(", ")}.`);
  await reply(ctx, said.join(" "));
}

/**
 * Records an approval (or denial) of every approvable branch preview in this thread, bound to
 * its commit and plan; returns `stack (plan …) at sha` for each.
 */
async function approveBranchPreviews(ctx: CommandContext, reason: string, kind: "approve" | "deny"): Promise<Array<{ stack: string; text: string }>> {
  const out: Array<{ stack: string; text: string }> = [];
  for (const preview of await approvableBranchPreviews(ctx.deps.db, ctx.repoFullName, ctx.issueNumber)) {
    await recordApproval(ctx.deps.db, {
      repo: ctx.repoFullName,
      prNumber: ctx.issueNumber,
      stack: preview.stack,
      headSha: preview.head_sha,
      planHash: kind === "approve" ? preview.plan_hash : null,
      kind,
      actor: ctx.actor,
      actorType: "User",
      reason: reason || null,
      commentId: ctx.commentId || null,
      deliveryId: ctx.deliveryId,
    });
    const what = preview.purpose === "rollback" ? "rollback plan" : "merge commit's plan";
    out.push({ stack: preview.stack, text: `${code(preview.stack)} (${what} ${code(shortPlanHash(preview.plan_hash) ?? "")} at ${code(shortSha(preview.head_sha))}); \`${preview.command}\` applies it` });
  }
  return out;
}

/** `/deny [reason]`: blocks deploys of this PR until a new push, or until the same person approves. */
export async function denyDeploys(ctx: CommandContext, reason: string): Promise<void> {
  const branch = (await approveBranchPreviews(ctx, reason, "deny")).map((b) => b.text);
  if (!ctx.isPullRequest) {
    await audit(ctx, "denial.recorded", { branch, reason: reason || null });
    await reply(ctx, branch.length ? `denied ${branch.join(", ")} until you \`/approve\` it (if you are an allowed approver).` : "there is no rollback plan waiting for approval here, so there is nothing to deny.");
    return;
  }
  const pull = await getPull(ctx.gh, ctx.repo, ctx.issueNumber);
  await recordApproval(ctx.deps.db, {
    repo: ctx.repoFullName,
    prNumber: ctx.issueNumber,
    stack: null,
    headSha: pull.headSha,
    planHash: null,
    kind: "deny",
    actor: ctx.actor,
    actorType: "User",
    reason: reason || null,
    commentId: ctx.commentId || null,
    deliveryId: ctx.deliveryId,
  });
  await audit(ctx, "denial.recorded", { head_sha: pull.headSha, reason: reason || null });
  await reply(ctx, `deploys of this pull request are blocked at ${code(shortSha(pull.headSha))} until a new push, or until you \`/approve\` (if you are an allowed approver).`);
}
