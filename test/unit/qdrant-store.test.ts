import { createServer, type AddressInfo } from "node:net";
import nock from "nock";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createVectorStore, KnowledgeStoreError, pointId, QdrantVectorStore } from "../../src/connectors/knowledge/index.js";
import type { Db } from "../../src/connectors/store/db.js";
import type { KnowledgeEntry } from "../../src/domain/diagnose.js";

const QDRANT = "https://qdrant.test:6333";
const API_KEY = "qdrant-key-ThatMustNeverAppearInErrors";
const COLLECTION = "agent_knowledge";
const C = `/collections/${COLLECTION}`;

/** Qdrant's envelope around every successful answer. */
const ok = (result: unknown) => ({ result, status: "ok", time: 0.001 });
const completed = (operation_id: number) => ok({ operation_id, status: "completed" });
/** Qdrant's envelope of an error. */
const failed = (error: string) => ({ status: { error }, time: 0.0001 });

/** GET /collections/{name} as Qdrant answers it for a collection of one unnamed vector. */
function collectionInfo(size: number, payloadSchema: Record<string, unknown> = {}, distance = "Cosine") {
  return ok({
    status: "green",
    optimizer_status: "ok",
    indexed_vectors_count: 0,
    points_count: 0,
    segments_count: 2,
    config: {
      params: { vectors: { size, distance }, shard_number: 1, replication_factor: 1, write_consistency_factor: 1, on_disk_payload: true },
      hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false },
      optimizer_config: { deleted_threshold: 0.2, vacuum_min_vector_number: 1000, default_segment_number: 0, flush_interval_sec: 5 },
      wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
      quantization_config: null,
    },
    payload_schema: payloadSchema,
  });
}

const keyword = (points = 0) => ({ data_type: "keyword", points });

function store(opts: { apiKey?: string; embedder?: string; dimensions?: number } = {}): QdrantVectorStore {
  return new QdrantVectorStore({
    url: QDRANT,
    collection: COLLECTION,
    dimensions: opts.dimensions ?? 4,
    timeoutMs: 5_000,
    ...(opts.apiKey === undefined ? { apiKey: API_KEY } : opts.apiKey ? { apiKey: opts.apiKey } : {}),
    ...(opts.embedder ? { embedder: opts.embedder } : {}),
  });
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

/** A nock body matcher that records what was sent. */
function capture(into: unknown[]) {
  return (body: unknown) => {
    into.push(body);
    return true;
  };
}

const authed = () => nock(QDRANT, { reqheaders: { "api-key": API_KEY } });

beforeAll(() => {
  nock.disableNetConnect();
});

afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});

afterAll(() => {
  nock.enableNetConnect();
});

