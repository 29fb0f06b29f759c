import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { createMetrics, type MetricsQueue } from "../../src/web/metrics.js";

const ROOT = join(import.meta.dirname, "..", "..");

/** Every series name the app's registry can expose (all sources given), histograms with their _bucket/_sum/_count. */
async function exposedNames(): Promise<Set<string>> {
  const queue: MetricsQueue = { name: "tasks", getJobCounts: async () => ({}), getWaiting: async () => [] };
  const m = createMetrics({ queues: [queue], sandboxIdle: () => 0, vaultUp: () => true, oldestRunningTaskSeconds: async () => null, taskTimeoutSeconds: 900 });
  const names = new Set<string>(["up"]);
  for (const metric of await m.registry.getMetricsAsJSON()) {
    if (String(metric.type) === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(metric.name + s);
    else if (String(metric.type) === "summary") for (const s of ["", "_sum", "_count"]) names.add(metric.name + s);
    else names.add(metric.name);
  }
  return names;
}

const PROMQL_WORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"]);

/**
 * The metric names a PromQL expression reads: label matchers, grouping clauses, strings,
 * range selectors and Grafana's variables removed; function names are the identifiers
 * followed by "(".
 */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\$\w+/g, "");
  const names: string[] = [];
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = stripped.slice(m.index! + m[0].length).trimStart();
    if (after.startsWith("(")) continue; // a function
    if (PROMQL_WORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}

describe("metricNamesIn (the checker itself)", () => {
  it("finds the metric names and nothing else", () => {
    expect(
      metricNamesIn('histogram_quantile(0.95, sum by (le, kind) (rate(agent_task_duration_seconds_bucket{outcome="failed",job=~"a.*"}[$__rate_interval])))'),
    ).toEqual(["agent_task_duration_seconds_bucket"]);
    expect(metricNamesIn("max(a_b) > max(c_d) + 600 and sum(increase(e[15m])) >= 4")).toEqual(["a_b", "c_d", "e"]);
    expect(metricNamesIn('up{job="x"} == 0')).toEqual(["up"]);
  });
});

describe("deploy/prometheus/alerts.yml", () => {
  const doc = parse(readFileSync(join(ROOT, "deploy/prometheus/alerts.yml"), "utf8")) as { groups: Array<{ name: string; rules: Array<Record<string, unknown>> }> };
  const rules = doc.groups.flatMap((g) => g.rules);

  it("is a Prometheus rule file: groups of named alerts with an expression", () => {
    expect(doc.groups.length).toBeGreaterThan(0);
    for (const g of doc.groups) expect(typeof g.name).toBe("string");
    for (const r of rules) {
      expect(typeof r.alert, JSON.stringify(r)).toBe("string");
      expect(typeof r.expr, String(r.alert)).toBe("string");
      if (r.for !== undefined) expect(String(r.for)).toMatch(/^\d+[smh]$/);
      expect((r.labels as { severity?: string } | undefined)?.severity, String(r.alert)).toMatch(/^(warning|critical)$/);
      expect((r.annotations as { summary?: string } | undefined)?.summary, String(r.alert)).toBeTruthy();
    }
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it("names only metrics the app exposes (and up)", async () => {
    const exposed = await exposedNames();
    for (const r of rules) {
      const names = metricNamesIn(String(r.expr));
      expect(names.length, String(r.alert)).toBeGreaterThan(0);
      for (const n of names) expect(exposed.has(n), `${String(r.alert)}: ${n} is not exposed`).toBe(true);
    }
  });

  it("covers failure rate, tasks past their timeout, Vault, health, queue backlog and GitHub's rate limit", () => {
    const all = rules.map((r) => String(r.expr)).join("\n");
    expect(all).toContain('agent_task_duration_seconds_count{outcome="failed"}');
    expect(all).toMatch(/agent_tasks_running_oldest_seconds\)? > max\(agent_task_timeout_seconds\)/);
    expect(rules.find((r) => String(r.expr).includes("agent_vault_up == 0"))?.for).toBe("5m");
    expect(all).toMatch(/^up\{.*\} == 0$/m);
    expect(all).toMatch(/agent_queue_oldest_waiting_seconds\) > 600/);
    expect(all).toContain("agent_github_rate_limit_remaining");
    expect(all).toContain("agent_error_budget_remaining) == 0");
  });
});

describe("deploy/grafana/agent-dashboard.json", () => {
  const dash = JSON.parse(readFileSync(join(ROOT, "deploy/grafana/agent-dashboard.json"), "utf8")) as {
    title: string;
    uid: string;
    panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
  };
  const queries = dash.panels.filter((p) => p.type !== "row");

  it("is a dashboard whose every panel has at least one query", () => {
    expect(dash.title).toBeTruthy();
    expect(dash.uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    expect(queries.length).toBeGreaterThan(5);
    for (const p of queries) expect(p.targets?.length, p.title).toBeGreaterThan(0);
  });

  it("queries only metrics the app exposes", async () => {
    const exposed = await exposedNames();
    for (const p of queries) {
      for (const t of p.targets!) {
        const names = metricNamesIn(t.expr);
        expect(names.length, `${p.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const n of names) expect(exposed.has(n), `${p.title}: ${n} is not exposed`).toBe(true);
      }
    }
  });

  it("shows deliveries, ingest p50/p99, queue depth, task p95 by kind, deploy outcomes, Vault and the rate limit", () => {
    const all = queries.flatMap((p) => p.targets!.map((t) => t.expr)).join("\n");
    expect(all).toContain("rate(agent_webhook_deliveries_total");
    expect(all).toContain("histogram_quantile(0.5, sum by (le) (rate(agent_ingest_seconds_bucket");
    expect(all).toContain("histogram_quantile(0.99, sum by (le) (rate(agent_ingest_seconds_bucket");
    expect(all).toContain("agent_queue_jobs");
    expect(all).toContain("histogram_quantile(0.95, sum by (le, kind) (rate(agent_task_duration_seconds_bucket");
    expect(all).toContain("agent_deploys_total");
    expect(all).toContain("agent_vault_up");
    expect(all).toContain("agent_github_rate_limit_remaining");
  });
});
