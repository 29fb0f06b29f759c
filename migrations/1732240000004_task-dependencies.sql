-- Up Migration

-- The preview DAG: a preview task waits for the `checks` tasks it depends on (shared lint and
-- test of stacks with the same commands); it is enqueued once they all succeeded.
ALTER TABLE tasks ADD COLUMN depends_on uuid[] NOT NULL DEFAULT '{}';
CREATE INDEX tasks_depends_on_idx ON tasks USING gin (depends_on);

-- Down Migration
DROP INDEX tasks_depends_on_idx;
ALTER TABLE tasks DROP COLUMN depends_on;
