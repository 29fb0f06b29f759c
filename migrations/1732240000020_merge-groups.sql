-- Up Migration

-- The merge queue (issue 18): a row per merge-group commit the app checks. `queue`: GitHub's
-- `merge_group.checks_requested` (the group's head previewed, the `agent/merge-queue` check
-- reported on it). `apply`: the push that merged a group, when the default branch had moved
-- since the group was built (its plans are checked again against the PRs that push merged).
-- `pr_numbers`: the pull requests whose changes the commit holds, in queue order.
CREATE TABLE merge_groups (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  repo             text NOT NULL,
  installation_id  bigint NOT NULL,
  purpose          text NOT NULL CHECK (purpose IN ('queue', 'apply')),
  head_sha         text NOT NULL,
  base_sha         text NOT NULL,
  head_ref         text,
  pr_numbers       integer[] NOT NULL,
  stacks           text[] NOT NULL DEFAULT '{}',
  state            text NOT NULL DEFAULT 'CHECKING' CHECK (state IN ('CHECKING', 'PASSED', 'FAILED', 'DESTROYED')),
  result           jsonb,
  delivery_id      text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  decided_at       timestamptz
);
-- One live check per commit and purpose: a redelivered webhook finds the one it started.
CREATE UNIQUE INDEX merge_groups_live_idx ON merge_groups (repo, purpose, head_sha) WHERE state IN ('CHECKING', 'PASSED');
CREATE INDEX merge_groups_head_idx ON merge_groups (repo, head_sha);

-- Down Migration
DROP TABLE merge_groups;
