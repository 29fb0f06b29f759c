-- Up Migration

-- The one diagnostic report comment per issue, updated in place on re-run.
CREATE TABLE diagnostic_reports (
  repo          text NOT NULL,
  issue_number  integer NOT NULL,
  comment_id    bigint,
  stack         text,
  requested_by  text NOT NULL,
  report        jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repo, issue_number)
);

-- What has been put into the knowledge base (whichever vector store): a digest per source id,
-- so re-syncing embeds only what is new or changed (an embeddings endpoint may cost money).
CREATE TABLE knowledge_sources (
  id          text PRIMARY KEY,
  repo        text NOT NULL,
  kind        text NOT NULL,
  digest      text NOT NULL,
  indexed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_sources_repo_idx ON knowledge_sources (repo, kind);

-- Service probes of a diagnosis may take dynamic credentials too.
ALTER TABLE credential_leases DROP CONSTRAINT credential_leases_kind_check;
ALTER TABLE credential_leases ADD CONSTRAINT credential_leases_kind_check CHECK (kind IN ('preview', 'deploy', 'diagnose'));

-- Down Migration
ALTER TABLE credential_leases DROP CONSTRAINT credential_leases_kind_check;
ALTER TABLE credential_leases ADD CONSTRAINT credential_leases_kind_check CHECK (kind IN ('preview', 'deploy'));
DROP TABLE knowledge_sources;
DROP TABLE diagnostic_reports;
