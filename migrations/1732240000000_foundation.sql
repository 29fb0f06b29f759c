-- Up Migration

-- Every webhook delivery GitHub sent us, keyed by X-GitHub-Delivery so a redelivery is a no-op.
CREATE TABLE deliveries (
  id              text PRIMARY KEY,
  event           text NOT NULL,
  action          text,
  installation_id bigint,
  repo            text,
  received_at     timestamptz NOT NULL DEFAULT now()
);

-- One workflow per accepted command (e.g. one `/agent preview` on one head SHA).
-- States follow seed 001 §6.2.
CREATE TABLE workflows (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind            text NOT NULL CHECK (kind IN ('preview', 'deploy')),
  state           text NOT NULL DEFAULT 'PENDING' CHECK (state IN
                    ('PENDING', 'IN_PROGRESS', 'VALIDATING', 'READY_FOR_APPLY', 'WAIT_FOR_APPROVE',
                     'APPLYING', 'DONE', 'ROLLBACK', 'BLOCKED', 'CANCELLED')),
  repo            text NOT NULL,
  installation_id bigint NOT NULL,
  pr_number       integer NOT NULL,
  head_sha        text NOT NULL CHECK (head_sha ~ '^[0-9a-f]{40}$'),
  requested_by    text NOT NULL,
  delivery_id     text REFERENCES deliveries (id),
  -- The validated stack definitions taken from the default branch at request time.
  config          jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflows_pr_idx ON workflows (repo, pr_number, created_at DESC);

-- Task states from seed 000 §3.2.1 plus CANCELLED and BLOCKED.
CREATE TYPE task_state AS ENUM
  ('PENDING', 'RUNNING', 'AWAITING_APPROVAL', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'BLOCKED');

CREATE TABLE tasks (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workflow_id     uuid NOT NULL REFERENCES workflows (id),
  kind            text NOT NULL,
  stack           text NOT NULL,
  state           task_state NOT NULL DEFAULT 'PENDING',
  job_id          text NOT NULL,
  check_run_id    bigint,
  attempts        integer NOT NULL DEFAULT 0,
  steps           jsonb NOT NULL DEFAULT '[]'::jsonb,
  error           text,
  plan_hash       text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  finished_at     timestamptz,
  UNIQUE (workflow_id, stack, kind)
);
-- At most one live task per job id: a second identical command while one is queued or
-- running collapses into the first (the BullMQ job id is the same string).
CREATE UNIQUE INDEX tasks_live_job_idx ON tasks (job_id) WHERE state IN ('PENDING', 'RUNNING');
CREATE INDEX tasks_workflow_idx ON tasks (workflow_id);

-- The one sticky comment per pull request.
CREATE TABLE pr_comments (
  repo            text NOT NULL,
  pr_number       integer NOT NULL,
  comment_id      bigint NOT NULL,
  PRIMARY KEY (repo, pr_number)
);

-- Append-only: every command, decision and outcome (invariant 5).
CREATE TABLE audit_log (
  id              bigserial PRIMARY KEY,
  at              timestamptz NOT NULL DEFAULT now(),
  actor           text NOT NULL,
  action          text NOT NULL,
  repo            text,
  pr_number       integer,
  delivery_id     text,
  workflow_id     uuid,
  task_id         uuid,
  detail          jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_repo_idx ON audit_log (repo, pr_number, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Down Migration
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
DROP TABLE pr_comments;
DROP TABLE tasks;
DROP TYPE task_state;
DROP TABLE workflows;
DROP TABLE deliveries;
