-- Up Migration

-- Trust tiers (issue 20, seed 002 T0–T4): an operator's assignment of a tier to a repository
-- (`owner/name`), a stack (`owner/name:stack`) or an actor (a GitHub login, or the app itself),
-- set with `npm run agent -- tier set` and audited (tier.changed). Unassigned: TRUST_DEFAULT_TIER.
CREATE TABLE trust_tiers (
  kind     text NOT NULL CHECK (kind IN ('repository', 'stack', 'actor')),
  subject  text NOT NULL,
  tier     text NOT NULL CHECK (tier IN ('observer', 'operator', 'builder', 'executor', 'architect')),
  set_by   text NOT NULL,
  reason   text NOT NULL,
  set_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, subject)
);

-- Down Migration
DROP TABLE trust_tiers;
