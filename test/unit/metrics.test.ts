import { ProbotOctokit } from "probot";
import { register as globalRegistry } from "prom-client";
import { describe, expect, it, vi } from "vitest";
import { withRateLimitReport } from "../../src/connectors/github.js";
import { createMetrics, observeDeployEnd, observeStep, observeTaskEnd, type MetricsQueue } from "../../src/web/metrics.js";

/** The value of one sample line of the text format (`name{labels} value`), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function fakeQueue(name: string, counts: Record<string, number>, oldestAgeMs: number | null): MetricsQueue {
  return {
    name,
    getJobCounts: async (...types: string[]) => Object.fromEntries(types.map((t) => [t, counts[t] ?? 0])),
    getWaiting: async () => (oldestAgeMs === null ? [] : [{ timestamp: Date.now() - oldestAgeMs }]),
  };
}

describe("createMetrics: one registry per app", () => {
  it("keeps two instances apart and stays out of prom-client's global registry", async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.webhookDeliveries.inc({ event: "issue_comment", outcome: "accepted" });
    a.webhookDeliveries.inc({ event: "issue_comment", outcome: "accepted" });
    b.webhookDeliveries.inc({ event: "push", outcome: "unhandled_event" });
    const ta = await a.registry.metrics();
    const tb = await b.registry.metrics();
    expect(sample(ta, 'agent_webhook_deliveries_total{event="issue_comment",outcome="accepted"}')).toBe(2);
    expect(sample(ta, 'agent_webhook_deliveries_total{event="push",outcome="unhandled_event"}')).toBeUndefined();
    expect(sample(tb, 'agent_webhook_deliveries_total{event="push",outcome="unhandled_event"}')).toBe(1);
    expect(sample(tb, 'agent_webhook_deliveries_total{event="issue_comment",outcome="accepted"}')).toBeUndefined();
    expect(globalRegistry.getSingleMetric("agent_webhook_deliveries_total")).toBeUndefined();
    // A second instance does not throw "already registered": each has its own registry.
    expect(a.registry).not.toBe(b.registry);
  });

  it("collects Node's default metrics with the agent_ prefix", async () => {
    const m = createMetrics();
    const text = await m.registry.metrics();
    expect(text).toMatch(/^# TYPE agent_process_cpu_seconds_total counter$/m);
    expect(text).toMatch(/^agent_nodejs_heap_size_used_bytes \d/m);
    expect(text).not.toMatch(/^process_cpu_seconds_total/m);
    expect(m.registry.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it("leaves default metrics out when asked", async () => {
    const text = await createMetrics({ defaultMetrics: false }).registry.metrics();
    expect(text).not.toContain("agent_process_cpu_seconds_total");
  });
});

describe("createMetrics: labels and observations", () => {
  it("times tasks by kind and outcome from their first start, and only when the start is known", async () => {
    const m = createMetrics({ defaultMetrics: false });
    observeTaskEnd(m, "preview", "succeeded", new Date(Date.now() - 42_000));
    observeTaskEnd(m, "checks", "failed", new Date(Date.now() - 3_000));
    observeTaskEnd(m, "preview", "cancelled", null);
    observeTaskEnd(undefined, "preview", "succeeded", new Date());
    const text = await m.registry.metrics();
    expect(sample(text, 'agent_task_duration_seconds_count{kind="preview",outcome="succeeded"}')).toBe(1);
    const sum = sample(text, 'agent_task_duration_seconds_sum{kind="preview",outcome="succeeded"}')!;
    expect(sum).toBeGreaterThanOrEqual(42);
    expect(sum).toBeLessThan(50);
    // 42 s falls in the 60 s bucket, not the 30 s one.
    expect(sample(text, 'agent_task_duration_seconds_bucket{le="30",kind="preview",outcome="succeeded"}')).toBe(0);
    expect(sample(text, 'agent_task_duration_seconds_bucket{le="60",kind="preview",outcome="succeeded"}')).toBe(1);
    expect(sample(text, 'agent_task_duration_seconds_count{kind="checks",outcome="failed"}')).toBe(1);
    expect(text).not.toContain('outcome="cancelled"');
  });

  it("times steps in seconds by step and outcome, skipping steps that did not run", async () => {
    const m = createMetrics({ defaultMetrics: false });
    observeStep(m, "lint", "succeeded", 2500);
    observeStep(m, "test", "timed_out", 120_000);
    observeStep(m, "preview", "skipped", null);
    const text = await m.registry.metrics();
    expect(sample(text, 'agent_step_duration_seconds_sum{step="lint",outcome="succeeded"}')).toBe(2.5);
    expect(sample(text, 'agent_step_duration_seconds_sum{step="test",outcome="timed_out"}')).toBe(120);
    expect(text).not.toContain('step="preview"');
  });

  it("counts deploys by outcome from zero and times them as tasks", async () => {
    const m = createMetrics({ defaultMetrics: false });
    let text = await m.registry.metrics();
    for (const outcome of ["succeeded", "failed", "needs_attention"]) expect(sample(text, `agent_deploys_total{outcome="${outcome}"}`)).toBe(0);
    observeDeployEnd(m, "deploy", "needs_attention", new Date(Date.now() - 1000));
    observeDeployEnd(m, "branch", "succeeded", null);
    text = await m.registry.metrics();
    expect(sample(text, 'agent_deploys_total{outcome="needs_attention"}')).toBe(1);
    expect(sample(text, 'agent_deploys_total{outcome="succeeded"}')).toBe(1);
    expect(sample(text, 'agent_task_duration_seconds_count{kind="deploy",outcome="needs_attention"}')).toBe(1);
    // Without a start time it is counted, not timed.
    expect(text).not.toContain('kind="branch"');
  });
});

describe("createMetrics: gauges read at scrape time", () => {
  it("reads job counts and the oldest waiting job of each queue on every scrape", async () => {
    const counts = { waiting: 3, active: 1, delayed: 0, failed: 2, completed: 99 };
    const m = createMetrics({ defaultMetrics: false, queues: [fakeQueue("webhooks", counts, 30_000), fakeQueue("tasks", {}, null)] });
    let text = await m.registry.metrics();
    expect(sample(text, 'agent_queue_jobs{queue="webhooks",state="waiting"}')).toBe(3);
    expect(sample(text, 'agent_queue_jobs{queue="webhooks",state="active"}')).toBe(1);
    expect(sample(text, 'agent_queue_jobs{queue="webhooks",state="delayed"}')).toBe(0);
    expect(sample(text, 'agent_queue_jobs{queue="webhooks",state="failed"}')).toBe(2);
    expect(text).not.toContain('state="completed"');
    expect(sample(text, 'agent_queue_jobs{queue="tasks",state="waiting"}')).toBe(0);
    const age = sample(text, 'agent_queue_oldest_waiting_seconds{queue="webhooks"}')!;
    expect(age).toBeGreaterThanOrEqual(30);
    expect(age).toBeLessThan(35);
    expect(sample(text, 'agent_queue_oldest_waiting_seconds{queue="tasks"}')).toBe(0);
    counts.waiting = 7;
    text = await m.registry.metrics();
    expect(sample(text, 'agent_queue_jobs{queue="webhooks",state="waiting"}')).toBe(7);
  });

  it("still answers when a queue cannot be read: that queue's series are left out and the failure logged", async () => {
    const warn = vi.fn();
    const broken: MetricsQueue = {
      name: "tasks",
      getJobCounts: () => Promise.reject(new Error("redis down")),
      getWaiting: () => Promise.reject(new Error("redis down")),
    };
    const m = createMetrics({ defaultMetrics: false, log: { warn } as never, queues: [fakeQueue("webhooks", { waiting: 1 }, null), broken] });
    const text = await m.registry.metrics();
    expect(sample(text, 'agent_queue_jobs{queue="webhooks",state="waiting"}')).toBe(1);
    expect(text).not.toContain('queue="tasks"');
    expect(warn).toHaveBeenCalled();
    expect(String(warn.mock.calls[0]![1])).toContain("tasks");
  });

  it("exposes the sandbox pool, Vault, running tasks and the time limit from their sources", async () => {
    let reachable = true;
    let idle = 2;
    const m = createMetrics({
      defaultMetrics: false,
      sandboxIdle: () => idle,
      vaultUp: () => reachable,
      oldestRunningTaskSeconds: async () => 75,
      taskTimeoutSeconds: 900,
    });
    let text = await m.registry.metrics();
    expect(sample(text, "agent_sandbox_pool_idle")).toBe(2);
    expect(sample(text, "agent_vault_up")).toBe(1);
    expect(sample(text, "agent_tasks_running_oldest_seconds")).toBe(75);
    expect(sample(text, "agent_task_timeout_seconds")).toBe(900);
    reachable = false;
    idle = 0;
    text = await m.registry.metrics();
    expect(sample(text, "agent_vault_up")).toBe(0);
    expect(sample(text, "agent_sandbox_pool_idle")).toBe(0);
  });

  it("leaves out gauges without a source (no Vault: no agent_vault_up)", async () => {
    const text = await createMetrics({ defaultMetrics: false }).registry.metrics();
    for (const name of ["agent_vault_up", "agent_queue_jobs", "agent_sandbox_pool_idle", "agent_tasks_running_oldest_seconds", "agent_task_timeout_seconds"]) {
      expect(text).not.toContain(`# TYPE ${name} `);
    }
  });

  it("reports 0 running-task age when none runs", async () => {
    const m = createMetrics({ defaultMetrics: false, oldestRunningTaskSeconds: async () => null });
    expect(sample(await m.registry.metrics(), "agent_tasks_running_oldest_seconds")).toBe(0);
  });
});

describe("withRateLimitReport", () => {
  const Octokit = ProbotOctokit.defaults((o: Record<string, any>) => ({ ...o, retry: { enabled: false }, throttle: { ...o.throttle, enabled: false } }));

  function client(installationId: number | undefined, replies: Array<[number, string | null]>, report: (i: number, r: number) => void) {
    const fetch = vi.fn(async () => {
      const [status, remaining] = replies.shift()!;
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (remaining !== null) headers["x-ratelimit-remaining"] = remaining;
      return new Response(JSON.stringify(status < 400 ? { id: 1 } : { message: "API rate limit exceeded" }), { status, headers });
    });
    const C = withRateLimitReport(Octokit, report);
    return new C({ auth: { token: "ghs_test", ...(installationId !== undefined ? { installationId } : {}) }, request: { fetch } });
  }

  it("reports x-ratelimit-remaining of successful and failed responses with the installation id", async () => {
    const report = vi.fn();
    const gh = client(77, [[200, "4321"], [200, null], [403, "0"]], report);
    await gh.request("GET /repos/{owner}/{repo}", { owner: "o", repo: "r" });
    expect(report).toHaveBeenLastCalledWith(77, 4321);
    await gh.request("GET /repos/{owner}/{repo}", { owner: "o", repo: "r" });
    expect(report).toHaveBeenCalledTimes(1); // no header, nothing reported
    await expect(gh.request("GET /repos/{owner}/{repo}", { owner: "o", repo: "r" })).rejects.toMatchObject({ status: 403 });
    expect(report).toHaveBeenLastCalledWith(77, 0);
    expect(report).toHaveBeenCalledTimes(2);
  });

  it("leaves clients without an installation alone", async () => {
    const report = vi.fn();
    const gh = client(undefined, [[200, "10"]], report);
    await gh.request("GET /repos/{owner}/{repo}", { owner: "o", repo: "r" });
    expect(report).not.toHaveBeenCalled();
  });

  it("feeds the per-installation gauge", async () => {
    const m = createMetrics({ defaultMetrics: false });
    const gh = client(5, [[200, "123"]], (installation, remaining) => m.githubRateLimitRemaining.set({ installation: String(installation) }, remaining));
    await gh.request("GET /repos/{owner}/{repo}", { owner: "o", repo: "r" });
    expect(sample(await m.registry.metrics(), 'agent_github_rate_limit_remaining{installation="5"}')).toBe(123);
  });
});
