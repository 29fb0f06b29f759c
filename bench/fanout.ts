/**
 * Fan-out of one command: one PR in a repository whose .github/agent.yml declares FANOUT_STACKS
 * stacks (default 200, at most 500: the config's limit) and no default stack, one signed
 * `/agent preview` comment (no stack named: every stack), each preview a trivial step
 * (`sh -c "echo ok"`) in a sandbox, as bench/pipeline.ts runs it.
 *
 * Topology: one web process (ROLE=web) and one worker process (ROLE=worker) with
 * WORKER_CONCURRENCY=4 (FANOUT_CONCURRENCY; bench/pipeline.ts's setting) and SANDBOX_POOL_SIZE at
 * the default (2), each `startApp` from the environment (bench/app-target.ts) as shipped: the
 * outbox paced per installation (GITHUB_WRITE_BURST 10, GITHUB_WRITES_PER_SECOND 1, both
 * defaults) and Octokit's throttling on for reads. GitHub's REST API is
 * test/helpers/github-server.ts in this process with GitHub's content-creation limit on
 * (80 writes a minute per installation: a write past it gets 403 + retry-after and changes
 * nothing); the repository is a local git server.
 *
 * Figures (PostgreSQL polled every 250 ms, times on this machine's clock, t0 just before the POST):
 * - wall: t0 → the last task's finished_at; Σ task time (finished_at − started_at of each task)
 *   ÷ concurrency; ratio wall ÷ (Σ ÷ concurrency) (target ≤ 1.2);
 * - drain: t0 → the outbox holds no pending or sending row and GitHub (the stand-in) shows every
 *   stack's check run completed and the sticky comment's final render ("all previews
 *   succeeded"); reported beside it: the last outbox row's done_at and the last write's arrival;
 * - GitHub writes per stack: every write request the stand-in received (POST/PATCH/PUT/DELETE,
 *   installation tokens aside), refused ones included, ÷ stacks; split into check-run writes
 *   (one object per stack) and the rest (the 👀 reaction, the sticky comment's parts: not tied
 *   to a stack, the "constant"); target: total ≤ 2 × stacks + constant;
 * - failed writes: outbox rows in state failed (target 0), and the 403s the stand-in answered;
 * - every stack's check run at GitHub ends completed/success (else the run is a failure).
 *
 * Bounded: FANOUT_TIMEOUT_SECONDS (default 900) from t0; past it the bench reports what there is
 * (and fails). A benchmark: the targets are printed as PASS/MISS for information; a run whose
 * previews did not all end in a successful check run sets `failure` (bench/run.ts reports FAILED).
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { previewCheckRunName } from "../src/render/check-run.js";
import { STICKY_MARKER } from "../src/render/sticky-comment.js";
import { sandboxesUnder, until } from "../test/helpers/app-process.js";
import { INSTALLATION_ID } from "../test/helpers/harness.js";
import type { RecordedCall } from "../test/helpers/github-fake.js";
import { postComment, stackName, startBenchStack, STEP, type BenchStack, cleanupQuietly } from "./app-stack.js";
import { fmt, intFromEnv, percentile, saveResult, targetTable, type TargetCheck, progressFor, countStates } from "./stats.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULT_FILE = join(ROOT, ".cache", "bench", "fanout-latest.json");
const TARGETS = { ratioMax: 1.2, checkRunWritesPerStackMax: 2, failedWrites: 0 };
const CONTENT_LIMIT_PER_MINUTE = 80;
const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "BLOCKED"];
const PR = 1;
const FINAL_STICKY = "all previews succeeded";

export interface FanoutResult {
  benchmark: "fanout";
  date: string;
  environment: { node: string; cpus: number; loadBefore: number[]; loadAfter: number[] };
  settings: {
    stacks: number;
    concurrency: number;
    concurrencyLogged: number | null;
    sandboxPoolSize: string;
    pacing: string;
    contentLimitPerMinute: number;
    step: string[];
    timeoutSeconds: number;
    topology: string;
  };
  /** Set when the run did not end as it must (a task not SUCCEEDED, a check run not completed/success, the timeout). */
  failure: string | null;
  accepted: boolean;
  tasks: { created: number; succeeded: number; states: Record<string, number>; attempts: number };
  /** t0 → last task finished_at (ms). */
  wallMs: number;
  /** t0 → first task started (ms). */
  firstStartMs: number;
  taskMs: { sum: number; p50: number; p90: number; max: number };
  queueWaitMs: { p50: number; max: number };
  ratio: { wallOverIdeal: number };
  drain: {
    /** t0 → this process saw the outbox empty and GitHub final (poll, ms); NaN when it never was. */
    observedMs: number;
    /** t0 → the last outbox row's done_at (ms). */
    lastOutboxDoneMs: number;
    /** t0 → the last write the stand-in received (ms). */
    lastWriteMs: number;
    /** After the last task finished, until the poll saw everything at GitHub (ms). */
    afterLastTaskMs: number;
  };
  /** When each stack's queued check run reached GitHub (from t0, ms). */
  checkRunCreatedMs: { first: number; p50: number; last: number };
  github: {
    writes: number;
    accepted: number;
    refused403: number;
    perStack: number;
    checkRunWrites: number;
    checkRunWritesPerStack: number;
    constant: number;
    byKind: Record<string, number>;
    /** Most writes (accepted + refused) in any rolling 60 s window. */
    maxPerMinute: number;
    reads: number;
  };
  outbox: { states: Record<string, number>; byKind: Record<string, number>; failed: Array<{ kind: string; error: string | null }> };
  checkRuns: { stacksCompletedSuccess: number; stacks: number; notSuccess: string[] };
  sticky: { final: boolean; parts: number };
  cleanup: { containersRemoved: number };
  headlines: Array<{ name: string; measured: string }>;
  targets: TargetCheck[];
}

