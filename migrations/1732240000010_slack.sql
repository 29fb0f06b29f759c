-- Up Migration

-- Slack approval requests: one message per (PR or thread, stack, SHA, plan), so asking again
-- does not post again, and a click can be matched to the request it answers.
CREATE TABLE slack_messages (
  id          bigserial PRIMARY KEY,
  repo        text NOT NULL,
  pr_number   integer NOT NULL,
  stack       text NOT NULL,
  head_sha    text NOT NULL,
  plan_hash   text NOT NULL,
  channel     text,
  ts          text,
  request     jsonb NOT NULL,
  decided     text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (repo, pr_number, stack, head_sha, plan_hash)
);

-- Down Migration
DROP TABLE slack_messages;
