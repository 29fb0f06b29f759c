/**
 * The knowledge base in Qdrant (used when QDRANT_URL is set), over its REST API through
 * @qdrant/js-client-rest. One collection holds every repo's entries; the repo, stack and kind
 * are payload fields with keyword indexes, and searches filter on them.
 *
 * Qdrant point ids must be unsigned integers or UUIDs, so each entry's stable id (e.g.
 * `runbook:acme/infra:docs/ops.md#redis`) maps to a deterministic UUID (`pointId`) and is kept
 * in the payload as `id`: re-indexing the same source overwrites its point.
 */
import { createHash } from "node:crypto";
import { QdrantClient, type Schemas } from "@qdrant/js-client-rest";
import type { KnowledgeEntry, KnowledgeKind, SearchFilter, SearchHit, VectorStore } from "../../domain/diagnose.js";
import { checkQueryVector, checkUpsertInput, KnowledgeStoreError } from "./errors.js";

export interface QdrantVectorStoreOptions {
  /** e.g. https://xyz.cloud.qdrant.io:6333 or http://qdrant:6333 */
  url: string;
  apiKey?: string;
  collection: string;
  dimensions: number;
  /** Per-request timeout of the client. */
  timeoutMs: number;
  /**
   * The embedder's name. When set, it is stored in each point's payload (keyword-indexed) and
   * searches only see points of this embedder: vectors of another model are not comparable.
   */
  embedder?: string;
}

/** Payload fields with a keyword index (filters run on them). */
const INDEXED_FIELDS = ["repo", "stack", "kind"] as const;
/** Points per upsert request and per scroll page. */
const UPSERT_BATCH = 256;
const SCROLL_PAGE = 256;
const KINDS: readonly KnowledgeKind[] = ["failure", "runbook", "issue"];

/**
 * The Qdrant point id of an entry id: the first 16 bytes of its SHA-256 laid out as an RFC 4122
 * UUID with version 5-style bits (a name-based UUID, though SHA-256 rather than SHA-1).
 */
