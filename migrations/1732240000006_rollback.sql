-- Up Migration

-- A `branch` workflow previews (and, once approved, applies) a commit of the default branch
-- rather than a PR head: `/agent rollback` (the last good commit) and a merge-first deploy
-- whose merge commit planned differently from the approved plan.
ALTER TABLE workflows DROP CONSTRAINT workflows_kind_check;
ALTER TABLE workflows ADD CONSTRAINT workflows_kind_check CHECK (kind IN ('preview', 'deploy', 'branch'));

-- kind: a PR's deploy, or the apply of a default-branch commit (rollback).
-- merge_sha: the default branch's commit that carries what was applied (the merge commit).
-- requested_at / started_at: for the rollback SLA (begin < 5 min, finish < 15 min).
ALTER TABLE deploys
  ADD COLUMN kind            text NOT NULL DEFAULT 'deploy' CHECK (kind IN ('deploy', 'branch')),
  ADD COLUMN merge_sha       text,
  ADD COLUMN preview_task_id uuid,
  ADD COLUMN requested_at    timestamptz,
  ADD COLUMN started_at      timestamptz;

-- An approved PR plan is applied once, ever. A branch apply is bound to its own preview
-- instead: rolling back twice to the same commit is legitimate, applying one preview twice is not.
DROP INDEX deploys_one_apply_per_plan;
CREATE UNIQUE INDEX deploys_one_apply_per_plan ON deploys (repo, stack, head_sha, plan_hash)
  WHERE kind = 'deploy' AND state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'NEEDS_ATTENTION');
CREATE UNIQUE INDEX deploys_one_apply_per_branch_preview ON deploys (preview_task_id)
  WHERE kind = 'branch' AND state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'NEEDS_ATTENTION');
CREATE INDEX deploys_good_idx ON deploys (repo, stack, finished_at DESC) WHERE state = 'SUCCEEDED';

-- Down Migration
DROP INDEX deploys_good_idx;
DROP INDEX deploys_one_apply_per_branch_preview;
DROP INDEX deploys_one_apply_per_plan;
CREATE UNIQUE INDEX deploys_one_apply_per_plan ON deploys (repo, stack, head_sha, plan_hash)
  WHERE state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'NEEDS_ATTENTION');
ALTER TABLE deploys DROP COLUMN started_at, DROP COLUMN requested_at, DROP COLUMN preview_task_id, DROP COLUMN merge_sha, DROP COLUMN kind;
ALTER TABLE workflows DROP CONSTRAINT workflows_kind_check;
ALTER TABLE workflows ADD CONSTRAINT workflows_kind_check CHECK (kind IN ('preview', 'deploy'));
