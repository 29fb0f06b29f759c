/**
 * Builds the diagnostics runtime of a worker: the embedder from DIAGNOSE_CONFIG, the vector
 * store (Qdrant when QDRANT_URL is set, else PostgreSQL) and the knowledge base over them.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { DiagnoseSettings } from "../config/diagnose-config.js";
import { createVectorStore } from "../connectors/knowledge/index.js";
import type { Db } from "../connectors/store/db.js";
import { createEmbedder } from "./embedder.js";
import { KnowledgeBase } from "./knowledge.js";

/** What a worker needs to diagnose, built once at start by createDiagnoseRuntime. */
export interface DiagnoseRuntime {
  settings: DiagnoseSettings;
  kb: KnowledgeBase;
  /** The app's Redis connection, for the Redis probe when it has no URL of its own. */
  redis: Redis;
  /** Resolves once the vector store's collection/table exists (retried after a failure). */
  ready(): Promise<void>;
}

export async function createDiagnoseRuntime(
  settings: DiagnoseSettings,
  opts: { db: Db; redis: Redis; log: Logger; webBaseUrl: string; env?: NodeJS.ProcessEnv },
): Promise<DiagnoseRuntime> {
  const env = opts.env ?? process.env;
  const secrets = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === "string"));
  const embedder = createEmbedder(settings.config.embedder, secrets);
  const store = createVectorStore({ qdrant: settings.qdrant, db: opts.db, dimensions: embedder.dimensions, embedder: embedder.name });
  // The collection is created at start; if the store is down now, the first diagnosis tries again.
  let ensured: Promise<void> | null = null;
  const ready = (): Promise<void> => {
    if (ensured) return ensured;
    const attempt = store.ensure();
    ensured = attempt;
    attempt.catch((err: unknown) => {
      opts.log.warn({ err: (err as Error).message, store: store.name }, "knowledge base store is not ready; will retry on the next diagnosis");
      if (ensured === attempt) ensured = null;
    });
    return attempt;
  };
  void ready().catch(() => {});
  const kb = new KnowledgeBase(opts.db, store, embedder, opts.webBaseUrl);
  opts.log.info({ store: store.name, embedder: embedder.name, dimensions: embedder.dimensions }, "diagnostics ready");
  return {
    settings,
    kb,
    redis: opts.redis,
    ready,
  };
}
