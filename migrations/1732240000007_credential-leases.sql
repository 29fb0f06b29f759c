-- Up Migration

-- Every dynamic Vault lease issued to a task, recorded before the task sees the credentials,
-- so a lease outlives no crash: recovery revokes those of tasks that are no longer running.
-- Lease ids are identifiers, not secrets; secret values are never stored anywhere.
-- No foreign key to tasks: a lease row must be writable whatever happens to the task row.
CREATE TABLE credential_leases (
  lease_id      text PRIMARY KEY,
  task_id       uuid NOT NULL,
  repo          text NOT NULL,
  stack         text NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('preview', 'deploy')),
  -- The Vault path the lease was read from (e.g. database/creds/prod-owner): its revoke prefix.
  path          text NOT NULL,
  issued_at     timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  -- The last revocation failure, kept until a retry succeeds.
  revoke_error  text
);
CREATE INDEX credential_leases_task_idx ON credential_leases (task_id);
CREATE INDEX credential_leases_live_idx ON credential_leases (stack) WHERE revoked_at IS NULL;

-- Down Migration
DROP TABLE credential_leases;
