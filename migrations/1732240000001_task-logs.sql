-- Up Migration

-- The full (redacted, size-bounded) output of each step, linked from the check run.
CREATE TABLE task_logs (
  task_id    uuid NOT NULL REFERENCES tasks (id),
  step       text NOT NULL,
  content    text NOT NULL,
  truncated  boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, step)
);

-- Down Migration
DROP TABLE task_logs;
