/**
 * Rendering cost of a large preview: a synthetic 10,000-resource Pulumi plan rendered as the
 * sticky comment in parts (4 and 10 continuations allowed) and as the check-run output, against
 * a baseline measured in the same run — `JSON.stringify` of the same plan, the least any
 * rendering of it has to do.
 *
 * A benchmark, not a test: the targets are printed as PASS/MISS for information only.
 */
import { availableParallelism } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { CHECK_RUN_TEXT_LIMIT, COMMENT_BODY_LIMIT } from "../src/connectors/github.js";
import type { StackView, TaskRow } from "../src/connectors/store/workflows.js";
import type { StepResult } from "../src/domain/steps.js";
import { countChanges, type PlanDiagnostic, type PulumiPreview, type ResourceChange, type ResourceOp } from "../src/plan/types.js";
import { completedOutput } from "../src/render/check-run.js";
import { renderStickyParts } from "../src/render/sticky-comment.js";
import { fmt, stats, type Stats, targetTable, saveResult, type TargetCheck, progressFor } from "./stats.js";

const RESOURCES = 10_000;
const WARMUP = 5;
const TARGETS = { renderP95Ms: 200 };

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULT_FILE = join(ROOT, ".cache", "bench", "render-latest.json");


export interface Row extends Stats {
  key: string;
  label: string;
  /** p50 / baseline p50. */
  ratio: number;
  /** Comment parts produced (sticky rows), 1 for the check run. */
  parts: number;
  /** Largest part (sticky) or larger of summary/text (check run), in characters. */
  largest: number;
  limit: number;
}

export type { TargetCheck };

export interface Result {
  benchmark: "render";
  date: string;
  environment: { node: string; cpus: number };
  plan: { resources: number; counts: Record<ResourceOp, number>; diagnostics: number; jsonChars: number };
  iterations: number;
  warmup: number;
  rows: Row[];
  targets: TargetCheck[];
  samples: Record<string, number[]>;
}



const progress = progressFor("render");

// ---------------------------------------------------------------------------------------------
// Synthetic plan: deterministic (a small LCG), realistic type tokens, names and property paths.
// ---------------------------------------------------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

const TYPES = [
  "aws:s3/bucket:Bucket",
  "aws:s3/bucketPolicy:BucketPolicy",
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  "aws:iam/role:Role",
  "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  "aws:lambda/function:Function",
  "aws:lambda/permission:Permission",
  "aws:ec2/securityGroupRule:SecurityGroupRule",
  "aws:ec2/instance:Instance",
  "aws:rds/instance:Instance",
  "aws:cloudwatch/metricAlarm:MetricAlarm",
  "aws:route53/record:Record",
  "aws:apigateway/method:Method",
  "aws:dynamodb/table:Table",
  "kubernetes:apps/v1:Deployment",
  "kubernetes:core/v1:Service",
  "kubernetes:core/v1:ConfigMap",
  "kubernetes:networking.k8s.io/v1:Ingress",
  "gcp:storage/bucket:Bucket",
  "azure-native:network:VirtualNetwork",
];
const SERVICES = ["checkout", "payments", "search", "catalog", "identity", "notifications", "billing", "reporting", "ingest", "gateway"];
const ROLES = ["api", "worker", "cron", "queue", "cache", "store", "edge", "metrics", "logs", "backup"];
const PROPS = [
  "tags.Owner",
  "tags.CostCenter",
  "environment.variables.LOG_LEVEL",
  "environment.variables.FEATURE_FLAGS",
  "memorySize",
  "timeout",
  "runtime",
  "spec.template.spec.containers[0].image",
  "spec.template.spec.containers[0].resources.limits.memory",
  "spec.replicas",
  "metadata.labels.app.kubernetes.io/version",
  "ingress[0].cidrBlocks",
  "lifecycleRules[0].expiration.days",
  "versioning.enabled",
  "serverSideEncryptionConfiguration.rule.applyServerSideEncryptionByDefault.sseAlgorithm",
  "policy",
  "allocatedStorage",
  "engineVersion",
  "alarmActions",
  "ttl",
];

