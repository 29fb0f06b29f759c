import { createHash } from "node:crypto";
import type { Db } from "./db.js";

/**
 * The audit log's hash chain (migrations/1732240000008_audit-chain.sql): verification and export.
 *
 * Each row's `hash` is sha256(UTF-8 of the canonical text), hex, where the canonical text is
 *
 *   jsonb_build_array('audit-v1', prev_hash, seq, id,
 *                     to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
 *                     actor, action, repo, pr_number, delivery_id, workflow_id, task_id,
 *                     detail)::text
 *
 * i.e. `["audit-v1", "<prev_hash>", <seq>, <id>, "<at>", "<actor>", …, <detail>]` with ", "
 * between elements. The database computes it on insert; `verifyAuditChain` recomputes it here,
 * in TypeScript, without calling any database function, so a database whose hashing function
 * was swapped still fails verification.
 *
 * Two values are taken already rendered as text by PostgreSQL, because a JavaScript value cannot
 * reproduce them:
 *  - `at`: JavaScript Dates stop at milliseconds, timestamptz has microseconds. The to_char()
 *    rendering is pure formatting of the stored value (no session time zone, DateStyle or locale
 *    is involved), so any edit of `at` still changes the text and breaks the hash.
 *  - `detail`: JSON.parse + JSON.stringify of a jsonb document is not its canonical text
 *    (jsonb sorts keys by length then bytes and prints ", " / ": "; numerics keep their scale,
 *    e.g. 1.50, and exceed double precision). `detail::text` is exactly the text that
 *    jsonb_build_array embeds, and it is itself the stored value, not a derived one.
 * Integers (seq, id, pr_number) and uuids are selected as text only to avoid bigint/precision
 * conversions; every string element is escaped here with JSON.stringify, which escapes exactly
 * what PostgreSQL's jsonb output escapes (", \, \b \f \n \r \t, other controls as \u00xx) and
 * nothing else.
 */

export const AUDIT_CHAIN_VERSION = "audit-v1";
export const GENESIS_HASH = "0".repeat(64);
/** The pg_advisory_xact_lock key the insert trigger serializes appenders on ("audit" in ASCII). */
export const AUDIT_CHAIN_LOCK_KEY = 0x6175646974;

export type AuditChainBreak = "hash mismatch" | "prev_hash mismatch" | "gap";

export type AuditChainResult =
  /** rows: rows in the chain; head: the last row's hash (null for an empty log). */
  | { ok: true; rows: number; head: string | null }
  /** rows: the rows verified intact before the first broken one, which is `brokenAt`. */
  | { ok: false; rows: number; brokenAt: { id: string; reason: AuditChainBreak } };

/** One audit row as the chain sees it: every value as PostgreSQL renders it to text. */
export interface ChainRow {
  seq: string;
  id: string;
  prev_hash: string | null;
  hash: string | null;
  /** to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') */
  at: string;
  actor: string;
  action: string;
  repo: string | null;
  pr_number: string | null;
  delivery_id: string | null;
  workflow_id: string | null;
  task_id: string | null;
  /** detail::text (canonical jsonb text) */
  detail: string;
}

