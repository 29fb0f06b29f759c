-- Up Migration

-- A write to an object may ask for a least time between two writes to that object (the sticky
-- comment: at most one update every STICKY_UPDATE_INTERVAL_MS while 200 stacks finish): it is
-- due no sooner than that long after the object's last sent write, and renders meanwhile merge
-- into it (issue 17).
ALTER TABLE github_outbox ADD COLUMN min_interval_ms integer NOT NULL DEFAULT 0 CHECK (min_interval_ms >= 0);
CREATE INDEX github_outbox_object_sent_idx ON github_outbox (object_key, done_at) WHERE state = 'sent' AND object_key IS NOT NULL;

-- Down Migration
DROP INDEX github_outbox_object_sent_idx;
ALTER TABLE github_outbox DROP COLUMN min_interval_ms;
