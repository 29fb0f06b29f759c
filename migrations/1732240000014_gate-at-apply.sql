-- Up Migration

-- What GitHub told us about who changed a pull request and whether it is open, in GitHub's own
-- time (`pull_request.updated_at`, comparable with a comment's `created_at`):
--   synchronize  a push: the sender and the new head
--   opened       the author and the head; reopened likewise
--   closed       the PR was closed (merged or not)
--   observed     the head as the app saw it when a maintainer vouched for a fork's code and no
--                push had been recorded yet (src/commands/preview.ts)
-- The gate reads it: pushers never approve (src/approval/gate.ts), the head at a comment's time
-- is the latest push before it, and the deploy job's last check (src/jobs/apply-gate.ts) reads
-- it under the same per-PR advisory lock the handlers write it with.
CREATE TABLE pr_events (
  id           bigserial PRIMARY KEY,
  repo         text NOT NULL,
  pr_number    integer NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('opened', 'reopened', 'synchronize', 'closed', 'observed')),
  actor        text NOT NULL,
  head_sha     text NOT NULL,
  at           timestamptz NOT NULL,
  delivery_id  text,
  recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pr_events_pr_idx ON pr_events (repo, pr_number, at);
-- A redelivered webhook records nothing twice.
CREATE UNIQUE INDEX pr_events_once_idx ON pr_events (delivery_id) WHERE delivery_id IS NOT NULL;

-- BLOCKED: the gate, evaluated again when the deploy job was about to apply, no longer passed
-- (a /deny, a push, the PR closed, approvals expired …). Nothing was applied and no approval
-- was used.
ALTER TABLE deploys DROP CONSTRAINT deploys_state_check;
ALTER TABLE deploys ADD CONSTRAINT deploys_state_check
  CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'NEEDS_ATTENTION', 'BLOCKED'));

-- "At most once" binds to a preview (and to the approvals, below), not to (SHA, plan) forever:
-- a preview task is applied at most once, whatever became of that apply (a FAILED one too),
-- except when the gate blocked it before anything ran. A rollback to a known-good commit, or
-- a second attempt after a failure, previews afresh and is approved afresh.
-- Rows written before this rule may apply one preview twice (a FAILED deploy, then another):
-- the older ones are flagged so the index can be built; nothing new is ever flagged.
ALTER TABLE deploys ADD COLUMN before_one_apply_rule boolean NOT NULL DEFAULT false;
UPDATE deploys d SET before_one_apply_rule = true
 WHERE d.preview_task_id IS NOT NULL
   AND EXISTS (SELECT 1 FROM deploys n WHERE n.preview_task_id = d.preview_task_id AND (n.created_at, n.task_id) > (d.created_at, d.task_id));
DROP INDEX deploys_one_apply_per_plan;
DROP INDEX deploys_one_apply_per_branch_preview;
CREATE UNIQUE INDEX deploys_one_apply_per_preview ON deploys (preview_task_id)
  WHERE state <> 'BLOCKED' AND NOT before_one_apply_rule;

-- Approvals a deploy used, recorded when it was claimed (PENDING → RUNNING): an approval is
-- used at most once, whether that apply then succeeded or failed. `source` comment: an
-- approvals row (a /approve, a check-run button, a Slack click); review: a GitHub review id.
-- Per stack: one approving review approves the plan of every stack previewed before it.
CREATE TABLE deploy_approvals (
  repo            text NOT NULL,
  stack           text NOT NULL,
  source          text NOT NULL CHECK (source IN ('comment', 'review')),
  approval_id     text NOT NULL,
  login           text NOT NULL,
  deploy_task_id  uuid NOT NULL REFERENCES deploys (task_id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repo, stack, source, approval_id)
);
CREATE INDEX deploy_approvals_task_idx ON deploy_approvals (deploy_task_id);

-- Down Migration
DROP TABLE deploy_approvals;
DROP INDEX deploys_one_apply_per_preview;
CREATE UNIQUE INDEX deploys_one_apply_per_branch_preview ON deploys (preview_task_id)
  WHERE kind = 'branch' AND state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'NEEDS_ATTENTION');
CREATE UNIQUE INDEX deploys_one_apply_per_plan ON deploys (repo, stack, head_sha, plan_hash)
  WHERE kind = 'deploy' AND state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'NEEDS_ATTENTION');
ALTER TABLE deploys DROP COLUMN before_one_apply_rule;
UPDATE deploys SET state = 'FAILED' WHERE state = 'BLOCKED';
ALTER TABLE deploys DROP CONSTRAINT deploys_state_check;
ALTER TABLE deploys ADD CONSTRAINT deploys_state_check
  CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'NEEDS_ATTENTION'));
DROP TABLE pr_events;
