/**
 * Clocks nobody else watches: stack locks past their expiry and Slack approval requests past
 * theirs. A worker sweeps on every reaper pass; each row is claimed by one UPDATE/DELETE …
 * RETURNING, so with several workers each expiry is announced once.
 */
import { channelFor, type SlackConfig } from "../config/slack-config.js";
import { appendAudit } from "../connectors/store/audit.js";
import type { Db } from "../connectors/store/db.js";
import type { SlackNotifier } from "../connectors/slack/client.js";
import { decisionMessage } from "../render/slack.js";
import { notifyChannel } from "../deploys/slack.js";
import { type ApprovalRequest } from "../domain/slack-approval.js";

export interface ExpiryDeps {
  db: Db;
  slack: { notifier: SlackNotifier; config: SlackConfig } | null;
}

export async function sweepExpired(deps: ExpiryDeps): Promise<{ locks: number; approvals: number; freed: Array<{ repo: string; stack: string }> }> {
  const locks = await deps.db.query<{ repo: string; stack: string; pr_number: number; expires_at: Date }>(
    "DELETE FROM stack_locks WHERE expires_at <= now() RETURNING repo, stack, pr_number, expires_at",
  );
  for (const lock of locks.rows) {
    await appendAudit(deps.db, { actor: "agent", action: "lock.expired", repo: lock.repo, prNumber: lock.pr_number, detail: { stack: lock.stack, expired_at: lock.expires_at } });
    const channel = deps.slack ? channelFor(deps.slack.config, lock.repo, lock.stack) : null;
    if (deps.slack && channel) {
      await notifyChannel(deps.slack.notifier, channel, { event: "lock.expired", repo: lock.repo, prNumber: lock.pr_number, stack: lock.stack, detail: `held by #${lock.pr_number} until ${lock.expires_at.toISOString()}` });
    }
  }
  const approvals = await deps.db.query<{ repo: string; pr_number: number; stack: string; head_sha: string; plan_hash: string; channel: string | null; ts: string | null; request: ApprovalRequest & { expiresAt: string } }>(
    `UPDATE slack_messages SET decided = 'expired'
     WHERE decided IS NULL AND (request->>'expiresAt')::timestamptz <= now()
     RETURNING repo, pr_number, stack, head_sha, plan_hash, channel, ts, request`,
  );
  for (const a of approvals.rows) {
    await appendAudit(deps.db, { actor: "agent", action: "approval.expired", repo: a.repo, prNumber: a.pr_number, detail: { stack: a.stack, head_sha: a.head_sha, plan_hash: a.plan_hash } });
    if (!deps.slack || !a.channel) continue;
    // The buttons go: a click after the window would not count anyway.
    if (a.ts) {
      const request = { ...a.request, expiresAt: new Date(a.request.expiresAt) };
      await deps.slack.notifier.updateMessage(a.channel, a.ts, decisionMessage(request, { decision: "refused", by: "agent", githubLogin: null, reason: "the approval window expired; ask again with /agent deploy" }));
    }
    await notifyChannel(deps.slack.notifier, a.channel, { event: "approval.expired", repo: a.repo, prNumber: a.pr_number, stack: a.stack, sha: a.head_sha });
  }
  // The freed stacks' lock queues move on (the caller starts them: src/jobs/lock-queue.ts).
  return { locks: locks.rowCount ?? 0, approvals: approvals.rowCount ?? 0, freed: locks.rows.map((l) => ({ repo: l.repo, stack: l.stack })) };
}
