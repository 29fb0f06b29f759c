/**
 * Idle memory of the real app: a `web` and a `worker` process, each spawned on its own as
 * `node <entry> --role=…` with a test environment (a generated RSA key for a fake APP_ID, a
 * fresh migrated database, a unique queue prefix, GitHub's API on an unused 127.0.0.1 port,
 * no .env), against a baseline measured in the same run: an empty
 * `node -e "setInterval(()=>{},1000)"`.
 *
 * RSS is VmRSS from /proc/<pid>/status of the node process itself (spawned directly, no npx
 * or tsx wrapper), read once the process is ready (web: `/healthz` answers on PORT; worker:
 * `/healthz` answers on METRICS_PORT, which it serves only after its workers started) and
 * again after an idle period. Compiled JS (`tsc -p tsconfig.build.json`, into a private
 * directory under .cache so a concurrent build of dist/ is not disturbed) is what production
 * runs and what the targets apply to; the same entry under tsx (`node --import tsx
 * src/main.ts`) is reported beside it, as that is what development runs.
 *
 * Env: BENCH_MEMORY_IDLE_SECONDS (default 10), BENCH_MEMORY_TSX=0 to skip the tsx variant.
 *
 * A benchmark, not a test: the targets are printed as PASS/MISS for information only.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { migratedTestDb, TEST_REDIS_URL, WEBHOOK_SECRET } from "../test/helpers/harness.js";
import { baseEnv, generatePrivateKey, unusedPort } from "./ingest.js";
import { fmt, targetTable, saveResult, type TargetCheck, progressFor } from "./stats.js";
import { deleteQueueKeys } from "./app-stack.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULT_FILE = join(ROOT, ".cache", "bench", "memory-latest.json");
/** `<BUILD_ROOT>/dist/connectors/store/db.js` finds `../../../migrations`: a link to the repository's. */
const BUILD_ROOT = join(ROOT, ".cache", "bench", "memory-build");
const BUILD_DIR = join(BUILD_ROOT, "dist");
const READY_TIMEOUT_MS = 90_000;
const MIB = 1024 * 1024;
const TARGETS = { webMiB: 150, workerMiB: 200 };

export interface MemoryRow {
  key: string;
  label: string;
  runtime: "compiled" | "tsx" | "baseline";
  role: "web" | "worker" | "baseline";
  pid: number;
  /** From spawn to ready, ms. */
  readyMs: number;
  /** VmRSS at ready, MiB. */
  readyRssMiB: number;
  /** VmRSS after the idle period, MiB. */
  idleRssMiB: number;
  /** VmHWM (peak RSS) after the idle period, MiB. */
  peakRssMiB: number;
  /** idleRssMiB ÷ the baseline's. */
  ratio: number;
}

export type { TargetCheck };

export interface MemoryResult {
  benchmark: "memory";
  date: string;
  environment: { node: string; cpus: number };
  idleSeconds: number;
  rows: MemoryRow[];
  /** Figures without a target, for the summary of bench/run.ts. */
  headlines: Array<{ name: string; measured: string }>;
  targets: TargetCheck[];
}

const progress = progressFor("memory");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function procStatus(pid: number): Promise<{ rss: number; hwm: number }> {
  const text = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
    if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
    return (Number(m[1]) * 1024) / MIB;
  };
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** `tsc -p tsconfig.build.json` into BUILD_DIR; type errors elsewhere (work in progress) do not stop the emit. */
async function build(): Promise<string> {
  await mkdir(BUILD_ROOT, { recursive: true });
  const link = join(BUILD_ROOT, "migrations");
  if (!existsSync(link)) await symlink(join(ROOT, "migrations"), link);
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  progress("compiling src (tsconfig.build.json)");
  try {
    await promisify(execFile)(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", BUILD_DIR, "--sourceMap", "false"], { cwd: ROOT, maxBuffer: 16 * MIB });
  } catch (err) {
    const out = String((err as { stdout?: string }).stdout ?? "").split("\n").slice(0, 5).join("\n");
    progress(`tsc reported errors (the emitted JS is used all the same):\n${out}`);
  }
  const main = join(BUILD_DIR, "main.js");
  if (!existsSync(main)) throw new Error(`the build produced no ${main}`);
  return main;
}

interface Spawned {
  child: ChildProcess;
  output: string[];
  started: number;
}

function start(args: string[], env: NodeJS.ProcessEnv): Spawned {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  const keep = (b: Buffer) => {
    output.push(b.toString("utf8"));
    if (output.length > 200) output.shift();
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return { child, output, started: performance.now() };
}

async function waitHealthy(s: Spawned, port: number, what: string): Promise<number> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (s.child.exitCode !== null) throw new Error(`${what} exited (code ${s.child.exitCode}):\n${s.output.join("").slice(-3000)}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return performance.now() - s.started;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${what} not ready within ${READY_TIMEOUT_MS} ms:\n${s.output.join("").slice(-3000)}`);
}

async function stop(s: Spawned): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const gone = once(s.child, "exit");
  s.child.kill("SIGTERM");
  const t = setTimeout(() => s.child.kill("SIGKILL"), 20_000);
  await gone;
  clearTimeout(t);
}