describe("pointId", () => {
  it("maps a stable id to the same RFC 4122 UUID every time", () => {
    // Fixed values: changing the derivation would duplicate every point of existing collections.
    expect(pointId("failure:1")).toBe("4e4bc5d8-97c9-52a3-9d17-f5079adf2c0f");
    expect(pointId("runbook:acme/infra:docs/ops.md#redis")).toBe("fb36a84b-c1ac-5514-aa7a-c0166ba12870");
    expect(pointId("issue:acme/infra#7")).toBe(pointId("issue:acme/infra#7"));
    expect(pointId("issue:acme/infra#7")).not.toBe(pointId("issue:acme/infra#8"));
    for (const id of ["a", "failure:00000000-0000-0000-0000-000000000000", "ünïcødé"]) {
      expect(pointId(id)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  });
});

describe("QdrantVectorStore.ensure", () => {
  it("creates a missing collection with the vectors config, then the keyword payload indexes", async () => {
    const created: unknown[] = [];
    const indexes: unknown[] = [];
    const scope = authed()
      .get(C)
      .reply(404, failed(`Not found: Collection \`${COLLECTION}\` doesn't exist!`))
      .put(C, capture(created))
      .reply(200, ok(true))
      .get(C)
      .reply(200, collectionInfo(4))
      .put(`${C}/index`, capture(indexes))
      .query({ wait: "true" })
      .times(3)
      .reply(200, completed(1));

    await store().ensure();

    expect(scope.isDone()).toBe(true);
    expect(created).toEqual([{ vectors: { size: 4, distance: "Cosine" } }]);
    expect(indexes).toEqual([
      { field_name: "repo", field_schema: "keyword" },
      { field_name: "stack", field_schema: "keyword" },
      { field_name: "kind", field_schema: "keyword" },
    ]);
  });

  it("indexes the embedder field too when an embedder is configured", async () => {
    const indexes: Array<{ field_name: string }> = [];
    authed()
      .get(C)
      .reply(200, collectionInfo(4, { repo: keyword(), stack: keyword(), kind: keyword() }))
      .put(`${C}/index`, capture(indexes))
      .query({ wait: "true" })
      .reply(200, completed(2));
    await store({ embedder: "hash-v1" }).ensure();
    expect(indexes).toEqual([{ field_name: "embedder", field_schema: "keyword" }]);
  });

  it("is idempotent: an existing collection with its indexes gets no writes; missing indexes are added", async () => {
    // Only the GET is mocked: any PUT would find no interceptor and fail the call.
    authed().get(C).reply(200, collectionInfo(4, { repo: keyword(3), stack: keyword(3), kind: keyword(3) }));
    await store().ensure();

    const indexes: unknown[] = [];
    authed()
      .get(C)
      .reply(200, collectionInfo(4, { repo: keyword(3), stack: { data_type: "text", points: 3 } }))
      .put(`${C}/index`, capture(indexes))
      .query({ wait: "true" })
      .times(2)
      .reply(200, completed(3));
    await store().ensure();
    expect(indexes).toEqual([
      { field_name: "stack", field_schema: "keyword" },
      { field_name: "kind", field_schema: "keyword" },
    ]);
  });

  it("accepts a collection created concurrently by another replica (409 on create)", async () => {
    authed()
      .get(C)
      .reply(404, failed(`Not found: Collection \`${COLLECTION}\` doesn't exist!`))
      .put(C)
      .reply(409, failed(`Wrong input: Collection \`${COLLECTION}\` already exists!`))
      .get(C)
      .reply(200, collectionInfo(4, { repo: keyword(), stack: keyword(), kind: keyword() }));
    await expect(store().ensure()).resolves.toBeUndefined();
  });

  it("refuses a collection whose vectors have another size, explaining the mismatch, and writes nothing", async () => {
    authed().get(C).reply(200, collectionInfo(1536));
    const err = await store().ensure().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KnowledgeStoreError);
    expect((err as KnowledgeStoreError).code).toBe("dimension_mismatch");
    expect((err as Error).message).toContain(`collection "${COLLECTION}" holds vectors of size 1536 but the embedder produces 4`);
  });

  it("refuses a collection of named vectors or of Euclid distance", async () => {
    authed()
      .get(C)
      .reply(200, ok({ ...(collectionInfo(4).result as Record<string, unknown>), config: { params: { vectors: { dense: { size: 4, distance: "Cosine" } } } } }));
    const named = await store().ensure().catch((e: unknown) => e);
    expect((named as KnowledgeStoreError).code).toBe("dimension_mismatch");
    expect((named as Error).message).toContain("named vectors: dense");

    authed().get(C).reply(200, collectionInfo(4, {}, "Euclid"));
    const euclid = await store().ensure().catch((e: unknown) => e);
    expect((euclid as Error).message).toContain("uses Euclid distance");
  });

  it("turns a 500 into a KnowledgeStoreError with the status and Qdrant's reason, never the API key", async () => {
    authed().get(C).reply(500, failed(`Service internal error: RocksDB write failed (api-key ${API_KEY})`));
    const err = await store().ensure().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KnowledgeStoreError);
    expect((err as KnowledgeStoreError).status).toBe(500);
    expect((err as KnowledgeStoreError).code).toBe("request_failed");
    expect((err as Error).message).toContain(`qdrant: get collection on collection "${COLLECTION}" failed: 500 Service internal error: RocksDB write failed`);
    expect((err as Error).message).not.toContain(API_KEY);
  });

  it("turns a 403 on creating the collection into a KnowledgeStoreError", async () => {
    authed()
      .get(C)
      .reply(404, failed("Not found"))
      .put(C)
      .reply(403, failed("Forbidden: read-only API key"));
    const err = await store().ensure().catch((e: unknown) => e);
    expect((err as KnowledgeStoreError).status).toBe(403);
    expect((err as Error).message).toContain("create collection");
    expect((err as Error).message).toContain("read-only API key");
  });

  it("turns a refused connection into a KnowledgeStoreError without status", async () => {
    // A port that was just free: a real ECONNREFUSED, answered at once.
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((r) => server.close(() => r()));
    nock.enableNetConnect("127.0.0.1");
    try {
      const s = new QdrantVectorStore({ url: `http://127.0.0.1:${port}`, collection: COLLECTION, dimensions: 4, timeoutMs: 30_000 });
      const err = await s.ensure().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KnowledgeStoreError);
      expect((err as KnowledgeStoreError).status).toBeUndefined();
      expect((err as Error).message).toMatch(/get collection on collection "agent_knowledge" failed: .*ECONNREFUSED/);
    } finally {
      nock.disableNetConnect();
    }
  });
});

