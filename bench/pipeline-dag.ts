/**
 * Pipeline through a dependency DAG: one PR in a repository whose .github/agent.yml declares 30
 * stacks in a fixed DAG of depth 4 (layers of 6/8/8/8; every stack of layer k > 0 `depends_on`
 * 1–3 stacks of layer k − 1, some also a stack two layers up: a long edge), built
 * deterministically (a seeded generator) and checked with loadRepoConfig before the run. One
 * signed `/agent preview` comment for all 30 stacks; every preview runs a trivial step
 * (`sh -c "echo ok"`) in a sandbox, as bench/pipeline.ts runs it. A stack's preview is enqueued
 * only once the previews of the stacks it depends on have succeeded (src/jobs/dependents.ts).
 *
 * The comment: `/agent preview <the 30 stacks by name>` when the command grammar takes that many
 * arguments; it takes at most MAX_ARGS (src/commands/grammar.ts, 16), so the bench posts
 * `/agent preview` with no stack instead, which (no `default_stack`) previews every declared
 * stack, i.e. the same 30 in one command (BENCH_DAG_COMMAND=named posts the named form anyway,
 * to see the app's answer; the run then fails early with the app's reply).
 *
 * Topology: one web process (ROLE=web) and one worker process (ROLE=worker) with
 * WORKER_CONCURRENCY=8 (BENCH_DAG_CONCURRENCY; the widest layer, so the critical path is
 * reachable) and SANDBOX_POOL_SIZE at the default (2), each `startApp` from the environment
 * (bench/app-target.ts); the worker's Octokit throttling plugin off (BENCH_DAG_THROTTLE=on keeps
 * it), as bench/pipeline.ts. GitHub's REST API is test/helpers/github-server.ts in this process,
 * the repository a local git server.
 *
 * Figures (PostgreSQL polled every 250 ms until the 30 tasks are terminal, deadline
 * BENCH_DAG_DEADLINE_SECONDS, default 180; times on this machine's clock, t0 just before the POST):
 * - wall: t0 → the last task's finished_at;
 * - task time: finished_at − started_at of each task;
 * - critical path: the longest path through the DAG (config edges), each stack weighing its own
 *   measured task time; ratio wall ÷ critical path (target ≤ 1.2): 1.0 when nothing but the
 *   tasks on the longest chain takes time (no delivery handling, no release or queue latency);
 * - Σ task time ÷ concurrency, and wall ÷ max(critical path, Σ ÷ concurrency): the tighter bound;
 * - ordering violations: a task started before one of its upstreams (config edges) finished
 *   (target 0); the edges recorded in tasks.depends_on are compared with the config's;
 * - release latency: for each task with upstreams, its started_at − the last upstream's
 *   finished_at (p50 / mean / max; also only over releases when a worker slot was free);
 * - per layer: first/last start and first/last finish, from t0.
 *
 * A benchmark: targets are printed as PASS/MISS for information; a run whose tasks did not all
 * succeed in order (or that hit the deadline) sets `failure` (bench/run.ts reports FAILED).
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { parseComment } from "../src/commands/grammar.js";
import { loadRepoConfig } from "../src/config/repo/load.js";
import { stackGraph } from "../src/config/repo/resolve.js";
import { layersOf } from "../src/domain/stack-graph.js";
import { STICKY_MARKER } from "../src/render/sticky-comment.js";
import { sandboxesUnder, until } from "../test/helpers/app-process.js";
import { postComment, startBenchStack, STEP, cleanupQuietly } from "./app-stack.js";
import { fmt, intFromEnv, percentile, progressFor, saveResult, targetTable, type TargetCheck, githubCounts, warmSandboxesIn, countStates } from "./stats.js";
import { seededRandom } from "../test/helpers/seeded-random.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULT_FILE = join(ROOT, ".cache", "bench", "pipeline-dag-latest.json");
const TARGETS = { ratioMax: 1.2, lost: 0, violations: 0 };
const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "BLOCKED"];
const PR = 1;
/** Stacks per layer: 30 stacks, depth 4; the widest layer (8) is the default concurrency. */
const LAYER_SIZES = [6, 8, 8, 8] as const;
/** The DAG's generator seed: the same graph every run. */
const SEED = 20261205;
/** With no task recorded after this long, the bench looks for the app's reply and stops. */
const NO_TASKS_GIVE_UP_MS = 20_000;