const AT_TEXT = `to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
// Columns are renamed to their text forms: ORDER BY must name audit_log.seq, a bare `seq` would
// sort by the text output column ("10" < "9").
const CHAIN_COLUMNS = `seq::text AS seq, id::text AS id, prev_hash, hash, ${AT_TEXT} AS at, actor, action, repo,
  pr_number::text AS pr_number, delivery_id, workflow_id::text AS workflow_id, task_id::text AS task_id,
  detail::text AS detail`;

const INTEGER_TEXT = /^-?\d+$/;

function jsonInteger(value: string | null): string {
  if (value === null) return "null";
  // Only ever PostgreSQL's own integer output; anything else would make the text ambiguous.
  if (!INTEGER_TEXT.test(value)) throw new Error(`audit chain: not an integer: ${JSON.stringify(value)}`);
  return value;
}

function jsonString(value: string | null): string {
  return value === null ? "null" : JSON.stringify(value);
}

/** The canonical text of one row (see the module comment), given the previous row's hash. */
export function canonicalAuditText(prevHash: string, row: Omit<ChainRow, "prev_hash" | "hash">): string {
  return `[${[
    jsonString(AUDIT_CHAIN_VERSION),
    jsonString(prevHash),
    jsonInteger(row.seq),
    jsonInteger(row.id),
    jsonString(row.at),
    jsonString(row.actor),
    jsonString(row.action),
    jsonString(row.repo),
    jsonInteger(row.pr_number),
    jsonString(row.delivery_id),
    jsonString(row.workflow_id),
    jsonString(row.task_id),
    row.detail,
  ].join(", ")}]`;
}

export function auditRowHash(prevHash: string, row: Omit<ChainRow, "prev_hash" | "hash">): string {
  return createHash("sha256").update(canonicalAuditText(prevHash, row), "utf8").digest("hex");
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
  return value;
}

/**
 * Walks the whole chain in seq order, `batch` rows per query (keyset pagination: memory stays
 * bounded), inside one REPEATABLE READ READ ONLY transaction so rows/head describe one snapshot
 * even while the app keeps appending. Stops at the first broken row:
 *  - "gap": its seq is not the previous one + 1 (a row before it was deleted), or the first
 *    row's seq is not 1;
 *  - "prev_hash mismatch": its prev_hash is not the previous row's hash (the previous row was
 *    edited and re-hashed, or rows were reordered);
 *  - "hash mismatch": its hash is not the hash of its own content (it was edited).
 * Removing rows at the very end, or rewriting every row from some point on, leaves a consistent
 * chain: compare `head` with a value recorded earlier to detect that.
 */
export async function verifyAuditChain(db: Db, opts: { batch?: number } = {}): Promise<AuditChainResult> {
  const batch = positiveInt("batch", opts.batch, 1000);
  const client = await db.connect();
  let failed = false;
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    let prevHash = GENESIS_HASH;
    let prevSeq = 0n;
    let rows = 0;
    let head: string | null = null;
    for (;;) {
      const { rows: page } = await client.query<ChainRow>(
        `SELECT ${CHAIN_COLUMNS} FROM audit_log WHERE audit_log.seq > $1 ORDER BY audit_log.seq LIMIT $2`,
        [prevSeq.toString(), batch],
      );
      for (const row of page) {
        const seq = BigInt(row.seq);
        const broken = (reason: AuditChainBreak): AuditChainResult => ({ ok: false, rows, brokenAt: { id: row.id, reason } });
        if (seq !== prevSeq + 1n) return broken("gap");
        if (row.prev_hash !== prevHash) return broken("prev_hash mismatch");
        if (row.hash !== auditRowHash(prevHash, row)) return broken("hash mismatch");
        prevHash = row.hash;
        prevSeq = seq;
        head = row.hash;
        rows += 1;
      }
      if (page.length < batch) return { ok: true, rows, head };
    }
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    // Read-only: ending it either way is the same; a failed connection is not given back.
    await client.query("ROLLBACK").catch(() => {
      failed = true;
    });
    client.release(failed);
  }
}

export interface AuditExportFilter {
  /** owner/name */
  repo?: string;
  /** Rows whose detail.stack is this. */
  stack?: string;
  /** Rows at or after this instant. */
  since?: Date;
  /** Rows strictly before this instant. */
  until?: Date;
  /** At most this many rows. */
  limit?: number;
}

/**
 * The audit rows matching `filter`, one JSON object per line (no trailing newline), in chain
 * (seq) order, read `batch` rows per query. Each line carries every column, hash and prev_hash
 * included, with `at` in the chain's microsecond UTC form and `detail` as its canonical jsonb
 * text (embedded verbatim: no number loses precision), so an unfiltered export is enough to
 * re-verify the chain elsewhere:
 *
 *   {"seq":1,"id":1,"at":"2024-11-22T05:51:00.123456Z","actor":"alice","action":"…","repo":"o/r",
 *    "pr_number":1,"delivery_id":null,"workflow_id":null,"task_id":null,"detail":{…},
 *    "prev_hash":"000…","hash":"…"}
 */
export async function* exportAudit(db: Db, filter: AuditExportFilter = {}, opts: { batch?: number } = {}): AsyncIterable<string> {
  const batch = positiveInt("batch", opts.batch, 500);
  const limit = filter.limit === undefined ? Infinity : positiveInt("limit", filter.limit, 0);
  for (const [name, d] of [["since", filter.since], ["until", filter.until]] as const) {
    if (d !== undefined && Number.isNaN(d.getTime())) throw new RangeError(`${name} is not a valid date`);
  }

  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace("?", `$${params.length}`));
  };
  if (filter.repo !== undefined) add("repo = ?", filter.repo);
  if (filter.stack !== undefined) add("detail->>'stack' = ?", filter.stack);
  if (filter.since !== undefined) add("at >= ?", filter.since);
  if (filter.until !== undefined) add("at < ?", filter.until);
  params.push(null, null);
  const seqParam = `$${params.length - 1}`;
  const limitParam = `$${params.length}`;
  const sql = `SELECT ${CHAIN_COLUMNS} FROM audit_log
    WHERE audit_log.seq > ${seqParam}::bigint${where.map((w) => ` AND ${w}`).join("")}
    ORDER BY audit_log.seq LIMIT ${limitParam}`;

  let after = "0";
  let left = limit;
  while (left > 0) {
    const take = Math.min(batch, left);
    params[params.length - 2] = after;
    params[params.length - 1] = take;
    const { rows } = await db.query<ChainRow>(sql, params);
    for (const row of rows) yield exportLine(row);
    left -= rows.length;
    if (rows.length < take) return;
    after = rows[rows.length - 1]!.seq;
  }
}

function exportLine(row: ChainRow): string {
  const fields: Array<[string, string]> = [
    ["seq", jsonInteger(row.seq)],
    ["id", jsonInteger(row.id)],
    ["at", jsonString(row.at)],
    ["actor", jsonString(row.actor)],
    ["action", jsonString(row.action)],
    ["repo", jsonString(row.repo)],
    ["pr_number", jsonInteger(row.pr_number)],
    ["delivery_id", jsonString(row.delivery_id)],
    ["workflow_id", jsonString(row.workflow_id)],
    ["task_id", jsonString(row.task_id)],
    // jsonb text never contains a raw line break (they are escaped inside strings).
    ["detail", row.detail],
    ["prev_hash", jsonString(row.prev_hash)],
    ["hash", jsonString(row.hash)],
  ];
  return `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
}
