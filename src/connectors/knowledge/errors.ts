/**
 * The typed error of the knowledge-base stores (Qdrant and PostgreSQL). Messages name the
 * store, the collection or table and what went wrong, never an API key, so they can be logged
 * and shown as they are.
 */

export type KnowledgeStoreErrorCode =
  /** A vector's length is not the store's dimensions, or a collection was built with another size/metric. */
  | "dimension_mismatch"
  /** The arguments are unusable (entries and vectors of different lengths, a non-finite number). */
  | "invalid_input"
  /** The table or collection is missing and cannot be created from here (migrations not run). */
  | "not_ready"
  /** The store answered with an error, timed out or could not be reached. */
  | "request_failed";

export class KnowledgeStoreError extends Error {
  override name = "KnowledgeStoreError";
  readonly code: KnowledgeStoreErrorCode;
  /** The HTTP status Qdrant answered with, when it answered. */
  readonly status: number | undefined;
  constructor(message: string, code: KnowledgeStoreErrorCode, opts: { status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = opts.status;
  }
}

/** Checks what both stores require of an upsert; throws a KnowledgeStoreError otherwise. */
export function checkUpsertInput(store: string, dimensions: number, ids: string[], vectors: number[][]): void {
  if (ids.length !== vectors.length) {
    throw new KnowledgeStoreError(
      `${store}: ${ids.length} entries but ${vectors.length} vectors; each entry needs exactly one vector`,
      "invalid_input",
    );
  }
  vectors.forEach((v, i) => {
    if (!Array.isArray(v) || v.length !== dimensions) {
      throw new KnowledgeStoreError(
        `${store}: the vector of ${JSON.stringify(ids[i])} has ${Array.isArray(v) ? v.length : "no"} dimensions, the store expects ${dimensions}`,
        "dimension_mismatch",
      );
    }
    if (!v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      throw new KnowledgeStoreError(`${store}: the vector of ${JSON.stringify(ids[i])} holds a non-finite number`, "invalid_input");
    }
  });
}

/** Checks a query vector's length. */
export function checkQueryVector(store: string, dimensions: number, vector: number[]): void {
  if (!Array.isArray(vector) || vector.length !== dimensions) {
    throw new KnowledgeStoreError(
      `${store}: the query vector has ${Array.isArray(vector) ? vector.length : "no"} dimensions, the store expects ${dimensions}`,
      "dimension_mismatch",
    );
  }
  if (!vector.every((x) => typeof x === "number" && Number.isFinite(x))) {
    throw new KnowledgeStoreError(`${store}: the query vector holds a non-finite number`, "invalid_input");
  }
}
