import { createHash, randomBytes, randomUUID } from "node:crypto";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runner } from "node-pg-migrate";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { appendAudit } from "../../src/connectors/store/audit.js";
import type { AuditAction } from "../../src/domain/audit-actions.js";

/** The chain keeps any text as the action (rows of older versions too): these tests name rows freely. */
const named = (action: string) => action as AuditAction;
import {
  AUDIT_CHAIN_LOCK_KEY,
  GENESIS_HASH,
  canonicalAuditText,
  exportAudit,
  verifyAuditChain,
  type AuditExportFilter,
  type ChainRow,
} from "../../src/connectors/store/audit-chain.js";
import { createDb, ensureDatabase, migrate, type Db } from "../../src/connectors/store/db.js";
import { auditCommand } from "../../src/ops/audit-cli.js";
import { TEST_DB_BASE } from "../helpers/harness.js";

const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations", import.meta.url));
const CHAIN_MIGRATION = "1732240000008_audit-chain.sql";
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

const databases: Array<{ url: string; db: Db }> = [];

/** A new database, migrated (all the way, or only the `upTo` first migrations). */
async function freshDb(upTo?: number): Promise<{ url: string; db: Db }> {
  const u = new URL(TEST_DB_BASE);
  u.pathname = `/agent_a_${randomBytes(4).toString("hex")}`;
  const url = u.toString();
  await ensureDatabase(url);
  if (upTo === undefined) await migrate(url);
  else await runner({ databaseUrl: url, dir: MIGRATIONS_DIR, migrationsTable: "pgmigrations", direction: "up", count: upTo, log: () => {} });
  const db = createDb(url);
  databases.push({ url, db });
  return { url, db };
}

afterAll(async () => {
  const admin = new pg.Client({ connectionString: TEST_DB_BASE });
  await admin.connect();
  for (const { url, db } of databases) {
    await db.end();
    await admin.query(`DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`);
  }
  await admin.end();
});

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/** What an attacker with the owner's rights can do: switch the triggers off, change rows, switch them on. */
async function tamper(db: Db, sql: string, params: unknown[] = []): Promise<void> {
  const c = await db.connect();
  try {
    await c.query("BEGIN");
    await c.query("ALTER TABLE audit_log DISABLE TRIGGER USER");
    await c.query(sql, params);
    await c.query("ALTER TABLE audit_log ENABLE TRIGGER USER");
    await c.query("COMMIT");
  } catch (err) {
    await c.query("ROLLBACK");
    throw err;
  } finally {
    c.release();
  }
}

interface Link {
  seq: string;
  id: string;
  action: string;
  prev_hash: string;
  hash: string;
}
async function chain(db: Db): Promise<Link[]> {
  return (await db.query<Link>("SELECT seq::text, id::text, action, prev_hash, hash FROM audit_log ORDER BY audit_log.seq")).rows;
}

/** A few rows with awkward content: escapes, non-ASCII, uuids, nested detail, numerics jsonb keeps as written. */
async function seed(db: Db): Promise<void> {
  await appendAudit(db, { actor: "alice", action: "command.received", repo: "o/r", prNumber: 1, detail: { command: "preview", stack: "dev" } });
  await appendAudit(db, {
    actor: 'mal"lo\\ry\u0001\t\n é 😀 \u2028',
    action: "approval.recorded",
    repo: "o/r",
    prNumber: 2,
    deliveryId: "d-1",
    workflowId: randomUUID(),
    taskId: randomUUID(),
    detail: { b: [1, { zz: null, a: "x\ny" }], aa: true, "": -3, stack: "prod", nested: { "ü": "\u001f\u007f" } },
  });
  await db.query(`INSERT INTO audit_log (actor, action, detail) VALUES ('raw', 'raw.numerics', '{"n": 1.50, "big": 12345678901234567890.123, "e": 1e3}')`);
  // One statement, several rows: each row's trigger sees the rows before it.
  await db.query(`INSERT INTO audit_log (actor, action, detail) SELECT 'bulk', 'bulk.' || g, jsonb_build_object('g', g) FROM generate_series(1, 3) g`);
  // Whatever the caller claims for the chain columns is overwritten.
  await db.query(`INSERT INTO audit_log (actor, action, seq, prev_hash, hash) VALUES ('liar', 'forged', 999, 'x', 'y')`);
  await appendAudit(db, { actor: "agent", action: "deploy.succeeded", repo: "o/r", prNumber: 1, detail: {} });
}

