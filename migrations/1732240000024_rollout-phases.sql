-- Up Migration

-- Rollout phases (issue 20, seed 000 §5.5): per repository (`owner/name`) or organisation
-- (`owner/*`), set by an operator (`npm run agent -- phase set`, audited as phase.changed);
-- the most specific row wins, the server's ROLLOUT_DEFAULT_PHASE otherwise.
CREATE TABLE rollout_phases (
  scope   text PRIMARY KEY,
  phase   text NOT NULL CHECK (phase IN ('observe', 'suggest', 'act')),
  set_by  text NOT NULL,
  reason  text NOT NULL,
  set_at  timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE rollout_phases;