export type { TargetCheck };

export interface DagStack {
  name: string;
  layer: number;
  dependsOn: string[];
}

interface Span {
  firstStartMs: number;
  lastStartMs: number;
  firstFinishMs: number;
  lastFinishMs: number;
}

export interface PipelineDagResult {
  benchmark: "pipeline-dag";
  date: string;
  environment: { node: string; cpus: number; loadBefore: number[]; loadAfter: number[] };
  settings: {
    stacks: number;
    layers: number[];
    edges: number;
    longEdges: number;
    concurrency: number;
    sandboxPoolSize: string;
    githubThrottle: boolean;
    step: string[];
    deadlineSeconds: number;
    command: string;
    commandNote: string | null;
    topology: string;
  };
  dag: DagStack[];
  /** Set when the run did not end as it must (a task not SUCCEEDED, an ordering violation, the deadline, no tasks). */
  failure: string | null;
  deliveries: { accepted: boolean; status: number; postMs: number };
  tasks: { created: number; succeeded: number; terminal: number; lost: number; states: Record<string, number>; attempts: number; warmSandboxes: number | null };
  /** t0 → last finished_at (ms). */
  wallMs: number;
  /** t0 → first started_at (ms). */
  firstStartMs: number;
  /** When this process saw all tasks terminal (poll), from t0 (ms). */
  observedMs: number;
  taskMs: { sum: number; p50: number; p90: number; max: number; mean: number };
  stepMs: { sum: number; p50: number; max: number };
  criticalPath: { ms: number; stacks: string[] };
  idealMs: { criticalPath: number; sumOverConcurrency: number; bound: number };
  ratio: { wallOverCriticalPath: number; wallOverBound: number };
  ordering: { violations: number; details: Array<{ stack: string; upstream: string; earlyMs: number }>; edgesExpected: number; edgesRecorded: number; edgesMissing: number; edgesExtra: number };
  releaseLatencyMs: { n: number; p50: number; mean: number; max: number; slotFree: { n: number; p50: number; max: number } };
  layers: Span[];
  /** Per stack, from t0 (ms): created, started, finished; release = the last upstream's finish (null for layer 0). */
  timeline: Array<{ stack: string; layer: number; state: string | null; attempts: number; createdMs: number; startedMs: number; finishedMs: number; releasedMs: number | null }>;
  github: { writes: number; calls: number; checkRunsCreated: number; checkRunsCompleted: number };
  botReplies: string[];
  /** github_outbox rows by state when the tasks were all terminal (the processes stop then: the rest is never sent). */
  outboxAtEnd: Record<string, number>;
  cleanup: { containersRemoved: number };
  headlines: Array<{ name: string; measured: string }>;
  targets: TargetCheck[];
}

const progress = progressFor("pipeline-dag");

interface TaskRow {
  id: string;
  stack: string;
  state: string;
  attempts: number;
  depends_on: string[];
  created_ms: string;
  started_ms: string | null;
  finished_ms: string | null;
  steps: Array<{ name: string; durationMs: number | null }>;
}


/**
 * The DAG: layer 0 has no dependencies; a stack of layer k > 0 depends on 1–3 stacks of layer
 * k − 1 (the first, `i mod size`, so that every stack of the previous layer has a dependent), and
 * on layer k ≥ 2 one stack in four also on a stack of layer k − 2 (a long edge).
 */
