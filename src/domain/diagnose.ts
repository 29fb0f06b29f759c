/**
 * The contracts of issue diagnostics: an embedder turns text into vectors, a vector store keeps
 * the knowledge base (past failures, their fixes, runbook sections, resolved diagnostic issues),
 * and probes report on the services a stack depends on. Implementations live in
 * src/diagnose/embedder.ts, src/connectors/knowledge/ and src/diagnose/probes/.
 */

/** Turns texts into fixed-size vectors; the same text always gives the same vector. */
export interface Embedder {
  /** Stable name recorded with the collection, so a store built by another embedder is noticed. */
  readonly name: string;
  /** Vector length. */
  readonly dimensions: number;
  /** One vector per text, in order. Vectors are L2-normalised (cosine = dot product). */
  embed(texts: string[]): Promise<number[][]>;
}

/** What a knowledge-base entry is. */
export type KnowledgeKind = "failure" | "runbook" | "issue";

/** The payload kept with each vector. */
export interface KnowledgeEntry {
  /**
   * Stable id: the same source always maps to the same id, so re-indexing overwrites instead of
   * duplicating (e.g. `failure:<task uuid>`, `runbook:<repo>:<path>#<heading slug>`, `issue:<repo>#<n>`).
   */
  id: string;
  kind: KnowledgeKind;
  repo: string;
  /** Null when the entry is not about one stack (runbooks, most issues). */
  stack: string | null;
  /** Short human title: "preview failed on prod at step preview", a runbook heading, an issue title. */
  title: string;
  /** The text that was embedded (error excerpt, runbook section, issue body), already redacted. */
  text: string;
  /** What fixed it, when known: "fixed by #42 (deployed 2026-11-20)", a runbook's steps, the closing comment. */
  resolution: string | null;
  /** Where it was resolved or where to read more (PR, issue, runbook file on the default branch). */
  url: string | null;
  /** ISO time the source happened (the failure, the commit, the close). */
  occurredAt: string;
}

export interface SearchHit {
  entry: KnowledgeEntry;
  /** Cosine similarity in [-1, 1]; higher is closer. */
  score: number;
}

export interface SearchFilter {
  repo: string;
  /** When set, entries of this stack and entries with no stack match; otherwise every entry of the repo. */
  stack?: string | null;
  kinds?: KnowledgeKind[];
}

/** The knowledge base's storage: Qdrant when QDRANT_URL is set, PostgreSQL otherwise. */
export interface VectorStore {
  readonly name: "qdrant" | "postgres";
  /** Creates the collection/table and indexes if missing. Idempotent; call once at start. */
  ensure(): Promise<void>;
  /** Inserts or replaces entries by id. `vectors[i]` belongs to `entries[i]`. */
  upsert(entries: KnowledgeEntry[], vectors: number[][]): Promise<void>;
  /** Removes entries by id (e.g. runbook sections that no longer exist). Unknown ids are ignored. */
  remove(ids: string[]): Promise<void>;
  /** Ids currently stored for a repo and kind (to find stale runbook sections). */
  listIds(repo: string, kind: KnowledgeKind): Promise<string[]>;
  /** The `limit` closest entries matching the filter, best first. */
  search(vector: number[], filter: SearchFilter, limit: number): Promise<SearchHit[]>;
}

export type ProbeStatus = "OK" | "DEGRADED" | "DOWN";

export interface ProbeResult {
  /** e.g. "redis", "postgres", "neon", "qdrant", "lambda-labs", "estuary", "pulumi". */
  name: string;
  status: ProbeStatus;
  /** One line: why it is DEGRADED/DOWN, or a short summary when OK. Never contains a secret. */
  reason: string;
  /** A few facts worth a table cell (latency, memory, queue counts, instance states). */
  details: Array<{ label: string; value: string }>;
  /** How long the probe took. */
  durationMs: number;
}

/** One service check; the runner applies the timeout and turns a throw into DOWN. */
export interface Probe {
  readonly name: string;
  run(signal: AbortSignal): Promise<Omit<ProbeResult, "name" | "durationMs">>;
}
