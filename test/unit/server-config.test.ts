import { describe, it, expect } from "vitest";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ServerConfigError,
  githubApiBaseUrl,
  isRegistered,
  loadServerConfig,
} from "../../src/config/server-config.js";

const { privateKey: PEM } = generateKeyPairSync("rsa", {
  modulusLength: 1024,
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});

/** Environment values as raw strings: `NodeJS.ProcessEnv` is narrowed for some keys (LOG_LEVEL) by dependencies. */
type RawEnv = Record<string, string>;

function loadError(env: RawEnv): ServerConfigError {
  try {
    loadServerConfig(env as NodeJS.ProcessEnv);
  } catch (err) {
    expect(err).toBeInstanceOf(ServerConfigError);
    return err as ServerConfigError;
  }
  throw new Error(`expected loadServerConfig to throw for ${JSON.stringify(env)}`);
}

describe("loadServerConfig: defaults", () => {
  it("treats empty values as unset (PORT= in a compose file is not port 0)", () => {
    const c = loadServerConfig({ PORT: "", WEBHOOK_SECRET: "", SHUTDOWN_GRACE_SECONDS: "" });
    expect(c.port).toBe(3000);
    expect(c.worker.shutdownGraceSeconds).toBe(30);
    expect(c.github.webhookSecret).toBeUndefined();
  });

  it("fills every field from an empty environment", () => {
    const c = loadServerConfig({});
    expect(c).toEqual({
      role: "all",
      host: "0.0.0.0",
      port: 3000,
      github: {
        appId: undefined,
        privateKey: undefined,
        webhookSecret: undefined,
        apiBaseUrl: "https://api.github.com",
        webBaseUrl: "https://github.com",
        writePacing: { burst: 10, perSecond: 1 },
      },
      redisUrl: "redis://127.0.0.1:6379",
      queuePrefix: "agent",
      databaseUrl: "postgres://postgres@127.0.0.1:5432/agent",
      sandbox: {
        defaultImage: "agent-sandbox:test",
        allowedImages: [],
        memoryMb: 1024,
        cpus: 1,
        pids: 256,
        timeoutSeconds: 900,
        outputLimitBytes: 1_048_576,
        workspaceRoot: join(tmpdir(), "agent-workspaces"),
        poolSize: 2,
        reapIntervalSeconds: 60,
        workspaceMb: 1024,
        runtime: undefined,
        untrustedRuntime: "runsc",
        allowedRuntimes: ["runc", "runsc"],
        egress: { allowlist: [], network: undefined, proxyListen: "0.0.0.0", proxyPort: 3128, proxyHost: undefined },
      },
      worker: { concurrency: 2, shutdownGraceSeconds: 30, checkRunUpdateIntervalMs: 5000, lockSeconds: 60, stalledIntervalSeconds: 30 },
      locks: { ttlSeconds: 86_400 },
      drift: { syncOnStart: true },
      review: { maxLive: 20, sweepSeconds: 300, reapOnStart: true },
      tierTtlSeconds: { observer: 3600, operator: 1800, builder: 1800, executor: 900, architect: 900 },
      rotationCheckSeconds: 21_600,
      githubKeyCheckSeconds: 60,
      defaultTier: "executor",
      defaultPhase: "suggest",
      errorBudget: { maxTotalErrors: 8, maxSameErrorRepeats: 2, maxProcedureViolations: 1, windowSeconds: 604_800, onExhausted: "extra-approval" },
      repoErrorBudget: { maxTotalErrors: 20, maxSameErrorRepeats: 3, maxProcedureViolations: 2, windowSeconds: 604_800, onExhausted: "extra-approval" },
      comments: { maxContinuations: 4, stickyUpdateIntervalMs: 3000 },
      gate: { approvalTtlSeconds: 86_400, minApprovals: 0 },
      adminToken: null,
      metrics: { token: null, port: null },
      planPolicy: null,
      slack: null,
      diagnose: {
        config: { probes: { timeout_ms: 5000 }, embedder: { kind: "hashing", dimensions: 1024 }, report: { recent_runs: 10, failures: 3, matches: 3 } },
        qdrant: null,
      },
      logLinks: { ttlSeconds: 14 * 86_400 },
      vault: { healthIntervalSeconds: 15 },
      logLevel: "info",
    });
  });

  it("ignores unrelated environment variables", () => {
    const c = loadServerConfig({ PATH: "/usr/bin", HOME: "/root", NODE_ENV: "test" });
    expect(c.port).toBe(3000);
    expect(c.role).toBe("all");
  });

  it("coerces numeric variables from strings", () => {
    const c = loadServerConfig({
      PORT: "8080",
      SANDBOX_MEMORY_MB: "2048",
      SANDBOX_CPUS: "1.5",
      SANDBOX_PIDS: "512",
      SANDBOX_TIMEOUT_SECONDS: "60",
      WORKER_CONCURRENCY: "4",
      SHUTDOWN_GRACE_SECONDS: "0",
      CHECK_RUN_UPDATE_INTERVAL_MS: "0",
      WORKER_LOCK_SECONDS: "5",
      WORKER_STALLED_INTERVAL_SECONDS: "2",
    });
    expect(c.port).toBe(8080);
    expect(c.sandbox).toMatchObject({ memoryMb: 2048, cpus: 1.5, pids: 512, timeoutSeconds: 60 });
    expect(c.worker).toEqual({ concurrency: 4, shutdownGraceSeconds: 0, checkRunUpdateIntervalMs: 0, lockSeconds: 5, stalledIntervalSeconds: 2 });
  });

  it("passes through role, host, log level, queue prefix and URLs", () => {
    const c = loadServerConfig({
      ROLE: "worker",
      HOST: "127.0.0.1",
      LOG_LEVEL: "debug",
      QUEUE_PREFIX: "agent_test-1",
      REDIS_URL: "redis://redis:6380/2",
      DATABASE_URL: "postgres://u:p@db/agent",
      SANDBOX_IMAGE: "ghcr.io/acme/sandbox:2",
    });
    expect(c.role).toBe("worker");
    expect(c.host).toBe("127.0.0.1");
    expect(c.logLevel).toBe("debug");
    expect(c.queuePrefix).toBe("agent_test-1");
    expect(c.redisUrl).toBe("redis://redis:6380/2");
    expect(c.databaseUrl).toBe("postgres://u:p@db/agent");
    expect(c.sandbox.defaultImage).toBe("ghcr.io/acme/sandbox:2");
  });
});

