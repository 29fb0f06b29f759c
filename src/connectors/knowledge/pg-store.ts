/**
 * The knowledge base in PostgreSQL, used when no Qdrant is configured. The table comes from
 * migrations/1732240000011_knowledge.sql; without pgvector, vectors are real[] and the cosine
 * similarity (a dot product, vectors being L2-normalised) is computed, ordered and limited in SQL.
 * That is a scan of the repo's rows per search: right for the few thousand entries a repo has.
 */
import type { Db } from "../store/db.js";
import type { KnowledgeEntry, KnowledgeKind, SearchFilter, SearchHit, VectorStore } from "../../domain/diagnose.js";
import { checkQueryVector, checkUpsertInput, KnowledgeStoreError } from "./errors.js";

export interface PgVectorStoreOptions {
  /** Vector length; vectors of another length are rejected. */
  dimensions: number;
  /** The embedder's name, stored with each row; searches only see rows of this embedder. */
  embedder: string;
}

interface EntryRow {
  id: string;
  kind: KnowledgeKind;
  repo: string;
  stack: string | null;
  title: string;
  text: string;
  resolution: string | null;
  url: string | null;
  occurred_at: Date;
  score: number;
}

const STORE = "postgres knowledge store";

export class PgVectorStore implements VectorStore {
  readonly name = "postgres" as const;
  private readonly dimensions: number;
  private readonly embedder: string;

  constructor(
    private readonly db: Db,
    opts: PgVectorStoreOptions,
  ) {
    if (!Number.isInteger(opts.dimensions) || opts.dimensions <= 0) {
      throw new KnowledgeStoreError(`${STORE}: dimensions must be a positive integer, got ${opts.dimensions}`, "invalid_input");
    }
    this.dimensions = opts.dimensions;
    this.embedder = opts.embedder;
  }

  /** The table is created by the migrations; this only checks they ran. */
  async ensure(): Promise<void> {
    const { rows } = await this.query<{ t: string | null }>("ensure", "SELECT to_regclass('knowledge_entries')::text AS t", []);
    if (!rows[0]?.t) {
      throw new KnowledgeStoreError(
        `${STORE}: table knowledge_entries does not exist; run the database migrations (1732240000011_knowledge)`,
        "not_ready",
      );
    }
  }

  /**
   * One INSERT ... ON CONFLICT per call, whatever the batch size: the columns go as arrays and
   * the vectors as one flat array sliced per row, so the number of bind parameters is fixed.
   */
  async upsert(entries: KnowledgeEntry[], vectors: number[][]): Promise<void> {
    checkUpsertInput(STORE, this.dimensions, entries.map((e) => e.id), vectors);
    if (!entries.length) return;
    // One row per id (the last one wins): ON CONFLICT cannot touch the same row twice in a statement.
    const byId = new Map<string, { entry: KnowledgeEntry; vector: number[] }>();
    entries.forEach((entry, i) => byId.set(entry.id, { entry, vector: vectors[i]! }));
    const rows = [...byId.values()];
    const col = <T>(f: (e: KnowledgeEntry) => T): T[] => rows.map((r) => f(r.entry));
    await this.query(
      "upsert",
      `INSERT INTO knowledge_entries
         (id, kind, repo, stack, title, text, resolution, url, occurred_at, embedder, vector, updated_at)
       SELECT e.id, e.kind, e.repo, e.stack, e.title, e.text, e.resolution, e.url, e.occurred_at, $10,
              ($11::real[])[(e.n - 1) * $12 + 1 : e.n * $12], now()
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::timestamptz[])
              WITH ORDINALITY AS e(id, kind, repo, stack, title, text, resolution, url, occurred_at, n)
       ON CONFLICT (id) DO UPDATE SET
         kind = EXCLUDED.kind, repo = EXCLUDED.repo, stack = EXCLUDED.stack, title = EXCLUDED.title,
         text = EXCLUDED.text, resolution = EXCLUDED.resolution, url = EXCLUDED.url,
         occurred_at = EXCLUDED.occurred_at, embedder = EXCLUDED.embedder, vector = EXCLUDED.vector,
         updated_at = now()`,
      [
        col((e) => e.id),
        col((e) => e.kind),
        col((e) => e.repo),
        col((e) => e.stack ?? null),
        col((e) => e.title),
        col((e) => e.text),
        col((e) => e.resolution ?? null),
        col((e) => e.url ?? null),
        col((e) => e.occurredAt),
        this.embedder,
        rows.flatMap((r) => r.vector),
        this.dimensions,
      ],
    );
  }

  async remove(ids: string[]): Promise<void> {
    if (!ids.length) return;
    await this.query("remove", "DELETE FROM knowledge_entries WHERE id = ANY($1::text[])", [ids]);
  }

  async listIds(repo: string, kind: KnowledgeKind): Promise<string[]> {
    const { rows } = await this.query<{ id: string }>(
      "listIds",
      "SELECT id FROM knowledge_entries WHERE repo = $1 AND kind = $2 ORDER BY id",
      [repo, kind],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Rows of the repo (and of the stack or of no stack; of the kinds, when given; of this
   * embedder), ranked by dot product with the query vector. An empty `kinds` means any kind.
   */
  async search(vector: number[], filter: SearchFilter, limit: number): Promise<SearchHit[]> {
    checkQueryVector(STORE, this.dimensions, vector);
    if (!(limit > 0)) return [];
    const stack = filter.stack ?? null;
    const kinds = filter.kinds?.length ? filter.kinds : null;
    const { rows } = await this.query<EntryRow>(
      "search",
      `SELECT k.id, k.kind, k.repo, k.stack, k.title, k.text, k.resolution, k.url, k.occurred_at, s.score
         FROM knowledge_entries k
         CROSS JOIN LATERAL (
           SELECT sum(t.a::float8 * t.b) AS score FROM unnest(k.vector, $1::float8[]) AS t(a, b)
         ) s
        WHERE k.repo = $2
          AND k.embedder = $3
          AND cardinality(k.vector) = $4
          AND ($5::text IS NULL OR k.stack = $5 OR k.stack IS NULL)
          AND ($6::text[] IS NULL OR k.kind = ANY($6::text[]))
        ORDER BY s.score DESC, k.id
        LIMIT $7`,
      [vector, filter.repo, this.embedder, this.dimensions, stack, kinds, Math.floor(limit)],
    );
    return rows.map((r) => ({
      score: Number(r.score),
      entry: {
        id: r.id,
        kind: r.kind,
        repo: r.repo,
        stack: r.stack,
        title: r.title,
        text: r.text,
        resolution: r.resolution,
        url: r.url,
        occurredAt: r.occurred_at.toISOString(),
      },
    }));
  }

  private async query<R extends object = Record<string, unknown>>(op: string, sql: string, params: unknown[]): Promise<{ rows: R[] }> {
    try {
      const res = await this.db.query(sql, params);
      return { rows: res.rows as R[] };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      // SQLSTATE classes 22 (data exception) and 23 (constraint violation): the input was bad.
      const bad = typeof e.code === "string" && /^2[23]/.test(e.code);
      throw new KnowledgeStoreError(`${STORE}: ${op} failed: ${e.message ?? String(err)}`, bad ? "invalid_input" : "request_failed", {
        cause: err,
      });
    }
  }
}
