/**
 * Benchmark entry: `npm run bench -- [name...]` (or `npx tsx bench/run.ts [name...]`).
 * Runs the named benchmarks, all known ones by default, after a header describing the machine.
 * Benchmarks: `sandbox` (needs Docker), `render` (sticky comment and check run of a 10,000-resource plan),
 * `ingest` (webhook deliveries/s through the web tier vs plain Probot and a verify-only ceiling),
 * `memory` (idle RSS of a web and a worker process vs an empty node process),
 * `ack` (signed `/agent preview` webhook → 👀 reaction and queued check run at the GitHub stand-in, vs /healthz),
 * `pipeline` (50 concurrent PR previews through web + worker processes: jobs lost, wall time vs sandbox time ÷ concurrency),
 * `fanout` (one `/agent preview` on a PR of FANOUT_STACKS stacks, default 200, pacing as shipped, against a GitHub
 * stand-in enforcing the 80 writes/min content limit: wall vs task time ÷ concurrency, outbox drain, writes per stack, 403s),
 * `pipeline-dag` (one `/agent preview` of 30 stacks in a `depends_on` DAG of depth 4 through web + worker processes:
 * wall vs the critical path of measured task times, ordering violations, tasks lost, release latency per dependency).
 * Each benchmark's result is merged into bench/results.json (`{ date, machine, results: { <name>: … } }`:
 * running one benchmark replaces its entry only), and a summary of the targets ends the output. A result with a
 * `failure` (a run that did not end as it must) is recorded and also reported FAILED (exit code 1).
 * Env: BENCH_ITERATIONS (timed iterations per variant, default 30), BENCH_IMAGE (sandbox image).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { availableParallelism, cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Docker from "dockerode";
import { benchDiagnose } from "./diagnose.js";
import { benchRender } from "./render.js";
import { benchSandbox } from "./sandbox.js";
import { benchIngest } from "./ingest.js";
import { benchMemory } from "./memory.js";
import { benchAck } from "./ack.js";
import { benchPipeline } from "./pipeline.js";
import { benchFanout } from "./fanout.js";
import { benchPipelineDag } from "./pipeline-dag.js";
import { fmt } from "./stats.js";

const DEFAULT_ITERATIONS = 30;

const BENCHMARKS: Record<string, (iterations: number) => Promise<unknown>> = {
  sandbox: (iterations) => benchSandbox({ iterations }),
  render: (iterations) => benchRender({ iterations }),
  diagnose: (iterations) => benchDiagnose({ iterations }),
  ingest: () => benchIngest(),
  memory: () => benchMemory(),
  ack: () => benchAck(),
  pipeline: () => benchPipeline(),
  fanout: () => benchFanout(),
  "pipeline-dag": () => benchPipelineDag(),
};

const RESULTS_FILE = join(resolve(dirname(fileURLToPath(import.meta.url))), "results.json");

interface Machine {
  node: string;
  nproc: string;
  cpu: string;
  memory: string;
  docker: string;
}

interface ResultsFile {
  date: string;
  machine: Machine;
  results: Record<string, unknown>;
}

/** Reads bench/results.json; a missing or unreadable file starts afresh. */
function readResults(): ResultsFile | null {
  if (!existsSync(RESULTS_FILE)) return null;
  try {
    const parsed = JSON.parse(readFileSync(RESULTS_FILE, "utf8")) as Partial<ResultsFile>;
    return parsed && typeof parsed.results === "object" && parsed.results !== null ? (parsed as ResultsFile) : null;
  } catch {
    return null;
  }
}

/** Replaces one benchmark's entry in bench/results.json, keeping the others. */
async function saveResult(machine: Machine, name: string, result: unknown): Promise<void> {
  const existing = readResults();
  const file: ResultsFile = { date: new Date().toISOString(), machine, results: { ...(existing?.results ?? {}), [name]: result } };
  await writeFile(RESULTS_FILE, JSON.stringify(file, null, 2) + "\n");
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) return m[1]!.trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? "unknown";
}

/** One row of the closing summary: a benchmark's target (any of the shapes the benchmarks use) or headline figure. */
interface SummaryRow {
  benchmark: string;
  name: string;
  measured: string;
  target: string;
  result: string;
}

