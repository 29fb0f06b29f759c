-- Up Migration

-- The knowledge base of issue diagnostics when no Qdrant is configured: one row per entry
-- (a past failure, a runbook section, a resolved diagnostic issue) with its embedding. There is
-- no pgvector here; vectors are L2-normalised real[] and similarity is a dot product computed in
-- SQL (src/connectors/knowledge/pg-store.ts), which is fine for a few thousand entries per repo.
CREATE TABLE knowledge_entries (
  id           text PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('failure', 'runbook', 'issue')),
  repo         text NOT NULL,
  stack        text,
  title        text NOT NULL,
  text         text NOT NULL,
  resolution   text,
  url          text,
  occurred_at  timestamptz NOT NULL,
  -- The embedder that produced the vector: vectors of another embedder are not comparable.
  embedder     text NOT NULL,
  vector       real[] NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_entries_repo_kind_idx ON knowledge_entries (repo, kind);

-- Down Migration
DROP TABLE knowledge_entries;