export function pointId(entryId: string): string {
  const b = createHash("sha256").update(entryId, "utf8").digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50; // version 5
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

type Payload = Record<string, unknown>;

export class QdrantVectorStore implements VectorStore {
  readonly name = "qdrant" as const;
  private readonly client: QdrantClient;
  private readonly collection: string;
  private readonly dimensions: number;
  private readonly embedder: string | undefined;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;

  constructor(opts: QdrantVectorStoreOptions) {
    if (!Number.isInteger(opts.dimensions) || opts.dimensions <= 0) {
      throw new KnowledgeStoreError(`qdrant: dimensions must be a positive integer, got ${opts.dimensions}`, "invalid_input");
    }
    this.collection = opts.collection;
    this.dimensions = opts.dimensions;
    this.embedder = opts.embedder;
    this.apiKey = opts.apiKey || undefined;
    this.timeoutMs = opts.timeoutMs;
    try {
      this.client = new QdrantClient({
        url: opts.url,
        ...(this.apiKey ? { apiKey: this.apiKey } : {}),
        timeout: opts.timeoutMs,
        // Otherwise the constructor fires GET / (version check) and console.warns on failure.
        checkCompatibility: false,
      });
    } catch (err) {
      throw new KnowledgeStoreError(`qdrant: invalid configuration: ${(err as Error).message}`, "invalid_input", { cause: err });
    }
  }

  /**
   * Creates the collection (one unnamed cosine vector of `dimensions`) when missing, refuses
   * one built with another size or metric, and creates the keyword payload indexes it lacks.
   */
  async ensure(): Promise<void> {
    let info = await this.collectionInfo();
    if (!info) {
      try {
        await this.call("create collection", () =>
          this.client.createCollection(this.collection, { vectors: { size: this.dimensions, distance: "Cosine" } }),
        );
      } catch (err) {
        // Another replica created it in between: Qdrant answers 409 (400 before 1.x). Check what it made.
        if (!(err instanceof KnowledgeStoreError && (err.status === 409 || (err.status === 400 && /already exists/i.test(err.message))))) {
          throw err;
        }
      }
      info = (await this.collectionInfo()) ?? null;
      if (!info) throw new KnowledgeStoreError(`qdrant: collection "${this.collection}" is still missing after creating it`, "not_ready");
    }
    this.checkVectors(info);
    const existing = info.payload_schema ?? {};
    const fields: string[] = [...INDEXED_FIELDS, ...(this.embedder ? ["embedder"] : [])];
    for (const field of fields) {
      const schema = existing[field] as { data_type?: string } | undefined;
      if (schema?.data_type === "keyword") continue;
      await this.call(`create payload index on "${field}"`, () =>
        this.client.createPayloadIndex(this.collection, { field_name: field, field_schema: "keyword", wait: true }),
      );
    }
  }

  async upsert(entries: KnowledgeEntry[], vectors: number[][]): Promise<void> {
    checkUpsertInput("qdrant", this.dimensions, entries.map((e) => e.id), vectors);
    for (let i = 0; i < entries.length; i += UPSERT_BATCH) {
      const points = entries.slice(i, i + UPSERT_BATCH).map((entry, j) => ({
        id: pointId(entry.id),
        vector: vectors[i + j]!,
        payload: this.toPayload(entry),
      }));
      await this.call("upsert", () => this.client.upsert(this.collection, { wait: true, points }));
    }
  }

  async remove(ids: string[]): Promise<void> {
    if (!ids.length) return;
    const points = [...new Set(ids)].map(pointId);
    await this.call("delete points", () => this.client.delete(this.collection, { wait: true, points }));
  }

  async listIds(repo: string, kind: KnowledgeKind): Promise<string[]> {
    const filter: Schemas["Filter"] = { must: [match("repo", repo), match("kind", kind)] };
    const ids: string[] = [];
    let offset: Schemas["ExtendedPointId"] | undefined;
    for (;;) {
      const page = await this.call("scroll", () =>
        this.client.scroll(this.collection, {
          filter,
          limit: SCROLL_PAGE,
          with_payload: ["id"],
          with_vector: false,
          ...(offset === undefined ? {} : { offset }),
        }),
      );
      for (const p of page.points) {
        const id = (p.payload as Payload | null | undefined)?.id;
        if (typeof id === "string") ids.push(id);
      }
      const next = page.next_page_offset;
      if (next === null || next === undefined || (typeof next !== "string" && typeof next !== "number")) break;
      offset = next;
    }
    return ids.sort();
  }

  /** Filter: repo (and embedder) must match, kinds match any, and stack equals or is null. An empty `kinds` means any kind. */
  async search(vector: number[], filter: SearchFilter, limit: number): Promise<SearchHit[]> {
    checkQueryVector("qdrant", this.dimensions, vector);
    if (!(limit > 0)) return [];
    const res = await this.call("query", () =>
      this.client.query(this.collection, {
        query: vector,
        filter: this.searchFilter(filter),
        limit: Math.floor(limit),
        with_payload: true,
        with_vector: false,
      }),
    );
    const hits: SearchHit[] = [];
    for (const p of res.points) {
      const entry = fromPayload(p.payload as Payload | null | undefined);
      if (entry) hits.push({ entry, score: p.score });
    }
    return hits;
  }

  /** The filter JSON of a search. */
  private searchFilter(filter: SearchFilter): Schemas["Filter"] {
    const must: Schemas["Condition"][] = [match("repo", filter.repo)];
    if (this.embedder) must.push(match("embedder", this.embedder));
    if (filter.kinds?.length) must.push({ key: "kind", match: { any: [...filter.kinds] } });
    const out: Schemas["Filter"] = { must };
    // With `must`, a `should` requires at least one of its conditions as well.
    if (filter.stack) out.should = [match("stack", filter.stack), { is_null: { key: "stack" } }];
    return out;
  }

  private toPayload(e: KnowledgeEntry): Payload {
    return {
      id: e.id,
      kind: e.kind,
      repo: e.repo,
      stack: e.stack ?? null,
      title: e.title,
      text: e.text,
      resolution: e.resolution ?? null,
      url: e.url ?? null,
      occurred_at: e.occurredAt,
      ...(this.embedder ? { embedder: this.embedder } : {}),
    };
  }

  /** The collection's description, or null when Qdrant says it does not exist. */
  private async collectionInfo(): Promise<Schemas["CollectionInfo"] | null> {
    try {
      return await this.call("get collection", () => this.client.getCollection(this.collection));
    } catch (err) {
      if (err instanceof KnowledgeStoreError && err.status === 404) return null;
      throw err;
    }
  }

  private checkVectors(info: Schemas["CollectionInfo"]): void {
    const vectors = info.config?.params?.vectors as { size?: unknown; distance?: unknown } | Record<string, unknown> | undefined;
    const where = `qdrant: collection "${this.collection}"`;
    if (!vectors || typeof vectors.size !== "number") {
      throw new KnowledgeStoreError(
        `${where} has no single unnamed vector (named vectors: ${Object.keys(vectors ?? {}).join(", ") || "none"}); ` +
          `use another collection or recreate it with vectors of size ${this.dimensions}`,
        "dimension_mismatch",
      );
    }
    if (vectors.size !== this.dimensions) {
      throw new KnowledgeStoreError(
        `${where} holds vectors of size ${vectors.size} but the embedder produces ${this.dimensions}; ` +
          `it was built by another embedder: use another collection name or delete the collection to rebuild it`,
        "dimension_mismatch",
      );
    }
    if (vectors.distance !== "Cosine" && vectors.distance !== "Dot") {
      throw new KnowledgeStoreError(
        `${where} uses ${String(vectors.distance)} distance; the knowledge base needs Cosine (or Dot on normalised vectors)`,
        "dimension_mismatch",
      );
    }
  }

  /** Runs one client call; any failure becomes a KnowledgeStoreError with the status Qdrant answered. */
  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const { status, detail } = describe(err, this.timeoutMs);
      const message = `qdrant: ${op} on collection "${this.collection}" failed: ${status ? `${status} ` : ""}${detail}`;
      throw new KnowledgeStoreError(this.redact(message), "request_failed", { ...(status ? { status } : {}), cause: err });
    }
  }

  private redact(s: string): string {
    return this.apiKey ? s.split(this.apiKey).join("[redacted]") : s;
  }
}

