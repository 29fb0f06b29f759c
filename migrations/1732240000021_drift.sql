-- Up Migration

-- Drift detection (issue 19): the last drift check of each stack and its issue. `since`: when
-- the current drift was first seen (null while clean); `issue_number`: the stack's one drift
-- issue, updated in place, reopened when drift returns, closed when a check is clean again.
CREATE TABLE drift_stacks (
  repo          text NOT NULL,
  stack         text NOT NULL,
  state         text NOT NULL CHECK (state IN ('clean', 'drifted', 'failed')),
  since         timestamptz,
  checked_at    timestamptz NOT NULL DEFAULT now(),
  sha           text NOT NULL,
  task_id       uuid,
  issue_number  integer,
  -- The resource types that drifted (the fleet view groups stacks drifting in the same types).
  types         text[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (repo, stack)
);

-- Down Migration
DROP TABLE drift_stacks;