interface Measured {
  key: string;
  label: string;
  runtime: MemoryRow["runtime"];
  role: MemoryRow["role"];
  pid: number;
  readyMs: number;
  ready: { rss: number; hwm: number };
  idle: { rss: number; hwm: number };
}

/** Starts the processes together, reads each one's RSS when it is ready and again `idleSeconds` after the last became ready. */
async function measureGroup(
  specs: Array<{ key: string; label: string; runtime: MemoryRow["runtime"]; role: MemoryRow["role"]; args: string[]; env: NodeJS.ProcessEnv; healthPort: number | null }>,
  idleSeconds: number,
): Promise<Measured[]> {
  const running = specs.map((spec) => ({ spec, s: start(spec.args, spec.env) }));
  try {
    const ready = await Promise.all(
      running.map(async ({ spec, s }) => {
        let readyMs: number;
        if (spec.healthPort !== null) readyMs = await waitHealthy(s, spec.healthPort, spec.label);
        else {
          await sleep(1000);
          readyMs = performance.now() - s.started;
        }
        return { readyMs, at: await procStatus(s.child.pid!) };
      }),
    );
    progress(`${specs.map((s) => s.key).join(", ")}: ready; idling ${idleSeconds} s`);
    await sleep(idleSeconds * 1000);
    const idle = await Promise.all(running.map(({ s }) => procStatus(s.child.pid!)));
    return running.map(({ spec, s }, i) => ({
      key: spec.key,
      label: spec.label,
      runtime: spec.runtime,
      role: spec.role,
      pid: s.child.pid!,
      readyMs: ready[i]!.readyMs,
      ready: ready[i]!.at,
      idle: idle[i]!,
    }));
  } finally {
    await Promise.all(running.map(({ s }) => stop(s)));
  }
}

