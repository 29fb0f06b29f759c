/**
 * docker-compose.yml, as Compose itself reads it: `docker compose config --format json` (the
 * v2 plugin) or `docker-compose config` (v1, YAML out), whichever is installed — scripts/lib.sh
 * installs one on a fresh machine, and this file fails rather than skips when neither exists.
 * The file is read twice, with an empty environment and an empty --env-file so that a
 * developer's shell or .env cannot change the result: once interpolated (the structure) and
 * once with --no-interpolate (what is literally written in it: no secrets).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

const ROOT = resolve(import.meta.dirname, "..", "..");
const COMPOSE_FILE = join(ROOT, "docker-compose.yml");

type Service = {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | null> | string[];
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  deploy?: { replicas?: number | string };
  profiles?: string[];
  ports?: unknown[];
};
type Project = { services: Record<string, Service>; volumes?: Record<string, unknown> };

interface ComposeCli {
  name: string;
  /** argv before the compose arguments. */
  prefix: string[];
  json: boolean;
}

function works(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore", timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

function findCompose(): ComposeCli | null {
  if (works("docker", ["compose", "version"])) return { name: "docker compose", prefix: ["docker", "compose"], json: true };
  if (works("docker-compose", ["version"])) return { name: "docker-compose", prefix: ["docker-compose"], json: false };
  return null;
}

function env(service: Service): Record<string, string> {
  const e = service.environment ?? {};
  if (Array.isArray(e)) {
    return Object.fromEntries(e.map((kv) => [kv.slice(0, kv.indexOf("=") < 0 ? kv.length : kv.indexOf("=")), kv.includes("=") ? kv.slice(kv.indexOf("=") + 1) : ""]));
  }
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v ?? ""]));
}

/** `source:target` of every volume, whether Compose printed the short or the long syntax. */
function mounts(service: Service): Array<{ source: string; target: string }> {
  return (service.volumes ?? []).map((v) => {
    if (typeof v === "string") {
      const [source = "", target = ""] = v.split(":");
      return { source, target };
    }
    return { source: v.source ?? "", target: v.target ?? "" };
  });
}

function commandLine(service: Service): string {
  return Array.isArray(service.command) ? service.command.join(" ") : (service.command ?? "");
}

/** Names that hold credentials. */
const SECRET_NAME = /(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE_KEY|API_KEY|CREDENTIAL)/i;
/** A literal that says it is for development only. */
const DEV_ONLY = /^dev-only-|^trust$/;