describe("loadServerConfig: GitHub Enterprise", () => {
  it("builds the GHES API and web base URLs from GHE_HOST with https by default", () => {
    const c = loadServerConfig({ GHE_HOST: "ghe.example.com" });
    expect(c.github.apiBaseUrl).toBe("https://ghe.example.com/api/v3");
    expect(c.github.webBaseUrl).toBe("https://ghe.example.com");
  });

  it("honours GHE_PROTOCOL=http and a port", () => {
    const c = loadServerConfig({ GHE_HOST: "ghe.internal:8080", GHE_PROTOCOL: "http" });
    expect(c.github.apiBaseUrl).toBe("http://ghe.internal:8080/api/v3");
    expect(c.github.webBaseUrl).toBe("http://ghe.internal:8080");
  });

  it("ignores GHE_PROTOCOL without GHE_HOST (github.com is always https)", () => {
    const c = loadServerConfig({ GHE_PROTOCOL: "http" });
    expect(c.github.apiBaseUrl).toBe("https://api.github.com");
    expect(c.github.webBaseUrl).toBe("https://github.com");
  });

  it("githubApiBaseUrl follows the same rule", () => {
    expect(githubApiBaseUrl(undefined, "http")).toBe("https://api.github.com");
    expect(githubApiBaseUrl("ghe.example.com", "https")).toBe("https://ghe.example.com/api/v3");
  });
});