export async function benchMemory(opts: { idleSeconds?: number; tsx?: boolean } = {}): Promise<MemoryResult> {
  const idleSeconds = opts.idleSeconds ?? Number(process.env.BENCH_MEMORY_IDLE_SECONDS ?? 10);
  const withTsx = opts.tsx ?? process.env.BENCH_MEMORY_TSX !== "0";
  const mainJs = await build();

  progress("creating a migrated database");
  const db = await migratedTestDb("bench_memory");
  const prefix = `bench${randomBytes(4).toString("hex")}`;
  const workspaceRoot = await mkdtemp(join(tmpdir(), "bench-memory-ws-"));
  const githubPort = await unusedPort();
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(),
    NODE_ENV: "production",
    // No .env: main.ts loads ENV_FILE when it exists.
    ENV_FILE: join(workspaceRoot, "no.env"),
    HOST: "127.0.0.1",
    APP_ID: "12345",
    PRIVATE_KEY: generatePrivateKey(),
    WEBHOOK_SECRET,
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: prefix,
    GHE_HOST: `127.0.0.1:${githubPort}`,
    GHE_PROTOCOL: "http",
    SANDBOX_WORKSPACE_ROOT: workspaceRoot,
    // Warm sandboxes are containers (their memory is not the worker's); none are started here.
    SANDBOX_POOL_SIZE: "0",
    SHUTDOWN_GRACE_SECONDS: "5",
    LOG_LEVEL: "info",
  };
  const roleEnv = async (role: "web" | "worker") => {
    const port = await unusedPort();
    return { port, env: { ...env, ...(role === "web" ? { PORT: String(port) } : { PORT: "0", METRICS_PORT: String(port) }) } };
  };
  const variant = async (runtime: "compiled" | "tsx", role: "web" | "worker") => {
    const { port, env: e } = await roleEnv(role);
    const args = runtime === "compiled" ? [mainJs, `--role=${role}`] : ["--import", "tsx", join(ROOT, "src", "main.ts"), `--role=${role}`];
    return { key: `${role}-${runtime}`, label: `${role} (${runtime === "compiled" ? "compiled JS" : "tsx"})`, runtime, role, args, env: e, healthPort: port };
  };

  const measured: Measured[] = [];
  try {
    progress("compiled web + worker + baseline");
    measured.push(
      ...(await measureGroup(
        [
          await variant("compiled", "web"),
          await variant("compiled", "worker"),
          { key: "baseline", label: 'baseline: node -e "setInterval(()=>{},1000)"', runtime: "baseline", role: "baseline", args: ["-e", "setInterval(()=>{},1000)"], env: baseEnv(), healthPort: null },
        ],
        idleSeconds,
      )),
    );
    if (withTsx) {
      progress("tsx web + worker");
      measured.push(...(await measureGroup([await variant("tsx", "web"), await variant("tsx", "worker")], idleSeconds)));
    }
  } finally {
    await db.drop().catch((err: unknown) => progress(`could not drop the database: ${(err as Error).message}`));
    await deleteQueueKeys(prefix);
    await rm(workspaceRoot, { recursive: true, force: true });
  }

  const baseline = measured.find((m) => m.key === "baseline")!;
  const rows: MemoryRow[] = measured.map((m) => ({
    key: m.key,
    label: m.label,
    runtime: m.runtime,
    role: m.role,
    pid: m.pid,
    readyMs: m.readyMs,
    readyRssMiB: m.ready.rss,
    idleRssMiB: m.idle.rss,
    peakRssMiB: m.idle.hwm,
    ratio: m.idle.rss / baseline.idle.rss,
  }));
  const row = (k: string) => rows.find((r) => r.key === k)!;
  const targets: TargetCheck[] = [
    { name: "memory: web idle RSS (compiled)", measured: `${fmt(row("web-compiled").idleRssMiB)} MiB (${fmt(row("web-compiled").ratio, 2)}× baseline)`, limit: `≤ ${TARGETS.webMiB} MiB`, pass: row("web-compiled").idleRssMiB <= TARGETS.webMiB },
    { name: "memory: worker idle RSS (compiled)", measured: `${fmt(row("worker-compiled").idleRssMiB)} MiB (${fmt(row("worker-compiled").ratio, 2)}× baseline)`, limit: `≤ ${TARGETS.workerMiB} MiB`, pass: row("worker-compiled").idleRssMiB <= TARGETS.workerMiB },
  ];
  const result: MemoryResult = { benchmark: "memory", date: new Date().toISOString(), environment: { node: process.version, cpus: availableParallelism() },
    idleSeconds,
    rows,
    headlines: rows
      .filter((r) => r.runtime !== "compiled")
      .map((r) => ({ name: `memory: ${r.label} idle RSS`, measured: `${fmt(r.idleRssMiB)} MiB${r.runtime === "baseline" ? "" : ` (${fmt(r.ratio, 2)}× baseline)`}` })),
    targets,
  };

  const out: string[] = [];
  out.push(`## memory — VmRSS of each node process when ready and after ${idleSeconds} s idle`);
  out.push("");
  out.push("| process | ready after ms | RSS ready MiB | RSS idle MiB | peak (VmHWM) MiB | idle ÷ baseline |");
  out.push("|---|---:|---:|---:|---:|---:|");
  for (const r of rows) out.push(`| ${r.label} | ${fmt(r.readyMs, 0)} | ${fmt(r.readyRssMiB)} | ${fmt(r.idleRssMiB)} | ${fmt(r.peakRssMiB)} | ${fmt(r.ratio, 2)}× |`);
  out.push("");
  out.push(...targetTable(targets));
  out.push("");
  out.push(
    "Notes: web ready = GET /healthz on PORT answers; worker ready = GET /healthz on METRICS_PORT answers (served after its BullMQ workers started). " +
      "Worker with SANDBOX_POOL_SIZE=0 (pooled sandboxes are containers, outside the worker's RSS). The compiled and baseline processes ran together, then the tsx pair; " +
      "1 MiB = 1,048,576 bytes. Targets apply to compiled JS and are informational.",
  );
  out.push(`Results JSON: ${relative(process.cwd(), RESULT_FILE) || RESULT_FILE}`);
  process.stdout.write(out.join("\n") + "\n");

  await saveResult(RESULT_FILE, result);
  return result;
}
