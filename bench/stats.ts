import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** Summary statistics shared by the benchmarks. */
export interface Stats {
  n: number;
  p50: number;
  p95: number;
  mean: number;
  min: number;
  max: number;
}

/** Percentile with linear interpolation between closest ranks (p in 0..100). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const pos = ((sorted.length - 1) * p) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    mean: sorted.reduce((s, x) => s + x, 0) / (sorted.length || 1),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

/** A number for a results table; `n/a` when it is not finite. */
export const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "n/a");

/** A benchmark's figure against its (informational) target. */
export interface TargetCheck {
  name: string;
  measured: string;
  limit: string;
  pass: boolean;
}

/** The `| target | measured | limit | result |` table every benchmark prints. */
export function targetTable(targets: readonly TargetCheck[]): string[] {
  return ["| target | measured | limit | result |", "|---|---:|---:|---|", ...targets.map((t) => `| ${t.name} | ${t.measured} | ${t.limit} | ${t.pass ? "PASS" : "MISS"} |`)];
}

/** A whole-number setting from the environment, `def` when unset. */
export function intFromEnv(name: string, def: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

/** Writes a benchmark's latest result (pretty JSON) next to the others. */
export async function saveResult(file: string, result: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(result, null, 2) + "\n");
}

/** A benchmark's progress lines, on stderr (stdout is the report). */
export function progressFor(bench: string): (msg: string) => void {
  return (msg) => process.stderr.write(`[bench ${bench}] ${msg}\n`);
}

/** What a run asked of the GitHub stand-in: writes (token requests aside), calls, check runs created and completed. */
export function githubCounts(calls: ReadonlyArray<{ method: string; path: string; body?: Record<string, unknown> | null }>): { writes: number; calls: number; checkRunsCreated: number; checkRunsCompleted: number } {
  return {
    writes: calls.filter((c) => c.method !== "GET" && !c.path.endsWith("/access_tokens")).length,
    calls: calls.length,
    checkRunsCreated: calls.filter((c) => c.method === "POST" && /\/check-runs$/.test(c.path)).length,
    checkRunsCompleted: calls.filter((c) => c.method === "PATCH" && /\/check-runs\/\d+$/.test(c.path) && c.body?.status === "completed").length,
  };
}

/** Sandboxes a worker took warm from its pool, from its log lines; null when it logged none. */
export function warmSandboxesIn(log: string): number | null {
  const acquired = log.split("\n").filter((l) => l.includes('"sandbox acquired"'));
  return acquired.length ? acquired.filter((l) => l.includes('"warm":true')).length : null;
}

/** How many rows are in each state. */
export function countStates(rows: ReadonlyArray<{ state: string }>): Record<string, number> {
  const states: Record<string, number> = {};
  for (const r of rows) states[r.state] = (states[r.state] ?? 0) + 1;
  return states;
}