function match(key: string, value: string): Schemas["Condition"] {
  return { key, match: { value } };
}

/** Status and a one-line reason of whatever the client threw. */
function describe(err: unknown, timeoutMs: number): { status: number | undefined; detail: string } {
  const e = err as { name?: string; message?: string; status?: unknown; data?: unknown; cause?: { code?: string; message?: string } };
  // ApiError of the generated fetcher: the HTTP status and Qdrant's JSON ({status: {error}}).
  if (typeof e?.status === "number") {
    const data = e.data as { status?: { error?: unknown } | string } | string | undefined;
    let reason: string | undefined;
    if (data && typeof data === "object" && data.status && typeof data.status === "object" && typeof data.status.error === "string") {
      reason = data.status.error;
    } else if (typeof data === "string" && data.trim()) {
      reason = data.trim();
    }
    return { status: e.status, detail: truncate(reason ?? e.message ?? "error") };
  }
  if (e?.name === "QdrantClientTimeoutError") return { status: undefined, detail: `timed out after ${timeoutMs} ms` };
  if (e?.name === "QdrantClientResourceExhaustedError") return { status: 429, detail: truncate(e.message ?? "rate limited") };
  // A 2xx other than 200/201: the client's own error carries the status in its message.
  const m = /^Unexpected Response: (\d{3})/.exec(e?.message ?? "");
  if (m) return { status: Number(m[1]), detail: truncate(e.message!.split("\n")[0]!) };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return { status: undefined, detail: truncate(`${e?.message ?? String(err)}${cause ? ` (${cause})` : ""}`) };
}

function truncate(s: string): string {
  const line = s.replace(/\s+/g, " ").trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

function fromPayload(p: Payload | null | undefined): KnowledgeEntry | null {
  if (!p || typeof p.id !== "string" || typeof p.repo !== "string") return null;
  const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
  const kind = KINDS.includes(p.kind as KnowledgeKind) ? (p.kind as KnowledgeKind) : null;
  if (!kind) return null;
  return {
    id: p.id,
    kind,
    repo: p.repo,
    stack: str(p.stack),
    title: str(p.title) ?? "",
    text: str(p.text) ?? "",
    resolution: str(p.resolution),
    url: str(p.url),
    occurredAt: str(p.occurred_at) ?? "",
  };
}