export function syntheticPlan(n = RESOURCES): PulumiPreview {
  const rand = rng(42);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const props = (k: number) => [...new Set(Array.from({ length: k }, () => pick(PROPS)))].sort();
  const resources: ResourceChange[] = [];
  for (let i = 0; i < n; i++) {
    const r = rand();
    // ~2% deletes, ~1% replaces, ~3% unchanged, ~1% reads, the rest creates and updates.
    const op: ResourceOp = r < 0.02 ? "delete" : r < 0.03 ? "replace" : r < 0.06 ? "same" : r < 0.07 ? "read" : r < 0.5 ? "create" : "update";
    const type = pick(TYPES);
    const name = `${pick(SERVICES)}-${pick(ROLES)}-${type.split(":").at(-1)!.toLowerCase()}-${String(i).padStart(5, "0")}`;
    const changed = op === "update" || op === "replace" ? props(3 + Math.floor(rand() * 10)) : [];
    resources.push({
      op,
      urn: `urn:pulumi:prod::platform::${type}::${name}`,
      type,
      name,
      changedProperties: changed,
      replaceReasons: op === "replace" ? changed.slice(0, 1 + Math.floor(rand() * 2)) : [],
    });
  }
  const diagnostics: PlanDiagnostic[] = Array.from({ length: 20 }, (_, i) => ({
    severity: "warning",
    message: `resource ${resources[i * 37]!.name} uses a deprecated argument: \`${pick(PROPS)}\` will be removed in the next major version of the provider; migrate to the replacement before upgrading`,
    urn: resources[i * 37]!.urn,
  }));
  return { engine: "pulumi", stack: "prod", resources, diagnostics, summary: countChanges(resources) };
}

function syntheticView(plan: PulumiPreview): StackView {
  const steps: StepResult[] = [
    { name: "lint", status: "succeeded", exitCode: 0, durationMs: 4_200, outputTail: "All files pass linting.\n", truncated: false },
    { name: "test", status: "succeeded", exitCode: 0, durationMs: 31_000, outputTail: "Tests: 412 passed, 412 total\n", truncated: false },
    {
      name: "preview",
      status: "succeeded",
      exitCode: 0,
      durationMs: 182_000,
      // The preview step's output tail as the sandbox keeps it: the end of a large JSON document.
      outputTail: JSON.stringify(plan.resources.slice(-400)).slice(-100_000),
      truncated: true,
    },
  ];
  const task: TaskRow = {
    id: "0b5e7c1e-3f43-4a8e-9a57-2d7f0d3c9a11",
    workflow_id: "wf",
    kind: "preview",
    policy: null,
    stack: "prod",
    state: "SUCCEEDED",
    job_id: "job",
    check_run_id: "21498712345",
    attempts: 1,
    steps,
    error: null,
    plan_hash: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    depends_on: [],
    plan,
    created_at: new Date("2024-01-01T00:00:00Z"),
    started_at: new Date("2024-01-01T00:00:05Z"),
    finished_at: new Date("2024-01-01T00:03:40Z"),
  };
  return { task, headSha: "0123456789abcdef0123456789abcdef01234567", requestedBy: "alice" };
}

function timed<T>(fn: () => T, iterations: number, samples: number[]): T {
  let last!: T;
  for (let i = 0; i < WARMUP + iterations; i++) {
    const t0 = performance.now();
    last = fn();
    const dt = performance.now() - t0;
    if (i >= WARMUP) samples.push(dt);
  }
  return last;
}