function summaryRows(name: string, result: unknown): SummaryRow[] {
  const r = (result ?? {}) as { targets?: unknown; headlines?: unknown };
  const rows: SummaryRow[] = [];
  for (const h of Array.isArray(r.headlines) ? (r.headlines as Array<{ name?: unknown; measured?: unknown }>) : []) {
    rows.push({ benchmark: name, name: String(h.name), measured: String(h.measured), target: "—", result: "—" });
  }
  for (const t of Array.isArray(r.targets) ? (r.targets as Array<Record<string, unknown>>) : []) {
    const measured = typeof t.measured === "string" ? t.measured : typeof t.measuredMs === "number" ? `${fmt(t.measuredMs)} ms` : String(t.measured ?? "?");
    const target = typeof t.limit === "string" ? t.limit : typeof t.limitMs === "number" ? `≤ ${t.limitMs} ms` : String(t.limit ?? "?");
    rows.push({ benchmark: name, name: String(t.name), measured, target, result: t.pass === true ? "PASS" : t.pass === false ? "MISS" : "—" });
  }
  if (rows.length === 0) rows.push({ benchmark: name, name: "(no targets reported)", measured: "—", target: "—", result: "—" });
  return rows;
}

function iterationsFromEnv(): number {
  const raw = process.env.BENCH_ITERATIONS;
  if (raw === undefined || raw === "") return DEFAULT_ITERATIONS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_ITERATIONS must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

function nproc(): string {
  try {
    return execFileSync("nproc", { encoding: "utf8" }).trim();
  } catch {
    return `${availableParallelism()} (os.availableParallelism)`;
  }
}

async function dockerDescription(): Promise<string> {
  try {
    const docker = new Docker();
    const [version, info] = await Promise.all([docker.version(), docker.info() as Promise<Record<string, unknown>>]);
    const extra = [
      info.Driver ? `storage ${String(info.Driver)}` : null,
      info.CgroupVersion ? `cgroup v${String(info.CgroupVersion)}` : null,
      info.CgroupDriver ? `cgroup driver ${String(info.CgroupDriver)}` : null,
    ].filter(Boolean);
    return `${version.Version}${extra.length ? ` (${extra.join(", ")})` : ""}`;
  } catch (err) {
    return `unavailable (${(err as Error).message})`;
  }
}

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  const selected = names.length > 0 ? names : Object.keys(BENCHMARKS);
  const unknown = selected.filter((n) => !(n in BENCHMARKS));
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(", ")}; known: ${Object.keys(BENCHMARKS).join(", ")}`);
    process.exitCode = 2;
    return;
  }
  const iterations = iterationsFromEnv();
  const machine: Machine = {
    node: process.version,
    nproc: nproc(),
    cpu: cpuModel(),
    memory: `${fmt(totalmem() / 1024 ** 3)} GiB`,
    docker: await dockerDescription(),
  };
  console.log("# benchmarks");
  console.log("");
  console.log(`- date: ${new Date().toISOString()}`);
  console.log(`- node: ${machine.node}`);
  console.log(`- nproc: ${machine.nproc}`);
  console.log(`- cpu: ${machine.cpu}`);
  console.log(`- memory: ${machine.memory}`);
  console.log(`- docker server: ${machine.docker}`);
  console.log(`- iterations: ${iterations}`);
  console.log("");
  const summary: SummaryRow[] = [];
  for (const name of selected) {
    try {
      const result = await BENCHMARKS[name]!(iterations);
      await saveResult(machine, name, result);
      summary.push(...summaryRows(name, result));
      const failure = (result as { failure?: unknown } | null)?.failure;
      if (typeof failure === "string" && failure) {
        console.error(`benchmark ${name} failed: ${failure}`);
        summary.push({ benchmark: name, name: "(run failed)", measured: failure, target: "—", result: "FAILED" });
        process.exitCode = 1;
      }
    } catch (err) {
      console.error(`benchmark ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      summary.push({ benchmark: name, name: "(benchmark failed)", measured: "—", target: "—", result: "FAILED" });
      process.exitCode = 1;
    }
    console.log("");
  }
  console.log("## summary");
  console.log("");
  console.log("| benchmark | figure | measured | target | result |");
  console.log("|---|---|---:|---:|---|");
  for (const row of summary) console.log(`| ${row.benchmark} | ${row.name} | ${row.measured} | ${row.target} | ${row.result} |`);
  console.log("");
  console.log(`Results: ${RESULTS_FILE}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
