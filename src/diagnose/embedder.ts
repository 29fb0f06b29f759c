/**
 * Embedders of the knowledge base.
 *
 * - HashingEmbedder (default): feature hashing of a normalised log (./log-text.ts) — word
 *   unigrams, word bigrams (within a line) and character 3–5-grams of words, sublinear tf,
 *   generic log words down-weighted, tokens of lines that do not state an error down-weighted,
 *   signed hashing into a fixed number of dimensions, L2-normalised. Local, fast, deterministic;
 *   no model, no network.
 * - OpenAiCompatibleEmbedder: any server speaking the OpenAI embeddings API (`POST /embeddings`).
 *
 * createEmbedder builds one from the `embedder` section of DIAGNOSE_CONFIG.
 */
import { z } from "zod";
import type { EmbedderConfig } from "../config/diagnose-config.js";
import { charNgrams, isPlaceholder, normaliseLog, wordTokens } from "./log-text.js";
import type { Embedder } from "../domain/diagnose.js";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

export type EmbedderErrorReason =
  /** Configuration is incomplete (e.g. the API key variable is not set). */
  | "config"
  /** No answer within the timeout. */
  | "timeout"
  /** The request did not reach the server (DNS, refused, reset). */
  | "network"
  /** 401/403: the key was rejected. */
  | "auth"
  /** Any other non-2xx status. */
  | "http"
  /** 2xx with a body that is not an embeddings response for the inputs sent. */
  | "invalid_response"
  /** Vectors of another length than configured. */
  | "dimensions";

/** An embedder failure. Messages never contain the API key. */
export class EmbedderError extends Error {
  override name = "EmbedderError";
  constructor(
    readonly reason: EmbedderErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/** Scales a vector to unit length in place; the zero vector stays zero. */
export function l2Normalise(v: number[] | Float64Array): number[] {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  const norm = Math.sqrt(sum);
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) out[i] = norm > 0 ? v[i]! / norm : 0;
  return out;
}

/** Dot product (cosine similarity of unit vectors). */
export function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) s += a[i]! * b[i]!;
  return s;
}

