/**
 * Estuary Flow, through its documented OpenMetrics API (https://docs.estuary.dev/reference/openmetrics-api,
 * source site/docs/reference/openmetrics-api.md in github.com/estuary/flow):
 *
 *   GET {api_url}/api/v1/metrics/{prefix}/     Authorization: Bearer <refresh token>
 *
 * The body is OpenMetrics text, one sample per line, labelled by `task` (and `collection`):
 * counters such as `logged_failures_total`, `logged_errors_total`, `txn_count_total`, and the gauges
 * `materialized_last_source_published_at_time_seconds` / `derived_last_source_published_at_time_seconds`
 * (publication time, in epoch seconds, of the latest source document the task processed).
 *
 * Estuary documents no public "task status"/shard-state endpoint, so the status is judged from
 * what the metrics can say:
 * - DOWN: HTTP error, a body that is not OpenMetrics text, or a configured task with no metrics.
 * - DEGRADED: a materialization or derivation whose latest processed source document is older
 *   than stale_after_s (data movement stalled — what Estuary's own "data movement stalled"
 *   alert watches), or no task at all reporting under the prefix.
 * - The failure/error counters are cumulative totals with no documented window, so they are shown
 *   in the details (per task with failures) but do not change the status on their own.
 */
import { z } from "zod";
import type { Probe, ProbeStatus } from "../../domain/diagnose.js";
import { ago, guarded, httpGet, ProbeDown, worst, type Detail } from "./common.js";

const Sample = z.object({
  name: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/),
  labels: z.record(z.string(), z.string()),
  value: z.number().refine((v) => !Number.isNaN(v), "not a number"),
});
const Samples = z.array(Sample);
export type MetricSample = z.infer<typeof Sample>;

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

/** Parses OpenMetrics/Prometheus text; null when a line is neither a comment nor a sample. */
export function parseOpenMetrics(text: string): MetricSample[] | null {
  const out: unknown[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = SAMPLE_LINE.exec(line);
    if (!m) return null;
    const labels: Record<string, string> = {};
    if (m[2]) {
      LABEL.lastIndex = 0;
      while (LABEL.lastIndex < m[2].length) {
        const l = LABEL.exec(m[2]);
        if (!l) return null;
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      }
    }
    const v = m[3]!;
    const value = v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : Number(v);
    out.push({ name: m[1], labels, value });
  }
  const parsed = Samples.safeParse(out);
  return parsed.success ? parsed.data : null;
}

const FRESHNESS = ["materialized_last_source_published_at_time_seconds", "derived_last_source_published_at_time_seconds"];

export interface EstuaryProbeOptions {
  apiUrl: string;
  prefix: string;
  refreshToken: string;
  tasks?: string[];
  staleAfterS: number;
  now?: () => number;
}

export function estuaryProbe(opts: EstuaryProbeOptions): Probe {
  const now = opts.now ?? Date.now;
  return {
    name: "estuary",
    run: (signal) =>
      guarded(async () => {
        const what = "the Estuary metrics API";
        const path = opts.prefix.split("/").map(encodeURIComponent).join("/");
        const res = await httpGet(`${opts.apiUrl}/api/v1/metrics/${path}`, {
          what,
          headers: { authorization: `Bearer ${opts.refreshToken}`, accept: "application/openmetrics-text, text/plain" },
          signal,
        });
        const samples = parseOpenMetrics(await res.text());
        if (!samples) throw new ProbeDown(`unexpected response from ${what} (not OpenMetrics text)`);

        const byTask = new Map<string, MetricSample[]>();
        for (const s of samples) {
          const task = s.labels.task;
          if (!task) continue;
          const list = byTask.get(task) ?? [];
          list.push(s);
          byTask.set(task, list);
        }
        const sum = (list: MetricSample[], name: string) => list.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
        const nowS = now() / 1000;
        const judged: Array<{ status: ProbeStatus; text: string }> = [];
        const details: Detail[] = [{ label: "tasks reporting", value: String(byTask.size) }];

        for (const task of opts.tasks ?? []) {
          if (!byTask.has(task)) judged.push({ status: "DOWN", text: `task ${task} reports no metrics` });
        }
        const considered = opts.tasks ? opts.tasks.filter((t) => byTask.has(t)) : [...byTask.keys()];
        for (const task of considered) {
          const list = byTask.get(task)!;
          const fresh = list.filter((s) => FRESHNESS.includes(s.name) && Number.isFinite(s.value) && s.value > 0);
          if (fresh.length) {
            const latest = Math.max(...fresh.map((s) => s.value));
            const age = nowS - latest;
            if (age > opts.staleAfterS) judged.push({ status: "DEGRADED", text: `${task}: last source document ${ago(age)} (stale after ${opts.staleAfterS} s)` });
            if (details.length < 12) details.push({ label: task, value: `last source document ${ago(age)}` });
          }
          const failures = sum(list, "logged_failures_total");
          const errors = sum(list, "logged_errors_total");
          if ((failures || errors) && details.length < 12) details.push({ label: `${task} log`, value: `${failures} failures · ${errors} errors (cumulative)` });
        }
        if (!judged.length && !byTask.size) return { status: "DEGRADED", reason: `no task reports metrics under ${opts.prefix}`, details };
        const status = worst(judged.map((j) => j.status));
        if (status === "OK") return { status, reason: `${byTask.size} task(s) reporting under ${opts.prefix}; data fresh`, details };
        const bad = judged.sort((a, b) => (a.status === b.status ? 0 : a.status === "DOWN" ? -1 : 1));
        return { status, reason: bad.map((j) => j.text).join("; "), details };
      }),
  };
}
