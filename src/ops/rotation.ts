/**
 * Rotation of static secrets (issue 20; seed 000 §2.3: every 90 days, and in an emergency). A
 * secret is one key of a Vault KV v2 secret. A rotation: reads the current version, makes a new
 * value (random bytes, or the provider's HTTP endpoint), writes it as the next version with
 * check-and-set (nobody else's write is overwritten), reads it back to verify it, and only then
 * destroys the old version. Every step is audited; a failure before the destroy leaves the old
 * value the latest (a write that did not verify is undone by writing the old value back), and
 * is alerted (agent_secret_rotation_failures_total).
 */
import { randomBytes } from "node:crypto";
import type { RotatedSecretConfig } from "../config/credentials-config.js";
import { appendAudit } from "../connectors/store/audit.js";
import type { Db } from "../connectors/store/db.js";
import type { Metrics } from "../web/metrics.js";
import { rotationDue, secretAgeSeconds } from "../approval/rotation.js";

/** The Vault calls rotation needs (VaultSession.request). */
export interface KvApi {
  request(method: "GET" | "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<unknown>;
}

/** `secret/data/app` → `secret/metadata/app` (or `destroy`). */
function kvPath(dataPath: string, kind: "metadata" | "destroy"): string {
  const parts = dataPath.split("/");
  const i = parts.indexOf("data");
  return [...parts.slice(0, i), kind, ...parts.slice(i + 1)].join("/");
}

interface KvMetadata {
  currentVersion: number;
  createdAt: Date;
  /** When each version Vault still lists was written. */
  versions: ReadonlyMap<number, Date>;
}

export async function kvMetadata(vault: KvApi, dataPath: string): Promise<KvMetadata> {
  const body = (await vault.request("GET", kvPath(dataPath, "metadata"))) as { data?: { current_version?: number; versions?: Record<string, { created_time?: string }> } };
  const current = Number(body?.data?.current_version);
  const created = body?.data?.versions?.[String(current)]?.created_time;
  if (!Number.isInteger(current) || current < 1 || !created) throw new Error(`${dataPath} has no current version in its metadata`);
  const versions = new Map<number, Date>();
  for (const [v, m] of Object.entries(body?.data?.versions ?? {})) if (m?.created_time) versions.set(Number(v), new Date(m.created_time));
  return { currentVersion: current, createdAt: new Date(created), versions };
}

/** One version of a KV v2 secret, whole (`GET <path>?version=N`). */
export async function kvVersion(vault: KvApi, dataPath: string, version: number): Promise<unknown> {
  return vault.request("GET", `${dataPath}?version=${version}`);
}

async function kvData(vault: KvApi, dataPath: string, version?: number): Promise<{ data: Record<string, unknown>; version: number }> {
  const body = (await vault.request("GET", version ? `${dataPath}?version=${version}` : dataPath)) as { data?: { data?: Record<string, unknown>; metadata?: { version?: number } } };
  if (!body?.data?.data) throw new Error(`${dataPath} holds no data`);
  return { data: body.data.data, version: Number(body.data.metadata?.version) };
}

export type Generate = (spec: RotatedSecretConfig) => Promise<string>;

/** Random bytes (base64url), or the provider's endpoint: POST, bearer token from the app's environment, `{"value": "…"}`. */
export function defaultGenerator(env: NodeJS.ProcessEnv): Generate {
  return async (spec) => {
    const g = spec.generator;
    if ("random" in g) return randomBytes(g.random.bytes).toString("base64url");
    const token = g.http.token_env ? env[g.http.token_env] : undefined;
    const res = await fetch(g.http.url, { method: "POST", headers: { accept: "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, signal: AbortSignal.timeout(15_000) });
    if (!res.ok) throw new Error(`the generator endpoint answered ${res.status}`);
    const value = ((await res.json()) as { value?: unknown }).value;
    if (typeof value !== "string" || value.length < 16) throw new Error("the generator endpoint gave no value of at least 16 characters");
    return value;
  };
}

export interface RotationDeps {
  vault: KvApi;
  db: Db;
  generate: Generate;
  metrics?: Metrics;
}

export type RotationOutcome = { secret: string; rotated: true; from: number; to: number } | { secret: string; rotated: false; step: string; error: string };

/** Rotates one secret now (a schedule's due one, or an emergency); never throws. */
export async function rotateSecret(deps: RotationDeps, spec: RotatedSecretConfig, by: { actor: string; reason: "scheduled" | "emergency" }): Promise<RotationOutcome> {
  const audit = (action: "rotation.started" | "rotation.written" | "rotation.verified" | "rotation.completed" | "rotation.failed", detail: Record<string, unknown>) =>
    appendAudit(deps.db, { actor: by.actor, action, repo: null, detail: { secret: spec.name, path: spec.kv, reason: by.reason, ...detail } });
  let step = "read";
  let written: number | null = null;
  let old: { data: Record<string, unknown>; version: number } | null = null;
  try {
    const meta = await kvMetadata(deps.vault, spec.kv);
    old = await kvData(deps.vault, spec.kv, meta.currentVersion);
    await audit("rotation.started", { from: meta.currentVersion });
    step = "generate";
    const value = await deps.generate(spec);
    step = "write";
    // Check-and-set on the version read: a concurrent write makes this one fail, not overwrite it.
    const res = (await deps.vault.request("POST", spec.kv, { options: { cas: meta.currentVersion }, data: { ...old.data, [spec.key]: value } })) as { data?: { version?: number } };
    written = Number(res?.data?.version);
    await audit("rotation.written", { from: meta.currentVersion, to: written });
    step = "verify";
    const back = await kvData(deps.vault, spec.kv);
    if (back.version !== written || back.data[spec.key] !== value) throw new Error(`reading ${spec.kv} back gave version ${back.version}, not the value written as version ${written}`);
    await audit("rotation.verified", { version: written });
    step = "revoke";
    await deps.vault.request("PUT", kvPath(spec.kv, "destroy"), { versions: [meta.currentVersion] });
    await audit("rotation.completed", { from: meta.currentVersion, to: written });
    deps.metrics?.secretAge.set({ secret: spec.name }, 0);
    return { secret: spec.name, rotated: true, from: meta.currentVersion, to: written };
  } catch (err) {
    const error = (err as Error).message.slice(0, 300);
    // A new version that did not verify must not stay the latest: the old value goes back on top.
    let restored: number | null = null;
    if (step === "verify" && old && written) {
      try {
        const res = (await deps.vault.request("POST", spec.kv, { options: { cas: written }, data: old.data })) as { data?: { version?: number } };
        restored = Number(res?.data?.version);
      } catch {
        // reported below: the old value could not be put back
      }
    }
    deps.metrics?.secretRotationFailures.inc({ secret: spec.name });
    await audit("rotation.failed", { step, error, ...(written ? { written, restored } : {}) }).catch(() => {});
    return { secret: spec.name, rotated: false, step, error };
  }
}

/** A static secret's age and the age it is due at, for agent_secret_age_seconds and its alert. */
export function publishSecretAge(metrics: Metrics | undefined, secret: string, createdAt: Date, everyDays: number, now: Date = new Date()): void {
  metrics?.secretAge.set({ secret }, secretAgeSeconds(createdAt, now));
  metrics?.secretMaxAge.set({ secret }, everyDays * 86_400);
}

/** The scheduler's tick: every secret's age published; the due ones rotated. */
export async function rotateDueSecrets(deps: RotationDeps, specs: readonly RotatedSecretConfig[], now: Date = new Date()): Promise<RotationOutcome[]> {
  const outcomes: RotationOutcome[] = [];
  for (const spec of specs) {
    try {
      const meta = await kvMetadata(deps.vault, spec.kv);
      publishSecretAge(deps.metrics, spec.name, meta.createdAt, spec.every_days, now);
      if (rotationDue(meta.createdAt, spec.every_days, now)) outcomes.push(await rotateSecret(deps, spec, { actor: "agent", reason: "scheduled" }));
    } catch (err) {
      deps.metrics?.secretRotationFailures.inc({ secret: spec.name });
      outcomes.push({ secret: spec.name, rotated: false, step: "read", error: (err as Error).message.slice(0, 300) });
    }
  }
  return outcomes;
}
