-- Up Migration

-- Tamper-evident audit log: every row carries the SHA-256 of its own content chained to the
-- hash of the row before it, so editing, deleting or reordering rows behind the triggers'
-- back (e.g. `ALTER TABLE ... DISABLE TRIGGER` as the owner) is detectable. The chain is
-- checked by src/connectors/store/audit-chain.ts (`verifyAuditChain`, `npm run agent -- audit
-- verify`), which recomputes every hash in TypeScript from the row values.
--
-- Chain order is `seq`, not `id`. `id` comes from the column default (a sequence) and is drawn
-- before any row trigger runs, i.e. before the chain lock below is taken: a transaction can
-- hold id 11, lose the race for the lock to the one holding id 12, and be chained after it.
-- `seq` is therefore assigned inside the trigger, under the lock: it is the head's seq + 1, so
-- it is gapless (an aborted insert leaves no hole: the next one reads the same head again) and
-- a missing row shows as a gap. The unique index on seq makes a fork impossible even if a
-- caller inserted under REPEATABLE READ / SERIALIZABLE with a snapshot older than the head
-- (two rows with the same seq: the second one fails instead of chaining off a stale head).
--
-- seq       1, 2, 3, ... in chain order
-- prev_hash the hash of the row with seq - 1; 64 zeros for seq 1 (genesis)
-- hash      encode(sha256(convert_to(<canonical text>, 'UTF8')), 'hex'), where the canonical
--           text is (audit_log_row_hash below):
--
--   jsonb_build_array('audit-v1', prev_hash, seq, id,
--                     to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
--                     actor, action, repo, pr_number, delivery_id, workflow_id, task_id,
--                     detail)::text
--
--   jsonb's text output is canonical and unambiguous: strings are JSON-escaped (only ", \ and
--   control characters; everything else, non-ASCII included, verbatim), numbers are plain
--   digits, NULL is null, uuids are lower-case strings, elements are separated by ", ", and
--   object keys of `detail` are sorted (by length, then bytes) with fixed spacing, so the same
--   jsonb value always prints the same way. Example:
--   ["audit-v1", "000…000", 1, 1, "2024-11-22T05:51:00.123456Z", "alice", "command.received",
--    "o/r", 1, null, null, null, {"command": "preview"}]
ALTER TABLE audit_log
  ADD COLUMN seq       bigint,
  ADD COLUMN prev_hash text,
  ADD COLUMN hash      text;

CREATE FUNCTION audit_log_row_hash(
  p_prev_hash text, p_seq bigint, p_id bigint, p_at timestamptz, p_actor text, p_action text,
  p_repo text, p_pr_number integer, p_delivery_id text, p_workflow_id uuid, p_task_id uuid,
  p_detail jsonb
) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT encode(sha256(convert_to(jsonb_build_array(
    'audit-v1'::text, p_prev_hash, p_seq, p_id,
    to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    p_actor, p_action, p_repo, p_pr_number, p_delivery_id, p_workflow_id, p_task_id,
    p_detail
  )::text, 'UTF8')), 'hex')
$$;

-- Rows written before this migration: chained in id order (the only order they have), so the
-- chain starts at the first row ever written. ADD COLUMN above holds ACCESS EXCLUSIVE on the
-- table until this migration commits: nobody appends meanwhile. The append-only trigger is
-- suspended for this one backfill, inside the migration's transaction.
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete;
DO $$
DECLARE
  r    record;
  n    bigint := 0;
  prev text := repeat('0', 64);
BEGIN
  FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
    n := n + 1;
    UPDATE audit_log
       SET seq = n,
           prev_hash = prev,
           hash = audit_log_row_hash(prev, n, r.id, r.at, r.actor, r.action, r.repo, r.pr_number,
                                     r.delivery_id, r.workflow_id, r.task_id, r.detail)
     WHERE id = r.id
     RETURNING hash INTO prev;
  END LOOP;
END
$$;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete;

ALTER TABLE audit_log
  ALTER COLUMN seq SET NOT NULL,
  ALTER COLUMN prev_hash SET NOT NULL,
  ALTER COLUMN hash SET NOT NULL;
CREATE UNIQUE INDEX audit_log_seq_idx ON audit_log (seq);

-- Chains each new row. pg_advisory_xact_lock(418581342580) (0x6175646974, "audit" in ASCII;
-- the single-bigint key space, apart from node-pg-migrate's lock and the two-int per-PR locks)
-- serializes appenders across every process until their transaction ends, so the head read
-- below is the last committed row: under READ COMMITTED each statement of this (volatile)
-- function takes a fresh snapshot after the lock was granted. Rows of one multi-row INSERT
-- see each other (a volatile function sees its calling command's earlier rows).
-- Keep transactions that append short: the lock is held until commit.
-- Whatever seq / prev_hash / hash the caller supplied is overwritten.
CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head record;
BEGIN
  PERFORM pg_advisory_xact_lock(418581342580);
  SELECT seq, hash INTO head FROM audit_log ORDER BY seq DESC LIMIT 1;
  IF FOUND THEN
    NEW.seq := head.seq + 1;
    NEW.prev_hash := head.hash;
  ELSE
    NEW.seq := 1;
    NEW.prev_hash := repeat('0', 64);
  END IF;
  NEW.hash := audit_log_row_hash(NEW.prev_hash, NEW.seq, NEW.id, NEW.at, NEW.actor, NEW.action,
                                 NEW.repo, NEW.pr_number, NEW.delivery_id, NEW.workflow_id,
                                 NEW.task_id, NEW.detail);
  RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

-- Down Migration
DROP TRIGGER audit_log_chain ON audit_log;
DROP FUNCTION audit_log_chain();
DROP INDEX audit_log_seq_idx;
ALTER TABLE audit_log DROP COLUMN hash, DROP COLUMN prev_hash, DROP COLUMN seq;
DROP FUNCTION audit_log_row_hash(text, bigint, bigint, timestamptz, text, text, text, integer, text, uuid, uuid, jsonb);
