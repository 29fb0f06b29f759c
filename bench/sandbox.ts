/**
 * Sandbox overhead per task: the same trivial step run on the host (baseline), in a cold
 * sandbox (create + start + exec + destroy), and in a warm one handed out by the pool, plus
 * the parts (create+start, exec, destroy, hand-over) that show where the time goes; and what
 * the integrity work adds to a preview: copying a checkout into the in-memory workspace, and
 * stopping stray processes before and after the engine step. Measured under each OCI runtime
 * (runc for the repository's own code, runsc/gVisor for forks) in the same run, side by side.
 *
 * A benchmark, not a test: the targets are printed as PASS/MISS for information only.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import Docker from "dockerode";
import {
  newOwnerId,
  OWNER_LABEL,
  Sandbox,
  SandboxPool,
  type SandboxLimits,
  type SandboxOptions,
} from "../src/connectors/sandbox.js";
import { fmt, stats, type Stats, saveResult, progressFor } from "./stats.js";

/** The trivial step every variant runs. */
const STEP = ["sh", "-c", "echo ok"];
const WARMUP = 3;
const POOL_SIZE = 2;
const EXEC_TIMEOUT_MS = 30_000;
const LIMITS: SandboxLimits = { memoryMb: 256, cpus: 1, pids: 64, outputLimitBytes: 100_000, workspaceMb: 64 };
/** The checkout copied in per iteration: a small Pulumi project's worth of files. */
const CHECKOUT_FILES = 50;
const CHECKOUT_FILE_BYTES = 4096;
const RUNTIMES = ["runc", "runsc"] as const;
const TARGETS = { warmOverheadP50Ms: 50, coldOverheadP50Ms: 200 };

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULT_FILE = join(ROOT, ".cache", "bench", "sandbox-latest.json");


export interface Row extends Stats {
  /** `<runtime>.<variant>`, or `baseline`. */
  key: string;
  runtime: string | null;
  label: string;
  /** p50 − baseline p50 (ms). */
  overheadP50: number;
  /** p50 / baseline p50. */
  ratio: number;
}

export interface TargetCheck {
  name: string;
  measuredMs: number;
  limitMs: number;
  pass: boolean;
}

export interface Result {
  benchmark: "sandbox";
  date: string;
  environment: { node: string; cpus: number; docker: string; image: string; runtimes: string[] };
  step: string[];
  iterations: number;
  warmup: number;
  poolSize: number;
  /** How many timed warm acquisitions really got a pooled container. */
  warmHits: number;
  rows: Row[];
  targets: TargetCheck[];
  /** Raw per-iteration samples in ms, by row key. */
  samples: Record<string, number[]>;
}


/** Host baseline: spawn the same argv, collect its output like the sandbox does, wait for exit. */
function spawnOnHost(argv: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => out.push(c));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`host baseline exited with ${code}: ${Buffer.concat(out).toString()}`));
    });
  });
}

async function runStep(sb: Sandbox): Promise<void> {
  const res = await sb.exec(STEP, { timeoutMs: EXEC_TIMEOUT_MS });
  if (res.exitCode !== 0 || res.tail !== "ok\n") {
    throw new Error(`sandbox step failed: exit ${res.exitCode}, timedOut ${res.timedOut}, output ${JSON.stringify(res.tail)}`);
  }
}


const progress = progressFor("sandbox");

