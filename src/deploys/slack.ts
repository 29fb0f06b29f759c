/**
 * What the app says in Slack on its own: the approval request posted when a deploy (or a
 * mainline apply) waits for approvals, and notifications to a stack's channel. Best effort:
 * Slack being down breaks nothing. Without Slack configured every function here does nothing.
 * The clicks coming back are handled by src/jobs/slack.ts.
 */
import { channelFor } from "../config/slack-config.js";
import type { PostedMessage, SlackNotifier } from "../connectors/slack/client.js";
import { appendAudit } from "../connectors/store/audit.js";
import { claimSlackRequest, setSlackMessage } from "../connectors/store/slack.js";
import type { AppDeps } from "../deps.js";
import type { ApprovalRequest, DestructiveOp } from "../domain/slack-approval.js";
import type { PreviewOutcome } from "../plan/types.js";
import { summaryLine } from "../render/plan.js";
import { approvalRequestMessage, notificationMessage, type Notification } from "../render/slack.js";

/** Counts and destructive operations of a plan, as the Slack message shows them. */
export function slackPlanSummary(plan: PreviewOutcome | null): { summary: string; destructive: DestructiveOp[] } {
  if (plan?.engine !== "pulumi") return { summary: plan ? "see the check run" : "no plan", destructive: [] };
  const destructive = plan.resources.flatMap((r) => (r.op === "delete" || r.op === "replace" ? [{ op: r.op, type: r.type, name: r.name }] : []));
  return { summary: summaryLine(plan.summary), destructive };
}

/** What a waiting plan's approval request is built from (link, summary and expiry are derived). */
export interface PlanAwaitingApproval {
  kind: ApprovalRequest["kind"];
  repo: string;
  /** The PR (or, for a rollback, the PR or issue) where the approval is asked. */
  prNumber: number;
  /** How GitHub links that thread: a PR, or an issue (a rollback may be asked in either). */
  thread: "pull" | "issues";
  stack: string;
  sha: string;
  planHash: string;
  plan: PreviewOutcome | null;
  requestedBy: string;
  installationId: number;
}

/** Posts the approval request for a plan once (asking again for the same plan posts nothing). */
export async function requestSlackApproval(deps: AppDeps, p: PlanAwaitingApproval): Promise<void> {
  if (!deps.slack) return;
  const { plan, thread, ...rest } = p;
  const req: ApprovalRequest = {
    ...rest,
    prUrl: `${deps.config.github.webBaseUrl}/${p.repo}/${thread}/${p.prNumber}`,
    ...slackPlanSummary(plan),
    expiresAt: new Date(Date.now() + deps.config.gate.approvalTtlSeconds * 1000),
  };
  const slack = deps.slack;
  if (!slack) return;
  const channel = channelFor(slack.config, req.repo, req.stack);
  if (!channel) return;
  const id = await claimSlackRequest(deps.db, { repo: req.repo, prNumber: req.prNumber, stack: req.stack, sha: req.sha, planHash: req.planHash }, req);
  if (!id) return;
  const posted = await postApprovalRequest(slack.notifier, channel, req);
  if (posted) await setSlackMessage(deps.db, id, posted.channel, posted.ts);
  await appendAudit(deps.db, {
    actor: "agent",
    action: posted ? "slack.approval_requested" : "slack.post_failed",
    repo: req.repo,
    prNumber: req.prNumber,
    detail: { stack: req.stack, head_sha: req.sha, plan_hash: req.planHash, channel },
  });
}

/** A notification to the stack's channel; never throws (Slack being down breaks nothing). */
export async function notifySlack(deps: AppDeps, n: Notification): Promise<void> {
  const slack = deps.slack;
  if (!slack) return;
  const channel = channelFor(slack.config, n.repo, n.stack);
  if (channel) await notifyChannel(slack.notifier, channel, n).catch(() => false);
}

/** Posts an approval request with its buttons; null when that failed (logged by the notifier). */
export function postApprovalRequest(notifier: SlackNotifier, channel: string, req: ApprovalRequest): Promise<PostedMessage | null> {
  return notifier.post(channel, () => approvalRequestMessage(req), { repo: req.repo, stack: req.stack, kind: "approval request" });
}

/** Posts a notification; false when that failed (logged by the notifier). */
export async function notifyChannel(notifier: SlackNotifier, channel: string, n: Notification): Promise<boolean> {
  return (await notifier.post(channel, () => notificationMessage(n), { repo: n.repo, stack: n.stack, kind: n.event })) !== null;
}