describe("loadServerConfig: invalid values", () => {
  const cases: Array<[string, RawEnv]> = [
    ["ROLE", { ROLE: "foo" }],
    ["PORT", { PORT: "70000" }],
    ["PORT", { PORT: "-1" }],
    ["PORT", { PORT: "80.5" }],
    ["PORT", { PORT: "http" }],
    ["APP_ID", { APP_ID: "abc" }],
    ["APP_ID", { APP_ID: "12a" }],
    ["GHE_HOST", { GHE_HOST: "ghe.example.com/api/v3" }],
    ["GHE_HOST", { GHE_HOST: "https://ghe.example.com" }],
    ["GHE_HOST", { GHE_HOST: "ghe.example.com:port" }],
    ["GHE_PROTOCOL", { GHE_HOST: "ghe.example.com", GHE_PROTOCOL: "ftp" }],
    ["REDIS_URL", { REDIS_URL: "not a url" }],
    ["QUEUE_PREFIX", { QUEUE_PREFIX: "agent:prod" }],
    ["SANDBOX_MEMORY_MB", { SANDBOX_MEMORY_MB: "8" }],
    ["SANDBOX_CPUS", { SANDBOX_CPUS: "0" }],
    ["WORKER_CONCURRENCY", { WORKER_CONCURRENCY: "0" }],
    ["WORKER_LOCK_SECONDS", { WORKER_LOCK_SECONDS: "0" }],
    ["WORKER_STALLED_INTERVAL_SECONDS", { WORKER_STALLED_INTERVAL_SECONDS: "soon" }],
    ["LOG_LEVEL", { LOG_LEVEL: "verbose" }],
    ["METRICS_TOKEN", { METRICS_TOKEN: "too-short" }],
    ["LOG_LINK_TTL_SECONDS", { LOG_LINK_TTL_SECONDS: "30" }],
    ["LOG_LINK_TTL_SECONDS", { LOG_LINK_TTL_SECONDS: "forever" }],
    ["VAULT_HEALTH_INTERVAL_SECONDS", { VAULT_HEALTH_INTERVAL_SECONDS: "0" }],
    ["METRICS_PORT", { METRICS_PORT: "70000" }],
    ["METRICS_PORT", { METRICS_PORT: "nine" }],
  ];

  for (const [name, env] of cases) {
    it(`rejects ${name}=${JSON.stringify(Object.values(env).at(-1))} with a ServerConfigError naming ${name}`, () => {
      const err = loadError(env);
      expect(err.name).toBe("ServerConfigError");
      expect(err.message).toMatch(/^invalid server configuration:/);
      expect(err.message).toMatch(new RegExp(`^  ${name}: `, "m"));
    });
  }

  it("reports every invalid variable at once", () => {
    const err = loadError({ ROLE: "foo", PORT: "70000", APP_ID: "abc", GHE_HOST: "ghe.example.com/x" });
    for (const name of ["ROLE", "PORT", "APP_ID", "GHE_HOST"]) {
      expect(err.message).toMatch(new RegExp(`^  ${name}: `, "m"));
    }
    // Valid variables are not reported.
    expect(err.message).not.toMatch(/^ {2}HOST: /m);
  });

  it("accepts the boundary values", () => {
    expect(loadServerConfig({ PORT: "0" }).port).toBe(0);
    expect(loadServerConfig({ PORT: "65535" }).port).toBe(65535);
    expect(loadServerConfig({ APP_ID: "123456" }).github.appId).toBe("123456");
  });
});

