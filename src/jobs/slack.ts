/**
 * Slack around the human gate: the approval request posted when a deploy (or rollback) waits
 * for approvals, notifications, and the Approve / Deny clicks. A click is verified by the web
 * tier (signature, freshness) and handled here in a worker: the Slack user is mapped to a
 * GitHub login server-side, and the approval is recorded bound to the message's SHA and plan —
 * only while that is still the current plan — so the gate then judges it exactly like `/approve`.
 * Without Slack configured every function here does nothing.
 */
import type { AuditAction } from "../domain/audit-actions.js";
import { hasAtLeast } from "../approval/permissions.js";
import { getPermission, type GitHub, type RepoRef } from "../connectors/github.js";
import type { SlackInteraction } from "../connectors/slack/interactions.js";
import { appendAudit } from "../connectors/store/audit.js";
import { liveDeploysOf, recordApproval, withGateLock } from "../connectors/store/gate.js";
import { findSlackRequest, setSlackDecision } from "../connectors/store/slack.js";
import { getTask, latestMainlinePreview, latestPreviewOf, type TaskRow, type WorkflowRow } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { approvalVerdict } from "../deploys/gate-facts.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { decisionMessage } from "../render/slack.js";
import type { ApprovalRequest } from "../domain/slack-approval.js";

export type SlackClick = Extract<SlackInteraction, { ok: true }>;

