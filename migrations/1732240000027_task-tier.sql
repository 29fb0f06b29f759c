-- Up Migration

-- The trust tier a task runs under (issue 20), set when it is resolved for the task (its claim,
-- its sandbox); every audit row of the task written from then on carries it (store/audit.ts).
ALTER TABLE tasks ADD COLUMN tier text;

-- Down Migration
ALTER TABLE tasks DROP COLUMN tier;
