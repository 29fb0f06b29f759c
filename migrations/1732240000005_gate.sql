-- Up Migration

-- `/approve` and `/deny` as they were said: bound to the head SHA and (for approvals) the plan
-- hash of the stack's preview at that moment. The gate (src/approval/gate.ts) decides what counts.
CREATE TABLE approvals (
  id            bigserial PRIMARY KEY,
  repo          text NOT NULL,
  pr_number     integer NOT NULL,
  stack         text,
  head_sha      text NOT NULL,
  plan_hash     text,
  kind          text NOT NULL CHECK (kind IN ('approve', 'deny')),
  actor         text NOT NULL,
  actor_type    text NOT NULL DEFAULT 'User',
  reason        text,
  comment_id    bigint,
  delivery_id   text,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approvals_pr_idx ON approvals (repo, pr_number, created_at);
-- A redelivered comment records nothing twice.
CREATE UNIQUE INDEX approvals_once_idx ON approvals (comment_id, coalesce(stack, '')) WHERE comment_id IS NOT NULL;

-- Deploys: at most one live per (repo, stack), and at most one apply per approved plan, ever
-- (a deploy that died half-way needs a human: it keeps blocking that plan).
CREATE TABLE deploys (
  task_id        uuid PRIMARY KEY REFERENCES tasks (id),
  repo           text NOT NULL,
  stack          text NOT NULL,
  pr_number      integer NOT NULL,
  head_sha       text NOT NULL,
  plan_hash      text NOT NULL,
  state          text NOT NULL DEFAULT 'PENDING'
                 CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'NEEDS_ATTENTION')),
  requested_by   text NOT NULL,
  deployment_id  bigint,
  merged         boolean,
  error          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz
);
CREATE UNIQUE INDEX deploys_one_live_per_stack ON deploys (repo, stack) WHERE state IN ('PENDING', 'RUNNING');
CREATE UNIQUE INDEX deploys_one_apply_per_plan ON deploys (repo, stack, head_sha, plan_hash)
  WHERE state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'NEEDS_ATTENTION');

-- Down Migration
DROP TABLE deploys;
DROP TABLE approvals;
