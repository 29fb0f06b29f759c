/**
 * Redis: PING latency, INFO memory (used_memory_human, maxmemory_policy — BullMQ needs
 * `noeviction`, any other policy may silently drop job keys) and the job counts of the BullMQ
 * queues given (waiting/active/delayed/failed; DEGRADED above the configured thresholds).
 */
import type { Queue } from "bullmq";
import { Redis } from "ioredis";
import type { Probe } from "../../domain/diagnose.js";
import { describeError, guarded, ms, ProbeDown, type Detail, type ProbeOutcome } from "./common.js";

export interface RedisProbeOptions {
  /** The connection to probe: the app's own, or `{ url }` for a dedicated one (opened and closed per run). */
  connection: Redis | { url: string };
  queues: Queue[];
  maxWaiting: number;
  maxFailed: number;
}

export function parseInfo(info: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of info.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

function isUrl(c: Redis | { url: string }): c is { url: string } {
  return !(c instanceof Redis) && typeof (c as { url?: unknown }).url === "string";
}

export function redisProbe(opts: RedisProbeOptions): Probe {
  return {
    name: "redis",
    run: (signal) =>
      guarded(async () => {
        const conn = opts.connection;
        const own = isUrl(conn);
        const redis = !isUrl(conn)
          ? conn
          : new Redis(conn.url, {
                lazyConnect: true,
                maxRetriesPerRequest: 0,
                enableOfflineQueue: false,
                retryStrategy: () => null,
                connectTimeout: 10_000,
              });
        const onAbort = () => redis.disconnect();
        let lastError: unknown;
        if (own) {
          // The cause (ECONNREFUSED, NOAUTH…) arrives as an event; connect() only says "closed".
          redis.on("error", (err: unknown) => (lastError = err));
          signal.addEventListener("abort", onAbort, { once: true });
        }
        try {
          if (own) {
            try {
              await redis.connect();
            } catch (err) {
              throw new ProbeDown(`cannot connect to Redis: ${describeError(lastError ?? err)}`);
            }
          }
          return await check(redis, opts);
        } finally {
          if (own) {
            signal.removeEventListener("abort", onAbort);
            redis.disconnect();
          }
        }
      }),
  };
}

async function check(redis: Redis, opts: RedisProbeOptions): Promise<ProbeOutcome> {
  const t0 = performance.now();
  try {
    await redis.ping();
  } catch (err) {
    throw new ProbeDown(`PING failed: ${describeError(err)}`);
  }
  const pingMs = performance.now() - t0;
  const info = parseInfo(await redis.info("memory"));
  const policy = info.maxmemory_policy ?? "unknown";
  const details: Detail[] = [
    { label: "ping", value: ms(pingMs) },
    { label: "memory", value: info.used_memory_human ?? "?" },
    { label: "maxmemory_policy", value: policy },
  ];
  if (info.maxmemory_human && info.maxmemory && info.maxmemory !== "0") details.push({ label: "maxmemory", value: info.maxmemory_human });

  const problems: string[] = [];
  if (policy !== "noeviction") problems.push(`maxmemory_policy is ${policy}; BullMQ needs noeviction (jobs may be evicted)`);

  const counts = await Promise.all(
    opts.queues.map(async (q) => {
      const c = await q.getJobCounts("waiting", "prioritized", "active", "delayed", "failed");
      return { name: q.name, waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0, failed: c.failed ?? 0 };
    }),
  );
  for (const c of counts) {
    details.push({ label: `queue ${c.name}`, value: `${c.waiting} waiting · ${c.active} active · ${c.delayed} delayed · ${c.failed} failed` });
    if (c.waiting > opts.maxWaiting) problems.push(`queue ${c.name} has ${c.waiting} waiting jobs (> ${opts.maxWaiting})`);
    if (c.failed > opts.maxFailed) problems.push(`queue ${c.name} has ${c.failed} failed jobs (> ${opts.maxFailed})`);
  }
  if (problems.length) return { status: "DEGRADED", reason: problems.join("; "), details };
  const used = info.used_memory_human ? `, ${info.used_memory_human} used` : "";
  return { status: "OK", reason: `PING ${ms(pingMs)}${used}, noeviction${counts.length ? `, ${counts.length} queue(s) within limits` : ""}`, details };
}
