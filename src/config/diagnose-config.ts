import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { EmbedderConfigSchema } from "../diagnose/embedder.js";
import { ProbesConfigSchema } from "../diagnose/probes/config.js";

/**
 * Server-side settings of issue diagnostics (file named by DIAGNOSE_CONFIG, YAML or JSON):
 * which services are probed and with which credentials (env var names the credentials layer
 * fills, kind `diagnose`), the embedder, and report sizes. The vector store is Qdrant when
 * QDRANT_URL is set, PostgreSQL otherwise. Nothing here comes from a repository.
 */
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

export function parseDiagnoseConfig(doc: unknown, source: string): DiagnoseConfig {
  const parsed = DiagnoseConfigSchema.safeParse(doc ?? {});
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.map(String).join(".") || "(top level)"}: ${i.message}`);
    throw new DiagnoseConfigError(`invalid diagnose config ${source}:\n${lines.join("\n")}`);
  }
  return parsed.data;
}

export function loadDiagnoseConfig(file: string): DiagnoseConfig {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, "utf8"));
  } catch (err) {
    throw new DiagnoseConfigError(`cannot read diagnose config ${file}: ${(err as Error).message}`);
  }
  return parseDiagnoseConfig(doc, file);
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
