/**
 * Pipeline throughput: BENCH_PIPELINE_PRS (default 50) PRs, one signed `/agent preview b<n>`
 * comment each, all delivered at once to the web tier; every preview runs a trivial step
 * (`sh -c "echo ok"`) in a sandbox. Waits (polling PostgreSQL every 250 ms, with a deadline)
 * until every task is terminal, then reports jobs lost (tasks not SUCCEEDED, or never created),
 * the wall time, the sum of per-task sandbox time and wall ÷ (sum ÷ concurrency).
 *
 * Topology: one web process (ROLE=web) and one worker process (ROLE=worker) with
 * WORKER_CONCURRENCY=4 (BENCH_PIPELINE_CONCURRENCY) and SANDBOX_POOL_SIZE left at the default (2),
 * each `startApp` from the environment (bench/app-target.ts); GitHub's REST API is
 * test/helpers/github-server.ts in this process, the repository a local git server.
 * The worker's Octokit runs with its throttling plugin off (BENCH_PIPELINE_THROTTLE=on keeps it):
 * the app paces writes per installation (a burst of 10, then one a second), which for 50
 * previews of one installation (≈ 7 writes each) alone takes minutes; the GitHub writes the run
 * made are counted and reported.
 *
 * Figures:
 * - wall: from just before the first delivery to the last task's finished_at (PostgreSQL and this
 *   process share the machine's clock);
 * - per-task sandbox time: finished_at − started_at of each task (claimed by a worker slot →
 *   finished: in-progress check-run update, sandbox acquire (warm or cold), checkout, step,
 *   sandbox removal); the steps' own durations (step durationMs) are reported beside it;
 * - ratio: wall ÷ (Σ task time ÷ concurrency): 1.0 when the slots never idle and nothing else takes time.
 *
 * A benchmark, not a test: the targets are printed as PASS/MISS for information only.
 */
import { randomUUID } from "node:crypto";
import { availableParallelism, loadavg } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { sandboxesUnder, until } from "../test/helpers/app-process.js";
import { postComment, startBenchStack, STEP, cleanupQuietly } from "./app-stack.js";
import { fmt, percentile, targetTable, saveResult, intFromEnv, type TargetCheck, progressFor, githubCounts, warmSandboxesIn, countStates } from "./stats.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULT_FILE = join(ROOT, ".cache", "bench", "pipeline-latest.json");
const TARGETS = { ratioMax: 1.2, lost: 0 };
const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "BLOCKED"];

export type { TargetCheck };

export interface PipelineResult {
  benchmark: "pipeline";
  date: string;
  environment: { node: string; cpus: number; loadBefore: number[]; loadAfter: number[] };
  settings: { prs: number; concurrency: number; sandboxPoolSize: string; githubThrottle: boolean; step: string[]; deadlineSeconds: number; topology: string };
  deliveries: { accepted: number; postAllMs: number };
  tasks: { created: number; succeeded: number; terminal: number; lost: number; states: Record<string, number>; attempts: number; warmSandboxes: number | null };
  /** ms */
  wallMs: number;
  /** First task started → last task finished (ms). */
  spanMs: number;
  /** First delivery → first task started (ms). */
  firstStartMs: number;
  /** When this process saw all tasks terminal (poll), from the first delivery (ms). */
  observedMs: number;
  taskMs: { sum: number; p50: number; p90: number; max: number; mean: number };
  stepMs: { sum: number; p50: number; max: number };
  queueWaitMs: { p50: number; max: number };
  ratio: { wallOverIdeal: number; spanOverIdeal: number };
  github: { writes: number; calls: number; checkRunsCreated: number; checkRunsCompleted: number };
  cleanup: { containersRemoved: number };
  headlines: Array<{ name: string; measured: string }>;
  targets: TargetCheck[];
}

const progress = progressFor("pipeline");


interface TaskRow {
  pr: number;
  state: string;
  attempts: number;
  created_ms: string;
  started_ms: string | null;
  finished_ms: string | null;
  steps: Array<{ name: string; durationMs: number | null }>;
}

