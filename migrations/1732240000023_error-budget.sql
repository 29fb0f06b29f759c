-- Up Migration

-- Error budgets (issue 20) read a stack's errors from the audit log by repository, action and
-- time; break-glass rows carry no repository and are found by action.
CREATE INDEX audit_log_repo_action_idx ON audit_log (repo, action, at);
CREATE INDEX audit_log_action_idx ON audit_log (action, at);

-- Down Migration
DROP INDEX audit_log_action_idx;
DROP INDEX audit_log_repo_action_idx;
