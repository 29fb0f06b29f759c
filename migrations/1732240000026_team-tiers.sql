-- Up Migration

-- Trust tiers of teams (issue 20): `org/team-slug`, counted for an actor of a repository of
-- that organisation who has no assignment of their own (src/approval/tiers.ts actorTierSource).
ALTER TABLE trust_tiers DROP CONSTRAINT trust_tiers_kind_check;
ALTER TABLE trust_tiers ADD CONSTRAINT trust_tiers_kind_check CHECK (kind IN ('repository', 'stack', 'actor', 'team'));

-- Down Migration
DELETE FROM trust_tiers WHERE kind = 'team';
ALTER TABLE trust_tiers DROP CONSTRAINT trust_tiers_kind_check;
ALTER TABLE trust_tiers ADD CONSTRAINT trust_tiers_kind_check CHECK (kind IN ('repository', 'stack', 'actor'));