export async function benchSandbox(opts: { iterations: number }): Promise<Result> {
  const iterations = opts.iterations;
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`iterations must be a positive integer, got ${iterations}`);
  const image = process.env.BENCH_IMAGE ?? "agent-sandbox:test";
  const docker = new Docker();
  const owner = newOwnerId();
  const workspaceRoot = join(tmpdir(), `agent-bench-${randomBytes(3).toString("hex")}`);

  // Everything started here, so the finally (or a signal) can remove whatever is left.
  const live = new Set<Sandbox>();
  let pool: SandboxPool | null = null;
  const poolErrors: unknown[] = [];
  let cleaning: Promise<void> | null = null;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await pool?.close().catch(() => {});
      await Promise.all([...live].map((sb) => sb.destroy().catch(() => {})));
      live.clear();
      // Safety net: anything labelled with this run's owner id (e.g. a refill that raced close()).
      const left = await docker.listContainers({ all: true, filters: { label: [`${OWNER_LABEL}=${owner}`] } }).catch(() => []);
      await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})));
      await rm(workspaceRoot, { recursive: true, force: true });
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    progress(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const samples: Record<string, number[]> = { baseline: [] };
  const warmHits: Record<string, number> = {};
  const dockerVersion = (await docker.version()).Version;
  const registered = Object.keys(((await docker.info()) as { Runtimes?: Record<string, unknown> }).Runtimes ?? {});
  const runtimes = RUNTIMES.filter((r) => registered.includes(r));
  await docker.getImage(image).inspect().catch(() => {
    throw new Error(`image ${image} not found (build it with \`npm run sandbox:image\` or set BENCH_IMAGE)`);
  });
  // A checkout to copy in: CHECKOUT_FILES files in a few folders.
  const checkout = join(workspaceRoot, `${owner}-checkout`);
  for (let i = 0; i < CHECKOUT_FILES; i++) {
    const dir = join(checkout, `dir${i % 5}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `file${i}.ts`), Buffer.alloc(CHECKOUT_FILE_BYTES, 97));
  }

  try {
    // 1. Baseline: the same argv on the host.
    progress(`baseline (host spawn) × ${WARMUP}+${iterations}`);
    for (let i = 0; i < WARMUP + iterations; i++) {
      const t0 = performance.now();
      await spawnOnHost(STEP);
      if (i >= WARMUP) samples.baseline!.push(performance.now() - t0);
    }

    for (const runtime of runtimes) {
      const sbOpts: SandboxOptions = { image, limits: LIMITS, workspaceRoot, owner, runtime };
      const put = (key: string, ms: number) => (samples[`${runtime}.${key}`] ??= []).push(ms);
      const create = async () => {
        const sb = await Sandbox.create(docker, sbOpts);
        live.add(sb);
        return sb;
      };
      const destroy = async (sb: Sandbox) => {
        await sb.destroy();
        live.delete(sb);
      };

      // 2. Exec only, on one sandbox that already runs; and the integrity work on it.
      progress(`${runtime}: exec only, copy-in, stopping stray processes × ${WARMUP}+${iterations}`);
      {
        const sb = await create();
        for (let i = 0; i < WARMUP + iterations; i++) {
          const t0 = performance.now();
          await runStep(sb);
          const t1 = performance.now();
          await sb.copyIn(checkout);
          const t2 = performance.now();
          await sb.stopStrayProcesses();
          const t3 = performance.now();
          if (i >= WARMUP) {
            put("execOnly", t1 - t0);
            put("copyIn", t2 - t1);
            put("seal", t3 - t2);
          }
        }
        await destroy(sb);
      }

      // 3. Cold: what a task pays without a pool, with its phases timed separately.
      progress(`${runtime}: cold (create + exec + destroy) × ${WARMUP}+${iterations}`);
      for (let i = 0; i < WARMUP + iterations; i++) {
        const t0 = performance.now();
        const sb = await create();
        const t1 = performance.now();
        await runStep(sb);
        const t2 = performance.now();
        await destroy(sb);
        const t3 = performance.now();
        if (i >= WARMUP) {
          put("coldCreate", t1 - t0);
          put("coldDestroy", t3 - t2);
          put("cold", t3 - t0);
        }
      }

      // 4. Warm: pool of 2, full before each timed acquire (settled() is awaited outside the timing).
      progress(`${runtime}: warm (pool size ${POOL_SIZE}: acquire + exec, then destroy) × ${WARMUP}+${iterations}`);
      pool = new SandboxPool(docker, { ...sbOpts, size: POOL_SIZE }, (err) => poolErrors.push(err));
      await pool.fill();
      warmHits[runtime] = 0;
      for (let i = 0; i < WARMUP + iterations; i++) {
        await pool.settled();
        if (poolErrors.length > 0) throw new Error(`pool refill failed: ${String(poolErrors[0])}`);
        const t0 = performance.now();
        const { sandbox, warm } = await pool.acquire();
        live.add(sandbox);
        const t1 = performance.now();
        await runStep(sandbox);
        const t2 = performance.now();
        await destroy(sandbox);
        const t3 = performance.now();
        if (i >= WARMUP) {
          if (warm) warmHits[runtime]!++;
          put("warmHandover", t1 - t0);
          put("warm", t2 - t0);
          put("warmTotal", t3 - t0);
        }
      }
      await pool.close();
      pool = null;
    }
  } finally {
    await cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }

  const base = stats(samples.baseline!);
  const labels: [string, string][] = [
    ["execOnly", "exec only (existing sandbox)"],
    ["coldCreate", "cold create+start only"],
    ["coldDestroy", "destroy only (cold loop)"],
    ["cold", "cold (create + exec + destroy)"],
    ["warmHandover", "warm hand-over only (acquire)"],
    ["warm", "warm (hand-over + exec)"],
    ["warmTotal", "warm incl. destroy"],
    ["copyIn", `copy a checkout in (${CHECKOUT_FILES} files × ${CHECKOUT_FILE_BYTES / 1024} KiB)`],
    ["seal", "stop stray processes (kill + verify)"],
  ];
  const rowOf = (key: string, label: string, runtime: string | null): Row => {
    const s = stats(samples[key]!);
    return { key, runtime, label, ...s, overheadP50: s.p50 - base.p50, ratio: s.p50 / base.p50 };
  };
  const rows: Row[] = [rowOf("baseline", "baseline (host spawn)", null), ...runtimes.flatMap((rt) => labels.map(([key, label]) => rowOf(`${rt}.${key}`, label, rt)))];
  const row = (key: string) => rows.find((r) => r.key === key);
  const targets: TargetCheck[] = runtimes
    .flatMap((rt) => [
      { name: `${rt}: warm (hand-over + exec) overhead p50`, measuredMs: row(`${rt}.warm`)!.overheadP50, limitMs: TARGETS.warmOverheadP50Ms },
      { name: `${rt}: cold (create + exec + destroy) overhead p50`, measuredMs: row(`${rt}.cold`)!.overheadP50, limitMs: TARGETS.coldOverheadP50Ms },
    ])
    .map((t) => ({ ...t, pass: t.measuredMs <= t.limitMs }));

  const result: Result = {
    benchmark: "sandbox",
    date: new Date().toISOString(),
    environment: { node: process.version, cpus: availableParallelism(), docker: dockerVersion, image, runtimes },
    step: STEP,
    iterations,
    warmup: WARMUP,
    poolSize: POOL_SIZE,
    warmHits: Object.values(warmHits).reduce((a, b) => a + b, 0),
    rows,
    targets,
    samples,
  };

  const out: string[] = [];
  out.push(`## sandbox — step \`${STEP.join(" ")}\`, image \`${image}\`, ${iterations} timed iterations each after ${WARMUP} warm-up; runtimes ${runtimes.join(", ")}`);
  out.push("");
  out.push(`Baseline (host spawn): p50 ${fmt(base.p50)} ms, p95 ${fmt(base.p95)} ms.`);
  out.push("");
  out.push(`| variant | ${runtimes.map((rt) => `${rt} p50 ms | ${rt} p95 ms | ${rt} p50 / baseline`).join(" | ")} |`);
  out.push(`|---|${runtimes.map(() => "---:|---:|---:").join("|")}|`);
  for (const [key, label] of labels) {
    out.push(`| ${label} | ${runtimes.map((rt) => { const r = row(`${rt}.${key}`)!; return `${fmt(r.p50)} | ${fmt(r.p95)} | ${fmt(r.ratio, 1)}×`; }).join(" | ")} |`);
  }
  out.push("");
  out.push("| target | measured | limit | result |");
  out.push("|---|---:|---:|---|");
  for (const t of targets) out.push(`| ${t.name} | ${fmt(t.measuredMs)} ms | ≤ ${t.limitMs} ms | ${t.pass ? "PASS" : "MISS"} |`);
  out.push("");
  out.push(
    `Notes: warm = pool of ${POOL_SIZE} filled before timing; \`pool.settled()\` is awaited between iterations (untimed), ` +
      `so each acquire finds a warm container (${runtimes.map((rt) => `${rt} ${warmHits[rt]}/${iterations}`).join(", ")} timed acquisitions were warm). ` +
      `Production pools only the default runtime; untrusted tasks start cold under runsc. ` +
      `A preview pays "stop stray processes" twice (before and after the engine step) and "copy a checkout in" once. ` +
      `Percentiles interpolated linearly; targets are informational.` +
      (runtimes.length < RUNTIMES.length ? ` Not registered with this Docker engine, so not measured: ${RUNTIMES.filter((r) => !runtimes.includes(r)).join(", ")}.` : ""),
  );
  out.push(`Results JSON: ${relative(process.cwd(), RESULT_FILE) || RESULT_FILE}`);
  process.stdout.write(out.join("\n") + "\n");

  await saveResult(RESULT_FILE, result);
  return result;
}