export function buildDag(sizes: readonly number[] = LAYER_SIZES, seed = SEED): DagStack[] {
  const rand = seededRandom(seed);
  const name = (k: number, i: number) => `l${k}-s${i + 1}`;
  const out: DagStack[] = [];
  sizes.forEach((size, k) => {
    for (let i = 0; i < size; i++) {
      const deps: string[] = [];
      if (k > 0) {
        const prev = sizes[k - 1]!;
        const want = 1 + Math.floor(rand() * 3);
        const picked = new Set([i % prev]);
        while (picked.size < Math.min(want, prev)) picked.add(Math.floor(rand() * prev));
        deps.push(...[...picked].map((j) => name(k - 1, j)));
        if (k >= 2 && rand() < 0.25) deps.push(name(k - 2, Math.floor(rand() * sizes[k - 2]!)));
      }
      out.push({ name: name(k, i), layer: k, dependsOn: deps });
    }
  });
  return out;
}

export function dagYaml(dag: readonly DagStack[]): string {
  const lines = ["version: 1", "stacks:"];
  for (const s of dag) {
    lines.push(`  - name: ${s.name}`);
    if (s.dependsOn.length) lines.push(`    depends_on: ${JSON.stringify(s.dependsOn)}`);
  }
  lines.push("steps:", `  preview: ${JSON.stringify(STEP)}`, "");
  return lines.join("\n");
}

/** Validates the config as the app will (loadRepoConfig) and checks the app sees the same layers. */
function checkConfig(dag: readonly DagStack[], yaml: string): void {
  const loaded = loadRepoConfig(yaml);
  if (!loaded.ok) throw new Error(`the DAG's agent.yml is invalid: ${loaded.issues.map((i) => `${i.path} (line ${String(i.line)}): ${i.message}`).join("; ")}`);
  const names = dag.map((s) => s.name);
  const resolved = new Map(loaded.stacks.map((s) => [s.name, s.dependsOn ?? []]));
  for (const s of dag) {
    const got = resolved.get(s.name);
    if (!got || [...got].sort().join(",") !== [...s.dependsOn].sort().join(",")) throw new Error(`stack ${s.name}: config resolved depends_on ${JSON.stringify(got)} ≠ ${JSON.stringify(s.dependsOn)}`);
  }
  const layers = layersOf(stackGraph(loaded.stacks), names);
  const expected = LAYER_SIZES.map((_, k) => dag.filter((s) => s.layer === k).map((s) => s.name));
  if (JSON.stringify(layers) !== JSON.stringify(expected)) throw new Error(`layersOf gives ${JSON.stringify(layers)}, expected ${JSON.stringify(expected)}`);
}

/** The comment previewing every stack: named when the grammar takes that many arguments. */
function previewCommand(dag: readonly DagStack[]): { text: string; note: string | null } {
  const named = `/agent preview ${dag.map((s) => s.name).join(" ")}`;
  const parsed = parseComment(named);
  if (process.env.BENCH_DAG_COMMAND === "named") return { text: named, note: parsed.errors.length ? `posted the named form anyway (BENCH_DAG_COMMAND=named): ${parsed.errors[0]!.message.replace(/\.$/, "")}` : null };
  if (parsed.errors.length === 0 && parsed.commands.length === 1) return { text: named, note: null };
  return {
    text: "/agent preview",
    note: `\`/agent preview\` naming all ${dag.length} stacks is refused by the command grammar (${parsed.errors[0]?.message.replace(/\.$/, "") ?? "not one command"}); posted \`/agent preview\` (no default_stack: every declared stack, the same ${dag.length})`,
  };
}

/** A reply on one line (it ends up in a table row). */
const oneLine = (text: string) => text.replace(/\s+/g, " ").trim();

function span(values: Array<{ s: number; f: number }>, t0: number): Span {
  const s = values.map((v) => v.s - t0);
  const f = values.map((v) => v.f - t0);
  return { firstStartMs: Math.min(...s), lastStartMs: Math.max(...s), firstFinishMs: Math.min(...f), lastFinishMs: Math.max(...f) };
}

