/**
 * Starting a diagnosis: `/agent diagnose [stack]` in a comment, the diagnose label added to an
 * issue, or an issue opened from a configured template. All three end here: audit, then one
 * job per issue (a trigger while one is queued joins it).
 */
import { appendAudit } from "../connectors/store/audit.js";
import type { AppDeps } from "../deps.js";
import { DIAGNOSE_JOB_OPTIONS, diagnoseJobId, type DiagnoseJobData } from "../connectors/queues.js";
import { traceField } from "../ops/tracing.js";
import { reply, type CommandContext } from "./context.js";

/** Characters of the issue's title and body the knowledge base is searched with. */
export const MAX_QUERY_CHARS = 8000;

export function diagnoseQuery(title: string, body: string | null | undefined): string {
  return `${title}\n${body ?? ""}`.slice(0, MAX_QUERY_CHARS);
}

/**
 * Queues the diagnosis; false when one for this issue is already waiting (the request joins
 * it). While one runs, one follow-up is queued, so what was asked after it started is seen.
 */
export async function enqueueDiagnosis(deps: AppDeps, data: DiagnoseJobData): Promise<boolean> {
  const baseId = diagnoseJobId(data.repo, data.issueNumber);
  let jobId = baseId;
  let joined = false;
  for (const id of [baseId, `${baseId}__rerun`]) {
    const existing = await deps.queues.diagnostics.getJob(id);
    const state = existing ? await existing.getState() : null;
    // A finished (failed) run keeps its id for inspection; a new request replaces it.
    if (existing && (state === "failed" || state === "completed")) await existing.remove().catch(() => {});
    if (state === "active") continue;
    jobId = id;
    joined = state === "waiting" || state === "delayed" || state === "prioritized" || state === "waiting-children";
    break;
  }
  await appendAudit(deps.db, {
    actor: data.requestedBy,
    action: "diagnose.requested",
    repo: data.repo,
    prNumber: data.issueNumber,
    deliveryId: data.deliveryId,
    detail: { stack: data.stack, trigger: data.trigger, joined },
  });
  if (joined) return false;
  // Two at once (both ids active) is bounded too: the add collapses into the active follow-up.
  await deps.queues.diagnostics.add("diagnose", { ...data, ...traceField() }, { ...DIAGNOSE_JOB_OPTIONS, jobId });
  return true;
}

/** `/agent diagnose [stack]` (the 👀 reaction was added by the dispatcher). */
export async function diagnoseFromComment(ctx: CommandContext, stack: string | null, issue: { title: string; body: string | null }): Promise<void> {
  if (!ctx.deps.diagnose) {
    await reply(ctx, "diagnostics are not set up on this server.");
    return;
  }
  const queued = await enqueueDiagnosis(ctx.deps, {
    repo: ctx.repoFullName,
    installationId: ctx.installationId,
    issueNumber: ctx.threadNumber,
    stack,
    requestedBy: ctx.actor,
    trigger: "comment",
    deliveryId: ctx.deliveryId,
    defaultBranch: ctx.defaultBranch,
    query: diagnoseQuery(issue.title, issue.body),
  });
  if (!queued) ctx.log.info("a diagnosis of this issue is already queued; joined it");
}
