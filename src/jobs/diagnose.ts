/**
 * An issue diagnosis, run as a job: bring the knowledge base up to date for the repository,
 * gather what ran and what is stuck from Postgres and the queues, probe the configured
 * services, find similar past failures and matching runbook sections, and post (or update)
 * one report comment on the issue. Each section is gathered on its own: a section that fails
 * becomes a note in the report, never a missing report.
 */
import { randomUUID } from "node:crypto";
import type { Job } from "bullmq";
import { appendAudit } from "../connectors/store/audit.js";
import {
  pendingApprovals,
  recentFailures,
  recentRuns,
  repoLocks,
  openDrift,
  saveReport,
  stuckTasks,
} from "../connectors/store/diagnostics.js";
import { branchRef } from "../connectors/branch-ref.js";
import { filesUnder, type GitHub, type RepoRef } from "../connectors/github.js";
import { objectId, objectKeys } from "../connectors/outbox/store.js";
import { loadDiagnoseSettings } from "../diagnose/repo-settings.js";
import { repositoryBudget, stackBudget } from "../ops/error-budget.js";
import { describeBudget } from "../approval/error-budget.js";
import type { AppDeps } from "../deps.js";
import type { DiagnoseRuntime } from "../diagnose/runtime.js";
import { KnowledgeBase, mergeHits } from "../diagnose/knowledge.js";
import { buildProbes } from "../diagnose/probes/index.js";
import { runProbes } from "../diagnose/probes/run.js";
import type { DiagnosticReport, QueueDepth } from "../diagnose/report.js";
import { RUNBOOK_FILE } from "../diagnose/runbooks.js";
import type { ProbeResult, SearchFilter, SearchHit } from "../domain/diagnose.js";
import { renderDiagnosticReport } from "../render/diagnose.js";
import { tail } from "../render/markdown.js";
import type { DiagnoseJobData } from "../connectors/queues.js";

/** Bounds on reading runbooks from the repository. */
export const RUNBOOK_LIMITS = { match: RUNBOOK_FILE, maxFiles: 100, maxBytes: 256 * 1024, maxDepth: 3 };

async function section<T>(notes: string[], what: string, fallback: T, fn: () => Promise<T>, log: AppDeps["log"]): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    log.warn({ err, section: what }, "diagnosis section failed");
    notes.push(`Could not gather ${what}: ${(err as Error).message.split("\n")[0]!.slice(0, 200)}`);
    return fallback;
  }
}

/**
 * Re-reads the runbook folder at `ref` (a branch's full ref, or a commit SHA) into the knowledge
 * base. Its links, for people, name the branch by its short name.
 */
