-- Up Migration

-- Queued locks (issue 18): a preview command whose stacks are not all free waits — for all of
-- them (all or none: no pull request holds half its set) — in each stack's FIFO queue instead
-- of being refused, and starts by itself once they are all released to it (merge, close,
-- unlock, expiry). A row per waiting preview task; request_id groups one command's tasks
-- (its workflow). Every stack's queue is ordered by (requested_at, request_id), the same key
-- for all rows of a request, so two requests are in the same order on every stack they share
-- and the oldest waiting request is first everywhere: no two wait for each other.
CREATE TABLE lock_waits (
  task_id       uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
  request_id    uuid NOT NULL,
  repo          text NOT NULL,
  stack         text NOT NULL,
  pr_number     integer NOT NULL,
  requested_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lock_waits_queue_idx ON lock_waits (repo, stack, requested_at, request_id);
CREATE INDEX lock_waits_request_idx ON lock_waits (request_id);

-- Down Migration
DROP TABLE lock_waits;
