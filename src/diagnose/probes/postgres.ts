/**
 * PostgreSQL: connects with `pg` from a URL, times `SELECT 1`, reads the server version.
 * DEGRADED when `SELECT 1` is slower than slow_ms, DOWN on any error. The client is always ended
 * (also when the run's signal aborts).
 */
import pg from "pg";
import type { Probe } from "../../domain/diagnose.js";
import { describeError, guarded, ms, ProbeDown, sanitize } from "./common.js";

export interface PostgresProbeOptions {
  url: string;
  slowMs: number;
  /** application_name of the probe's session (visible in pg_stat_activity). */
  applicationName?: string;
}

export function postgresProbe(opts: PostgresProbeOptions): Probe {
  return {
    name: "postgres",
    run: (signal) =>
      guarded(async () => {
        const client = new pg.Client({ connectionString: opts.url, connectionTimeoutMillis: 30_000, application_name: opts.applicationName ?? "agent-diagnose-probe" });
        client.on("error", () => {}); // a dropped connection surfaces through the pending query
        let ending: Promise<void> | undefined;
        const end = (): Promise<void> => (ending ??= client.end().catch(() => {}));
        const onAbort = () => void end();
        signal.addEventListener("abort", onAbort, { once: true });
        // pg messages never carry the password, but be sure the URL's parts never leak.
        const url = safeUrlParts(opts.url);
        const fail = (what: string, err: unknown) => new ProbeDown(sanitize(`${what}: ${describePgError(err)}`, url.secrets));
        try {
          const t0 = performance.now();
          try {
            await client.connect();
          } catch (err) {
            throw fail(`cannot connect to ${url.where}`, err);
          }
          const connectMs = performance.now() - t0;
          let selectMs: number;
          let version: string;
          try {
            const t1 = performance.now();
            await client.query("SELECT 1");
            selectMs = performance.now() - t1;
            const v = await client.query<{ server_version: string }>("SHOW server_version");
            version = v.rows[0]?.server_version ?? "?";
          } catch (err) {
            throw fail("query failed", err);
          }
          const details = [
            { label: "connect", value: ms(connectMs) },
            { label: "SELECT 1", value: ms(selectMs) },
            { label: "version", value: version },
          ];
          if (selectMs > opts.slowMs) {
            return { status: "DEGRADED" as const, reason: `SELECT 1 took ${ms(selectMs)} (> ${opts.slowMs} ms) on ${url.where}`, details };
          }
          return { status: "OK" as const, reason: `SELECT 1 in ${ms(selectMs)} on ${url.where} (PostgreSQL ${version})`, details };
        } finally {
          signal.removeEventListener("abort", onAbort);
          await end();
        }
      }),
  };
}

function describePgError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  // SQLSTATE codes (5 chars) are less useful than the message; network codes are the message.
  if (typeof e?.message === "string" && e.message && !/^\w+$/.test(e.message)) return e.message;
  return describeError(err);
}

/** host:port/db for reasons, and the parts that must never be shown (password, whole URL). */
function safeUrlParts(raw: string): { where: string; secrets: string[] } {
  try {
    const u = new URL(raw);
    const password = decodeURIComponent(u.password);
    const db = u.pathname.replace(/^\//, "");
    return { where: `${u.hostname}${u.port ? `:${u.port}` : ""}${db ? `/${db}` : ""}`, secrets: [raw, password].filter(Boolean) };
  } catch {
    return { where: "the database", secrets: [raw] };
  }
}
