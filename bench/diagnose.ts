/**
 * Quality and speed of the knowledge base's default embedder on labelled failure logs
 * (test/fixtures/diagnose/failures): for every cause the first INDEXED_PER_CAUSE logs are the
 * knowledge base, the rest are held out and used as queries. Each held-out log is embedded with
 * the default HashingEmbedder and searched by brute-force cosine against the indexed logs.
 *
 * - recall@k: fraction of held-out logs whose true cause is among the first k distinct causes of
 *   the ranked hits (several hits of one cause count once, in ranked order).
 * - MRR: mean of 1 / rank of the true cause among the distinct causes.
 * - throughput: logs embedded per second (all fixture logs per iteration; median over iterations).
 *
 * Like knowledge.ts, only the last EMBEDDED_LOG_CHARS characters of a log are embedded.
 * A benchmark, not a test: the target is printed as PASS/MISS for information only.
 */
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { dot, HashingEmbedder } from "../src/diagnose/embedder.js";
import { EMBEDDED_LOG_CHARS } from "../src/diagnose/knowledge.js";
import { fmt, stats, type Stats, targetTable, saveResult, progressFor } from "./stats.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURES = join(ROOT, "test", "fixtures", "diagnose", "failures");
const RESULT_FILE = join(ROOT, ".cache", "bench", "diagnose-latest.json");
/** Logs per cause that form the knowledge base; the rest are queries. Fixed, not tuned. */
export const INDEXED_PER_CAUSE = 2;
const WARMUP = 3;
const TARGETS = { recallAt3: 0.8 };

export interface FailureCause {
  id: string;
  title: string;
  resolution: string;
}

export interface LabelledLog {
  cause: string;
  /** Path relative to the fixtures directory, e.g. `out-of-memory/3.log`. */
  file: string;
  text: string;
}

/** Loads labels.json and every `<cause>/<n>.log`, logs of a cause in numeric order. */
export async function loadFailureFixtures(dir = FIXTURES): Promise<{ causes: FailureCause[]; logs: LabelledLog[] }> {
  const labels = JSON.parse(await readFile(join(dir, "labels.json"), "utf8")) as { causes: FailureCause[] };
  const logs: LabelledLog[] = [];
  for (const cause of labels.causes) {
    const files = (await readdir(join(dir, cause.id)))
      .filter((f) => /^\d+\.log$/.test(f))
      .sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
    for (const f of files) logs.push({ cause: cause.id, file: `${cause.id}/${f}`, text: await readFile(join(dir, cause.id, f), "utf8") });
  }
  return { causes: labels.causes, logs };
}

export interface QueryResult {
  file: string;
  cause: string;
  /** Distinct causes in ranked order (best first). */
  ranked: string[];
  /** 1-based rank of the true cause among the distinct causes. */
  rank: number;
  /** Best hit: file and score. */
  top: { file: string; score: number };
}

export interface DiagnoseBenchResult {
  benchmark: "diagnose";
  date: string;
  embedder: { name: string; dimensions: number };
  causes: number;
  indexed: number;
  heldOut: number;
  indexedPerCause: number;
  embeddedChars: number;
  recallAt1: number;
  recallAt3: number;
  mrr: number;
  perCause: Array<{ cause: string; heldOut: number; recallAt1: number; recallAt3: number }>;
  misses: QueryResult[];
  throughput: { iterations: number; logs: number; logsPerSecond: number; msPerIteration: Stats };
  targets: Array<{ name: string; measured: string; limit: string; pass: boolean }>;
}

const progress = progressFor("diagnose");

const tailOf = (text: string) => (text.length > EMBEDDED_LOG_CHARS ? text.slice(-EMBEDDED_LOG_CHARS) : text);

