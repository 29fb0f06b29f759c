import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Db } from "../../src/connectors/store/db.js";
import { createVectorStore, KnowledgeStoreError, PgVectorStore } from "../../src/connectors/knowledge/index.js";
import type { KnowledgeEntry } from "../../src/domain/diagnose.js";
import { migratedTestDb } from "../helpers/harness.js";

const DIMS = 4;
let handle: Awaited<ReturnType<typeof migratedTestDb>>;
let db: Db;
let store: PgVectorStore;

function unit(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

function entry(id: string, over: Partial<KnowledgeEntry> = {}): KnowledgeEntry {
  return {
    id,
    kind: "failure",
    repo: "acme/infra",
    stack: "prod",
    title: `title of ${id}`,
    text: `text of ${id}`,
    resolution: null,
    url: null,
    occurredAt: "2025-01-15T12:00:00.000Z",
    ...over,
  };
}

beforeAll(async () => {
  handle = await migratedTestDb("kb");
  db = handle.db;
  store = new PgVectorStore(db, { dimensions: DIMS, embedder: "hash-v1" });
  await store.ensure();
});

afterAll(async () => {
  await handle?.drop();
});

beforeEach(async () => {
  await db.query("DELETE FROM knowledge_entries");
});

describe("PgVectorStore", () => {
  it("is what createVectorStore returns without Qdrant", () => {
    const s = createVectorStore({ qdrant: null, db, dimensions: DIMS, embedder: "hash-v1" });
    expect(s).toBeInstanceOf(PgVectorStore);
    expect(s.name).toBe("postgres");
  });

  it("ensure() fails with a typed error when the migration has not run", async () => {
    await db.query("ALTER TABLE knowledge_entries RENAME TO knowledge_entries_moved");
    try {
      const err = await store.ensure().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KnowledgeStoreError);
      expect((err as KnowledgeStoreError).code).toBe("not_ready");
      expect((err as Error).message).toMatch(/knowledge_entries.*migrations/);
    } finally {
      await db.query("ALTER TABLE knowledge_entries_moved RENAME TO knowledge_entries");
    }
    await expect(store.ensure()).resolves.toBeUndefined();
  });

  it("upserting the same id twice keeps one row with the new payload and vector", async () => {
    await store.upsert([entry("failure:1", { title: "first", resolution: null })], [unit([1, 0, 0, 0])]);
    const before = await db.query("SELECT updated_at FROM knowledge_entries WHERE id = 'failure:1'");
    await store.upsert(
      [entry("failure:1", { title: "second", resolution: "fixed by #42", url: "https://github.com/acme/infra/pull/42", stack: null })],
      [unit([0, 1, 0, 0])],
    );
    const { rows } = await db.query("SELECT * FROM knowledge_entries");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: "failure:1",
      title: "second",
      resolution: "fixed by #42",
      url: "https://github.com/acme/infra/pull/42",
      stack: null,
      embedder: "hash-v1",
      vector: [0, 1, 0, 0],
    });
    expect((rows[0].updated_at as Date).getTime()).toBeGreaterThanOrEqual((before.rows[0].updated_at as Date).getTime());
    // The search sees the new vector, not the old one.
    const [hit] = await store.search(unit([0, 1, 0, 0]), { repo: "acme/infra" }, 5);
    expect(hit!.score).toBeCloseTo(1, 5);
    expect(hit!.entry).toEqual(entry("failure:1", { title: "second", resolution: "fixed by #42", url: "https://github.com/acme/infra/pull/42", stack: null }));
  });

  it("one batch with a repeated id keeps the last occurrence", async () => {
    await store.upsert([entry("a", { title: "old" }), entry("b"), entry("a", { title: "new" })], [unit([1, 0, 0, 0]), unit([0, 1, 0, 0]), unit([0, 0, 1, 0])]);
    const { rows } = await db.query("SELECT id, title, vector FROM knowledge_entries ORDER BY id");
    expect(rows).toEqual([
      { id: "a", title: "new", vector: [0, 0, 1, 0] },
      { id: "b", title: "title of b", vector: [0, 1, 0, 0] },
    ]);
  });

  it("keeps each row's own vector in a multi-row batch", async () => {
    const vs = [unit([1, 2, 3, 4]), unit([4, 3, 2, 1]), unit([-1, 0, 2, 0.5])];
    await store.upsert([entry("x"), entry("y"), entry("z")], vs);
    const { rows } = await db.query<{ id: string; vector: number[] }>("SELECT id, vector FROM knowledge_entries ORDER BY id");
    expect(rows.map((r) => r.id)).toEqual(["x", "y", "z"]);
    rows.forEach((r, i) => r.vector.forEach((x, j) => expect(x).toBeCloseTo(vs[i]![j]!, 6)));
  });

  it("ranks by cosine similarity, best first, with scores, and honours the limit", async () => {
    const q = unit([1, 1, 0, 0]);
    await store.upsert(
      [entry("far"), entry("exact"), entry("near"), entry("opposite"), entry("orthogonal")],
      [unit([0, 1, 3, 0]), unit([1, 1, 0, 0]), unit([1, 0.5, 0, 0]), unit([-1, -1, 0, 0]), unit([0, 0, 1, 1])],
    );
    const hits = await store.search(q, { repo: "acme/infra" }, 10);
    expect(hits.map((h) => h.entry.id)).toEqual(["exact", "near", "far", "orthogonal", "opposite"]);
    expect(hits[0]!.score).toBeCloseTo(1, 5);
    expect(hits[1]!.score).toBeCloseTo((1 + 0.5) / (Math.SQRT2 * Math.hypot(1, 0.5)), 5);
    expect(hits[2]!.score).toBeCloseTo(1 / (Math.SQRT2 * Math.hypot(1, 3)), 5);
    expect(hits[3]!.score).toBeCloseTo(0, 5);
    expect(hits[4]!.score).toBeCloseTo(-1, 5);
    const top2 = await store.search(q, { repo: "acme/infra" }, 2);
    expect(top2.map((h) => h.entry.id)).toEqual(["exact", "near"]);
    expect(await store.search(q, { repo: "acme/infra" }, 0)).toEqual([]);
  });

  it("filters: repo isolation, stack or no stack, kinds", async () => {
    const v = unit([1, 0, 0, 0]);
    await store.upsert(
      [
        entry("prod-failure", { stack: "prod", kind: "failure" }),
        entry("dev-failure", { stack: "dev", kind: "failure" }),
        entry("runbook", { stack: null, kind: "runbook" }),
        entry("issue", { stack: null, kind: "issue" }),
        entry("other-repo", { repo: "acme/other", stack: "prod" }),
      ],
      [v, v, v, v, v],
    );
    const ids = async (f: Parameters<PgVectorStore["search"]>[1]) => (await store.search(v, f, 10)).map((h) => h.entry.id).sort();
    expect(await ids({ repo: "acme/infra" })).toEqual(["dev-failure", "issue", "prod-failure", "runbook"]);
    expect(await ids({ repo: "acme/infra", stack: null })).toEqual(["dev-failure", "issue", "prod-failure", "runbook"]);
    expect(await ids({ repo: "acme/infra", stack: "prod" })).toEqual(["issue", "prod-failure", "runbook"]);
    expect(await ids({ repo: "acme/infra", stack: "prod", kinds: ["failure"] })).toEqual(["prod-failure"]);
    expect(await ids({ repo: "acme/infra", kinds: ["runbook", "issue"] })).toEqual(["issue", "runbook"]);
    expect(await ids({ repo: "acme/infra", kinds: [] })).toHaveLength(4);
    expect(await ids({ repo: "acme/other" })).toEqual(["other-repo"]);
    expect(await ids({ repo: "acme/nothing" })).toEqual([]);
  });

  it("does not mix in vectors of another embedder", async () => {
    const other = new PgVectorStore(db, { dimensions: DIMS, embedder: "openai-small" });
    await other.upsert([entry("theirs")], [unit([1, 0, 0, 0])]);
    await store.upsert([entry("ours")], [unit([0, 1, 0, 0])]);
    expect((await store.search(unit([1, 0, 0, 0]), { repo: "acme/infra" }, 10)).map((h) => h.entry.id)).toEqual(["ours"]);
    // Still listed (and removable) as stale ids of the repo.
    expect(await store.listIds("acme/infra", "failure")).toEqual(["ours", "theirs"]);
  });

  it("listIds by repo and kind; remove ignores unknown ids", async () => {
    const v = unit([1, 0, 0, 0]);
    await store.upsert(
      [
        entry("runbook:acme/infra:ops.md#b", { kind: "runbook", stack: null }),
        entry("runbook:acme/infra:ops.md#a", { kind: "runbook", stack: null }),
        entry("failure:1"),
        entry("runbook:acme/other:ops.md#a", { kind: "runbook", repo: "acme/other", stack: null }),
      ],
      [v, v, v, v],
    );
    expect(await store.listIds("acme/infra", "runbook")).toEqual(["runbook:acme/infra:ops.md#a", "runbook:acme/infra:ops.md#b"]);
    expect(await store.listIds("acme/infra", "failure")).toEqual(["failure:1"]);
    expect(await store.listIds("acme/infra", "issue")).toEqual([]);
    await store.remove(["runbook:acme/infra:ops.md#a", "no-such-id"]);
    await store.remove([]);
    expect(await store.listIds("acme/infra", "runbook")).toEqual(["runbook:acme/infra:ops.md#b"]);
    expect(await store.listIds("acme/other", "runbook")).toEqual(["runbook:acme/other:ops.md#a"]);
    expect((await db.query("SELECT count(*)::int AS n FROM knowledge_entries")).rows[0].n).toBe(3);
  });

  it("rejects vectors of the wrong length, and mismatched arrays, writing nothing", async () => {
    const err = await store.upsert([entry("ok"), entry("short")], [unit([1, 0, 0, 0]), [1, 0, 0]]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KnowledgeStoreError);
    expect((err as KnowledgeStoreError).code).toBe("dimension_mismatch");
    expect((err as Error).message).toContain('"short" has 3 dimensions, the store expects 4');
    const err2 = await store.upsert([entry("a"), entry("b")], [unit([1, 0, 0, 0])]).catch((e: unknown) => e);
    expect((err2 as KnowledgeStoreError).code).toBe("invalid_input");
    const err3 = await store.upsert([entry("nan")], [[Number.NaN, 0, 0, 0]]).catch((e: unknown) => e);
    expect((err3 as KnowledgeStoreError).code).toBe("invalid_input");
    expect((await db.query("SELECT count(*)::int AS n FROM knowledge_entries")).rows[0].n).toBe(0);
    const err4 = await store.search([1, 0], { repo: "acme/infra" }, 5).catch((e: unknown) => e);
    expect((err4 as KnowledgeStoreError).code).toBe("dimension_mismatch");
  });

  it("turns a database refusal into a KnowledgeStoreError", async () => {
    const err = await store.upsert([entry("bad", { kind: "bogus" as never })], [unit([1, 0, 0, 0])]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KnowledgeStoreError);
    expect((err as KnowledgeStoreError).code).toBe("invalid_input");
    expect((err as Error).message).toMatch(/upsert failed: .*check constraint/);
  });

  it("upserts a large batch in one statement", async () => {
    const n = 1200;
    const entries = Array.from({ length: n }, (_, i) => entry(`bulk:${i}`));
    const vectors = entries.map((_, i) => unit([Math.cos(i), Math.sin(i), 1, i % 7]));
    const seen: string[] = [];
    const orig = db.query.bind(db);
    (db as unknown as { query: unknown }).query = (...args: unknown[]) => {
      if (typeof args[0] === "string" && args[0].includes("INSERT INTO knowledge_entries")) seen.push(args[0]);
      return (orig as (...a: unknown[]) => unknown)(...args);
    };
    try {
      await store.upsert(entries, vectors);
    } finally {
      (db as unknown as { query: unknown }).query = orig;
    }
    expect(seen).toHaveLength(1);
    expect((await db.query("SELECT count(*)::int AS n FROM knowledge_entries")).rows[0].n).toBe(n);
    const [hit] = await store.search(vectors[777]!, { repo: "acme/infra" }, 1);
    expect(hit!.entry.id).toBe("bulk:777");
  });
});