describe("QdrantVectorStore: points", () => {
  it("upserts with wait=true, deterministic UUIDs and the entry as payload; re-indexing sends the same ids", async () => {
    const bodies: unknown[] = [];
    authed()
      .put(`${C}/points`, capture(bodies))
      .query({ wait: "true" })
      .twice()
      .reply(200, completed(7));
    const e1 = entry("failure:1", { resolution: "fixed by #42", url: "https://github.com/acme/infra/pull/42" });
    const e2 = entry("runbook:acme/infra:docs/ops.md#redis", { kind: "runbook", stack: null, title: "Redis" });
    const s = store({ embedder: "hash-v1" });
    await s.upsert([e1, e2], [[1, 0, 0, 0], [0, 0.6, 0.8, 0]]);
    await s.upsert([{ ...e1, title: "changed" }], [[0, 1, 0, 0]]);

    expect(bodies[0]).toEqual({
      points: [
        {
          id: "4e4bc5d8-97c9-52a3-9d17-f5079adf2c0f",
          vector: [1, 0, 0, 0],
          payload: {
            id: "failure:1",
            kind: "failure",
            repo: "acme/infra",
            stack: "prod",
            title: "title of failure:1",
            text: "text of failure:1",
            resolution: "fixed by #42",
            url: "https://github.com/acme/infra/pull/42",
            occurred_at: "2025-01-15T12:00:00.000Z",
            embedder: "hash-v1",
          },
        },
        {
          id: "fb36a84b-c1ac-5514-aa7a-c0166ba12870",
          vector: [0, 0.6, 0.8, 0],
          payload: {
            id: "runbook:acme/infra:docs/ops.md#redis",
            kind: "runbook",
            repo: "acme/infra",
            stack: null,
            title: "Redis",
            text: "text of runbook:acme/infra:docs/ops.md#redis",
            resolution: null,
            url: null,
            occurred_at: "2025-01-15T12:00:00.000Z",
            embedder: "hash-v1",
          },
        },
      ],
    });
    const second = bodies[1] as { points: Array<{ id: string; payload: { title: string } }> };
    expect(second.points.map((p) => p.id)).toEqual(["4e4bc5d8-97c9-52a3-9d17-f5079adf2c0f"]);
    expect(second.points[0]!.payload.title).toBe("changed");
  });

  it("splits big upserts into requests of 256 points", async () => {
    const sizes: number[] = [];
    authed()
      .put(`${C}/points`, (b: { points: unknown[] }) => {
        sizes.push(b.points.length);
        return true;
      })
      .query({ wait: "true" })
      .times(3)
      .reply(200, completed(8));
    const entries = Array.from({ length: 600 }, (_, i) => entry(`failure:${i}`));
    await store().upsert(entries, entries.map(() => [0.5, 0.5, 0.5, 0.5]));
    expect(sizes).toEqual([256, 256, 88]);
  });

  it("rejects vectors of the wrong length before sending anything", async () => {
    const err = await store().upsert([entry("a"), entry("b")], [[1, 0, 0, 0], [1, 0, 0]]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KnowledgeStoreError);
    expect((err as KnowledgeStoreError).code).toBe("dimension_mismatch");
    expect((err as Error).message).toContain('"b" has 3 dimensions, the store expects 4');
    await expect(store().search([1, 0], { repo: "acme/infra" }, 3)).rejects.toBeInstanceOf(KnowledgeStoreError);
  });

  it("turns a failed upsert into a KnowledgeStoreError with Qdrant's status", async () => {
    authed()
      .put(`${C}/points`)
      .query({ wait: "true" })
      .reply(400, failed("Wrong input: Vector dimension error: expected dim: 8, got 4"));
    const err = await store().upsert([entry("a")], [[1, 0, 0, 0]]).catch((e: unknown) => e);
    expect((err as KnowledgeStoreError).status).toBe(400);
    expect((err as Error).message).toContain("upsert");
    expect((err as Error).message).toContain("expected dim: 8, got 4");
  });

  it("searches with the repo, kinds and stack-or-null filter and maps the payload back", async () => {
    const bodies: unknown[] = [];
    authed()
      .post(`${C}/points/query`, capture(bodies))
      .reply(
        200,
        ok({
          points: [
            {
              id: pointId("failure:1"),
              version: 3,
              score: 0.93,
              payload: {
                id: "failure:1",
                kind: "failure",
                repo: "acme/infra",
                stack: "prod",
                title: "preview failed on prod",
                text: "Error: connection refused",
                resolution: "fixed by #42",
                url: "https://github.com/acme/infra/pull/42",
                occurred_at: "2025-01-15T12:00:00.000Z",
                embedder: "hash-v1",
              },
            },
            {
              id: pointId("runbook:acme/infra:ops.md#redis"),
              version: 1,
              score: 0.41,
              payload: {
                id: "runbook:acme/infra:ops.md#redis",
                kind: "runbook",
                repo: "acme/infra",
                stack: null,
                title: "Redis",
                text: "restart it",
                resolution: null,
                url: null,
                occurred_at: "2025-01-10T00:00:00.000Z",
              },
            },
            // A point not written by this store (no id in its payload) is skipped.
            { id: 17, version: 1, score: 0.4, payload: { note: "foreign" } },
          ],
        }),
      );
    const hits = await store({ embedder: "hash-v1" }).search([0.5, 0.5, 0.5, 0.5], { repo: "acme/infra", stack: "prod", kinds: ["failure", "runbook"] }, 5);

    expect(bodies).toEqual([
      {
        query: [0.5, 0.5, 0.5, 0.5],
        filter: {
          must: [
            { key: "repo", match: { value: "acme/infra" } },
            { key: "embedder", match: { value: "hash-v1" } },
            { key: "kind", match: { any: ["failure", "runbook"] } },
          ],
          should: [{ key: "stack", match: { value: "prod" } }, { is_null: { key: "stack" } }],
        },
        limit: 5,
        with_payload: true,
        with_vector: false,
      },
    ]);
    expect(hits).toEqual([
      {
        score: 0.93,
        entry: {
          id: "failure:1",
          kind: "failure",
          repo: "acme/infra",
          stack: "prod",
          title: "preview failed on prod",
          text: "Error: connection refused",
          resolution: "fixed by #42",
          url: "https://github.com/acme/infra/pull/42",
          occurredAt: "2025-01-15T12:00:00.000Z",
        },
      },
      {
        score: 0.41,
        entry: {
          id: "runbook:acme/infra:ops.md#redis",
          kind: "runbook",
          repo: "acme/infra",
          stack: null,
          title: "Redis",
          text: "restart it",
          resolution: null,
          url: null,
          occurredAt: "2025-01-10T00:00:00.000Z",
        },
      },
    ]);
  });

  it("searches the whole repo when no stack or kinds are given", async () => {
    const bodies: Array<{ filter: unknown }> = [];
    authed()
      .post(`${C}/points/query`, capture(bodies))
      .twice()
      .reply(200, ok({ points: [] }));
    expect(await store().search([1, 0, 0, 0], { repo: "acme/infra" }, 3)).toEqual([]);
    await store().search([1, 0, 0, 0], { repo: "acme/infra", stack: null, kinds: [] }, 3);
    expect(bodies.map((b) => b.filter)).toEqual([
      { must: [{ key: "repo", match: { value: "acme/infra" } }] },
      { must: [{ key: "repo", match: { value: "acme/infra" } }] },
    ]);
  });

  it("removes points by their derived ids with wait=true; nothing is sent for no ids", async () => {
    const bodies: unknown[] = [];
    authed()
      .post(`${C}/points/delete`, capture(bodies))
      .query({ wait: "true" })
      .reply(200, completed(9));
    await store().remove(["failure:1", "runbook:acme/infra:docs/ops.md#redis", "failure:1"]);
    await store().remove([]);
    expect(bodies).toEqual([{ points: ["4e4bc5d8-97c9-52a3-9d17-f5079adf2c0f", "fb36a84b-c1ac-5514-aa7a-c0166ba12870"] }]);
  });

  it("lists ids by scrolling with a filter, following next_page_offset to the end", async () => {
    const bodies: unknown[] = [];
    const page1 = ["runbook:acme/infra:b.md#x", "runbook:acme/infra:a.md#y"];
    const page2 = ["runbook:acme/infra:c.md#z"];
    const points = (ids: string[]) => ids.map((id) => ({ id: pointId(id), payload: { id } }));
    authed()
      .post(`${C}/points/scroll`, capture(bodies))
      .reply(200, ok({ points: points(page1), next_page_offset: pointId(page2[0]!) }))
      .post(`${C}/points/scroll`, capture(bodies))
      .reply(200, ok({ points: points(page2), next_page_offset: null }));

    expect(await store().listIds("acme/infra", "runbook")).toEqual(["runbook:acme/infra:a.md#y", "runbook:acme/infra:b.md#x", "runbook:acme/infra:c.md#z"]);
    const filter = { must: [{ key: "repo", match: { value: "acme/infra" } }, { key: "kind", match: { value: "runbook" } }] };
    expect(bodies).toEqual([
      { filter, limit: 256, with_payload: ["id"], with_vector: false },
      { filter, limit: 256, with_payload: ["id"], with_vector: false, offset: pointId(page2[0]!) },
    ]);
  });

  it("sends no api-key header when none is configured", async () => {
    nock(QDRANT, { badheaders: ["api-key"] })
      .post(`${C}/points/scroll`)
      .reply(200, ok({ points: [], next_page_offset: null }));
    expect(await store({ apiKey: "" }).listIds("acme/infra", "failure")).toEqual([]);
  });
});

describe("createVectorStore", () => {
  it("chooses Qdrant when configured", () => {
    const db = {} as Db;
    const q = createVectorStore({ qdrant: { url: QDRANT, apiKey: API_KEY, collection: COLLECTION }, db, dimensions: 4, embedder: "hash-v1" });
    expect(q).toBeInstanceOf(QdrantVectorStore);
    expect(q.name).toBe("qdrant");
    expect(createVectorStore({ qdrant: null, db, dimensions: 4, embedder: "hash-v1" }).name).toBe("postgres");
  });

  it("rejects an unusable Qdrant URL with a typed error", () => {
    expect(() => new QdrantVectorStore({ url: "qdrant.test:6333", collection: COLLECTION, dimensions: 4, timeoutMs: 1000 })).toThrow(KnowledgeStoreError);
  });
});