describe("loadServerConfig: private key", () => {
  it("uses a PEM given directly", () => {
    expect(loadServerConfig({ PRIVATE_KEY: PEM }).github.privateKey).toBe(PEM);
  });

  it("decodes a base64-encoded PEM", () => {
    const key = loadServerConfig({ PRIVATE_KEY: Buffer.from(PEM, "utf8").toString("base64") }).github.privateKey;
    expect(key).toBe(PEM);
    expect(() => createPrivateKey(key!)).not.toThrow();
  });

  it("turns literal \\n escapes into newlines", () => {
    const escaped = PEM.replace(/\n/g, "\\n");
    expect(escaped).not.toContain("\n");
    const key = loadServerConfig({ PRIVATE_KEY: escaped }).github.privateKey;
    expect(key).toBe(PEM);
    expect(key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(() => createPrivateKey(key!)).not.toThrow();
  });

  it("turns literal \\n escapes inside a base64-encoded value into newlines", () => {
    const escaped = PEM.replace(/\n/g, "\\n");
    const key = loadServerConfig({ PRIVATE_KEY: Buffer.from(escaped).toString("base64") }).github.privateKey;
    expect(key).toBe(PEM);
  });

  it("reads PRIVATE_KEY_PATH when PRIVATE_KEY is absent, and prefers PRIVATE_KEY when both are set", () => {
    const dir = mkdtempSync(join(tmpdir(), "server-config-test-"));
    try {
      const path = join(dir, "app.pem");
      writeFileSync(path, PEM);
      expect(loadServerConfig({ PRIVATE_KEY_PATH: path }).github.privateKey).toBe(PEM);
      const other = "-----BEGIN PRIVATE KEY-----\nother\n-----END PRIVATE KEY-----\n";
      expect(loadServerConfig({ PRIVATE_KEY: other, PRIVATE_KEY_PATH: path }).github.privateKey).toBe(other);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("throws when PRIVATE_KEY_PATH does not exist", () => {
    expect(() => loadServerConfig({ PRIVATE_KEY_PATH: join(tmpdir(), "definitely-missing-dir-xyz", "k.pem") })).toThrow();
  });
});

describe("loadServerConfig: SANDBOX_ALLOWED_IMAGES", () => {
  it("splits a comma-separated list, trimming spaces and dropping empty entries", () => {
    const c = loadServerConfig({ SANDBOX_ALLOWED_IMAGES: " ghcr.io/a/b:1, ghcr.io/c/d@sha256:abc ,,  ,e:2," });
    expect(c.sandbox.allowedImages).toEqual(["ghcr.io/a/b:1", "ghcr.io/c/d@sha256:abc", "e:2"]);
  });

  it("is empty for an empty or blank value", () => {
    expect(loadServerConfig({ SANDBOX_ALLOWED_IMAGES: "" }).sandbox.allowedImages).toEqual([]);
    expect(loadServerConfig({ SANDBOX_ALLOWED_IMAGES: " , " }).sandbox.allowedImages).toEqual([]);
  });

  it("keeps a single image", () => {
    expect(loadServerConfig({ SANDBOX_ALLOWED_IMAGES: "x:1" }).sandbox.allowedImages).toEqual(["x:1"]);
  });
});

describe("loadServerConfig: metrics", () => {
  it("reads METRICS_TOKEN and METRICS_PORT", () => {
    const c = loadServerConfig({ METRICS_TOKEN: "0123456789abcdef0123", METRICS_PORT: "9464" });
    expect(c.metrics).toEqual({ token: "0123456789abcdef0123", port: 9464 });
  });

  it("leaves /metrics open and the worker without a metrics port when unset (or empty)", () => {
    expect(loadServerConfig({ METRICS_TOKEN: "", METRICS_PORT: "" }).metrics).toEqual({ token: null, port: null });
  });
});

describe("isRegistered", () => {
  const full = { APP_ID: "42", PRIVATE_KEY: PEM, WEBHOOK_SECRET: "s3cret" };

  it("is true with APP_ID, a private key and WEBHOOK_SECRET", () => {
    expect(isRegistered(loadServerConfig(full))).toBe(true);
  });

  it("is true when the key comes from PRIVATE_KEY_PATH", () => {
    const dir = mkdtempSync(join(tmpdir(), "server-config-test-"));
    try {
      const path = join(dir, "app.pem");
      writeFileSync(path, PEM);
      expect(isRegistered(loadServerConfig({ APP_ID: "42", PRIVATE_KEY_PATH: path, WEBHOOK_SECRET: "s" }))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is false when any one of the three is missing", () => {
    for (const missing of ["APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET"] as const) {
      const env: NodeJS.ProcessEnv = { ...full };
      delete env[missing];
      expect(isRegistered(loadServerConfig(env)), `without ${missing}`).toBe(false);
    }
  });

  it("is false for an empty environment", () => {
    expect(isRegistered(loadServerConfig({}))).toBe(false);
  });
});