/** Handles one verified Approve / Deny click (a job from the web tier). */
export async function processSlackClick(deps: AppDeps, click: SlackClick): Promise<void> {
  const { value } = click;
  const key = { repo: value.repo, prNumber: value.pr, stack: value.stack, sha: value.sha, planHash: value.plan };
  const stored = await findSlackRequest(deps.db, key);
  const request = stored ? ({ ...stored.request, expiresAt: new Date(stored.request.expiresAt) } as ApprovalRequest) : null;
  const audit = (action: AuditAction, detail: Record<string, unknown>) =>
    appendAudit(deps.db, {
      actor: click.githubLogin ?? `slack:${click.slackUser}`,
      action,
      repo: value.repo,
      prNumber: value.pr,
      detail: { stack: value.stack, head_sha: value.sha, plan_hash: value.plan, slack_user: click.slackUser, action: click.action, ...detail },
    });
  const update = async (decision: "approved" | "denied", reason?: string) => {
    const channel = stored?.channel ?? click.channel;
    const ts = stored?.ts ?? click.messageTs;
    if (deps.slack && request && channel && ts) {
      await deps.slack.notifier.updateMessage(channel, ts, decisionMessage(request, { decision, by: click.slackUser, githubLogin: click.githubLogin, ...(reason ? { reason } : {}) }));
    }
  };
  // A refused click is told to the person who clicked only: the request stays open for others.
  const refuse = async (reason: string) => {
    await audit("slack.refused", { reason });
    const channel = stored?.channel ?? click.channel;
    if (deps.slack && channel) await deps.slack.notifier.tellUser(channel, click.slackUser, `Your click did not count: ${reason}.`);
  };

  if (!stored) return refuse("this message does not belong to a deploy request of this app");
  if (!click.githubLogin) return refuse("this Slack user is not mapped to a GitHub login");
  const [owner, repo] = value.repo.split("/") as [string, string];
  const r: RepoRef = { owner, repo };
  const gh = await deps.github(value.inst);
  const permission = await getPermission(gh, r, click.githubLogin);
  if (!hasAtLeast(permission, "write")) return refuse(`@${click.githubLogin} has ${permission} access; approving needs write`);
  // Bound to the same SHA and plan: a push or a new preview since the message makes it stale.
  // The PR's latest preview, or a default-branch preview (rollback, merge commit) asked for there.
  const matches = (p: { head_sha: string; plan_hash: string | null; state: string } | null) => p !== null && p.state === "SUCCEEDED" && p.head_sha === value.sha && p.plan_hash === value.plan;
  const pr = await latestPreviewOf(deps.db, value.repo, value.pr, value.stack);
  const branch = await latestMainlinePreview(deps.db, value.repo, value.pr, value.stack);
  const current = [pr, branch ? { head_sha: branch.workflow.head_sha, plan_hash: branch.task.plan_hash, state: branch.task.state } : null].find(matches) ?? null;
  if (!current) {
    return refuse("the plan changed since this message was posted (a new push or preview); approve the new one");
  }
  // Under the thread's gate lock: exact about a deploy being claimed at this moment (a /deny).
  const { recorded, applying } = await withGateLock(deps.db, value.repo, value.pr, async (q) => ({
    recorded: await recordApproval(q, {
    repo: value.repo,
    prNumber: value.pr,
    stack: value.stack,
    headSha: value.sha,
    planHash: click.action === "approve" ? value.plan : null,
    kind: click.action,
    actor: click.githubLogin!, // checked above
    actorType: "User",
    reason: `via Slack (${click.slackUser})`,
    commentId: null,
    deliveryId: null,
    }),
    applying: (await liveDeploysOf(q, value.repo, value.pr)).filter((d) => d.state === "RUNNING" && d.stack === value.stack),
  }));
  // Whether it counts is the pure gate's answer (pushers, committers, the author or requester
  // never count): a click that does not count is told so, and the request stays open for others.
  const ignoredWhy = click.action === "approve" ? await slackApprovalIgnored(deps, gh, r, value, recorded.id, branch) : null;
  if (ignoredWhy !== null) {
    await audit("approval.recorded", { via: "slack", counts: false, why: ignoredWhy });
    if (deps.slack && (stored.channel ?? click.channel)) await deps.slack.notifier.tellUser((stored.channel ?? click.channel)!, click.slackUser, `Your approval was recorded but does not count: ${ignoredWhy}.`);
    await deps.writes.comment({ installationId: value.inst, repo: r }, value.pr, `@\u200b${click.githubLogin}'s approval of ${code(value.stack)} (plan ${code(shortPlanHash(value.plan) ?? "")}) at ${code(shortSha(value.sha))} in Slack does not count: ${ignoredWhy}.`);
    return;
  }
  await audit(click.action === "approve" ? "approval.recorded" : "denial.recorded", { via: "slack" });
  const decision = click.action === "approve" ? "approved" : "denied";
  await setSlackDecision(deps.db, stored.id, decision);
  await update(decision);
  const command = branch && matches({ head_sha: branch.workflow.head_sha, plan_hash: branch.task.plan_hash, state: branch.task.state }) ? (branch.workflow.config.branch?.command ?? `/agent rollback ${value.stack}`) : `/agent deploy ${value.stack}`;
  await deps.writes.comment(
    { installationId: value.inst, repo: r },
    value.pr,
    click.action === "approve"
      ? `@\u200b${click.githubLogin} approved ${code(value.stack)} (plan ${code(shortPlanHash(value.plan) ?? "")}) at ${code(shortSha(value.sha))} in Slack; it counts. \`${command}\` applies it once the rest of the gate passes.`
      : `@\u200b${click.githubLogin} denied ${code(value.stack)} at ${code(shortSha(value.sha))} in Slack: deploys are blocked until a new push or until they approve.${applying.length ? " This comes too late for the deploy already applying: a deny does not stop it; an operator's break-glass does." : ""}`,
  );
}

/** Why a recorded Slack approval does not count (the gate's own reason), or null when it counts. */
async function slackApprovalIgnored(
  deps: AppDeps,
  gh: GitHub,
  r: RepoRef,
  value: SlackClick["value"],
  approvalId: string,
  branch: Awaited<ReturnType<typeof latestMainlinePreview>>,
): Promise<string | null> {
  const ofBranch = branch && branch.workflow.head_sha === value.sha && branch.task.plan_hash === value.plan ? branch : null;
  const source = ofBranch ?? (await latestPreviewTaskOf(deps, value));
  const stack = source?.workflow.config.stacks.find((s) => s.name === value.stack);
  if (!stack) return "its stack is no longer known";
  const verdict = await approvalVerdict({ deps, gh, repo: r, repoFullName: value.repo, threadNumber: value.pr }, stack, approvalId, ofBranch);
  if (!verdict) return "the gate could not find it";
  return verdict.status === "ignored" ? verdict.why : null;
}

async function latestPreviewTaskOf(deps: AppDeps, value: SlackClick["value"]): Promise<{ task: TaskRow; workflow: WorkflowRow } | null> {
  const latest = await latestPreviewOf(deps.db, value.repo, value.pr, value.stack);
  return latest ? getTask(deps.db, latest.id) : null;
}
