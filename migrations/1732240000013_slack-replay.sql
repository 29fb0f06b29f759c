-- Up Migration

-- Slack interaction requests the web tier has taken, by their signature, for as long as a
-- captured request could be replayed (Slack's 5-minute timestamp window, either way). The
-- primary key makes "first time seen" one atomic INSERT shared by every web replica; rows past
-- the window are pruned as new clicks arrive. (BullMQ's job history was the only memory before:
-- once a click's job was cleaned away, the same request was acted on again.)
CREATE TABLE slack_replay_keys (
  signature    text PRIMARY KEY CHECK (signature ~ '^[0-9a-f]{64}$'),
  -- The request's own x-slack-request-timestamp (signed): the window is counted from it.
  request_ts   timestamptz NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slack_replay_keys_request_ts_idx ON slack_replay_keys (request_ts);

-- Down Migration
DROP TABLE slack_replay_keys;
