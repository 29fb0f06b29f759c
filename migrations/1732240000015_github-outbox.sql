-- Up Migration

-- Every write the app makes to GitHub, as a row first (issue 17): a sender per installation
-- drains it under the pacing budget, most urgent class first (0 acknowledgements, 1 final
-- results, 2 progress), so an acknowledgement never queues behind progress nobody needs any
-- more. A write survives a crash of the process that meant it (the final check-run update is
-- sent by whoever runs next); a send-once write (merge, deployment creation) is never sent
-- twice: one found half-sent after a crash becomes `unknown` and its caller asks GitHub.
CREATE TABLE github_outbox (
  id               bigserial PRIMARY KEY,
  installation_id  bigint NOT NULL,
  repo             text NOT NULL CHECK (repo ~ '^[^/\s]+/[^/\s]+$'),
  kind             text NOT NULL CHECK (kind IN ('reaction', 'comment', 'comment_upsert', 'comment_delete', 'check_run', 'deployment', 'deployment_status', 'merge')),
  priority         smallint NOT NULL CHECK (priority BETWEEN 0 AND 2),
  -- The GitHub object the write changes (a check run, a sticky comment): an unsent write to it
  -- is replaced by a newer one (coalescing), and two writes to it are never in flight at once.
  object_key       text,
  -- Set by writes that must happen once per cause (a delivery's step, a task's merge): a
  -- re-run of the cause finds the row instead of adding a second.
  idempotency_key  text UNIQUE,
  body             jsonb NOT NULL,
  send_once        boolean NOT NULL DEFAULT false,
  state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'superseded')),
  not_before       timestamptz NOT NULL DEFAULT now(),
  attempts         integer NOT NULL DEFAULT 0,
  claimed_by       text,
  claimed_at       timestamptz,
  result           jsonb,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  done_at          timestamptz
);
CREATE UNIQUE INDEX github_outbox_one_pending_idx ON github_outbox (object_key) WHERE state = 'pending' AND object_key IS NOT NULL;
CREATE INDEX github_outbox_due_idx ON github_outbox (installation_id, priority, id) WHERE state = 'pending';
CREATE INDEX github_outbox_sending_idx ON github_outbox (object_key) WHERE state = 'sending';
CREATE INDEX github_outbox_done_idx ON github_outbox (done_at) WHERE done_at IS NOT NULL;

-- The GitHub id of each object the outbox created (check run of a task, sticky comment part,
-- diagnosis report), by object key: later writes to the object update it in place.
CREATE TABLE github_objects (
  key         text PRIMARY KEY,
  github_id   bigint NOT NULL,
  -- sha256 of the body last written to it (comments): the same text again is not sent.
  digest      text,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO github_objects (key, github_id)
  SELECT 'sticky:' || repo || '#' || pr_number || ':1', comment_id FROM pr_comments
  UNION ALL
  SELECT 'sticky:' || repo || '#' || pr_number || ':' || part, comment_id FROM pr_comment_parts
  UNION ALL
  SELECT 'diagnose:' || repo || '#' || issue_number, comment_id FROM diagnostic_reports WHERE comment_id IS NOT NULL
  UNION ALL
  SELECT 'check-run:' || id, check_run_id FROM tasks WHERE check_run_id IS NOT NULL
ON CONFLICT (key) DO NOTHING;
-- The sticky comment's ids live in github_objects now (one place for every object's id).
DROP TABLE pr_comment_parts;
DROP TABLE pr_comments;

-- Down Migration
CREATE TABLE pr_comments (
  repo            text NOT NULL,
  pr_number       integer NOT NULL,
  comment_id      bigint NOT NULL,
  PRIMARY KEY (repo, pr_number)
);
CREATE TABLE pr_comment_parts (
  repo            text NOT NULL,
  pr_number       integer NOT NULL,
  part            integer NOT NULL CHECK (part >= 2),
  comment_id      bigint NOT NULL,
  PRIMARY KEY (repo, pr_number, part)
);
INSERT INTO pr_comments (repo, pr_number, comment_id)
  SELECT split_part(k, '#', 1), split_part(split_part(k, '#', 2), ':', 1)::int, github_id
  FROM (SELECT substr(key, 8) AS k, github_id FROM github_objects WHERE key LIKE 'sticky:%:1') s;
DROP TABLE github_objects;
DROP TABLE github_outbox;