export async function benchDiagnose(opts: { iterations: number }): Promise<DiagnoseBenchResult> {
  const iterations = opts.iterations;
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`iterations must be a positive integer, got ${iterations}`);
  const { causes, logs } = await loadFailureFixtures();
  const embedder = new HashingEmbedder();

  const position = new Map<string, number>();
  const indexed: LabelledLog[] = [];
  const queries: LabelledLog[] = [];
  for (const log of logs) {
    const n = position.get(log.cause) ?? 0;
    position.set(log.cause, n + 1);
    (n < INDEXED_PER_CAUSE ? indexed : queries).push(log);
  }

  // Quality (deterministic, one pass).
  const kbVectors = await embedder.embed(indexed.map((l) => tailOf(l.text)));
  const queryVectors = await embedder.embed(queries.map((l) => tailOf(l.text)));
  const results: QueryResult[] = queries.map((q, i) => {
    const hits = indexed.map((e, j) => ({ e, score: dot(queryVectors[i]!, kbVectors[j]!) })).sort((a, b) => b.score - a.score);
    const ranked = [...new Set(hits.map((h) => h.e.cause))];
    const rank = ranked.indexOf(q.cause) + 1;
    return { file: q.file, cause: q.cause, ranked, rank, top: { file: hits[0]!.e.file, score: hits[0]!.score } };
  });
  const frac = (rs: QueryResult[], k: number) => rs.filter((r) => r.rank >= 1 && r.rank <= k).length / (rs.length || 1);
  const mrr = results.reduce((s, r) => s + (r.rank > 0 ? 1 / r.rank : 0), 0) / (results.length || 1);
  const perCause = causes.map((c) => {
    const rs = results.filter((r) => r.cause === c.id);
    return { cause: c.id, heldOut: rs.length, recallAt1: frac(rs, 1), recallAt3: frac(rs, 3) };
  });

  // Throughput: embed every fixture log (tails), one text at a time as the indexer's batches would.
  const texts = logs.map((l) => tailOf(l.text));
  const samples: number[] = [];
  progress(`embedding ${texts.length} logs × ${WARMUP}+${iterations}`);
  for (let i = 0; i < WARMUP + iterations; i++) {
    const t0 = performance.now();
    await embedder.embed(texts);
    const dt = performance.now() - t0;
    if (i >= WARMUP) samples.push(dt);
  }
  const ms = stats(samples);
  const logsPerSecond = texts.length / (ms.p50 / 1000);

  const recallAt1 = frac(results, 1);
  const recallAt3 = frac(results, 3);
  const result: DiagnoseBenchResult = {
    benchmark: "diagnose",
    date: new Date().toISOString(),
    embedder: { name: embedder.name, dimensions: embedder.dimensions },
    causes: causes.length,
    indexed: indexed.length,
    heldOut: queries.length,
    indexedPerCause: INDEXED_PER_CAUSE,
    embeddedChars: EMBEDDED_LOG_CHARS,
    recallAt1,
    recallAt3,
    mrr,
    perCause,
    misses: results.filter((r) => r.rank !== 1),
    throughput: { iterations, logs: texts.length, logsPerSecond, msPerIteration: ms },
    targets: [{ name: "recall@3", measured: fmt(recallAt3, 3), limit: `≥ ${TARGETS.recallAt3}`, pass: recallAt3 >= TARGETS.recallAt3 }],
  };

  const out: string[] = [];
  out.push(
    `## diagnose — ${embedder.name} on ${logs.length} labelled failure logs (${causes.length} causes; ` +
      `${indexed.length} indexed, ${INDEXED_PER_CAUSE} per cause; ${queries.length} held out; last ${EMBEDDED_LOG_CHARS.toLocaleString("en-US")} chars embedded)`,
  );
  out.push("");
  out.push(`| embedder | causes | indexed | held out | recall@1 | recall@3 | MRR | logs/s (p50) | ms per ${texts.length} logs p50 | p95 |`);
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  out.push(
    `| ${embedder.name} | ${causes.length} | ${indexed.length} | ${queries.length} | ${fmt(recallAt1, 3)} | ${fmt(recallAt3, 3)} | ${fmt(mrr, 3)} | ` +
      `${Math.round(logsPerSecond).toLocaleString("en-US")} | ${fmt(ms.p50, 2)} | ${fmt(ms.p95, 2)} |`,
  );
  out.push("");
  out.push("| cause | held out | recall@1 | recall@3 |");
  out.push("|---|---:|---:|---:|");
  for (const c of perCause) out.push(`| ${c.cause} | ${c.heldOut} | ${fmt(c.recallAt1, 2)} | ${fmt(c.recallAt3, 2)} |`);
  out.push("");
  out.push(...targetTable(result.targets));
  out.push("");
  if (result.misses.length > 0) {
    out.push(`Not ranked first: ${result.misses.map((m) => `${m.file} → ${m.ranked[0]} (true cause at ${m.rank})`).join("; ")}.`);
  }
  out.push(
    `Notes: recall@k counts distinct causes in ranked order; brute-force cosine over unit vectors. ` +
      `Throughput embeds all ${texts.length} logs per iteration, one process, after ${WARMUP} untimed warm-ups.`,
  );
  out.push(`Results JSON: ${relative(process.cwd(), RESULT_FILE) || RESULT_FILE}`);
  process.stdout.write(out.join("\n") + "\n");

  await saveResult(RESULT_FILE, result);
  return result;
}
