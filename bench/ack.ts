/**
 * Acknowledgement latency: from posting a signed `/agent preview` comment webhook to the web
 * tier until (a) the 👀 reaction (`POST /repos/:o/:r/issues/comments/:id/reactions`) and (b) the
 * queued check run (`POST /repos/:o/:r/check-runs`) reach the local GitHub stand-in.
 *
 * Topology: real processes, as deployed: one web process (ROLE=web) and one worker process
 * (ROLE=worker), each `startApp` from the environment (bench/app-target.ts); GitHub's REST API
 * is test/helpers/github-server.ts (a real HTTP server, in this process, pointed at with
 * GHE_HOST/GHE_PROTOCOL), the repository a local git server; PostgreSQL and Redis local. The
 * client (fetch, keep-alive) is in this process; times are taken here with performance.now():
 * t0 just before the POST, each GitHub call when the stand-in has read its body.
 *
 * Two variants, the same in every other way, one after the other on the same database:
 * - `production`: the app as shipped: every GitHub write through the outbox (src/connectors/
 *   outbox/), paced per installation (a burst of 10, then one a second, the last tokens kept
 *   for acknowledgements), progress held back for newer writes to replace it;
 * - `unthrottled`: the worker with pacing off (GITHUB_WRITES_PER_SECOND=0 and Octokit's
 *   throttling off): the app's own work only.
 * The bench also counts GitHub writes per preview (the stand-in's POST/PATCH/PUT/DELETE during
 * each variant, token requests aside, ÷ deliveries).
 *
 * Sequential deliveries (BENCH_ACK_WARMUP, default 5, then BENCH_ACK_COUNT, default 40), each on
 * a new PR and stack (no lock, no dedupe in the way), each waited on until its preview has
 * finished (the sticky comment says so) and then BENCH_ACK_GAP_MS (default 1100) of quiet, so
 * every delivery meets an idle worker (not a full write bucket: ~7 writes per preview against
 * a refill of one a second). SANDBOX_POOL_SIZE=0: no pool
 * refill runs in the background between deliveries (the pool plays no part in acknowledging).
 *
 * Baseline, interleaved (just before each delivery): `GET /healthz` on the web tier (the route;
 * a POST there is a 404), with the same client; and the web tier's 202 for the delivery itself.
 *
 * A benchmark, not a test: the targets are printed as PASS/MISS for information only.
 */
import { randomUUID } from "node:crypto";
import { availableParallelism, loadavg } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { previewCheckRunName } from "../src/render/check-run.js";
import type { RecordedCall } from "../test/helpers/github-fake.js";
import { BENCH_REPO, postComment, stackName, startBenchStack, STEP, type BenchStack } from "./app-stack.js";
import { fmt, percentile, targetTable, saveResult, intFromEnv, type TargetCheck, progressFor } from "./stats.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULT_FILE = join(ROOT, ".cache", "bench", "ack-latest.json");
const TARGETS = { checkRunP50Ms: 300, pacedOverUnpacedMax: 1.5, writesPerPreviewMax: 4 };
const WAIT_MS = 60_000;

type VariantKey = "production" | "unthrottled";
const VARIANTS: Array<{ key: VariantKey; label: string; env: Record<string, string>; prBase: number }> = [
  { key: "production", label: "web + worker processes, as shipped (outbox paced: burst 10, then 1 write/s)", env: {}, prBase: 1 },
  { key: "unthrottled", label: "web + worker processes, worker's write pacing off (outbox and Octokit throttling)", env: { BENCH_GITHUB_THROTTLE: "off", GITHUB_WRITES_PER_SECOND: "0" }, prBase: 1001 },
];

export interface Dist {
  n: number;
  p50: number;
  p90: number;
  max: number;
  mean: number;
  min: number;
}

function dist(samples: number[]): Dist {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), max: s[s.length - 1] ?? NaN, mean: s.reduce((a, x) => a + x, 0) / (s.length || 1), min: s[0] ?? NaN };
}

export interface AckVariant {
  key: VariantKey;
  label: string;
  healthzMs: Dist;
  accepted202Ms: Dist;
  reactionMs: Dist;
  checkRunMs: Dist;
  /** Check run after the reaction, per delivery. */
  reactionToCheckRunMs: Dist;
  ratios: { checkRunP50OverHealthzP50: number; checkRunP50Over202P50: number; reactionP50OverHealthzP50: number };
  /** GitHub writes (POST/PATCH/PUT/DELETE, token requests aside) the stand-in saw during the variant, per delivery. */
  writesPerPreview: number;
  /** Raw timed samples (ms), in delivery order. */
  samples: { healthz: number[]; accepted: number[]; reaction: number[]; checkRun: number[] };
}