/** An append as the app wrote them at the chain migration's time: later migrations' columns (such as idempotency_key) do not exist in that test's schema. */
async function appendThen(db: Db, e: { actor: string; action: AuditAction; repo?: string; prNumber?: number; detail?: Record<string, unknown> }): Promise<void> {
  await db.query("INSERT INTO audit_log (actor, action, repo, pr_number, detail) VALUES ($1, $2, $3, $4, $5)", [e.actor, e.action, e.repo ?? null, e.prNumber ?? null, JSON.stringify(e.detail ?? {})]);
}

describe("audit log hash chain", () => {
  it("chains every appended row: seq 1..n, prev_hash = previous hash, hash = sha256 of the canonical text", async () => {
    const { db } = await freshDb();
    await seed(db);
    const { rows } = await db.query<ChainRow & { canon: string }>(`
      SELECT seq::text AS seq, id::text AS id, prev_hash, hash,
             to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, actor, action, repo,
             pr_number::text AS pr_number, delivery_id, workflow_id::text AS workflow_id, task_id::text AS task_id,
             detail::text AS detail,
             jsonb_build_array('audit-v1'::text, prev_hash, seq, id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               actor, action, repo, pr_number, delivery_id, workflow_id, task_id, detail)::text AS canon
        FROM audit_log ORDER BY audit_log.seq`);
    expect(rows).toHaveLength(8);
    expect(rows.map((r) => r.seq)).toEqual(["1", "2", "3", "4", "5", "6", "7", "8"]);
    expect(rows.map((r) => r.action)).toEqual(["command.received", "approval.recorded", "raw.numerics", "bulk.1", "bulk.2", "bulk.3", "forged", "deploy.succeeded"]);
    expect(rows[2]!.detail).toBe('{"e": 1000, "n": 1.50, "big": 12345678901234567890.123}');
    let prev = GENESIS_HASH;
    for (const r of rows) {
      expect(r.prev_hash).toBe(prev);
      expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
      // The TypeScript serialization is byte for byte PostgreSQL's, and the stored hash is its digest.
      expect(canonicalAuditText(prev, r)).toBe(r.canon);
      expect(r.hash).toBe(sha256(r.canon));
      prev = r.hash!;
    }
    expect(rows[0]!.canon).toMatch(/^\["audit-v1", "0{64}", 1, \d+, "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", "alice", "command\.received", "o\/r", 1, null, null, null, \{"stack": "dev", "command": "preview"\}\]$/);

    for (const batch of [1, 3, 7, 8, 1000]) {
      expect(await verifyAuditChain(db, { batch })).toEqual({ ok: true, rows: 8, head: prev });
    }
  });

  it("an empty log verifies, with no head", async () => {
    const { db } = await freshDb();
    expect(await verifyAuditChain(db)).toEqual({ ok: true, rows: 0, head: null });
  });

  it("keeps refusing UPDATE, DELETE and TRUNCATE", async () => {
    const { db } = await freshDb();
    await seed(db);
    await expect(db.query("UPDATE audit_log SET actor = 'mallory'")).rejects.toThrow(/append-only/);
    await expect(db.query("UPDATE audit_log SET hash = 'x' WHERE seq = 1")).rejects.toThrow(/append-only/);
    await expect(db.query("DELETE FROM audit_log WHERE seq = 8")).rejects.toThrow(/append-only/);
    await expect(db.query("TRUNCATE audit_log")).rejects.toThrow(/append-only/);
    expect((await verifyAuditChain(db)).ok).toBe(true);
  });

  it("detects an edited row as a hash mismatch at that row: detail, actor, at (by one microsecond), repo", async () => {
    const { db } = await freshDb();
    await seed(db);
    const links = await chain(db);
    const intact = await verifyAuditChain(db, { batch: 2 });
    expect(intact.ok).toBe(true);
    const target = links[2]!; // raw.numerics
    const edits: Array<[string, string]> = [
      ["UPDATE audit_log SET detail = '{\"n\": 1.5, \"big\": 12345678901234567890.123, \"e\": 1000}' WHERE id = $1", "UPDATE audit_log SET detail = '{\"n\": 1.50, \"big\": 12345678901234567890.123, \"e\": 1e3}' WHERE id = $1"],
      ["UPDATE audit_log SET actor = 'mallory' WHERE id = $1", "UPDATE audit_log SET actor = 'raw' WHERE id = $1"],
      ["UPDATE audit_log SET at = at + interval '1 microsecond' WHERE id = $1", "UPDATE audit_log SET at = at - interval '1 microsecond' WHERE id = $1"],
      ["UPDATE audit_log SET repo = 'o/r' WHERE id = $1", "UPDATE audit_log SET repo = NULL WHERE id = $1"],
    ];
    for (const [edit, undo] of edits) {
      await tamper(db, edit, [target.id]);
      expect(await verifyAuditChain(db, { batch: 2 })).toEqual({ ok: false, rows: 2, brokenAt: { id: target.id, reason: "hash mismatch" } });
      await tamper(db, undo, [target.id]);
      expect(await verifyAuditChain(db, { batch: 2 })).toEqual(intact);
    }
    // A forged hash on the last row.
    await tamper(db, "UPDATE audit_log SET hash = $2 WHERE id = $1", [links[7]!.id, "f".repeat(64)]);
    expect(await verifyAuditChain(db)).toEqual({ ok: false, rows: 7, brokenAt: { id: links[7]!.id, reason: "hash mismatch" } });
  });

  it("detects a deleted middle row (a gap) and a deleted first row", async () => {
    const { db } = await freshDb();
    await seed(db);
    const links = await chain(db);
    await tamper(db, "DELETE FROM audit_log WHERE id = $1", [links[4]!.id]);
    expect(await verifyAuditChain(db, { batch: 2 })).toEqual({ ok: false, rows: 4, brokenAt: { id: links[5]!.id, reason: "gap" } });

    const other = (await freshDb()).db;
    await seed(other);
    const first = await chain(other);
    await tamper(other, "DELETE FROM audit_log WHERE id = $1", [first[0]!.id]);
    expect(await verifyAuditChain(other)).toEqual({ ok: false, rows: 0, brokenAt: { id: first[1]!.id, reason: "gap" } });
  });

  it("detects a row edited and re-hashed as a prev_hash mismatch on the next row", async () => {
    const { db } = await freshDb();
    await seed(db);
    const links = await chain(db);
    const target = links[3]!;
    // Edit and recompute the row's own hash exactly as the database does.
    await tamper(
      db,
      `UPDATE audit_log SET actor = 'mallory',
         hash = encode(sha256(convert_to(jsonb_build_array('audit-v1'::text, prev_hash, seq, id,
           to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'mallory'::text, action, repo, pr_number,
           delivery_id, workflow_id, task_id, detail)::text, 'UTF8')), 'hex')
       WHERE id = $1`,
      [target.id],
    );
    expect((await chain(db))[3]!.hash).not.toBe(target.hash);
    expect(await verifyAuditChain(db)).toEqual({ ok: false, rows: 4, brokenAt: { id: links[4]!.id, reason: "prev_hash mismatch" } });
    // Also when the forger follows through with the next row's prev_hash: then that row's own hash breaks.
    await tamper(db, "UPDATE audit_log SET prev_hash = (SELECT hash FROM audit_log WHERE id = $2) WHERE id = $1", [links[4]!.id, target.id]);
    expect(await verifyAuditChain(db)).toEqual({ ok: false, rows: 4, brokenAt: { id: links[4]!.id, reason: "hash mismatch" } });
  });

  it("chains by lock order, not id order: a row whose id was drawn before another's can come after it", async () => {
    const { url, db } = await freshDb();
    await appendAudit(db, { actor: "a", action: named("first") });
    const holder = await connect(url);
    const early = await connect(url);
    try {
      // Hold the chain lock, as an appender in the middle of its transaction does.
      await holder.query("BEGIN");
      await holder.query("SELECT pg_advisory_xact_lock($1)", [AUDIT_CHAIN_LOCK_KEY]);
      // This insert draws its id now, then waits for the lock in the trigger.
      const waiting = appendAudit(early as unknown as Db, { actor: "a", action: named("early-id") });
      const deadline = Date.now() + 10_000;
      while (!(await db.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rowCount) {
        if (Date.now() > deadline) throw new Error("the insert never waited for the chain lock");
        await new Promise((r) => setTimeout(r, 20));
      }
      await appendAudit(holder as unknown as Db, { actor: "a", action: named("late-id") });
      await holder.query("COMMIT");
      await waiting;
    } finally {
      await holder.end();
      await early.end();
    }
    await appendAudit(db, { actor: "a", action: named("last") });
    const links = await chain(db);
    expect(links.map((l) => l.action)).toEqual(["first", "late-id", "early-id", "last"]);
    expect(BigInt(links[2]!.id)).toBeLessThan(BigInt(links[1]!.id));
    expect(links[2]!.prev_hash).toBe(links[1]!.hash);
    expect(links[3]!.prev_hash).toBe(links[2]!.hash);
    expect(await verifyAuditChain(db)).toEqual({ ok: true, rows: 4, head: links[3]!.hash });
  });

  it("20 parallel connections appending (some in transactions that roll back) still form one gapless chain", async () => {
    const { url, db } = await freshDb();
    await seed(db);
    const clients = await Promise.all(Array.from({ length: 20 }, () => connect(url)));
    try {
      await Promise.all(
        clients.map(async (c, i) => {
          const entry = { actor: `u${i}`, action: named("parallel"), repo: `o/p${i % 3}`, prNumber: i, detail: { i } };
          if (i % 2 === 0) {
            await appendAudit(c as unknown as Db, entry);
            await appendAudit(c as unknown as Db, { ...entry, action: named("parallel.2") });
            return;
          }
          await c.query("BEGIN");
          await c.query("SELECT pg_sleep($1)", [Math.random() * 0.02]);
          await appendAudit(c as unknown as Db, entry);
          await c.query("SELECT pg_sleep($1)", [Math.random() * 0.02]);
          await c.query(i % 4 === 3 ? "ROLLBACK" : "COMMIT");
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    // 10 autocommit clients × 2 rows, 5 committed transactions; 5 rolled back.
    const expected = 8 + 20 + 5;
    const { rows } = await db.query("SELECT count(*)::int AS n, max(seq)::int AS max FROM audit_log");
    expect(rows[0]).toEqual({ n: expected, max: expected });
    const result = await verifyAuditChain(db, { batch: 4 });
    expect(result).toEqual({ ok: true, rows: expected, head: (await chain(db)).at(-1)!.hash });
  });

  it("refuses to fork: an insert from a REPEATABLE READ snapshot older than the head fails", async () => {
    const { url, db } = await freshDb();
    await seed(db);
    const stale = await connect(url);
    try {
      await stale.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      await stale.query("SELECT count(*) FROM audit_log");
      await appendAudit(db, { actor: "a", action: named("meanwhile") });
      await expect(appendAudit(stale as unknown as Db, { actor: "a", action: named("stale") })).rejects.toThrow(/audit_log_seq_idx|could not serialize/);
      await stale.query("ROLLBACK");
    } finally {
      await stale.end();
    }
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true, rows: 9 });
  });

  it("the migration chains rows written before it in id order, and migrates down and up again", async () => {
    const files = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith(".sql")).sort();
    const before = files.indexOf(CHAIN_MIGRATION);
    expect(before).toBeGreaterThan(0);
    // Only the migrations up to this one: later ones are not this test's business.
    const dir = mkdtempSync(join(tmpdir(), "audit-mig-"));
    for (const f of files.slice(0, before + 1)) copyFileSync(join(MIGRATIONS_DIR, f), join(dir, f));
    const { url, db } = await freshDb(before);
    const step = (direction: "up" | "down") =>
      runner({ databaseUrl: url, dir, migrationsTable: "pgmigrations", direction, count: 1, log: () => {} });
    try {
      expect((await db.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'audit_log' AND column_name = 'hash'")).rowCount).toBe(0);
      for (let i = 0; i < 11; i++) await appendThen(db, { actor: `old${i}`, action: named("legacy"), repo: "o/r", prNumber: i, detail: { i, s: "é" } });
      await db.query(`INSERT INTO audit_log (actor, action, detail) VALUES ('raw', 'legacy.raw', '{"n": 1.50}')`);
      const ids = (await db.query<{ id: string }>("SELECT id::text FROM audit_log ORDER BY audit_log.id")).rows.map((r) => r.id);

      await step("up");
      const links = await chain(db);
      expect(links.map((l) => l.id)).toEqual(ids);
      expect(links.map((l) => l.seq)).toEqual(Array.from({ length: 12 }, (_, i) => String(i + 1)));
      expect(links[0]!.prev_hash).toBe(GENESIS_HASH);
      expect(await verifyAuditChain(db, { batch: 5 })).toEqual({ ok: true, rows: 12, head: links[11]!.hash });
      await appendThen(db, { actor: "new", action: named("after-migration") });
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true, rows: 13 });
      await expect(db.query("DELETE FROM audit_log")).rejects.toThrow(/append-only/);

      await step("down");
      expect((await db.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'audit_log' AND column_name IN ('seq', 'hash', 'prev_hash')")).rowCount).toBe(0);
      await appendThen(db, { actor: "old", action: named("while-down") });
      await expect(db.query("DELETE FROM audit_log")).rejects.toThrow(/append-only/);
      await step("up");
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true, rows: 14 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("audit export", () => {
  async function exportDb(): Promise<Db> {
    const { db } = await freshDb();
    const insert = (at: string, repo: string | null, detail: string) =>
      db.query("INSERT INTO audit_log (at, actor, action, repo, detail) VALUES ($1, 'alice', 'x', $2, $3)", [at, repo, detail]);
    await insert("2024-01-01T00:00:00Z", "o/a", '{"stack": "dev", "k": 1}'); // r1
    await insert("2024-01-02T00:00:00Z", "o/a", '{"stack": "prod"}'); // r2
    await insert("2024-01-03T00:00:00.000001Z", "o/b", '{"stack": "dev", "text": "two\\nlines"}'); // r3
    await insert("2024-01-04T00:00:00Z", "o/a", '{"stack": "dev", "n": 1.50}'); // r4
    await insert("2024-01-05T00:00:00Z", null, '{"nested": {"stack": "dev"}}'); // r5: not a dev row
    return db;
  }
  async function collect(db: Db, filter: AuditExportFilter, batch?: number): Promise<string[]> {
    const out: string[] = [];
    for await (const line of exportAudit(db, filter, batch ? { batch } : {})) out.push(line);
    return out;
  }
  const actions = (lines: string[]) => lines.map((l) => (JSON.parse(l) as { detail: unknown; at: string; seq: number }).seq);

  it("emits one JSON object per line in chain order, with every column, hash and prev_hash", async () => {
    const db = await exportDb();
    const lines = await collect(db, {});
    expect(await collect(db, {}, 1)).toEqual(lines);
    expect(lines).toHaveLength(5);
    const links = await chain(db);
    lines.forEach((line, i) => {
      expect(line).not.toMatch(/\n/);
      const o = JSON.parse(line) as Record<string, unknown>;
      expect(Object.keys(o)).toEqual(["seq", "id", "at", "actor", "action", "repo", "pr_number", "delivery_id", "workflow_id", "task_id", "detail", "prev_hash", "hash"]);
      expect(o.seq).toBe(i + 1);
      expect(String(o.id)).toBe(links[i]!.id);
      expect(o.hash).toBe(links[i]!.hash);
      expect(o.prev_hash).toBe(links[i]!.prev_hash);
    });
    expect(JSON.parse(lines[2]!)).toMatchObject({ at: "2024-01-03T00:00:00.000001Z", repo: "o/b", detail: { stack: "dev", text: "two\nlines" } });
    expect(lines[3]).toContain('"detail":{"n": 1.50, "stack": "dev"}'); // the canonical jsonb text, verbatim
    expect(JSON.parse(lines[4]!)).toMatchObject({ repo: null, pr_number: null, detail: { nested: { stack: "dev" } } });

    // Past 9 rows, chain order is numeric (a text sort would put 10 before 2).
    for (let i = 0; i < 8; i++) await appendAudit(db, { actor: "bob", action: named("more"), prNumber: i });
    for (const batch of [1, 4, 500]) {
      expect(actions(await collect(db, {}, batch))).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    }
  });

  it("filters by repo, stack and time range (since inclusive, until exclusive), with a limit, across batches", async () => {
    const db = await exportDb();
    for (const batch of [1, 2, 500]) {
      expect(actions(await collect(db, { repo: "o/a" }, batch))).toEqual([1, 2, 4]);
      expect(actions(await collect(db, { repo: "o/nope" }, batch))).toEqual([]);
      expect(actions(await collect(db, { stack: "dev" }, batch))).toEqual([1, 3, 4]);
      expect(actions(await collect(db, { since: new Date("2024-01-02T00:00:00Z"), until: new Date("2024-01-04T00:00:00Z") }, batch))).toEqual([2, 3]);
      expect(actions(await collect(db, { since: new Date("2024-01-03T00:00:00Z") }, batch))).toEqual([3, 4, 5]);
      expect(actions(await collect(db, { until: new Date("2024-01-03T00:00:00Z") }, batch))).toEqual([1, 2]);
      expect(actions(await collect(db, { repo: "o/a", stack: "dev", since: new Date("2024-01-01T00:00:00Z") }, batch))).toEqual([1, 4]);
      expect(actions(await collect(db, { limit: 2 }, batch))).toEqual([1, 2]);
      expect(actions(await collect(db, { stack: "dev", limit: 2 }, batch))).toEqual([1, 3]);
      expect(actions(await collect(db, { repo: "o/a", limit: 10 }, batch))).toEqual([1, 2, 4]);
    }
    await expect(collect(db, { limit: 0 })).rejects.toThrow(/limit/);
    await expect(collect(db, { since: new Date("nope") })).rejects.toThrow(/since/);
  });
});

describe("audit CLI", () => {
  function io() {
    const out = { stdout: "", stderr: "" };
    return { out, io: { stdout: (s: string) => void (out.stdout += s), stderr: (s: string) => void (out.stderr += s) } };
  }

  it("verify: exit 0 with the head on an intact log, 1 with the broken row", async () => {
    const { db } = await freshDb();
    await seed(db);
    const links = await chain(db);
    let r = io();
    expect(await auditCommand(["verify"], { db }, r.io)).toBe(0);
    expect(r.out.stdout).toBe(`ok: 8 rows, head ${links[7]!.hash}\n`);
    r = io();
    expect(await auditCommand(["audit", "verify"], { db }, r.io)).toBe(0);

    await tamper(db, "UPDATE audit_log SET detail = '{\"command\": \"deploy\"}' WHERE id = $1", [links[0]!.id]);
    r = io();
    expect(await auditCommand(["verify"], { db }, r.io)).toBe(1);
    expect(r.out.stdout).toBe(`BROKEN at id ${links[0]!.id}: hash mismatch\n`);

    const empty = (await freshDb()).db;
    r = io();
    expect(await auditCommand(["verify"], { db: empty }, r.io)).toBe(0);
    expect(r.out.stdout).toBe("ok: 0 rows, head none\n");
  });

  it("export: JSON lines on stdout, filters from the flags", async () => {
    const { db } = await freshDb();
    await seed(db);
    await db.query("INSERT INTO audit_log (at, actor, action, repo, detail) VALUES ('2020-06-01T12:00:00Z', 'old', 'x', 'o/r', '{\"stack\": \"dev\"}')");
    const r = io();
    expect(await auditCommand(["export", "--repo", "o/r", "--stack", "dev", "--since", "2021-01-01"], { db }, r.io)).toBe(0);
    const lines = r.out.stdout.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.map((l) => JSON.parse(l) as { action: string; repo: string }).map((o) => [o.action, o.repo])).toEqual([["command.received", "o/r"]]);

    const all = io();
    expect(await auditCommand(["export"], { db }, all.io)).toBe(0);
    expect(all.out.stdout.trim().split("\n")).toHaveLength(9);
    const limited = io();
    expect(await auditCommand(["export", "--until", "2021-01-01T00:00:00+01:00", "--limit", "5"], { db }, limited.io)).toBe(0);
    expect(limited.out.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { actor: string }).actor)).toEqual(["old"]);
    expect(limited.out.stderr).toBe("");
  });

  it("usage errors exit 2 with the usage on stderr and nothing on stdout", async () => {
    const { db } = await freshDb();
    await seed(db);
    const bad: string[][] = [
      [],
      ["frobnicate"],
      ["verify", "extra"],
      ["verify", "--repo", "o/r"],
      ["export", "--bogus"],
      ["export", "--repo"],
      ["export", "--repo", "noslash"],
      ["export", "--repo", "o/r/x"],
      ["export", "--repo", "o/.."],
      ["export", "--stack", "bad stack;"],
      ["export", "--since", "yesterday"],
      ["export", "--since", "2024-02-30"],
      ["export", "--since", "2024-13-01"],
      ["export", "--since", "2024-01-01T25:00:00Z"],
      ["export", "--since", "2024-01-01T10:00:00"], // no offset: ambiguous
      ["export", "--until", "1700000000"],
      ["export", "--since", "2024-01-02", "--until", "2024-01-01"],
      ["export", "--limit", "0"],
      ["export", "--limit", "-3"],
      ["export", "--limit", "ten"],
    ];
    for (const argv of bad) {
      const r = io();
      expect(await auditCommand(argv, { db }, r.io), argv.join(" ")).toBe(2);
      expect(r.out.stdout, argv.join(" ")).toBe("");
      expect(r.out.stderr, argv.join(" ")).toMatch(/^error: .+\n\nusage: /s);
    }
    const help = io();
    expect(await auditCommand(["--help"], { db }, help.io)).toBe(0);
    expect(help.out.stdout).toMatch(/^usage: /);
  });
});