export async function benchPipeline(opts: { prs?: number; concurrency?: number; deadlineSeconds?: number } = {}): Promise<PipelineResult> {
  const prCount = opts.prs ?? intFromEnv("BENCH_PIPELINE_PRS", 50);
  const concurrency = opts.concurrency ?? intFromEnv("BENCH_PIPELINE_CONCURRENCY", 4);
  const deadlineSeconds = opts.deadlineSeconds ?? intFromEnv("BENCH_PIPELINE_DEADLINE_SECONDS", 150);
  const throttle = process.env.BENCH_PIPELINE_THROTTLE === "on";
  const prs = Array.from({ length: prCount }, (_, i) => i + 1);

  progress("starting: database, GitHub stand-in, git server");
  const stack = await startBenchStack({ label: "pipe", prs, env: { WORKER_CONCURRENCY: String(concurrency) } });
  const loadBefore = loadavg();
  let cleanup = { containersRemoved: 0 };
  let t0 = 0;
  let postAllMs = 0;
  let accepted = 0;
  let observedMs = NaN;
  let rows: TaskRow[] = [];
  let warmSandboxes: number | null = null;
  try {
    progress(`starting a web process and a worker process (WORKER_CONCURRENCY=${concurrency}, SANDBOX_POOL_SIZE default, GitHub throttling ${throttle ? "on" : "off"})`);
    const [web, worker] = await Promise.all([stack.start("pipeline-web", "web"), stack.start("pipeline-worker", "worker", throttle ? {} : { BENCH_GITHUB_THROTTLE: "off" })]);
    // Steady state: the worker's warm pool is full before the burst.
    await until(async () => {
      const list = await sandboxesUnder(stack.workspaceRoot);
      return list.filter((c) => c.state === "running").length >= 2;
    }, "the warm sandbox pool to fill", 60_000, 200);
    const comments = await Promise.all(prs.map((n) => stack.comment(n, 600_000 + n)));

    progress(`delivering ${prCount} comments at once`);
    t0 = Date.now();
    const p0 = performance.now();
    const statuses = await Promise.all(comments.map((c) => postComment(web.port!, c, randomUUID())));
    postAllMs = performance.now() - p0;
    accepted = statuses.filter((s) => s === 202).length;
    if (accepted !== prCount) progress(`only ${accepted}/${prCount} deliveries answered 202: ${JSON.stringify(statuses)}`);

    const query = async () =>
      (
        await stack.db.query<TaskRow>(
          `SELECT w.pr_number AS pr, t.state::text AS state, t.attempts, t.steps,
                  (extract(epoch FROM t.created_at) * 1000)::text AS created_ms,
                  (extract(epoch FROM t.started_at) * 1000)::text AS started_ms,
                  (extract(epoch FROM t.finished_at) * 1000)::text AS finished_ms
             FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE t.kind = 'preview'`,
        )
      ).rows;
    let lastLog = Date.now();
    try {
      rows = await until(
        async () => {
          const r = await query();
          const done = r.filter((t) => TERMINAL.includes(t.state)).length;
          if (Date.now() - lastLog > 10_000) {
            lastLog = Date.now();
            progress(`${r.length} tasks created, ${done} terminal after ${fmt((Date.now() - t0) / 1000, 0)} s`);
          }
          return r.length === prCount && done === prCount ? r : undefined;
        },
        `all ${prCount} tasks to be terminal`,
        deadlineSeconds * 1000,
        250,
      );
      observedMs = Date.now() - t0;
    } catch (err) {
      progress(`${(err as Error).message}: reporting what there is`);
      rows = await query();
    }
    progress("all tasks terminal; stopping the processes");
    const log = await import("node:fs/promises").then((fs) => fs.readFile(worker.logFile, "utf8")).catch(() => "");
    warmSandboxes = warmSandboxesIn(log);
    await Promise.all([web.stop(), worker.stop()]);
  } finally {
    cleanup = await cleanupQuietly(stack, progress);
  }

  const calls = stack.gh.calls;
  const github = githubCounts(calls);
  const num = (s: string | null) => (s === null ? NaN : Number(s));
  const states = countStates(rows);
  const succeeded = rows.filter((r) => r.state === "SUCCEEDED").length;
  const terminal = rows.filter((r) => TERMINAL.includes(r.state)).length;
  const finished = rows.filter((r) => r.started_ms !== null && r.finished_ms !== null);
  const taskTimes = finished.map((r) => num(r.finished_ms) - num(r.started_ms)).sort((a, b) => a - b);
  const stepTimes = rows.flatMap((r) => r.steps.map((s) => s.durationMs ?? 0)).sort((a, b) => a - b);
  const waits = finished.map((r) => num(r.started_ms) - num(r.created_ms)).sort((a, b) => a - b);
  const sum = taskTimes.reduce((a, x) => a + x, 0);
  const lastFinish = Math.max(...finished.map((r) => num(r.finished_ms)));
  const firstStart = Math.min(...finished.map((r) => num(r.started_ms)));
  const wallMs = lastFinish - t0;
  const spanMs = lastFinish - firstStart;
  const ideal = sum / concurrency;
  const ratio = { wallOverIdeal: wallMs / ideal, spanOverIdeal: spanMs / ideal };
  const lost = prCount - succeeded;

  const targets: TargetCheck[] = [
    { name: `pipeline: jobs lost (of ${prCount})`, measured: String(lost), limit: String(TARGETS.lost), pass: lost === TARGETS.lost },
    { name: "pipeline: wall ÷ (Σ task time ÷ concurrency)", measured: `${fmt(ratio.wallOverIdeal, 2)}×`, limit: `≤ ${fmt(TARGETS.ratioMax, 1)}×`, pass: ratio.wallOverIdeal <= TARGETS.ratioMax },
  ];
  const headlines = [
    { name: `pipeline: wall time, ${prCount} previews, concurrency ${concurrency}`, measured: `${fmt(wallMs / 1000, 2)} s` },
    { name: "pipeline: Σ per-task sandbox time (started→finished); ÷ concurrency", measured: `${fmt(sum / 1000, 1)} s; ${fmt(ideal / 1000, 2)} s` },
    { name: "pipeline: per-task time p50 / max; Σ step time", measured: `${fmt(percentile(taskTimes, 50), 0)} / ${fmt(taskTimes[taskTimes.length - 1] ?? NaN, 0)} ms; ${fmt(stepTimes.reduce((a, x) => a + x, 0) / 1000, 2)} s` },
    { name: "pipeline: first task started → last finished, ÷ ideal", measured: `${fmt(spanMs / 1000, 2)} s, ${fmt(ratio.spanOverIdeal, 2)}×` },
  ];

  const result: PipelineResult = {
    benchmark: "pipeline",
    date: new Date().toISOString(),
    environment: { node: process.version, cpus: availableParallelism(), loadBefore, loadAfter: loadavg() },
    settings: {
      prs: prCount,
      concurrency,
      sandboxPoolSize: "default (2)",
      githubThrottle: throttle,
      step: STEP,
      deadlineSeconds,
      topology: "one web process + one worker process (bench/app-target.ts); GitHub stand-in, git server and client in the bench process",
    },
    deliveries: { accepted, postAllMs },
    tasks: { created: rows.length, succeeded, terminal, lost, states, attempts: rows.reduce((a, r) => a + r.attempts, 0), warmSandboxes },
    wallMs,
    spanMs,
    firstStartMs: firstStart - t0,
    observedMs,
    taskMs: { sum, p50: percentile(taskTimes, 50), p90: percentile(taskTimes, 90), max: taskTimes[taskTimes.length - 1] ?? NaN, mean: sum / (taskTimes.length || 1) },
    stepMs: { sum: stepTimes.reduce((a, x) => a + x, 0), p50: percentile(stepTimes, 50), max: stepTimes[stepTimes.length - 1] ?? NaN },
    queueWaitMs: { p50: percentile(waits, 50), max: waits[waits.length - 1] ?? NaN },
    ratio,
    github,
    cleanup,
    headlines,
    targets,
  };

  const out: string[] = [];
  out.push(`## pipeline — ${prCount} PR previews delivered at once, step \`${STEP.join(" ")}\`, one worker process with WORKER_CONCURRENCY=${concurrency}, SANDBOX_POOL_SIZE default (2), GitHub throttling ${throttle ? "on" : "off"} in the worker`);
  out.push("");
  out.push("| figure | value |");
  out.push("|---|---:|");
  out.push(`| deliveries answered 202 (all ${prCount} POSTs took) | ${accepted}/${prCount} (${fmt(postAllMs, 0)} ms) |`);
  out.push(`| tasks created / terminal / SUCCEEDED | ${rows.length} / ${terminal} / ${succeeded} (${Object.entries(states).map(([k, v]) => `${k} ${v}`).join(", ") || "none"}; ${result.tasks.attempts} attempts) |`);
  out.push(`| jobs lost | ${lost} |`);
  out.push(`| wall: first delivery → last task finished | ${fmt(wallMs / 1000, 2)} s (seen by polling at ${fmt(observedMs / 1000, 2)} s) |`);
  out.push(`| first delivery → first task started | ${fmt(result.firstStartMs, 0)} ms |`);
  out.push(`| Σ per-task sandbox time (started_at → finished_at) | ${fmt(sum / 1000, 2)} s (p50 ${fmt(result.taskMs.p50, 0)} ms, p90 ${fmt(result.taskMs.p90, 0)} ms, max ${fmt(result.taskMs.max, 0)} ms) |`);
  out.push(`| Σ step durations (the \`echo ok\` exec alone) | ${fmt(result.stepMs.sum / 1000, 2)} s (p50 ${fmt(result.stepMs.p50, 0)} ms) |`);
  out.push(`| ideal = Σ task time ÷ ${concurrency} | ${fmt(ideal / 1000, 2)} s |`);
  out.push(`| wall ÷ ideal | ${fmt(ratio.wallOverIdeal, 2)}× |`);
  out.push(`| first start → last finish ÷ ideal | ${fmt(ratio.spanOverIdeal, 2)}× (${fmt(spanMs / 1000, 2)} s) |`);
  out.push(`| queue wait (task created → started) p50 / max | ${fmt(result.queueWaitMs.p50, 0)} / ${fmt(result.queueWaitMs.max, 0)} ms |`);
  out.push(`| warm sandboxes (pool hits) of acquisitions | ${warmSandboxes === null ? "n/a" : `${warmSandboxes}/${finished.length}`} |`);
  out.push(`| GitHub calls / writes (non-GET, token excluded) | ${github.calls} / ${github.writes} (check runs created ${github.checkRunsCreated}, completed ${github.checkRunsCompleted}) |`);
  out.push(`| sandbox containers left after the processes stopped (removed) | ${cleanup.containersRemoved} |`);
  out.push("");
  out.push(`Load average (1/5/15 min): ${loadBefore.map((x) => fmt(x, 2)).join("/")} before, ${result.environment.loadAfter.map((x) => fmt(x, 2)).join("/")} after (${result.environment.cpus} CPUs).`);
  out.push("");
  out.push(...targetTable(targets));
  out.push("");
  out.push(
    `Notes: per-task time is PostgreSQL's started_at (a worker slot claimed the task) to finished_at (sandbox removed, result recorded); with ${concurrency} slots on ${result.environment.cpus} CPUs it includes contention. ` +
      `Wall includes the webhook handling before the first task starts. ${throttle ? "" : `With the write pacing on (≤ 1 write/s per installation after a burst of 10) this run's ${github.writes} writes alone would need ≥ ${github.writes} s. `}` +
      "Targets are informational.",
  );
  out.push(`Results JSON: ${relative(process.cwd(), RESULT_FILE) || RESULT_FILE}`);
  process.stdout.write(out.join("\n") + "\n");

  await saveResult(RESULT_FILE, result);
  return result;
}
