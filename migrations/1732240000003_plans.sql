-- Up Migration

-- The typed, redacted preview result (src/plan/types.ts) the comment and check run render.
ALTER TABLE tasks ADD COLUMN plan jsonb;

-- Pulumi's saved update plan (`--save-plan`), kept so a deploy applies exactly what was
-- previewed (`pulumi up --plan`). Its digest is tasks.plan_hash.
CREATE TABLE task_saved_plans (
  task_id         uuid PRIMARY KEY REFERENCES tasks (id),
  content         text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);

-- Continuation comments of the sticky comment (part 2, 3, …) when it outgrows one comment.
CREATE TABLE pr_comment_parts (
  repo            text NOT NULL,
  pr_number       integer NOT NULL,
  part            integer NOT NULL CHECK (part >= 2),
  comment_id      bigint NOT NULL,
  PRIMARY KEY (repo, pr_number, part)
);

-- Down Migration
DROP TABLE pr_comment_parts;
DROP TABLE task_saved_plans;
ALTER TABLE tasks DROP COLUMN plan;
