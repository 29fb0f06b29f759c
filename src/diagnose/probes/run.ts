/**
 * Runs the probes of one report: all at once, each with its own AbortSignal.timeout, and a
 * race against a timer so a probe that ignores its signal still ends as DOWN "timed out after
 * N ms". A throw, a rejection or a malformed result becomes DOWN with a short sanitised reason.
 * Never rejects; results keep the input order.
 */
import type { Probe, ProbeResult, ProbeStatus } from "../../domain/diagnose.js";
import { sanitize, type ProbeOutcome } from "./common.js";

const STATUSES: ReadonlySet<ProbeStatus> = new Set(["OK", "DEGRADED", "DOWN"]);

export async function runProbes(probes: Probe[], opts: { timeoutMs: number }): Promise<ProbeResult[]> {
  return Promise.all(probes.map((p) => runOne(p, opts.timeoutMs)));
}

async function runOne(probe: Probe, timeoutMs: number): Promise<ProbeResult> {
  const name = safeName(probe);
  const started = performance.now();
  const signal = AbortSignal.timeout(timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<ProbeOutcome>((resolve) => {
    // A timer of our own (AbortSignal.timeout's is unref'd and may fire late): the race ends on time.
    timer = setTimeout(() => resolve({ status: "DOWN", reason: `timed out after ${timeoutMs} ms`, details: [] }), timeoutMs);
  });
  let outcome: ProbeOutcome;
  try {
    const running = Promise.resolve().then(() => probe.run(signal));
    running.catch(() => {}); // a late rejection after the timeout is not unhandled
    outcome = normalise(await Promise.race([running, timedOut]));
  } catch (err) {
    outcome = { status: "DOWN", reason: errorReason(err, signal, timeoutMs), details: [] };
  } finally {
    clearTimeout(timer);
  }
  return { name, ...outcome, durationMs: Math.round(performance.now() - started) };
}

function safeName(probe: Probe): string {
  try {
    return typeof probe.name === "string" && probe.name ? sanitize(probe.name) : "probe";
  } catch {
    return "probe";
  }
}

function errorReason(err: unknown, signal: AbortSignal, timeoutMs: number): string {
  // A probe that rethrows its own abort after the deadline timed out, whatever the error says.
  if (signal.aborted) return `timed out after ${timeoutMs} ms`;
  const e = err as { message?: unknown; code?: unknown } | null;
  const message = typeof e?.message === "string" && e.message ? e.message : typeof err === "string" ? err : "";
  const code = typeof e?.code === "string" && !message.includes(e.code) ? ` (${e.code})` : "";
  const reason = sanitize(`${message || "probe failed"}${code}`);
  return reason.startsWith("probe failed") ? reason : `probe failed: ${reason}`;
}

/** A probe's result as the report needs it: known status, one-line reason, string details. */
function normalise(raw: unknown): ProbeOutcome {
  const r = raw as Partial<ProbeOutcome> | null | undefined;
  if (!r || typeof r !== "object" || !STATUSES.has(r.status as ProbeStatus) || typeof r.reason !== "string") {
    return { status: "DOWN", reason: "probe returned an invalid result", details: [] };
  }
  const details = Array.isArray(r.details)
    ? r.details
        .filter((d) => d && typeof d === "object")
        .slice(0, 20)
        .map((d) => ({ label: sanitize(String(d.label)), value: sanitize(String(d.value)) }))
    : [];
  return { status: r.status as ProbeStatus, reason: sanitize(r.reason) || r.status!, details };
}
