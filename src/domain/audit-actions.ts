/**
 * Every action the audit log records (`audit_log.action`), grouped by what acts. One list, so
 * a typo is a type error and `npm run agent -- audit` filters know every value.
 */
export const AUDIT_ACTIONS = [
  // Commands as typed, and what became of them.
  "command.received", "command.invalid", "command.rejected", "command.refused", "command.error", "command.cancelled_tasks", "config.invalid",
  // Previews and shared checks.
  "preview.queued", "preview.duplicate", "preview.locked", "preview.rejected", "preview.cancelled", "preview.succeeded", "preview.failed",
  "checks.succeeded", "checks.failed", "autoplan.requested", "autoplan.skipped", "autoplan.held",
  // The gate: approvals, denials and its evaluation.
  "approval.recorded", "approval.nothing_to_approve", "approval.stale_button", "approval.expired", "denial.recorded", "gate.evaluated",
  // Deploys, merges and mainline applies (rollbacks, merge commits).
  "deploy.refused", "deploy.stale_button", "deploy.duplicate", "deploy.queued", "deploy.claimed", "deploy.blocked", "deploy.started", "deploy.succeeded", "deploy.failed",
  "deploy.plan_mismatch", "deploy.needs_attention", "merge.succeeded", "merge.refused",
  "deploy.run_refused", "deploy.run_queued", "deploy.not_started", "deploy.run_finished", "deploy.upstream_changed_plan",
  "rollback.requested", "rollback.duplicate", "rollback.refused", "rollback.finished", "branch.apply_queued", "branch.apply_refused",
  // The merge queue: a group's check and the apply after it merged.
  "merge_group.checking", "merge_group.passed", "merge_group.failed", "merge_group.destroyed", "merge_group.apply_queued",
  // GitHub environments: this app's answer as a custom deployment protection rule.
  "environment.approved", "environment.rejected",
  // Drift detection.
  "drift.scheduled", "drift.check_started", "drift.detected", "drift.clean", "drift.check_failed",
  // Review stacks: the cost guard, deploys' outputs, expiry warnings and destroys.
  // Error budgets: an operator's reset. Rollout phases: an operator's change; a deploy asked in `observe`; an `act` apply after a merge.
  // Secret rotation; the GitHub App key's issue before it is due, and a new key picked up from Vault.
  "rotation.started", "rotation.written", "rotation.verified", "rotation.completed", "rotation.failed",
  "rotation.github_key_notice", "rotation.github_key_loaded", "rotation.github_key_notice_closed",
  "budget.reset", "phase.changed", "tier.changed", "tier.refused", "deploy.observed", "act.previewed", "act.auto_apply", "act.held",
  "review.refused", "review.deployed", "review.expiry_warned", "review.destroy_started", "review.destroyed", "review.destroy_failed",
  // Stack locks.
  "lock.acquired", "lock.contended", "lock.released", "lock.expired", "lock.unlock_refused",
  // Slack.
  "slack.approval_requested", "slack.post_failed", "slack.refused",
  // Credentials and the operator's break-glass.
  "credentials.issued", "credentials.revoked", "break_glass.revoke",
  // Issue diagnostics.
  "diagnose.requested", "diagnose.reported", "diagnose.resolution_indexed", "diagnose.runbooks_indexed",
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];