const progress = progressFor("fanout");

interface TaskRow {
  stack: string;
  state: string;
  attempts: number;
  created_ms: string;
  started_ms: string | null;
  finished_ms: string | null;
}

const isWrite = (c: RecordedCall) => c.method !== "GET" && !c.path.endsWith("/access_tokens");
const isCheckRunWrite = (c: RecordedCall) => /\/check-runs(\/\d+)?$/.test(c.path);

function kindOf(c: RecordedCall): string {
  if (/\/check-runs$/.test(c.path)) return "check run create";
  if (/\/check-runs\/\d+$/.test(c.path)) return `check run update (${String(c.body?.status ?? "?")})`;
  if (/\/reactions$/.test(c.path)) return "reaction";
  if (/\/issues\/\d+\/comments$/.test(c.path)) return "comment create";
  if (/\/issues\/comments\/\d+$/.test(c.path)) return c.method === "DELETE" ? "comment delete" : "comment update";
  return `${c.method} ${c.path}`;
}

/** Most timestamps within any window of `windowMs` (sorted input). */
function maxInWindow(sorted: number[], windowMs: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** Per stack name, the newest check run the stand-in holds for it. */
function latestCheckRuns(stack: BenchStack): Map<string, Record<string, unknown>> {
  const latest = new Map<string, Record<string, unknown>>();
  for (const [, cr] of [...stack.gh.fake.checkRuns.entries()].sort(([a], [b]) => a - b)) latest.set(String(cr.name), cr);
  return latest;
}

function stickyParts(stack: BenchStack): string[] {
  return [...stack.gh.fake.comments.values()].filter((c) => c.issue === PR && !c.login).map((c) => c.body);
}

export async function benchFanout(opts: { stacks?: number; concurrency?: number; timeoutSeconds?: number } = {}): Promise<FanoutResult> {
  const stackCount = opts.stacks ?? intFromEnv("FANOUT_STACKS", 200);
  if (stackCount > 500) throw new Error(`FANOUT_STACKS must be at most 500 (the repository config's limit), got ${stackCount}`);
  const concurrency = opts.concurrency ?? intFromEnv("FANOUT_CONCURRENCY", 4);
  const timeoutSeconds = opts.timeoutSeconds ?? intFromEnv("FANOUT_TIMEOUT_SECONDS", 900);
  const numbers = Array.from({ length: stackCount }, (_, i) => i + 1);
  const names = numbers.map(stackName);
  const checkRunNames = new Map(names.map((n) => [previewCheckRunName(n), n]));

  progress(`starting: database, GitHub stand-in (content limit ${CONTENT_LIMIT_PER_MINUTE}/min), git server; ${stackCount} stacks`);
  const stack = await startBenchStack({ label: "fan", prs: [PR], env: { WORKER_CONCURRENCY: String(concurrency) }, contentLimit: { perMinute: CONTENT_LIMIT_PER_MINUTE } });
  stack.declareStacks(numbers);
  const loadBefore = loadavg();
  let cleanup = { containersRemoved: 0 };
  let t0 = NaN;
  let accepted = false;
  let rows: TaskRow[] = [];
  let observedMs = NaN;
  let tasksObservedMs = NaN;
  let timedOut = false;
  let concurrencyLogged: number | null = null;
  let outboxRows: Array<{ state: string; kind: string; n: number }> = [];
  let failedRows: Array<{ kind: string; error: string | null }> = [];
  let lastDoneMs = NaN;
  try {
    progress(`starting a web process and a worker process (WORKER_CONCURRENCY=${concurrency}, SANDBOX_POOL_SIZE default, pacing as shipped)`);
    const [web, worker] = await Promise.all([stack.start("fanout-web", "web"), stack.start("fanout-worker", "worker")]);
    await until(async () => (await sandboxesUnder(stack.workspaceRoot)).filter((c) => c.state === "running").length >= 2, "the warm sandbox pool to fill", 60_000, 200);
    const comment = await stack.comment(PR, 700_001, "/agent preview");

    progress(`posting one \`/agent preview\` for ${stackCount} stacks`);
    t0 = Date.now();
    const status = await postComment(web.port!, comment, randomUUID());
    accepted = status === 202;
    if (!accepted) progress(`the delivery was answered ${status}`);
    const deadline = t0 + timeoutSeconds * 1000;

    const taskQuery = async () =>
      (
        await stack.db.query<TaskRow>(
          `SELECT t.stack, t.state::text AS state, t.attempts,
                  (extract(epoch FROM t.created_at) * 1000)::text AS created_ms,
                  (extract(epoch FROM t.started_at) * 1000)::text AS started_ms,
                  (extract(epoch FROM t.finished_at) * 1000)::text AS finished_ms
             FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE t.kind = 'preview' AND w.pr_number = $1`,
          [PR],
        )
      ).rows;
    const outboxOpen = async () =>
      (await stack.db.query<{ state: string; priority: number; n: number }>("SELECT state, priority, count(*)::int AS n FROM github_outbox WHERE installation_id = $1 AND state IN ('pending', 'sending') GROUP BY 1, 2", [INSTALLATION_ID])).rows;
    const githubFinal = () => {
      const latest = latestCheckRuns(stack);
      const done = [...checkRunNames.keys()].filter((n) => latest.get(n)?.status === "completed").length;
      const sticky = stickyParts(stack).some((b) => b.includes(STICKY_MARKER) && b.includes(FINAL_STICKY));
      return { done, sticky };
    };

    let lastLog = Date.now();
    for (;;) {
      const now = Date.now();
      rows = await taskQuery();
      const terminal = rows.filter((r) => TERMINAL.includes(r.state)).length;
      if (Number.isNaN(tasksObservedMs) && rows.length === stackCount && terminal === stackCount) tasksObservedMs = now - t0;
      const open = await outboxOpen();
      const pending = open.reduce((a, r) => a + r.n, 0);
      const gh = githubFinal();
      if (!Number.isNaN(tasksObservedMs) && pending === 0 && gh.done === stackCount && gh.sticky) {
        observedMs = now - t0;
        break;
      }
      // Everything terminal and nothing left to send, yet GitHub is not final: it never will be.
      if (!Number.isNaN(tasksObservedMs) && pending === 0 && now - t0 - tasksObservedMs > 30_000) {
        progress("tasks terminal and the outbox empty for 30 s, but GitHub does not show the final state: stopping");
        break;
      }
      if (now > deadline) {
        timedOut = true;
        progress(`timed out after ${timeoutSeconds} s: reporting what there is`);
        break;
      }
      if (now - lastLog > 10_000) {
        lastLog = now;
        const byClass = ["ack", "final", "progress"].map((c, i) => `${c} ${open.filter((r) => r.priority === i).reduce((a, r) => a + r.n, 0)}`).join(", ");
        const writes = stack.gh.calls.filter(isWrite).length + stack.gh.limited;
        progress(
          `${fmt((now - t0) / 1000, 0)} s: tasks ${rows.length} created, ${terminal} terminal; outbox open ${pending} (${byClass}); ` +
            `GitHub writes ${writes} (403: ${stack.gh.limited}), check runs completed ${gh.done}/${stackCount}, sticky final ${gh.sticky}`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }

    outboxRows = (await stack.db.query<{ state: string; kind: string; n: number }>("SELECT state, kind, count(*)::int AS n FROM github_outbox WHERE installation_id = $1 GROUP BY 1, 2", [INSTALLATION_ID])).rows;
    failedRows = (await stack.db.query<{ kind: string; error: string | null }>("SELECT kind, last_error AS error FROM github_outbox WHERE installation_id = $1 AND state = 'failed' ORDER BY id LIMIT 20", [INSTALLATION_ID])).rows;
    lastDoneMs = Number((await stack.db.query<{ ms: string | null }>("SELECT (extract(epoch FROM max(done_at)) * 1000)::text AS ms FROM github_outbox WHERE installation_id = $1 AND state = 'sent'", [INSTALLATION_ID])).rows[0]?.ms ?? NaN);
    const log = await readFile(worker.logFile, "utf8").catch(() => "");
    const started = log.split("\n").find((l) => l.includes('"workers started"'));
    if (started) concurrencyLogged = Number((JSON.parse(started) as { concurrency?: number }).concurrency ?? NaN);
    progress("stopping the processes");
    await Promise.all([web.stop(), worker.stop()]);
  } finally {
    cleanup = await cleanupQuietly(stack, progress);
  }

  // -- Figures ------------------------------------------------------------------------------------
  const num = (s: string | null) => (s === null ? NaN : Number(s));
  const states = countStates(rows);
  const succeeded = rows.filter((r) => r.state === "SUCCEEDED").length;
  const finished = rows.filter((r) => r.started_ms !== null && r.finished_ms !== null);
  const taskTimes = finished.map((r) => num(r.finished_ms) - num(r.started_ms)).sort((a, b) => a - b);
  const waits = finished.map((r) => num(r.started_ms) - num(r.created_ms)).sort((a, b) => a - b);
  const sum = taskTimes.reduce((a, x) => a + x, 0);
  const lastFinish = finished.length ? Math.max(...finished.map((r) => num(r.finished_ms))) : NaN;
  const firstStart = finished.length ? Math.min(...finished.map((r) => num(r.started_ms))) : NaN;
  const wallMs = lastFinish - t0;
  const ideal = sum / concurrency;
  const ratio = wallMs / ideal;

  const answered = stack.gh.calls.filter(isWrite);
  const refused = stack.gh.fake.limitedCalls.filter(isWrite);
  const allWrites = [...answered, ...refused, ...stack.gh.faulted.filter(isWrite)];
  const byKind: Record<string, number> = {};
  for (const c of allWrites) byKind[kindOf(c)] = (byKind[kindOf(c)] ?? 0) + 1;
  const checkRunWrites = allWrites.filter(isCheckRunWrite).length;
  const constant = allWrites.length - checkRunWrites;
  const times = allWrites.map((c) => c.at ?? NaN).filter(Number.isFinite).sort((a, b) => a - b);
  const lastWriteMs = (times[times.length - 1] ?? NaN) - t0;
  const createdAt = answered
    .filter((c) => c.method === "POST" && /\/check-runs$/.test(c.path) && checkRunNames.has(String(c.body?.name)))
    .map((c) => (c.at ?? NaN) - t0)
    .sort((a, b) => a - b);

  const latest = latestCheckRuns(stack);
  const notSuccess = [...checkRunNames].filter(([n]) => latest.get(n)?.status !== "completed" || latest.get(n)?.conclusion !== "success").map(([, s]) => s);
  const parts = stickyParts(stack);
  const stickyFinal = parts.some((b) => b.includes(STICKY_MARKER) && b.includes(FINAL_STICKY));

  const outboxStates: Record<string, number> = {};
  const outboxKinds: Record<string, number> = {};
  for (const r of outboxRows) {
    outboxStates[r.state] = (outboxStates[r.state] ?? 0) + r.n;
    outboxKinds[r.kind] = (outboxKinds[r.kind] ?? 0) + r.n;
  }
  const failedWrites = outboxStates.failed ?? 0;

  const problems: string[] = [];
  if (!accepted) problems.push("the delivery was not answered 202");
  if (succeeded !== stackCount) problems.push(`${succeeded}/${stackCount} tasks SUCCEEDED`);
  if (notSuccess.length) problems.push(`${notSuccess.length} stacks' check runs did not end completed/success at GitHub (${notSuccess.slice(0, 5).join(", ")}${notSuccess.length > 5 ? ", …" : ""})`);
  if (!stickyFinal) problems.push("the sticky comment at GitHub never showed the final render");
  if (timedOut) problems.push(`timed out after ${timeoutSeconds} s`);
  const failure = problems.length ? problems.join("; ") : null;

  const writesLimit = TARGETS.checkRunWritesPerStackMax * stackCount + constant;
  const targets: TargetCheck[] = [
    { name: `fanout: wall ÷ (Σ task time ÷ concurrency), ${stackCount} stacks`, measured: `${fmt(ratio, 2)}×`, limit: `≤ ${fmt(TARGETS.ratioMax, 1)}×`, pass: ratio <= TARGETS.ratioMax },
    {
      name: `fanout: GitHub writes per stack (constant part ${constant}: reaction, sticky comment)`,
      measured: `${fmt(allWrites.length / stackCount, 2)} (${allWrites.length} writes; check runs ${fmt(checkRunWrites / stackCount, 2)}/stack)`,
      limit: `≤ ${TARGETS.checkRunWritesPerStackMax} + ${constant}/${stackCount} = ${fmt(writesLimit / stackCount, 2)}`,
      pass: allWrites.length <= writesLimit,
    },
    { name: "fanout: outbox rows failed", measured: String(failedWrites), limit: String(TARGETS.failedWrites), pass: failedWrites === TARGETS.failedWrites },
    { name: "fanout: stacks whose check run ended completed/success at GitHub", measured: `${stackCount - notSuccess.length}/${stackCount}`, limit: `${stackCount}/${stackCount}`, pass: notSuccess.length === 0 },
  ];
  const headlines = [
    { name: `fanout: wall, one /agent preview → last of ${stackCount} tasks finished (concurrency ${concurrency})`, measured: `${fmt(wallMs / 1000, 1)} s` },
    { name: "fanout: Σ task time; ÷ concurrency", measured: `${fmt(sum / 1000, 1)} s; ${fmt(ideal / 1000, 1)} s` },
    { name: "fanout: outbox drained and GitHub final (from the comment)", measured: Number.isFinite(observedMs) ? `${fmt(observedMs / 1000, 1)} s (${fmt((observedMs - wallMs) / 1000, 1)} s after the last task)` : "never (see failure)" },
    { name: `fanout: 403s from the stand-in's content limit (${CONTENT_LIMIT_PER_MINUTE}/min); most writes in a minute`, measured: `${refused.length}; ${maxInWindow(times, 60_000)}` },
  ];

  const result: FanoutResult = {
    benchmark: "fanout",
    date: new Date().toISOString(),
    environment: { node: process.version, cpus: availableParallelism(), loadBefore, loadAfter: loadavg() },
    settings: {
      stacks: stackCount,
      concurrency,
      concurrencyLogged,
      sandboxPoolSize: "default (2)",
      pacing: "as shipped: GITHUB_WRITE_BURST 10, GITHUB_WRITES_PER_SECOND 1 (defaults), Octokit throttling on",
      contentLimitPerMinute: CONTENT_LIMIT_PER_MINUTE,
      step: STEP,
      timeoutSeconds,
      topology: "one web process + one worker process (bench/app-target.ts); GitHub stand-in (content limit on), git server and client in the bench process",
    },
    failure,
    accepted,
    tasks: { created: rows.length, succeeded, states, attempts: rows.reduce((a, r) => a + r.attempts, 0) },
    wallMs,
    firstStartMs: firstStart - t0,
    taskMs: { sum, p50: percentile(taskTimes, 50), p90: percentile(taskTimes, 90), max: taskTimes[taskTimes.length - 1] ?? NaN },
    queueWaitMs: { p50: percentile(waits, 50), max: waits[waits.length - 1] ?? NaN },
    ratio: { wallOverIdeal: ratio },
    drain: { observedMs, lastOutboxDoneMs: lastDoneMs - t0, lastWriteMs, afterLastTaskMs: observedMs - wallMs },
    checkRunCreatedMs: { first: createdAt[0] ?? NaN, p50: percentile(createdAt, 50), last: createdAt[createdAt.length - 1] ?? NaN },
    github: {
      writes: allWrites.length,
      accepted: answered.length,
      refused403: refused.length,
      perStack: allWrites.length / stackCount,
      checkRunWrites,
      checkRunWritesPerStack: checkRunWrites / stackCount,
      constant,
      byKind,
      maxPerMinute: maxInWindow(times, 60_000),
      reads: stack.gh.calls.filter((c) => c.method === "GET").length,
    },
    outbox: { states: outboxStates, byKind: outboxKinds, failed: failedRows },
    checkRuns: { stacksCompletedSuccess: stackCount - notSuccess.length, stacks: stackCount, notSuccess: notSuccess.slice(0, 50) },
    sticky: { final: stickyFinal, parts: parts.length },
    cleanup,
    headlines,
    targets,
  };

  const s = (ms: number, d = 1) => `${fmt(ms / 1000, d)} s`;
  const out: string[] = [];
  out.push(`## fanout — one \`/agent preview\` on a PR, ${stackCount} stacks, step \`${STEP.join(" ")}\`, one worker process with WORKER_CONCURRENCY=${concurrency}, outbox pacing as shipped, GitHub stand-in with the content limit (${CONTENT_LIMIT_PER_MINUTE}/min)`);
  out.push("");
  out.push("| figure | value |");
  out.push("|---|---:|");
  out.push(`| delivery answered 202 | ${accepted ? "yes" : "NO"} |`);
  out.push(`| tasks created / SUCCEEDED | ${rows.length} / ${succeeded} (${Object.entries(states).map(([k, v]) => `${k} ${v}`).join(", ") || "none"}; ${result.tasks.attempts} attempts) |`);
  out.push(`| worker concurrency (set; as the worker logged it) | ${concurrency}; ${concurrencyLogged ?? "n/a"} |`);
  out.push(`| wall: comment → last task finished | ${s(wallMs)} |`);
  out.push(`| comment → first task started | ${s(result.firstStartMs, 2)} |`);
  out.push(`| Σ task time (started_at → finished_at) | ${s(sum)} (p50 ${fmt(result.taskMs.p50, 0)} ms, p90 ${fmt(result.taskMs.p90, 0)} ms, max ${fmt(result.taskMs.max, 0)} ms) |`);
  out.push(`| ideal = Σ ÷ ${concurrency}; wall ÷ ideal | ${s(ideal)}; ${fmt(ratio, 2)}× |`);
  out.push(`| queue wait (task created → started) p50 / max | ${s(result.queueWaitMs.p50)} / ${s(result.queueWaitMs.max)} |`);
  out.push(`| queued check runs at GitHub (first / p50 / last, from the comment) | ${s(result.checkRunCreatedMs.first)} / ${s(result.checkRunCreatedMs.p50)} / ${s(result.checkRunCreatedMs.last)} |`);
  out.push(`| outbox drained and GitHub final (poll) | ${Number.isFinite(observedMs) ? `${s(observedMs)} (${s(observedMs - wallMs)} after the last task)` : "never"} |`);
  out.push(`| last outbox write done_at / last write at the stand-in | ${s(result.drain.lastOutboxDoneMs)} / ${s(lastWriteMs)} |`);
  out.push(`| GitHub writes (refused included) / per stack | ${allWrites.length} / ${fmt(result.github.perStack, 2)} |`);
  out.push(`| … check-run writes (per stack) / not tied to a stack (constant) | ${checkRunWrites} (${fmt(result.github.checkRunWritesPerStack, 2)}) / ${constant} |`);
  out.push(`| … by kind | ${Object.entries(byKind).map(([k, v]) => `${k} ${v}`).join(", ")} |`);
  out.push(`| most writes in any 60 s (limit ${CONTENT_LIMIT_PER_MINUTE}) / 403s answered | ${result.github.maxPerMinute} / ${refused.length} |`);
  out.push(`| GitHub reads (GET) | ${result.github.reads} |`);
  out.push(`| outbox rows by state | ${Object.entries(outboxStates).map(([k, v]) => `${k} ${v}`).join(", ")} |`);
  out.push(`| outbox rows failed | ${failedWrites}${failedRows.length ? ` (${failedRows.slice(0, 3).map((f) => `${f.kind}: ${f.error}`).join("; ")})` : ""} |`);
  out.push(`| check runs completed/success at GitHub | ${stackCount - notSuccess.length}/${stackCount} |`);
  out.push(`| sticky comment final at GitHub (parts) | ${stickyFinal ? "yes" : "NO"} (${parts.length}) |`);
  out.push(`| sandbox containers left after the processes stopped (removed) | ${cleanup.containersRemoved} |`);
  out.push("");
  out.push(`Load average (1/5/15 min): ${loadBefore.map((x) => fmt(x, 2)).join("/")} before, ${result.environment.loadAfter.map((x) => fmt(x, 2)).join("/")} after (${result.environment.cpus} CPUs).`);
  out.push("");
  out.push(...targetTable(targets));
  out.push("");
  if (failure) out.push(`FAILED: ${failure}`, "");
  out.push(
    `Notes: the outbox sends at most a burst of 10 then 1 write/s per installation, so ${allWrites.length} writes need ≥ ${Math.max(0, allWrites.length - 10)} s of sending; ` +
      "the writes target counts every write the stand-in received (refused ones too) and allows 2 per stack plus the writes not tied to a stack. Targets are informational.",
  );
  out.push(`Results JSON: ${relative(process.cwd(), RESULT_FILE) || RESULT_FILE}`);
  process.stdout.write(out.join("\n") + "\n");

  await saveResult(RESULT_FILE, result);
  return result;
}
