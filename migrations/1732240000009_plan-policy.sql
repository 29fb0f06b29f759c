-- Up Migration

-- The plan policy's decision on a preview (ALLOW / NEEDS_APPROVAL / DENY with the rules that
-- fired), kept with the task: the gate reads it, the check run and sticky comment show it.
ALTER TABLE tasks ADD COLUMN policy jsonb;

-- Down Migration
ALTER TABLE tasks DROP COLUMN policy;
