-- Up Migration

-- A webhook handler re-run for the same delivery (its worker was killed mid-way, or a step
-- failed and BullMQ retried it) writes each of its audit rows once: the row carries a key made
-- of the delivery id and the step, and a second insert with the key is a no-op. Not part of
-- the hash chain (it says nothing about what happened; rows without a key are as before).
ALTER TABLE audit_log ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX audit_log_idempotency_idx ON audit_log (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Down Migration
DROP INDEX audit_log_idempotency_idx;
ALTER TABLE audit_log DROP COLUMN idempotency_key;
