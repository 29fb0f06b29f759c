/**
 * The knowledge base's vector store: Qdrant when configured (QDRANT_URL), PostgreSQL otherwise.
 * Both keep the same entries with the same ids and answer the same filters.
 */
import type { VectorStore } from "../../domain/diagnose.js";
import type { Db } from "../store/db.js";
import { PgVectorStore } from "./pg-store.js";
import { QdrantVectorStore } from "./qdrant-store.js";

export { KnowledgeStoreError, type KnowledgeStoreErrorCode } from "./errors.js";
export { PgVectorStore, type PgVectorStoreOptions } from "./pg-store.js";
export { QdrantVectorStore, pointId, type QdrantVectorStoreOptions } from "./qdrant-store.js";

/** Default per-request timeout towards Qdrant. */
export const DEFAULT_QDRANT_TIMEOUT_MS = 10_000;

export function createVectorStore(opts: {
  qdrant?: { url: string; apiKey?: string; collection: string; timeoutMs?: number } | null;
  db: Db;
  dimensions: number;
  embedder: string;
}): VectorStore {
  if (opts.qdrant) {
    return new QdrantVectorStore({
      url: opts.qdrant.url,
      ...(opts.qdrant.apiKey ? { apiKey: opts.qdrant.apiKey } : {}),
      collection: opts.qdrant.collection,
      dimensions: opts.dimensions,
      timeoutMs: opts.qdrant.timeoutMs ?? DEFAULT_QDRANT_TIMEOUT_MS,
      embedder: opts.embedder,
    });
  }
  return new PgVectorStore(opts.db, { dimensions: opts.dimensions, embedder: opts.embedder });
}