export async function indexRunbooks(kb: KnowledgeBase, gh: GitHub, repoFullName: string, ref: string, dir: string): Promise<{ indexed: number; removed: number; files: number }> {
  const [owner, name] = repoFullName.split("/") as [string, string];
  const files = await filesUnder(gh, { owner, repo: name }, dir, ref, RUNBOOK_LIMITS);
  return { ...(await kb.indexRunbooks(repoFullName, ref.replace(/^refs\/heads\//, ""), files)), files: files.length };
}

async function queueDepths(deps: AppDeps): Promise<QueueDepth[]> {
  const queues = [deps.queues.webhooks, deps.queues.tasks, deps.queues.diagnostics];
  return Promise.all(
    queues.map(async (q) => {
      const c = await q.getJobCounts("waiting", "active", "delayed", "failed", "prioritized");
      return { name: q.name, waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0, failed: c.failed ?? 0 };
    }),
  );
}

async function probe(deps: AppDeps, rt: DiagnoseRuntime, data: DiagnoseJobData): Promise<ProbeResult[]> {
  const cfg = rt.settings.config.probes;
  const issued = await deps.credentials.forTask({ repo: data.repo, stack: data.stack ?? "*", kind: "diagnose", taskId: randomUUID() });
  try {
    const { probes, problems } = buildProbes(cfg, {
      secrets: issued.env,
      redis: rt.redis,
      queues: [deps.queues.webhooks, deps.queues.tasks, deps.queues.diagnostics],
      stack: data.stack,
    });
    return [...(await runProbes(probes, { timeoutMs: cfg.timeout_ms })), ...problems];
  } finally {
    await issued.release();
  }
}

/** What the latest failures say, for the knowledge-base search. */
function failureText(report: Pick<DiagnosticReport, "failures">): string {
  return report.failures.map((f) => [f.error ?? "", tail(f.log, 2000)].join("\n")).join("\n").slice(0, 12_000);
}

/** Failures older than this are history (the knowledge base has them), not this incident. */
export const FAILURE_LOOKBACK_DAYS = 7;

export async function processDiagnose(job: Job<DiagnoseJobData>, deps: AppDeps): Promise<void> {
  const rt = deps.diagnose;
  if (!rt) throw new Error("diagnostics are not set up on this worker");
  const data = job.data;
  const log = deps.log.child({ repo: data.repo, issue: data.issueNumber, job_id: job.id });
  const gh = await deps.github(data.installationId);
  const [owner, name] = data.repo.split("/") as [string, string];
  const repo: RepoRef = { owner, repo: name };
  const notes: string[] = [];
  const sizes = rt.settings.config.report;

  // Knowledge first, so this report already sees the latest failures and their fixes.
  await section(notes, "the latest failures into the knowledge base", 0, async () => (await rt.ready(), rt.kb.syncFailures(data.repo)), log);
  await section(
    notes,
    "the runbooks",
    null,
    async () => {
      if (await rt.kb.hasRunbooks(data.repo)) return null;
      const { settings, problem } = await loadDiagnoseSettings(gh, repo, branchRef(data.defaultBranch));
      if (problem) notes.push(problem);
      await indexRunbooks(rt.kb, gh, data.repo, branchRef(data.defaultBranch), settings.runbooks);
      return null;
    },
    log,
  );

  const stuckAfterSeconds = deps.config.sandbox.timeoutSeconds;
  const [runs, failures, locks, drift, pending, stuck, queues, probes] = await Promise.all([
    section(notes, "recent runs", [], () => recentRuns(deps.db, data.repo, data.stack, sizes.recent_runs), log),
    section(notes, "recent failures", [], () => recentFailures(deps.db, data.repo, data.stack, sizes.failures, new Date(Date.now() - FAILURE_LOOKBACK_DAYS * 86_400_000)), log),
    section(notes, "locks", [], () => repoLocks(deps.db, data.repo, data.stack), log),
    section(notes, "open drift", [], () => openDrift(deps.db, data.repo, data.stack), log),
    section(notes, "pending approvals", [], () => pendingApprovals(deps.db, data.repo, data.stack), log),
    section(notes, "stuck tasks", [], () => stuckTasks(deps.db, data.repo, data.stack, stuckAfterSeconds), log),
    section(notes, "queue depths", [], () => queueDepths(deps), log),
    section(notes, "service probes", [], () => probe(deps, rt, data), log),
  ]);
  // Searched twice, with the reporter's words and with the failures' logs, merged in turn.
  const queries = [data.query, failureText({ failures })].filter((q) => q.trim());
  // The failures shown above are not "similar past incidents" of themselves.
  const shown = new Set(failures.map((f) => `failure:${f.taskId}`));
  const search = (filter: SearchFilter, exclude?: ReadonlySet<string>) => async () =>
    mergeHits(await Promise.all(queries.map((q) => rt.kb.search(q, filter, sizes.matches, exclude))), sizes.matches);
  const [similar, runbooks] = await Promise.all([
    section<SearchHit[]>(notes, "similar incidents", [], search({ repo: data.repo, stack: data.stack, kinds: ["failure", "issue"] }, shown), log),
    section<SearchHit[]>(notes, "runbook matches", [], search({ repo: data.repo, kinds: ["runbook"] }), log),
  ]);

  // Error budgets of the stacks in view that have errors in their window (a demoted stack explains a blocked deploy).
  const limits = deps.config.errorBudget;
  const repoLimits = deps.config.repoErrorBudget;
  const budgetStacks = [...new Set([...(data.stack ? [data.stack] : []), ...runs.map((r) => r.stack), ...failures.map((f) => f.stack)])].slice(0, 20);
  const budgets =
    limits || repoLimits
      ? await section(notes, "error budgets", [] as Array<{ stack: string; summary: string; exhausted: boolean }>, async () => {
          const out: Array<{ stack: string; summary: string; exhausted: boolean }> = [];
          if (limits) {
            for (const stack of budgetStacks) {
              const b = await stackBudget(deps.db, data.repo, stack, limits, deps.metrics);
              if (b.total > 0) out.push({ stack, summary: describeBudget(b), exhausted: b.exhausted });
            }
          }
          // The repository's, named as its metric's stack label.
          const all = repoLimits ? await repositoryBudget(deps.db, data.repo, repoLimits, deps.metrics) : null;
          if (all && all.total > 0) out.push({ stack: "*", summary: describeBudget(all), exhausted: all.exhausted });
          return out;
        }, log)
      : [];

  const report: DiagnosticReport = {
    repo: data.repo,
    issueNumber: data.issueNumber,
    stack: data.stack,
    requestedBy: data.requestedBy,
    trigger: data.trigger,
    generatedAt: new Date().toISOString(),
    runs,
    failures,
    locks,
    drift,
    budgets,
    pending,
    stuck,
    stuckAfterSeconds,
    queues,
    probes,
    similar,
    runbooks,
    notes,
  };
  const body = renderDiagnosticReport(report);
  // One report comment per issue: the outbox keeps it under the issue's key and updates it in
  // place (two runs in quick succession are one write, the newer report).
  const key = objectKeys.diagnosis(data.repo, data.issueNumber);
  const existing = await objectId(deps.db, key);
  await deps.writes.upsertComment({ installationId: data.installationId, repo }, key, data.issueNumber, body);
  const commentId = existing;
  await saveReport(deps.db, { repo: data.repo, issueNumber: data.issueNumber, commentId, stack: data.stack, requestedBy: data.requestedBy, report: { ...report, failures: failures.map(({ log: _log, ...f }) => f) } });
  await appendAudit(deps.db, {
    actor: "agent",
    action: "diagnose.reported",
    repo: data.repo,
    prNumber: data.issueNumber,
    deliveryId: data.deliveryId,
    detail: {
      stack: data.stack,
      trigger: data.trigger,
      comment_id: commentId,
      updated: existing !== null,
      probes: probes.map((p) => ({ name: p.name, status: p.status })),
      failures: failures.length,
      similar: similar.map((h) => h.entry.id),
      notes: notes.length,
    },
  });
  log.info({ comment_id: commentId, probes: probes.length, similar: similar.length }, "diagnosis posted");
}
