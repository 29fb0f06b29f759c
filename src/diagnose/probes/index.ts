/**
 * Turns the probes config into the probes of one report. Secrets come from the credentials layer
 * (`secrets`, kind `diagnose`), looked up by the env var names of the config; a probe whose
 * variable is missing does not run and is reported DOWN "credential X is not configured".
 * Every probe is wrapped so its own secret values never reach a reason or a detail.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Probe, ProbeResult } from "../../domain/diagnose.js";
import { sanitize, type ProbeOutcome } from "./common.js";
import type { ProbesConfig } from "../../config/diagnose-probes.js";
import { estuaryProbe } from "./estuary.js";
import { lambdaLabsProbe } from "./lambda-labs.js";
import { neonProbe } from "./neon.js";
import { postgresProbe } from "./postgres.js";
import { pulumiProbe } from "./pulumi.js";
import { qdrantProbe } from "./qdrant.js";
import { redisProbe } from "./redis.js";

export { runProbes } from "./run.js";

export interface ProbeContext {
  secrets: Record<string, string>;
  /** The app's own Redis (probed when `redis.url_env` is absent). */
  redis: Redis;
  /** BullMQ queues whose job counts the redis probe reports. */
  queues: Queue[];
  /** The stack of the diagnosis; null: stack-specific probes (pulumi) are skipped. */
  stack: string | null;
}

/** Env var read by the postgres probe when `postgres.url_env` is absent. */
export const DEFAULT_POSTGRES_URL_ENV = "DATABASE_URL";

export function buildProbes(config: ProbesConfig, ctx: ProbeContext): { probes: Probe[]; problems: ProbeResult[] } {
  const probes: Probe[] = [];
  const problems: ProbeResult[] = [];
  const missing = (name: string, env: string) =>
    problems.push({ name, status: "DOWN", reason: `credential ${env} is not configured`, details: [], durationMs: 0 });
  /** The value of a configured variable; undefined (and a problem recorded) when missing. */
  const secret = (name: string, env: string): string | undefined => {
    const v = ctx.secrets[env];
    if (typeof v === "string" && v !== "") return v;
    missing(name, env);
    return undefined;
  };
  const add = (probe: Probe, secrets: Array<string | undefined>) => probes.push(redacting(probe, secrets.filter((s): s is string => !!s)));

  if (config.redis) {
    const c = config.redis;
    if (c.url_env) {
      const url = secret("redis", c.url_env);
      if (url) add(redisProbe({ connection: { url }, queues: ctx.queues, maxWaiting: c.max_waiting, maxFailed: c.max_failed }), [url, ...urlSecrets(url)]);
    } else {
      add(redisProbe({ connection: ctx.redis, queues: ctx.queues, maxWaiting: c.max_waiting, maxFailed: c.max_failed }), []);
    }
  }
  if (config.postgres) {
    const url = secret("postgres", config.postgres.url_env ?? DEFAULT_POSTGRES_URL_ENV);
    if (url) add(postgresProbe({ url, slowMs: config.postgres.slow_ms }), [url, ...urlSecrets(url)]);
  }
  if (config.neon) {
    const c = config.neon;
    const apiKey = secret("neon", c.api_key_env);
    if (apiKey) add(neonProbe({ apiUrl: c.api_url, projectId: c.project_id, branchId: c.branch_id, apiKey }), [apiKey]);
  }
  if (config.qdrant) {
    const c = config.qdrant;
    const apiKey = c.api_key_env ? secret("qdrant", c.api_key_env) : undefined;
    if (!c.api_key_env || apiKey) add(qdrantProbe({ url: c.url, apiKey, collections: c.collections }), [apiKey]);
  }
  if (config.lambda_labs) {
    const c = config.lambda_labs;
    const apiKey = secret("lambda-labs", c.api_key_env);
    if (apiKey) add(lambdaLabsProbe({ apiUrl: c.api_url, apiKey, instanceNames: c.instance_names }), [apiKey]);
  }
  if (config.estuary) {
    const c = config.estuary;
    const token = secret("estuary", c.refresh_token_env);
    if (token) add(estuaryProbe({ apiUrl: c.api_url, prefix: c.prefix, refreshToken: token, tasks: c.tasks, staleAfterS: c.stale_after_s }), [token]);
  }
  if (config.pulumi && ctx.stack !== null) {
    const c = config.pulumi;
    const token = secret("pulumi", c.access_token_env);
    const stack = c.stacks?.[ctx.stack] ?? ctx.stack;
    if (token) {
      add(
        pulumiProbe({ apiUrl: c.api_url, organization: c.organization, project: c.project, stack, accessToken: token, inProgressMaxS: c.in_progress_max_s }),
        [token],
      );
    }
  }
  return { probes, problems };
}

/** Password and userinfo of a URL: hidden too if a driver echoes them in parts. */
function urlSecrets(raw: string): string[] {
  try {
    const u = new URL(raw);
    return [u.password, decodeURIComponent(u.password)].filter((s) => s.length >= 4);
  } catch {
    return [];
  }
}

/** The probe with its secrets scrubbed from its result and from anything it throws. */
function redacting(probe: Probe, secrets: string[]): Probe {
  if (!secrets.length) return probe;
  const scrub = (o: ProbeOutcome): ProbeOutcome => ({
    ...o,
    reason: typeof o.reason === "string" ? sanitize(o.reason, secrets) : o.reason,
    details: Array.isArray(o.details) ? o.details.map((d) => ({ label: sanitize(String(d.label), secrets), value: sanitize(String(d.value), secrets) })) : o.details,
  });
  return {
    name: probe.name,
    run: async (signal) => {
      try {
        const out = await probe.run(signal);
        return out && typeof out === "object" ? scrub(out) : out;
      } catch (err) {
        const message = sanitize(err instanceof Error ? err.message : String(err), secrets);
        const code = (err as { code?: unknown } | null)?.code;
        throw Object.assign(new Error(message), typeof code === "string" ? { code } : {});
      }
    },
  };
}
