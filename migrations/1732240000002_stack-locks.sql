-- Up Migration

-- Atlantis-style stack locks: one pull request at a time owns (repo, stack).
CREATE TABLE stack_locks (
  repo        text NOT NULL,
  stack       text NOT NULL,
  pr_number   integer NOT NULL,
  locked_by   text NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (repo, stack)
);
CREATE INDEX stack_locks_pr_idx ON stack_locks (repo, pr_number);

-- Down Migration
DROP TABLE stack_locks;
