-- Up Migration

-- Review stacks (issue 19): an ephemeral stack `pr-<n>-<stack>` per pull request, made from a
-- template stack's config. A row exists from the first deploy request until it is destroyed:
-- `live` counts against the repository's cost guard (resources may exist), `destroying` while
-- its destroy runs, `destroyed` at the end (kept for the record), `destroy_failed` when the
-- destroy failed (still counted: its resources may remain). `expires_at`: the TTL, renewed by
-- every deploy; `warned_at`: the expiry warning was posted for this expiry.
CREATE TABLE review_stacks (
  repo             text NOT NULL,
  stack            text NOT NULL,
  base_stack       text NOT NULL,
  pr_number        integer NOT NULL,
  installation_id  bigint NOT NULL,
  clone_url        text NOT NULL,
  default_branch   text NOT NULL,
  state            text NOT NULL CHECK (state IN ('live', 'destroying', 'destroyed', 'destroy_failed')),
  requested_by     text NOT NULL,
  -- The review stack as it was resolved (dir, Pulumi stack, template): a destroy needs no config.
  stack_config     jsonb NOT NULL,
  image            text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  ttl_seconds      integer NOT NULL,
  expires_at       timestamptz NOT NULL,
  warned_at        timestamptz,
  deployed_sha     text,
  outputs          jsonb,
  destroy_reason   text,
  destroy_task_id  uuid,
  destroyed_at     timestamptz,
  PRIMARY KEY (repo, stack)
);
CREATE INDEX review_stacks_live ON review_stacks (repo) WHERE state <> 'destroyed';

-- Down Migration
DROP TABLE review_stacks;