export async function benchRender(opts: { iterations: number }): Promise<Result> {
  const iterations = opts.iterations;
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`iterations must be a positive integer, got ${iterations}`);
  const plan = syntheticPlan();
  const view = syntheticView(plan);
  const logUrlFor = (id: string) => `https://agent.example.com/tasks/${id}/log`;
  const sticky = (maxContinuations: number) => () =>
    renderStickyParts({ repo: "acme/platform", webBaseUrl: "https://github.com", stacks: [view], maxContinuations, logUrlFor });
  const checkRun = () =>
    completedOutput("prod", {
      succeeded: true,
      steps: view.task.steps,
      error: null,
      logUrl: logUrlFor(view.task.id),
      plan,
      planHash: view.task.plan_hash,
    });

  const samples: Record<string, number[]> = { baseline: [], sticky4: [], sticky10: [], checkRun: [] };
  progress(`baseline (JSON.stringify of the plan) × ${WARMUP}+${iterations}`);
  const json = timed(() => JSON.stringify(plan), iterations, samples.baseline!);
  progress(`renderStickyParts, maxContinuations 4 × ${WARMUP}+${iterations}`);
  const p4 = timed(sticky(4), iterations, samples.sticky4!);
  progress(`renderStickyParts, maxContinuations 10 × ${WARMUP}+${iterations}`);
  const p10 = timed(sticky(10), iterations, samples.sticky10!);
  progress(`completedOutput × ${WARMUP}+${iterations}`);
  const cr = timed(checkRun, iterations, samples.checkRun!);

  const base = stats(samples.baseline!);
  const partSizes = (p: { main: string; continuations: string[] }) => [p.main.length, ...p.continuations.map((c) => c.length)];
  const crLargest = Math.max(cr.output!.summary.length, cr.output!.text?.length ?? 0);
  const defs: { key: string; label: string; parts: number; largest: number; limit: number }[] = [
    { key: "baseline", label: "baseline: JSON.stringify(plan)", parts: 1, largest: json.length, limit: NaN },
    { key: "sticky4", label: "renderStickyParts (max 4 continuations)", parts: 1 + p4.continuations.length, largest: Math.max(...partSizes(p4)), limit: COMMENT_BODY_LIMIT },
    { key: "sticky10", label: "renderStickyParts (max 10 continuations)", parts: 1 + p10.continuations.length, largest: Math.max(...partSizes(p10)), limit: COMMENT_BODY_LIMIT },
    { key: "checkRun", label: "completedOutput (check run)", parts: 1, largest: crLargest, limit: CHECK_RUN_TEXT_LIMIT },
  ];
  const rows: Row[] = defs.map((d) => {
    const s = stats(samples[d.key]!);
    return { ...d, ...s, ratio: s.p50 / base.p50 };
  });
  const row = (key: string) => rows.find((r) => r.key === key)!;
  const targets: TargetCheck[] = [];
  for (const key of ["sticky4", "sticky10", "checkRun"]) {
    const r = row(key);
    targets.push({ name: `${r.label}: p95`, measured: `${fmt(r.p95)} ms`, limit: `≤ ${TARGETS.renderP95Ms} ms`, pass: r.p95 <= TARGETS.renderP95Ms });
    targets.push({ name: `${r.label}: largest part`, measured: `${r.largest.toLocaleString("en-US")} chars`, limit: `≤ ${r.limit.toLocaleString("en-US")}`, pass: r.largest <= r.limit });
  }

  const result: Result = {
    benchmark: "render",
    date: new Date().toISOString(),
    environment: { node: process.version, cpus: availableParallelism() },
    plan: { resources: plan.resources.length, counts: plan.summary, diagnostics: plan.diagnostics.length, jsonChars: json.length },
    iterations,
    warmup: WARMUP,
    rows,
    targets,
    samples,
  };

  const c = plan.summary;
  const out: string[] = [];
  out.push(
    `## render — synthetic Pulumi preview of ${plan.resources.length.toLocaleString("en-US")} resources ` +
      `(create ${c.create}, update ${c.update}, delete ${c.delete}, replace ${c.replace}, read ${c.read}, same ${c.same}; ` +
      `${plan.diagnostics.length} warnings; ${json.length.toLocaleString("en-US")} chars of JSON), ${iterations} timed iterations each after ${WARMUP} warm-up`,
  );
  out.push("");
  out.push("| variant | n | p50 ms | p95 ms | mean ms | p50 / baseline | parts | largest part (chars) |");
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    out.push(
      `| ${r.label} | ${r.n} | ${fmt(r.p50, 2)} | ${fmt(r.p95, 2)} | ${fmt(r.mean, 2)} | ${fmt(r.ratio, 1)}× | ${r.key === "baseline" ? "—" : r.parts} | ${r.largest.toLocaleString("en-US")} |`,
    );
  }
  out.push("");
  out.push(...targetTable(targets));
  out.push("");
  out.push(
    `Notes: one process, rendering is synchronous; each variant runs ${WARMUP} untimed warm-up iterations first. ` +
      `The baseline serialises the same plan object, so the ratio says how much more than one pass over the data rendering costs. ` +
      `For the check run, "largest part" is the larger of summary and text. Percentiles interpolated linearly; targets are informational.`,
  );
  out.push(`Results JSON: ${relative(process.cwd(), RESULT_FILE) || RESULT_FILE}`);
  process.stdout.write(out.join("\n") + "\n");

  await saveResult(RESULT_FILE, result);
  return result;
}
