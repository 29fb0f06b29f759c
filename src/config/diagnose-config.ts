/**
 * Server-side settings of issue diagnostics (file named by DIAGNOSE_CONFIG, YAML or JSON):
 * which services are probed and with which credentials (env var names the credentials layer
 * fills, kind `diagnose`), the embedder, and report sizes. The vector store is Qdrant when
 * QDRANT_URL is set, PostgreSQL otherwise. Nothing here comes from a repository.
 */
import { z } from "zod";
import { ProbesConfigSchema } from "./diagnose-probes.js";
import { EnvVarName, HttpUrl } from "./fields.js";
import { checkConfig, readConfigFile } from "./file.js";
import type { YamlSource } from "./issues.js";

// ---------------------------------------------------------------------------------------------
// The `embedder` section (src/diagnose/embedder.ts builds one with createEmbedder)
// ---------------------------------------------------------------------------------------------

export const HashingEmbedderConfigSchema = z.strictObject({
  kind: z.literal("hashing"),
  dimensions: z.number().int().min(64).max(8192).default(1024),
});

export const OpenAiEmbedderConfigSchema = z.strictObject({
  kind: z.literal("openai"),
  /** Base URL of the API (`https://api.openai.com/v1`); requests go to `{url}/embeddings`. */
  url: HttpUrl,
  model: z.string().min(1).max(200),
  dimensions: z.number().int().min(1).max(16_384),
  /** The API key is read from this variable (filled by the credentials layer); absent: no Authorization header. */
  api_key_env: EnvVarName.optional(),
  timeout_ms: z.number().int().min(100).max(300_000).default(10_000),
});

/** The `embedder` section of DIAGNOSE_CONFIG. */
export const EmbedderConfigSchema = z.discriminatedUnion("kind", [HashingEmbedderConfigSchema, OpenAiEmbedderConfigSchema]);

export type EmbedderConfig = z.infer<typeof EmbedderConfigSchema>;

// ---------------------------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------------------------

/** The whole file: `probes` (diagnose-probes.ts), `embedder` and `report`. */
export const DiagnoseConfigSchema = z.strictObject({
  probes: ProbesConfigSchema.prefault({}),
  embedder: EmbedderConfigSchema.prefault({ kind: "hashing" }),
  report: z
    .strictObject({
      /** Rows in "Recent runs". */
      recent_runs: z.number().int().min(1).max(50).default(10),
      /** Failures shown with their log tail. */
      failures: z.number().int().min(0).max(10).default(3),
      /** Similar incidents and runbook sections listed. */
      matches: z.number().int().min(1).max(10).default(3),
    })
    .prefault({}),
});

export type DiagnoseConfig = z.infer<typeof DiagnoseConfigSchema>;

export interface DiagnoseSettings {
  config: DiagnoseConfig;
  /** QDRANT_URL (+ QDRANT_API_KEY, QDRANT_COLLECTION); null: the PostgreSQL store. */
  qdrant: { url: string; apiKey?: string; collection: string } | null;
}

export class DiagnoseConfigError extends Error {
  override name = "DiagnoseConfigError";
}

/** Validates a parsed document; `name` names it in errors, `yaml` (the file read) gives their lines. */
export function parseDiagnoseConfig(doc: unknown, name: string, yaml?: YamlSource): DiagnoseConfig {
  return checkConfig(DiagnoseConfigSchema, doc, { what: "diagnose config", name, source: yaml }, DiagnoseConfigError);
}

export function loadDiagnoseConfig(file: string): DiagnoseConfig {
  const { data, source } = readConfigFile(file, "diagnose config", DiagnoseConfigError);
  return parseDiagnoseConfig(data, file, source);
}

const COLLECTION = /^[A-Za-z0-9_-]{1,255}$/;

/** DIAGNOSE_CONFIG, QDRANT_URL, QDRANT_API_KEY, QDRANT_COLLECTION. */
export function diagnoseSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): DiagnoseSettings {
  const file = env.DIAGNOSE_CONFIG?.trim();
  const config = file ? loadDiagnoseConfig(file) : parseDiagnoseConfig({}, "(defaults)");
  const url = env.QDRANT_URL?.trim();
  if (url && !/^https?:\/\/[^\s]+$/.test(url)) throw new DiagnoseConfigError("QDRANT_URL must be an http(s) URL");
  const collection = env.QDRANT_COLLECTION?.trim() || "agent_knowledge";
  if (!COLLECTION.test(collection)) throw new DiagnoseConfigError("QDRANT_COLLECTION may contain letters, digits, _ and - only");
  const apiKey = env.QDRANT_API_KEY?.trim();
  return { config, qdrant: url ? { url: url.replace(/\/+$/, ""), collection, ...(apiKey ? { apiKey } : {}) } : null };
}