export type { TargetCheck };

export interface AckResult {
  benchmark: "ack";
  date: string;
  environment: { node: string; cpus: number; loadBefore: number[]; loadAfter: number[] };
  settings: { warmup: number; count: number; gapMs: number; topology: string; step: string[]; sandboxPoolSize: number; logLevel: string };
  variants: AckVariant[];
  verification: { deliveries: number; accepted: number; previewsSucceeded: number; containersLeft: number };
  headlines: Array<{ name: string; measured: string }>;
  targets: TargetCheck[];
}

const progress = progressFor("ack");


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the time (performance.now) at which the stand-in recorded the first matching call from now on. */
function arrival(stack: BenchStack, pred: (c: RecordedCall) => boolean, what: string): Promise<number> {
  let at = NaN;
  return stack.gh
    .waitFor(
      (c) => {
        if (!pred(c)) return false;
        at = performance.now();
        return true;
      },
      what,
      WAIT_MS,
    )
    .then(() => at);
}

interface Sample {
  healthz: number;
  accepted: number;
  reaction: number;
  checkRun: number;
}

async function oneDelivery(stack: BenchStack, webPort: number, pr: number): Promise<Sample> {
  const c = await stack.comment(pr, 500_000 + pr);
  const name = previewCheckRunName(stackName(pr));
  const reaction = arrival(stack, (x) => x.method === "POST" && x.path === `/repos/${BENCH_REPO}/issues/comments/${c.commentId}/reactions`, `the 👀 reaction on #${pr}`);
  const checkRun = arrival(stack, (x) => x.method === "POST" && x.path === `/repos/${BENCH_REPO}/check-runs` && x.body?.name === name, `the queued check run of #${pr}`);
  // The preview is over once the sticky comment of this PR says it succeeded.
  const settled = stack.gh.waitFor(
    (x) => {
      const succeeded = String(x.body?.body ?? "").includes("✅ succeeded");
      if (!succeeded) return false;
      if (x.method === "POST") return x.path === `/repos/${BENCH_REPO}/issues/${pr}/comments`;
      const id = Number(/\/issues\/comments\/(\d+)$/.exec(x.path)?.[1]);
      return x.method === "PATCH" && stack.gh.fake.comments.get(id)?.issue === pr;
    },
    `the preview of #${pr} to finish`,
    WAIT_MS,
  );
  // Awaited below; a timeout of one must not become an unhandled rejection while another is awaited.
  for (const p of [reaction, checkRun, settled]) p.catch(() => {});
  const h0 = performance.now();
  const health = await fetch(`http://127.0.0.1:${webPort}/healthz`);
  await health.arrayBuffer();
  const h1 = performance.now();
  if (health.status !== 200) throw new Error(`/healthz answered ${health.status}`);

  const t0 = performance.now();
  const status = await postComment(webPort, c, randomUUID());
  const t202 = performance.now();
  if (status !== 202) throw new Error(`delivery for #${pr} answered ${status}, not 202`);
  const [tReaction, tCheck] = await Promise.all([reaction, checkRun]);
  await settled;
  return { healthz: h1 - h0, accepted: t202 - t0, reaction: tReaction - t0, checkRun: tCheck - t0 };
}

