/**
 * Benchmark entry: `npm run bench -- [name...]` (or `npx tsx bench/run.ts [name...]`).
 * Runs the named benchmarks, all known ones by default, after a header describing the machine.
 * Benchmarks: `sandbox` (needs Docker), `render` (sticky comment and check run of a 10,000-resource plan).
 * Env: BENCH_ITERATIONS (timed iterations per variant, default 30), BENCH_IMAGE (sandbox image).
 */
import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";
import Docker from "dockerode";
import { benchRender } from "./render.js";
import { benchSandbox } from "./sandbox.js";

const DEFAULT_ITERATIONS = 30;

const BENCHMARKS: Record<string, (iterations: number) => Promise<unknown>> = {
  sandbox: (iterations) => benchSandbox({ iterations }),
  render: (iterations) => benchRender({ iterations }),
};

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
  console.log("# benchmarks");
  console.log("");
  console.log(`- date: ${new Date().toISOString()}`);
  console.log(`- node: ${process.version}`);
  console.log(`- nproc: ${nproc()}`);
  console.log(`- docker server: ${await dockerDescription()}`);
  console.log(`- iterations: ${iterations}`);
  console.log("");
  for (const name of selected) {
    await BENCHMARKS[name]!(iterations);
    console.log("");
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
