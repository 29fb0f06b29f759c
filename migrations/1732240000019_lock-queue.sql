-- Up Migration

-- Queued locks (issue 18): a preview of a stack another pull request holds the lock on waits in
-- a per-stack FIFO queue instead of being refused, and starts by itself when the lock is
-- released (merge, close, unlock, expiry). A row per waiting preview task; its position is its
-- rank among the live (PENDING) waiters of the stack.
CREATE TABLE lock_waits (
  task_id     uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
  repo        text NOT NULL,
  stack       text NOT NULL,
  pr_number   integer NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX lock_waits_queue_idx ON lock_waits (repo, stack, created_at);

-- Down Migration
DROP TABLE lock_waits;