export async function benchAck(opts: { warmup?: number; count?: number; gapMs?: number } = {}): Promise<AckResult> {
  const warmup = opts.warmup ?? intFromEnv("BENCH_ACK_WARMUP", 5, 0);
  const count = opts.count ?? intFromEnv("BENCH_ACK_COUNT", 40);
  const gapMs = opts.gapMs ?? intFromEnv("BENCH_ACK_GAP_MS", 1100, 0);
  const prsOf = (base: number) => Array.from({ length: warmup + count }, (_, i) => base + i);
  const allPrs = VARIANTS.flatMap((v) => prsOf(v.prBase));

  progress("starting: database, GitHub stand-in, git server");
  const stack = await startBenchStack({ label: "ack", prs: allPrs, env: { SANDBOX_POOL_SIZE: "0" } });
  const loadBefore = loadavg();
  const variants: AckVariant[] = [];
  let verification: AckResult["verification"] = { deliveries: 0, accepted: 0, previewsSucceeded: 0, containersLeft: 0 };
  let cleaned: { containersRemoved: number } | null = null;
  try {
    let accepted = 0;
    for (const v of VARIANTS) {
      progress(`${v.key}: starting a web and a worker process`);
      const [web, worker] = await Promise.all([stack.start(`ack-${v.key}-web`, "web"), stack.start(`ack-${v.key}-worker`, "worker", v.env)]);
      const samples: Sample[] = [];
      const prs = prsOf(v.prBase);
      const callsBefore = stack.gh.calls.length;
      stack.declareStacks(prs);
      try {
        for (let i = 0; i < prs.length; i++) {
          const s = await oneDelivery(stack, web.port!, prs[i]!);
          accepted++;
          if (i >= warmup) samples.push(s);
          if ((i + 1) % 10 === 0) progress(`${v.key}: ${i + 1}/${prs.length} deliveries`);
          if (gapMs > 0) await sleep(gapMs);
        }
      } finally {
        await Promise.all([web.stop(), worker.stop()]);
      }
      const writes = stack.gh.calls.slice(callsBefore).filter((c) => c.method !== "GET" && !/\/access_tokens$/.test(c.path)).length;
      const pick = (k: keyof Sample) => samples.map((s) => s[k]);
      const d = { healthz: dist(pick("healthz")), accepted: dist(pick("accepted")), reaction: dist(pick("reaction")), checkRun: dist(pick("checkRun")) };
      variants.push({
        key: v.key,
        label: v.label,
        healthzMs: d.healthz,
        accepted202Ms: d.accepted,
        reactionMs: d.reaction,
        checkRunMs: d.checkRun,
        reactionToCheckRunMs: dist(samples.map((s) => s.checkRun - s.reaction)),
        ratios: {
          checkRunP50OverHealthzP50: d.checkRun.p50 / d.healthz.p50,
          checkRunP50Over202P50: d.checkRun.p50 / d.accepted.p50,
          reactionP50OverHealthzP50: d.reaction.p50 / d.healthz.p50,
        },
        samples: { healthz: pick("healthz"), accepted: pick("accepted"), reaction: pick("reaction"), checkRun: pick("checkRun") },
        writesPerPreview: writes / prs.length,
      });
    }
    const { rows } = await stack.db.query<{ n: number }>("SELECT count(*)::int AS n FROM tasks WHERE kind = 'preview' AND state = 'SUCCEEDED'");
    verification = { deliveries: allPrs.length, accepted, previewsSucceeded: rows[0]!.n, containersLeft: 0 };
  } finally {
    cleaned = await stack.cleanup();
  }
  verification.containersLeft = cleaned.containersRemoved;

  const row = (k: VariantKey) => variants.find((v) => v.key === k)!;
  const prod = row("production");
  const free = row("unthrottled");
  const pacedOverUnpaced = prod.checkRunMs.p50 / free.checkRunMs.p50;
  const targets: TargetCheck[] = [
    {
      name: "ack: queued check run p50 with production pacing ÷ pacing off (same run)",
      measured: `${fmt(pacedOverUnpaced, 2)}× (${fmt(prod.checkRunMs.p50)} ÷ ${fmt(free.checkRunMs.p50)} ms)`,
      limit: `≤ ${TARGETS.pacedOverUnpacedMax}×`,
      pass: pacedOverUnpaced <= TARGETS.pacedOverUnpacedMax,
    },
    {
      name: "ack: GitHub writes per preview, production pacing",
      measured: fmt(prod.writesPerPreview, 2),
      limit: `≤ ${TARGETS.writesPerPreviewMax}`,
      pass: prod.writesPerPreview <= TARGETS.writesPerPreviewMax,
    },
    { name: "ack: queued check run p50, production Octokit", measured: `${fmt(prod.checkRunMs.p50)} ms`, limit: `≤ ${TARGETS.checkRunP50Ms} ms`, pass: prod.checkRunMs.p50 <= TARGETS.checkRunP50Ms },
    { name: "ack: queued check run p50, worker's write throttling off", measured: `${fmt(free.checkRunMs.p50)} ms`, limit: `≤ ${TARGETS.checkRunP50Ms} ms`, pass: free.checkRunMs.p50 <= TARGETS.checkRunP50Ms },
    {
      name: "ack: every delivery 202 and its preview succeeded",
      measured: `${verification.accepted} / ${verification.previewsSucceeded}`,
      limit: `${verification.deliveries} each`,
      pass: verification.accepted === verification.deliveries && verification.previewsSucceeded === verification.deliveries,
    },
  ];
  const headlines = variants.flatMap((v) => [
    { name: `ack (${v.key}): 👀 reaction p50 / p90 / max`, measured: `${fmt(v.reactionMs.p50)} / ${fmt(v.reactionMs.p90)} / ${fmt(v.reactionMs.max)} ms` },
    { name: `ack (${v.key}): queued check run p50 / p90 / max`, measured: `${fmt(v.checkRunMs.p50)} / ${fmt(v.checkRunMs.p90)} / ${fmt(v.checkRunMs.max)} ms` },
    { name: `ack (${v.key}): baseline GET /healthz p50; 202 p50`, measured: `${fmt(v.healthzMs.p50, 2)} ms; ${fmt(v.accepted202Ms.p50, 2)} ms` },
    { name: `ack (${v.key}): check run p50 ÷ healthz p50; ÷ 202 p50`, measured: `${fmt(v.ratios.checkRunP50OverHealthzP50, 0)}×; ${fmt(v.ratios.checkRunP50Over202P50, 1)}×` },
    { name: `ack (${v.key}): GitHub writes per preview`, measured: fmt(v.writesPerPreview, 2) },
  ]);

  const result: AckResult = {
    benchmark: "ack",
    date: new Date().toISOString(),
    environment: { node: process.version, cpus: availableParallelism(), loadBefore, loadAfter: loadavg() },
    settings: {
      warmup,
      count,
      gapMs,
      topology: "one web process + one worker process (bench/app-target.ts: startApp from the environment); GitHub stand-in, git server and client in the bench process",
      step: STEP,
      sandboxPoolSize: 0,
      logLevel: "info (to .cache/bench/logs)",
    },
    variants,
    verification,
    headlines,
    targets,
  };

  const out: string[] = [];
  out.push(`## ack — signed \`/agent preview\` comment → 👀 reaction and queued check run at the GitHub stand-in; ${count} timed sequential deliveries per variant after ${warmup} warm-up, ${gapMs} ms quiet after each preview finished`);
  out.push("");
  out.push("| variant | figure | p50 ms | p90 ms | max ms | mean ms | min ms |");
  out.push("|---|---|---:|---:|---:|---:|---:|");
  for (const v of variants) {
    const line = (figure: string, d: Dist) => out.push(`| ${v.key} | ${figure} | ${fmt(d.p50, 2)} | ${fmt(d.p90, 2)} | ${fmt(d.max, 2)} | ${fmt(d.mean, 2)} | ${fmt(d.min, 2)} |`);
    line("baseline: GET /healthz round trip", v.healthzMs);
    line("web tier 202 for the delivery", v.accepted202Ms);
    line("👀 reaction arrives", v.reactionMs);
    line("queued check run arrives", v.checkRunMs);
    line("reaction → check run", v.reactionToCheckRunMs);
  }
  out.push("");
  for (const v of variants) {
    out.push(`- ${v.key}: ${fmt(v.writesPerPreview, 2)} GitHub writes per preview.`);
    out.push(`- ${v.key} (${v.label}): check run p50 = ${fmt(v.ratios.checkRunP50OverHealthzP50, 0)}× the /healthz round trip, ${fmt(v.ratios.checkRunP50Over202P50, 1)}× the 202; reaction p50 = ${fmt(v.ratios.reactionP50OverHealthzP50, 0)}× /healthz.`);
  }
  out.push(`Load average (1/5/15 min): ${loadBefore.map((x) => fmt(x, 2)).join("/")} before, ${result.environment.loadAfter.map((x) => fmt(x, 2)).join("/")} after (${result.environment.cpus} CPUs).`);
  out.push(`Verification: ${verification.accepted}/${verification.deliveries} deliveries answered 202, ${verification.previewsSucceeded} previews succeeded, ${verification.containersLeft} sandbox containers left at the end (removed).`);
  out.push("");
  out.push(...targetTable(targets));
  out.push("");
  out.push(
    "Notes: times from just before the webhook POST to the moment the stand-in had read the call's body, in the bench process. " +
      "Between the reaction and the check run the worker reads the default branch's config and the PR, records the workflow and task in PostgreSQL, then creates the check run; in the production variant the check run also waits for the write pacing (one a second per installation once the burst of 10 is used up). " +
      "Percentiles interpolated linearly; targets are informational.",
  );
  out.push(`Results JSON: ${relative(process.cwd(), RESULT_FILE) || RESULT_FILE}`);
  process.stdout.write(out.join("\n") + "\n");

  await saveResult(RESULT_FILE, result);
  return result;
}
