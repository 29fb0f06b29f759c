import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiagnoseConfigError, diagnoseSettingsFromEnv } from "../../src/config/diagnose-config.js";
import { loadServerConfig, ServerConfigError } from "../../src/config/server-config.js";

describe("DIAGNOSE_CONFIG and QDRANT_URL", () => {
  let dir: string;
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    return writeFile(path, text).then(() => path);
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "diagnose-config-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("defaults: no probes, the hashing embedder, the PostgreSQL store", () => {
    expect(diagnoseSettingsFromEnv({})).toEqual({
      config: { probes: { timeout_ms: 5000 }, embedder: { kind: "hashing", dimensions: 1024 }, report: { recent_runs: 10, failures: 3, matches: 3 } },
      qdrant: null,
    });
  });

  it("reads probes, embedder and report sizes from the file, and Qdrant from the environment", async () => {
    const path = await file(
      "ok.yml",
      "probes:\n  timeout_ms: 1500\n  lambda_labs: { api_key_env: LAMBDA_API_KEY }\nembedder: { kind: hashing, dimensions: 512 }\nreport: { matches: 5 }\n",
    );
    const s = diagnoseSettingsFromEnv({ DIAGNOSE_CONFIG: path, QDRANT_URL: "http://qdrant:6333/", QDRANT_API_KEY: "k-123", QDRANT_COLLECTION: "kb_prod" });
    expect(s.qdrant).toEqual({ url: "http://qdrant:6333", apiKey: "k-123", collection: "kb_prod" });
    expect(s.config.probes.timeout_ms).toBe(1500);
    expect(s.config.probes.lambda_labs).toMatchObject({ api_key_env: "LAMBDA_API_KEY", api_url: "https://cloud.lambdalabs.com/api/v1" });
    expect(s.config.embedder).toEqual({ kind: "hashing", dimensions: 512 });
    expect(s.config.report).toEqual({ recent_runs: 10, failures: 3, matches: 5 });
  });

  it("names the path of every problem, and refuses secrets written into the file", async () => {
    const path = await file("bad.yml", "probes:\n  neon: { project_id: p, api_key: literal-secret }\nreport: { failures: 99 }\nextra: 1\n");
    let message = "";
    try {
      diagnoseSettingsFromEnv({ DIAGNOSE_CONFIG: path });
    } catch (err) {
      expect(err).toBeInstanceOf(DiagnoseConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain("probes.neon");
    expect(message).toContain("report.failures");
    expect(message).toMatch(/extra|Unrecognized key/);
    expect(message).not.toContain("literal-secret");
  });

  it("refuses a bad QDRANT_URL or collection, and a missing file, as server configuration errors", async () => {
    expect(() => diagnoseSettingsFromEnv({ QDRANT_URL: "qdrant:6333" })).toThrow(/QDRANT_URL must be an http\(s\) URL/);
    expect(() => diagnoseSettingsFromEnv({ QDRANT_URL: "http://q:6333", QDRANT_COLLECTION: "a/b" })).toThrow(/QDRANT_COLLECTION/);
    expect(() => loadServerConfig({ DIAGNOSE_CONFIG: join(dir, "missing.yml") })).toThrow(ServerConfigError);
  });
});