export async function benchPipelineDag(opts: { concurrency?: number; deadlineSeconds?: number } = {}): Promise<PipelineDagResult> {
  const concurrency = opts.concurrency ?? intFromEnv("BENCH_DAG_CONCURRENCY", Math.max(...LAYER_SIZES));
  const deadlineSeconds = opts.deadlineSeconds ?? intFromEnv("BENCH_DAG_DEADLINE_SECONDS", 180);
  const throttle = process.env.BENCH_DAG_THROTTLE === "on";
  const dag = buildDag();
  const byName = new Map(dag.map((s) => [s.name, s]));
  const yaml = dagYaml(dag);
  checkConfig(dag, yaml);
  const edges = dag.reduce((a, s) => a + s.dependsOn.length, 0);
  const longEdges = dag.reduce((a, s) => a + s.dependsOn.filter((d) => byName.get(d)!.layer < s.layer - 1).length, 0);
  const command = previewCommand(dag);
  if (command.note) progress(command.note);

  progress(`starting: database, GitHub stand-in, git server; ${dag.length} stacks in layers ${LAYER_SIZES.join("/")}, ${edges} edges (${longEdges} long)`);
  const stack = await startBenchStack({ label: "dag", prs: [PR], env: { WORKER_CONCURRENCY: String(concurrency) } });
  stack.gh.fake.files.set("main:.github/agent.yml", yaml);
  const loadBefore = loadavg();
  let cleanup = { containersRemoved: 0 };
  let t0 = NaN;
  let status = 0;
  let postMs = NaN;
  let observedMs = NaN;
  let rows: TaskRow[] = [];
  let warmSandboxes: number | null = null;
  let timedOut = false;
  let noTasks = false;
  let botReplies: string[] = [];
  const outboxAtEnd: Record<string, number> = {};
  try {
    progress(`starting a web process and a worker process (WORKER_CONCURRENCY=${concurrency}, SANDBOX_POOL_SIZE default, GitHub throttling ${throttle ? "on" : "off"})`);
    const [web, worker] = await Promise.all([stack.start("pipeline-dag-web", "web"), stack.start("pipeline-dag-worker", "worker", throttle ? {} : { BENCH_GITHUB_THROTTLE: "off" })]);
    // Steady state: the worker's warm pool is full before the comment.
    await until(async () => (await sandboxesUnder(stack.workspaceRoot)).filter((c) => c.state === "running").length >= 2, "the warm sandbox pool to fill", 60_000, 200);
    const comment = await stack.comment(PR, 800_001, command.text);

    progress(`posting one \`${command.text.length > 60 ? `${command.text.slice(0, 60)}…` : command.text}\` for ${dag.length} stacks`);
    t0 = Date.now();
    const p0 = performance.now();
    status = await postComment(web.port!, comment, randomUUID());
    postMs = performance.now() - p0;
    if (status !== 202) progress(`the delivery was answered ${status}`);

    const query = async () =>
      (
        await stack.db.query<TaskRow>(
          `SELECT t.id::text AS id, t.stack, t.state::text AS state, t.attempts, t.steps, t.depends_on::text[] AS depends_on,
                  (extract(epoch FROM t.created_at) * 1000)::text AS created_ms,
                  (extract(epoch FROM t.started_at) * 1000)::text AS started_ms,
                  (extract(epoch FROM t.finished_at) * 1000)::text AS finished_ms
             FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE t.kind = 'preview' AND w.pr_number = $1`,
          [PR],
        )
      ).rows;
    let lastLog = Date.now();
    try {
      rows = await until(
        async () => {
          const r = await query();
          const done = r.filter((t) => TERMINAL.includes(t.state)).length;
          if (r.length === 0 && Date.now() - t0 > NO_TASKS_GIVE_UP_MS) {
            noTasks = true;
            return r;
          }
          if (Date.now() - lastLog > 10_000) {
            lastLog = Date.now();
            const states = countStates(r);
            progress(`${fmt((Date.now() - t0) / 1000, 0)} s: ${r.length} tasks created, ${done} terminal (${Object.entries(states).map(([k, v]) => `${k} ${v}`).join(", ")})`);
          }
          return r.length === dag.length && done === dag.length ? r : undefined;
        },
        `all ${dag.length} tasks to be terminal`,
        deadlineSeconds * 1000,
        250,
      );
      if (!noTasks) observedMs = Date.now() - t0;
    } catch (err) {
      timedOut = true;
      progress(`${(err as Error).message}: reporting what there is`);
      rows = await query();
    }
    for (const r of (await stack.db.query<{ state: string; n: number }>("SELECT state, count(*)::int AS n FROM github_outbox GROUP BY 1")).rows) outboxAtEnd[r.state] = r.n;
    botReplies = [...stack.gh.fake.comments.values()].filter((c) => c.issue === PR && !c.login && !c.body.includes(STICKY_MARKER)).map((c) => c.body);
    if (noTasks) progress(`no task recorded ${NO_TASKS_GIVE_UP_MS / 1000} s after the comment; the app replied: ${botReplies.map((b) => JSON.stringify(b.slice(0, 300))).join(" | ") || "(nothing)"}`);
    progress(noTasks || timedOut ? "stopping the processes" : "all tasks terminal; stopping the processes");
    const log = await readFile(worker.logFile, "utf8").catch(() => "");
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
  const lost = dag.length - succeeded;
  const rowOf = new Map(rows.map((r) => [r.stack, r]));
  const stackOfId = new Map(rows.map((r) => [r.id, r.stack]));
  const timesOf = (name: string) => {
    const r = rowOf.get(name);
    return r && r.started_ms !== null && r.finished_ms !== null ? { s: num(r.started_ms), f: num(r.finished_ms) } : null;
  };
  const finished = rows.filter((r) => r.started_ms !== null && r.finished_ms !== null);
  const taskTimes = finished.map((r) => num(r.finished_ms) - num(r.started_ms)).sort((a, b) => a - b);
  const stepTimes = rows.flatMap((r) => r.steps.map((s) => s.durationMs ?? 0)).sort((a, b) => a - b);
  const sum = taskTimes.reduce((a, x) => a + x, 0);
  const lastFinish = finished.length ? Math.max(...finished.map((r) => num(r.finished_ms))) : NaN;
  const firstStart = finished.length ? Math.min(...finished.map((r) => num(r.started_ms))) : NaN;
  const wallMs = lastFinish - t0;

  // Critical path: the heaviest chain, each stack weighing its measured task time (0 when it never ran).
  const cp = new Map<string, { ms: number; via: string | null }>();
  for (const s of dag) {
    const t = timesOf(s.name);
    const w = t ? t.f - t.s : 0;
    let best: { ms: number; via: string | null } = { ms: 0, via: null };
    for (const up of s.dependsOn) if (cp.get(up)!.ms > best.ms) best = { ms: cp.get(up)!.ms, via: up };
    cp.set(s.name, { ms: best.ms + w, via: best.via });
  }
  let end = dag[0]!.name;
  for (const s of dag) if (cp.get(s.name)!.ms > cp.get(end)!.ms) end = s.name;
  const chain: string[] = [];
  for (let at: string | null = end; at !== null; at = cp.get(at)!.via) chain.unshift(at);
  const criticalMs = cp.get(end)!.ms;
  const sumOverConcurrency = sum / concurrency;
  const bound = Math.max(criticalMs, sumOverConcurrency);
  const ratio = { wallOverCriticalPath: criticalMs > 0 ? wallMs / criticalMs : NaN, wallOverBound: bound > 0 ? wallMs / bound : NaN };

  // Ordering, on the config's edges; and the edges the app recorded (tasks.depends_on).
  const details: PipelineDagResult["ordering"]["details"] = [];
  let edgesRecorded = 0;
  let edgesMissing = 0;
  let edgesExtra = 0;
  const releases: Array<{ ms: number; slotFree: boolean }> = [];
  const releasedAtOf = new Map<string, number>();
  for (const s of dag) {
    const r = rowOf.get(s.name);
    const recorded = new Set((r?.depends_on ?? []).map((id) => stackOfId.get(id) ?? `?${id}`));
    edgesRecorded += recorded.size;
    edgesMissing += s.dependsOn.filter((d) => !recorded.has(d)).length;
    edgesExtra += [...recorded].filter((d) => !s.dependsOn.includes(d)).length;
    const t = timesOf(s.name);
    if (!t || s.dependsOn.length === 0) continue;
    let releasedAt = -Infinity;
    let complete = true;
    for (const up of s.dependsOn) {
      const u = timesOf(up);
      if (!u) {
        // It started although an upstream never finished.
        details.push({ stack: s.name, upstream: up, earlyMs: NaN });
        complete = false;
        continue;
      }
      if (t.s < u.f) details.push({ stack: s.name, upstream: up, earlyMs: u.f - t.s });
      releasedAt = Math.max(releasedAt, u.f);
    }
    if (!complete) continue;
    releasedAtOf.set(s.name, releasedAt);
    // Busy slots at the release moment: tasks started and not yet finished (this one excluded).
    const busy = dag.filter((o) => o.name !== s.name).filter((o) => {
      const ot = timesOf(o.name);
      return ot !== null && ot.s <= releasedAt && ot.f > releasedAt;
    }).length;
    releases.push({ ms: t.s - releasedAt, slotFree: busy < concurrency });
  }
  const violations = details.length;
  const rel = releases.map((x) => x.ms).sort((a, b) => a - b);
  const relFree = releases.filter((x) => x.slotFree).map((x) => x.ms).sort((a, b) => a - b);
  const releaseLatencyMs = {
    n: rel.length,
    p50: percentile(rel, 50),
    mean: rel.reduce((a, x) => a + x, 0) / (rel.length || 1),
    max: rel[rel.length - 1] ?? NaN,
    slotFree: { n: relFree.length, p50: percentile(relFree, 50), max: relFree[relFree.length - 1] ?? NaN },
  };
  const layers = LAYER_SIZES.map((_, k) => {
    const v = dag.filter((s) => s.layer === k).map((s) => timesOf(s.name)).filter((x): x is { s: number; f: number } => x !== null);
    return v.length ? span(v, t0) : { firstStartMs: NaN, lastStartMs: NaN, firstFinishMs: NaN, lastFinishMs: NaN };
  });

  const failure = noTasks
    ? `no preview task was recorded ${NO_TASKS_GIVE_UP_MS / 1000} s after the comment${botReplies.length ? `; the app replied: ${oneLine(botReplies[0]!).slice(0, 200)}` : ""}`
    : timedOut
      ? `deadline of ${deadlineSeconds} s passed with ${terminal}/${dag.length} tasks terminal (${rows.length} created)`
      : lost > 0
        ? `${lost} of ${dag.length} previews did not succeed (${Object.entries(states).map(([k, v]) => `${k} ${v}`).join(", ")})`
        : violations > 0
          ? `${violations} ordering violation(s): a preview started before its upstream finished`
          : null;

  const targets: TargetCheck[] = [
    { name: `pipeline-dag: tasks lost (of ${dag.length})`, measured: String(lost), limit: String(TARGETS.lost), pass: lost === TARGETS.lost },
    { name: "pipeline-dag: ordering violations (started before an upstream finished)", measured: String(violations), limit: String(TARGETS.violations), pass: violations === TARGETS.violations },
    { name: "pipeline-dag: wall ÷ critical path", measured: `${fmt(ratio.wallOverCriticalPath, 2)}×`, limit: `≤ ${fmt(TARGETS.ratioMax, 1)}×`, pass: Number.isFinite(ratio.wallOverCriticalPath) && ratio.wallOverCriticalPath <= TARGETS.ratioMax },
  ];
  const headlines = [
    { name: `pipeline-dag: wall time, ${dag.length} stacks in ${LAYER_SIZES.length} layers, concurrency ${concurrency}`, measured: `${fmt(wallMs / 1000, 2)} s` },
    { name: "pipeline-dag: critical path (measured task times); Σ task time ÷ concurrency", measured: `${fmt(criticalMs / 1000, 2)} s; ${fmt(sumOverConcurrency / 1000, 2)} s` },
    { name: "pipeline-dag: wall ÷ max(critical path, Σ ÷ concurrency)", measured: `${fmt(ratio.wallOverBound, 2)}×` },
    { name: "pipeline-dag: release latency (last upstream finished → started) p50 / max", measured: `${fmt(releaseLatencyMs.p50, 0)} / ${fmt(releaseLatencyMs.max, 0)} ms` },
  ];

  const result: PipelineDagResult = {
    benchmark: "pipeline-dag",
    date: new Date().toISOString(),
    environment: { node: process.version, cpus: availableParallelism(), loadBefore, loadAfter: loadavg() },
    settings: {
      stacks: dag.length,
      layers: [...LAYER_SIZES],
      edges,
      longEdges,
      concurrency,
      sandboxPoolSize: "default (2)",
      githubThrottle: throttle,
      step: STEP,
      deadlineSeconds,
      command: command.text,
      commandNote: command.note,
      topology: "one web process + one worker process (bench/app-target.ts); GitHub stand-in, git server and client in the bench process",
    },
    dag,
    failure,
    deliveries: { accepted: status === 202, status, postMs },
    tasks: { created: rows.length, succeeded, terminal, lost, states, attempts: rows.reduce((a, r) => a + r.attempts, 0), warmSandboxes },
    wallMs,
    firstStartMs: firstStart - t0,
    observedMs,
    taskMs: { sum, p50: percentile(taskTimes, 50), p90: percentile(taskTimes, 90), max: taskTimes[taskTimes.length - 1] ?? NaN, mean: sum / (taskTimes.length || 1) },
    stepMs: { sum: stepTimes.reduce((a, x) => a + x, 0), p50: percentile(stepTimes, 50), max: stepTimes[stepTimes.length - 1] ?? NaN },
    criticalPath: { ms: criticalMs, stacks: chain },
    idealMs: { criticalPath: criticalMs, sumOverConcurrency, bound },
    ratio,
    ordering: { violations, details, edgesExpected: edges, edgesRecorded, edgesMissing, edgesExtra },
    releaseLatencyMs,
    layers,
    timeline: dag.map((s) => {
      const r = rowOf.get(s.name);
      const released = releasedAtOf.get(s.name);
      return {
        stack: s.name,
        layer: s.layer,
        state: r?.state ?? null,
        attempts: r?.attempts ?? 0,
        createdMs: num(r?.created_ms ?? null) - t0,
        startedMs: num(r?.started_ms ?? null) - t0,
        finishedMs: num(r?.finished_ms ?? null) - t0,
        releasedMs: released === undefined ? null : released - t0,
      };
    }),
    github,
    botReplies,
    outboxAtEnd,
    cleanup,
    headlines,
    targets,
  };

  const out: string[] = [];
  out.push(
    `## pipeline-dag — one \`/agent preview\` of ${dag.length} stacks in a DAG of depth ${LAYER_SIZES.length} (layers ${LAYER_SIZES.join("/")}, ${edges} edges, ${longEdges} long), step \`${STEP.join(" ")}\`, one worker process with WORKER_CONCURRENCY=${concurrency}, SANDBOX_POOL_SIZE default (2), GitHub throttling ${throttle ? "on" : "off"} in the worker`,
  );
  out.push("");
  out.push("| figure | value |");
  out.push("|---|---:|");
  out.push(`| delivery answered | ${status} (${fmt(postMs, 0)} ms) |`);
  out.push(`| tasks created / terminal / SUCCEEDED | ${rows.length} / ${terminal} / ${succeeded} (${Object.entries(states).map(([k, v]) => `${k} ${v}`).join(", ") || "none"}; ${result.tasks.attempts} attempts) |`);
  out.push(`| tasks lost | ${lost} |`);
  out.push(`| wall: delivery → last task finished | ${fmt(wallMs / 1000, 2)} s (seen by polling at ${fmt(observedMs / 1000, 2)} s) |`);
  out.push(`| delivery → first task started | ${fmt(result.firstStartMs, 0)} ms |`);
  out.push(`| per-task time (started_at → finished_at) Σ / p50 / p90 / max | ${fmt(sum / 1000, 2)} s / ${fmt(result.taskMs.p50, 0)} / ${fmt(result.taskMs.p90, 0)} / ${fmt(result.taskMs.max, 0)} ms |`);
  out.push(`| Σ step durations (the \`echo ok\` exec alone) | ${fmt(result.stepMs.sum / 1000, 2)} s (p50 ${fmt(result.stepMs.p50, 0)} ms) |`);
  out.push(`| critical path (Σ measured task time on the heaviest chain) | ${fmt(criticalMs / 1000, 2)} s (${chain.join(" → ")}) |`);
  out.push(`| Σ task time ÷ ${concurrency} | ${fmt(sumOverConcurrency / 1000, 2)} s |`);
  out.push(`| wall ÷ critical path | ${fmt(ratio.wallOverCriticalPath, 2)}× |`);
  out.push(`| wall ÷ max(critical path, Σ ÷ concurrency) | ${fmt(ratio.wallOverBound, 2)}× |`);
  out.push(`| ordering violations (config edges) | ${violations}${violations ? ` (${details.slice(0, 5).map((d) => `${d.stack} before ${d.upstream} by ${fmt(d.earlyMs, 0)} ms`).join("; ")})` : ""} |`);
  out.push(`| edges in tasks.depends_on: recorded / config / missing / extra | ${edgesRecorded} / ${edges} / ${edgesMissing} / ${edgesExtra} |`);
  out.push(`| release latency (last upstream finished → started) p50 / mean / max | ${fmt(releaseLatencyMs.p50, 0)} / ${fmt(releaseLatencyMs.mean, 0)} / ${fmt(releaseLatencyMs.max, 0)} ms (${releaseLatencyMs.n} tasks) |`);
  out.push(`| release latency when a worker slot was free, p50 / max | ${fmt(releaseLatencyMs.slotFree.p50, 0)} / ${fmt(releaseLatencyMs.slotFree.max, 0)} ms (${releaseLatencyMs.slotFree.n} tasks) |`);
  layers.forEach((l, k) => {
    out.push(`| layer ${k} (${LAYER_SIZES[k]} stacks): starts / finishes, from the delivery | ${fmt(l.firstStartMs / 1000, 2)}–${fmt(l.lastStartMs / 1000, 2)} s / ${fmt(l.firstFinishMs / 1000, 2)}–${fmt(l.lastFinishMs / 1000, 2)} s |`);
  });
  out.push(`| warm sandboxes (pool hits) of acquisitions | ${warmSandboxes === null ? "n/a" : `${warmSandboxes}/${finished.length}`} |`);
  out.push(`| GitHub calls / writes (non-GET, token excluded) | ${github.calls} / ${github.writes} (check runs created ${github.checkRunsCreated}, completed ${github.checkRunsCompleted}) |`);
  out.push(`| GitHub outbox rows when the tasks were done (then the processes stop) | ${Object.entries(outboxAtEnd).map(([k, v]) => `${k} ${v}`).join(", ") || "none"} |`);
  out.push(`| sandbox containers left after the processes stopped (removed) | ${cleanup.containersRemoved} |`);
  out.push("");
  out.push(`Load average (1/5/15 min): ${loadBefore.map((x) => fmt(x, 2)).join("/")} before, ${result.environment.loadAfter.map((x) => fmt(x, 2)).join("/")} after (${result.environment.cpus} CPUs).`);
  out.push("");
  out.push(...targetTable(targets));
  out.push("");
  if (command.note) out.push(`Command: ${command.note}.`);
  if (failure) out.push(`Failure: ${failure}`);
  out.push(
    `Notes: per-task time is PostgreSQL's started_at (a worker slot claimed the task) to finished_at (sandbox removed, result recorded); ` +
      "the critical path weighs each stack with its own measured time, so wall ÷ critical path counts what lies between tasks on the chain: the delivery's handling before the first start, " +
      "and each release (the upstream's check-run update, sticky refresh and release after finished_at, the enqueue, the worker's pick-up and claim, and slot waits). Targets are informational.",
  );
  out.push(`Results JSON: ${relative(process.cwd(), RESULT_FILE) || RESULT_FILE}`);
  process.stdout.write(out.join("\n") + "\n");

  await saveResult(RESULT_FILE, result);
  return result;
}
