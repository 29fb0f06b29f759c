-- Up Migration

-- A deploy run: `/agent deploy a b c` (or `--all`) applies several stacks of one pull request
-- in dependency order (depends_on), one layer at a time (issue 18). Its deploys share run_id;
-- after_tasks are the deploy tasks of the run that must succeed before this one starts. A
-- single-stack deploy has no run (run_id NULL, after_tasks empty).
ALTER TABLE deploys ADD COLUMN run_id uuid;
ALTER TABLE deploys ADD COLUMN after_tasks uuid[] NOT NULL DEFAULT '{}';
CREATE INDEX deploys_run_idx ON deploys (run_id) WHERE run_id IS NOT NULL;

-- Down Migration
DROP INDEX deploys_run_idx;
ALTER TABLE deploys DROP COLUMN after_tasks;
ALTER TABLE deploys DROP COLUMN run_id;