describe("docker-compose.yml", () => {
  let cli: ComposeCli | null;
  let dir: string;
  let project: Project;
  let raw: Project;

  function config(extra: string[]): Project {
    const [cmd, ...pre] = cli!.prefix;
    const out = execFileSync(
      cmd!,
      [...pre, "--env-file", join(dir, "empty.env"), "--project-directory", ROOT, "-f", COMPOSE_FILE, "--profile", "dev", "--profile", "build", "config", ...(cli!.json ? ["--format", "json"] : []), ...extra],
      // An environment of its own: no APP_ID, WEBHOOK_SECRET, … from the developer's shell.
      { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir }, timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] },
    );
    return (cli!.json ? JSON.parse(out) : parseYaml(out)) as Project;
  }

  beforeAll(() => {
    cli = findCompose();
    dir = mkdtempSync(join(tmpdir(), "compose-config-"));
    writeFileSync(join(dir, "empty.env"), "");
    if (!cli) return;
    project = config([]);
    raw = config(["--no-interpolate"]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("has a Compose CLI to check it with (scripts/lib.sh installs one)", () => {
    expect(cli, "neither `docker compose` nor `docker-compose` is installed; run `npm test` (scripts/lib.sh ensure_compose) or apt-get install docker-compose").not.toBeNull();
  });

  it("defines the services of the stack", () => {
    expect(Object.keys(project.services)).toEqual(expect.arrayContaining(["app", "worker", "redis", "postgres", "qdrant", "vault", "smee"]));
    expect(commandLine(project.services.app!)).toContain("--role=web");
    expect(commandLine(project.services.worker!)).toContain("--role=worker");
    expect(project.services.qdrant!.image).toMatch(/^qdrant\/qdrant(:|$)/);
    expect(project.volumes).toHaveProperty("qdrant-data");
    expect(mounts(project.services.qdrant!).some((m) => m.target === "/qdrant/storage")).toBe(true);
  });

  it("keeps Redis' queues: AOF on, no eviction", () => {
    const cmd = commandLine(project.services.redis!);
    expect(cmd).toMatch(/--appendonly yes/);
    expect(cmd).toMatch(/--maxmemory-policy noeviction/);
    expect(mounts(project.services.redis!).some((m) => m.target === "/data")).toBe(true);
  });

  it("gives the worker the Docker engine socket, and can scale it", () => {
    const worker = project.services.worker!;
    expect(mounts(worker)).toContainEqual({ source: "/var/run/docker.sock", target: "/var/run/docker.sock" });
    // The web tier never gets it.
    expect(mounts(project.services.app!).some((m) => m.source.includes("docker.sock"))).toBe(false);
    expect(Number(worker.deploy?.replicas)).toBeGreaterThanOrEqual(1);
    // Replicas cannot publish a fixed host port.
    expect(worker.ports ?? []).toEqual([]);
  });

  it("documents the socket's risks and the alternatives next to the mount", async () => {
    const text = (await import("node:fs")).readFileSync(COMPOSE_FILE, "utf8");
    expect(text).toMatch(/root-equivalent/i);
    expect(text).toMatch(/rootless/i);
    expect(text).toMatch(/socket proxy/i);
    expect(text).toMatch(/dedicated|VM/);
  });

  it("points app and worker at the same Redis, PostgreSQL, queue prefix and Qdrant", () => {
    const app = env(project.services.app!);
    const worker = env(project.services.worker!);
    for (const key of ["REDIS_URL", "DATABASE_URL", "QUEUE_PREFIX", "QDRANT_URL"]) {
      expect(app[key], key).toBeTruthy();
      expect(worker[key], key).toBe(app[key]);
    }
    expect(app.REDIS_URL).toBe("redis://redis:6379");
    expect(app.DATABASE_URL).toMatch(/@postgres:5432\//);
    expect(app.QDRANT_URL).toBe("http://qdrant:6333");
    expect(app.ROLE).toBe("web");
    expect(worker.ROLE).toBe("worker");
  });

  it("has a healthcheck on every long-running service", () => {
    for (const name of ["app", "worker", "redis", "postgres", "qdrant", "vault"]) {
      const hc = project.services[name]!.healthcheck;
      expect(hc?.test, name).toBeTruthy();
      expect(hc?.disable ?? false, name).toBe(false);
    }
    // The worker's check needs its metrics port.
    expect(env(project.services.worker!).METRICS_PORT).toMatch(/^\d+$/);
    expect(JSON.stringify(project.services.worker!.healthcheck!.test)).toContain(env(project.services.worker!).METRICS_PORT!);
  });

  it("runs Vault in dev mode and smee only under the dev profile", () => {
    expect(commandLine(project.services.vault!)).toMatch(/server -dev/);
    expect(project.services.vault!.image).toMatch(/^hashicorp\/vault(:|$)/);
    expect(project.services.smee!.profiles).toEqual(["dev"]);
    for (const name of ["app", "worker", "redis", "postgres", "qdrant"]) expect(project.services[name]!.profiles ?? [], name).toEqual([]);
  });

  it("commits no secrets: credentials come from the environment, or are marked dev-only", () => {
    const offenders: string[] = [];
    for (const [name, service] of Object.entries(raw.services)) {
      for (const [key, value] of Object.entries(env(service))) {
        if (/-----BEGIN/.test(value)) offenders.push(`${name}.${key}: a PEM block`);
        if (!SECRET_NAME.test(key) || value === "") continue;
        // `${VAR}` or `${VAR:-}`: from the environment / .env, with no literal fallback.
        if (/^\$\{[A-Z0-9_]+(:?-)?\}$/.test(value)) continue;
        if (DEV_ONLY.test(value)) continue;
        offenders.push(`${name}.${key}=${value}`);
      }
    }
    expect(offenders).toEqual([]);
    // And with an empty environment, every GitHub credential is empty.
    for (const name of ["app", "worker"]) {
      const e = env(project.services[name]!);
      for (const key of ["APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "ADMIN_TOKEN"]) expect(e[key] ?? "", `${name}.${key}`).toBe("");
    }
  });
});