/** 32-bit FNV-1a over UTF-16 code units, then murmur3's fmix32 so the low bits are well mixed. */
export function hash32(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// ---------------------------------------------------------------------------------------------
// HashingEmbedder
// ---------------------------------------------------------------------------------------------

/**
 * Words that occur in almost every failing CI log, whatever the cause, plus English function
 * words. They keep a small weight (IDF-like) so they still count when nothing else matches,
 * and contribute no character n-grams.
 */
export const GENERIC_LOG_WORDS: ReadonlySet<string> = new Set(
  (
    // English function words
    "a an the and or but not no nor of to in on at by for from with without into onto as is are was were be been being " +
    "it its this that these those there here then than so if else when while which who what where how why do does did done " +
    "has have had can could will would should may might must shall we you he she they them our your their my me us " +
    "all any some each every more most other such only own same too very just also again about above after before " +
    "up down out over under off once during per via use used using see check please try " +
    // Log levels and generic outcome words
    "error errors err failed fail fails failure failing fatal info information warn warning warnings debug trace notice " +
    "critical crit log logs logger message msg ok done success successful succeeded complete completed finished " +
    "start started starting run runs running ran step steps job jobs task tasks stage status result results " +
    "exit exited code process command cmd returned return non zero true false null undefined none " +
    "line file files at new get set time elapsed took total duration " +
    // CI plumbing present in every run
    "github actions runner workflow workspace home work ci build details stack stacks " +
    // Placeholders left by normaliseLog
    "_num_ _hex_ _uuid_ _ip_ _port_ _dur_ _id_ _tmp_"
  ).split(/\s+/),
);

export interface HashingEmbedderOptions {
  /** Vector length (default 1024). */
  dimensions?: number;
}

/** Relative weights of the feature groups (each group's tf is sublinear, then scaled). */
const WEIGHTS = {
  unigram: 1,
  bigram: 0.8,
  /** Per n-gram; a word has many, so each one counts little. */
  chargram: 0.25,
  /** Multiplier for GENERIC_LOG_WORDS (and bigrams made only of them). */
  generic: 0.08,
  /** Multiplier for the tokens of lines that do not look like error lines. */
  contextLine: 0.5,
};

/** Lines that state a failure (matched on normalised, lowercased text). */
export const ERROR_LINE =
  /\b(?:error|errors|err|fatal|failed|failure|fail|exception|panic|refused|denied|forbidden|unauthori[sz]ed|exceeded|expired|killed|oomkilled|timeout|timed out|not found|cannot|can't|could not|couldn't|unable|invalid|conflict|locked|assertionerror|traceback)\b|[✖×✗⨯]/;
const SEED = { unigram: 0x9e3779b9, bigram: 0x7f4a7c15, chargram: 0x2545f491 };
/** Words longer than this give no character n-grams (paths, base64, minified code). */
const MAX_CHARGRAM_WORD = 40;

/** Feature hashing of normalised logs; see the module comment. */
export class HashingEmbedder implements Embedder {
  readonly name: string;
  readonly dimensions: number;

  constructor(opts: HashingEmbedderOptions = {}) {
    const dims = opts.dimensions ?? 1024;
    if (!Number.isInteger(dims) || dims < 1) throw new EmbedderError("config", `dimensions must be a positive integer, got ${dims}`);
    this.dimensions = dims;
    // The dimension is part of the name: vectors of another size live in another collection.
    this.name = `hashing-v1-${dims}`;
  }

  async embed(texts: string[]): Promise<number[][]> {
    return texts.map((t) => this.embedOne(t));
  }

  /** Synchronous form of embed() for one text. */
  embedOne(text: string): number[] {
    // Counts are weighted by line: error lines count fully, context lines (commands, progress,
    // framing) count CONTEXT_LINE_WEIGHT. Bigrams do not cross lines.
    const unigrams = new Map<string, number>();
    const bigrams = new Map<string, number>();
    for (const line of normaliseLog(text).split("\n")) {
      const tokens = wordTokens(line);
      if (tokens.length === 0) continue;
      const w = ERROR_LINE.test(line) ? 1 : WEIGHTS.contextLine;
      for (let i = 0; i < tokens.length; i++) {
        const t = tokens[i]!;
        unigrams.set(t, (unigrams.get(t) ?? 0) + w);
        if (i > 0) {
          const b = `${tokens[i - 1]}\u0001${t}`;
          bigrams.set(b, (bigrams.get(b) ?? 0) + w);
        }
      }
    }
    const chargrams = new Map<string, number>();
    for (const [word, n] of unigrams) {
      if (GENERIC_LOG_WORDS.has(word) || isPlaceholder(word) || word.length > MAX_CHARGRAM_WORD) continue;
      for (const g of charNgrams(word, 3, 5)) chargrams.set(g, (chargrams.get(g) ?? 0) + n);
    }

    const v = new Float64Array(this.dimensions);
    const add = (key: string, seed: number, weight: number) => {
      const h = hash32(key, seed);
      const sign = h & 0x80000000 ? -1 : 1;
      v[(h & 0x7fffffff) % this.dimensions]! += sign * weight;
    };
    for (const [word, n] of unigrams) {
      add(word, SEED.unigram, WEIGHTS.unigram * sublinear(n) * (GENERIC_LOG_WORDS.has(word) ? WEIGHTS.generic : 1));
    }
    for (const [pair, n] of bigrams) {
      const [a, b] = pair.split("\u0001") as [string, string];
      const generic = (GENERIC_LOG_WORDS.has(a) ? 1 : 0) + (GENERIC_LOG_WORDS.has(b) ? 1 : 0);
      // Bigrams of two generic words carry little; one generic word half-counts ("exit code_137").
      const w = generic === 2 ? WEIGHTS.generic : generic === 1 ? 0.5 : 1;
      add(pair, SEED.bigram, WEIGHTS.bigram * sublinear(n) * w);
    }
    for (const [gram, n] of chargrams) add(gram, SEED.chargram, WEIGHTS.chargram * sublinear(n));
    return l2Normalise(v);
  }
}

/** Sublinear term frequency: 1 + ln(tf) from one occurrence on, proportional below (weighted counts). */
function sublinear(tf: number): number {
  return tf >= 1 ? 1 + Math.log(tf) : tf;
}

// ---------------------------------------------------------------------------------------------
// OpenAiCompatibleEmbedder
// ---------------------------------------------------------------------------------------------

export interface OpenAiCompatibleEmbedderOptions {
  /** Base URL of the API, e.g. `https://api.openai.com/v1`; requests go to `{baseUrl}/embeddings`. */
  baseUrl: string;
  model: string;
  dimensions: number;
  /** Sent as `Authorization: Bearer <apiKey>` when set (local servers often need none). */
  apiKey?: string;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** Inputs per request (default 64). */
  batchSize?: number;
  /** Send `dimensions` in the request body (default true; servers without Matryoshka models may reject it). */
  sendDimensions?: boolean;
}

const EmbeddingsResponseSchema = z.object({
  data: z
    .array(
      z.object({
        embedding: z.array(z.number().finite()),
        index: z.number().int().min(0),
      }),
    )
    .min(1),
});

/** Characters of an error body quoted in an EmbedderError message. */
const ERROR_BODY_CHARS = 300;

/** Embeddings from a server speaking the OpenAI embeddings API (OpenAI, Azure-compatible gateways, vLLM, Ollama, TEI, …). */
export class OpenAiCompatibleEmbedder implements Embedder {
  readonly name: string;
  readonly dimensions: number;
  private readonly url: string;
  private readonly model: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly batchSize: number;
  private readonly sendDimensions: boolean;

  constructor(opts: OpenAiCompatibleEmbedderOptions) {
    if (!Number.isInteger(opts.dimensions) || opts.dimensions < 1) {
      throw new EmbedderError("config", `dimensions must be a positive integer, got ${opts.dimensions}`);
    }
    this.url = `${opts.baseUrl.replace(/\/+$/, "")}/embeddings`;
    this.model = opts.model;
    this.dimensions = opts.dimensions;
    this.apiKey = opts.apiKey || undefined;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.batchSize = Math.max(1, Math.floor(opts.batchSize ?? 64));
    this.sendDimensions = opts.sendDimensions ?? true;
    this.name = `openai:${opts.model}:${opts.dimensions}`;
  }

  async embed(texts: string[]): Promise<number[][]> {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += this.batchSize) {
      out.push(...(await this.request(texts.slice(i, i + this.batchSize))));
    }
    return out;
  }

  /** Removes the API key from text that is about to go into an error message. */
  private redact(s: string): string {
    return this.apiKey ? s.split(this.apiKey).join("[REDACTED]") : s;
  }

  private fail(reason: EmbedderErrorReason, message: string, cause?: unknown): never {
    throw new EmbedderError(reason, this.redact(message), cause === undefined ? undefined : { cause });
  }

  private async request(input: string[]): Promise<number[][]> {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    const body = JSON.stringify({ model: this.model, input, ...(this.sendDimensions ? { dimensions: this.dimensions } : {}) });
    const where = `embeddings request to ${this.url} (model ${this.model}, ${input.length} input${input.length === 1 ? "" : "s"})`;

    let res: Response;
    let text: string;
    try {
      res = await fetch(this.url, { method: "POST", headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      text = await res.text();
    } catch (err) {
      const e = err as Error;
      if (e.name === "TimeoutError" || e.name === "AbortError") this.fail("timeout", `${where} timed out after ${this.timeoutMs} ms`);
      const cause = (e.cause as Error | undefined)?.message;
      // The cause is kept off the error object: undici's errors can carry the request (and its headers).
      this.fail("network", `${where} failed: ${e.message}${cause ? ` (${cause})` : ""}`);
    }

    if (!res.ok) {
      const snippet = text.replace(/\s+/g, " ").trim().slice(0, ERROR_BODY_CHARS);
      const reason = res.status === 401 || res.status === 403 ? "auth" : "http";
      this.fail(reason, `${where} returned HTTP ${res.status}${snippet ? `: ${snippet}` : ""}`);
    }

    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.fail("invalid_response", `${where} returned a body that is not JSON`);
    }
    const parsed = EmbeddingsResponseSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      this.fail("invalid_response", `${where} returned an unexpected body: ${issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "invalid"}`);
    }

    const vectors = new Array<number[] | undefined>(input.length);
    for (const item of parsed.data.data) {
      if (item.index >= input.length || vectors[item.index] !== undefined) {
        this.fail("invalid_response", `${where} returned an unexpected or duplicate index ${item.index}`);
      }
      if (item.embedding.length !== this.dimensions) {
        this.fail("dimensions", `${where} returned vectors of ${item.embedding.length} dimensions, expected ${this.dimensions}`);
      }
      vectors[item.index] = l2Normalise(item.embedding);
    }
    const missing = vectors.findIndex((v) => v === undefined);
    if (missing !== -1) this.fail("invalid_response", `${where} returned ${parsed.data.data.length} embeddings, missing index ${missing}`);
    return vectors as number[][];
  }
}

/** Builds the configured embedder; `secrets` maps env var names to values (api_key_env is looked up there). */
export function createEmbedder(config: EmbedderConfig, secrets: Record<string, string>): Embedder {
  switch (config.kind) {
    case "hashing":
      return new HashingEmbedder({ dimensions: config.dimensions });
    case "openai": {
      let apiKey: string | undefined;
      if (config.api_key_env !== undefined) {
        apiKey = secrets[config.api_key_env]?.trim();
        if (!apiKey) throw new EmbedderError("config", `embedder api_key_env ${config.api_key_env} is not set`);
      }
      return new OpenAiCompatibleEmbedder({
        baseUrl: config.url,
        model: config.model,
        dimensions: config.dimensions,
        timeoutMs: config.timeout_ms,
        ...(apiKey ? { apiKey } : {}),
      });
    }
  }
}
