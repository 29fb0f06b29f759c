/**
 * Drift detection: a stack with `drift.schedule` gets a BullMQ job scheduler (one per stack,
 * id `drift:<repo>:<stack>`: several workers or web tiers upserting it keep one, and each tick
 * makes one job). A check previews the default branch's head with `--refresh` (a `drift`
 * branch workflow: no thread, no lock, the stack's preview credentials only); the result keeps
 * one issue per stack (label `agent:drift`): opened when drift is found, updated in place,
 * reopened when it returns, closed when a check is clean again.
 */
import { decideImage } from "../approval/images.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import { branchHead, createComment, createIssue, defaultBranchConfig, REPO_CONFIG_PATH, updateIssue, type GitHub, type RepoRef } from "../connectors/github.js";
import type { DriftJobData } from "../connectors/queues.js";
import { appendAudit, auditWorkflow } from "../connectors/store/audit.js";
import { recordDriftCheck, relatedDrift } from "../connectors/store/drift.js";
import type { AppDeps, TaskRun } from "../deps.js";
import type { PreviewOutcome } from "../plan/types.js";
import { DRIFT_LABEL, driftedResources, renderDriftIssue, renderDriftResolved, renderDriftTitle } from "../render/drift.js";
import { taskLogUrl } from "../web/log-links.js";
import { startMainlinePreview } from "./mainline.js";

const schedulerId = (repo: string, stack: string) => `drift:${repo}:${stack}`;

/**
 * Makes the repository's drift schedulers those of its default-branch config: one per stack
 * with `drift.schedule` (created or updated), none for the others (removed).
 */
export async function syncDriftSchedules(deps: AppDeps, r: { repoFullName: string; installationId: number; cloneUrl: string; defaultBranch: string }, stacks: readonly ResolvedStack[]): Promise<{ scheduled: string[]; removed: string[] }> {
  const wanted = stacks.filter((s) => s.drift);
  for (const s of wanted) {
    const data: DriftJobData = { repo: r.repoFullName, installationId: r.installationId, stack: s.name, cloneUrl: r.cloneUrl, defaultBranch: r.defaultBranch };
    await deps.queues.drift.upsertJobScheduler(schedulerId(r.repoFullName, s.name), { pattern: s.drift!.schedule, tz: "UTC" }, { name: "drift", data, opts: { removeOnComplete: 100, removeOnFail: 100 } });
  }
  const prefix = schedulerId(r.repoFullName, "");
  const keep = new Set(wanted.map((s) => schedulerId(r.repoFullName, s.name)));
  const removed: string[] = [];
  for (const j of await deps.queues.drift.getJobSchedulers(0, -1)) {
    if (j.key.startsWith(prefix) && !keep.has(j.key)) {
      await deps.queues.drift.removeJobScheduler(j.key);
      removed.push(j.key.slice(prefix.length));
    }
  }
  return { scheduled: wanted.map((s) => s.name), removed };
}

/** After a push to the default branch: its config's drift schedules replace the repository's. */
export async function syncDriftFromDefaultBranch(deps: AppDeps, gh: GitHub, r: { repo: RepoRef; repoFullName: string; installationId: number; cloneUrl: string; defaultBranch: string; actor: string; deliveryId: string | null }): Promise<void> {
  const loaded = await defaultBranchConfig(gh, r.repo, r.defaultBranch);
  // An invalid config keeps the schedules as they are (the config error is reported where it is used).
  if (loaded && !loaded.ok) return;
  const synced = await syncDriftSchedules(deps, r, loaded?.ok ? loaded.stacks : []);
  if (synced.scheduled.length || synced.removed.length) await appendAudit(deps.db, { actor: r.actor, action: "drift.scheduled", repo: r.repoFullName, deliveryId: r.deliveryId, detail: synced });
}

/**
 * On start-up: every repository the app is installed on syncs its drift schedules from its
 * default branch's config (so schedules come back after Redis lost them, or appear for
 * repositories configured while the app was down). Best effort: one repository's failure is
 * logged and the others go on.
 */
export async function syncAllDriftSchedules(deps: AppDeps, appClient: GitHub): Promise<{ repos: number; failed: number }> {
  let repos = 0;
  let failed = 0;
  const installations = await appClient.paginate(appClient.rest.apps.listInstallations, { per_page: 100 });
  for (const inst of installations) {
    const gh = await deps.github(inst.id);
    const list = await gh.paginate(gh.rest.apps.listReposAccessibleToInstallation, { per_page: 100 });
    const repositories = (Array.isArray(list) ? list : ((list as { repositories?: unknown[] }).repositories ?? [])) as Array<{ full_name: string; clone_url: string; default_branch: string; archived?: boolean }>;
    for (const r of repositories) {
      if (r.archived) continue;
      repos++;
      const [owner, repo] = r.full_name.split("/") as [string, string];
      try {
        await syncDriftFromDefaultBranch(deps, gh, { repo: { owner, repo }, repoFullName: r.full_name, installationId: inst.id, cloneUrl: r.clone_url, defaultBranch: r.default_branch, actor: "pr-infra-agent", deliveryId: null });
      } catch (err) {
        failed++;
        deps.log.warn({ err, repo: r.full_name }, "drift schedules not synced");
      }
    }
  }
  return { repos, failed };
}

export type DriftStart = { ok: true; sha: string; taskId: string } | { ok: false; why: string };

/** One drift check now: previews the default branch's head of the stack with `--refresh`. */
export async function startDriftCheck(deps: AppDeps, gh: GitHub, d: DriftJobData & { requestedBy: string; deliveryId: string | null }): Promise<DriftStart> {
  const [owner, name] = d.repo.split("/") as [string, string];
  const repo: RepoRef = { owner, repo: name };
  const loaded = await defaultBranchConfig(gh, repo, d.defaultBranch);
  if (!loaded?.ok) return { ok: false, why: `there is no valid ${REPO_CONFIG_PATH} on ${d.defaultBranch}` };
  const stack = loaded.stacks.find((s) => s.name === d.stack);
  if (!stack) return { ok: false, why: `stack ${d.stack} is not in ${REPO_CONFIG_PATH} any more` };
  if (stack.engine !== "pulumi") return { ok: false, why: `stack ${d.stack} does not use the pulumi engine, whose plan says which resources drifted` };
  const image = decideImage(loaded.config.sandbox?.image, deps.config.sandbox);
  if (!image.ok) return { ok: false, why: image.message };
  const sha = await branchHead(gh, repo, d.defaultBranch);
  const started = await startMainlinePreview(deps, {
    repo,
    repoFullName: d.repo,
    installationId: d.installationId,
    threadNumber: 0,
    sha,
    stack,
    requestedBy: d.requestedBy,
    deliveryId: d.deliveryId,
    config: { image: image.image, cloneUrl: d.cloneUrl, defaultBranch: d.defaultBranch },
    branch: { purpose: "drift", approvals: 0, command: `/agent deploy ${stack.name}`, refresh: stack.drift?.refresh ?? true },
  });
  if (!started) return { ok: false, why: "a drift check of this commit is already running" };
  await appendAudit(deps.db, { actor: d.requestedBy, action: "drift.check_started", repo: d.repo, deliveryId: d.deliveryId, taskId: started.taskId, detail: { stack: stack.name, sha } });
  return { ok: true, sha, taskId: started.taskId };
}

/** A drift check ended: record it and keep the stack's issue in step (open, update, reopen, close). */
export async function afterDriftPreview(run: TaskRun, outcome: { succeeded: boolean; error: string | null; plan: PreviewOutcome | null }): Promise<void> {
  const { deps, gh, repo, workflow, task, stack } = run;
  const plan = outcome.succeeded && outcome.plan?.engine === "pulumi" ? outcome.plan : null;
  const drifted = plan ? driftedResources(plan) : [];
  const state = !plan ? "failed" : drifted.length ? "drifted" : "clean";
  const logUrl = taskLogUrl(deps.config, task.id);
  const types = [...new Set(drifted.map((r) => r.type))].sort();
  const row = await recordDriftCheck(deps.db, { repo: workflow.repo, stack: stack.name, state, sha: workflow.head_sha, taskId: task.id, types }, async (before, after, client) => {
    if (state === "drifted") {
      // The fleet view: stacks drifting in the same resource types in the same run link to each other.
      const related = (await relatedDrift(client, workflow.repo, stack.name, types, after.checked_at)).map((x) => ({ stack: x.stack, issue: x.issue_number, types: x.types.filter((t) => types.includes(t)) }));
      const body = renderDriftIssue({ stack: stack.name, defaultBranch: workflow.config.defaultBranch, sha: workflow.head_sha, since: after.since!, checkedAt: after.checked_at, resources: drifted, logUrl, related });
      if (before?.issue_number) {
        // In place; reopened if someone closed it while the drift stayed or came back.
        await updateIssue(gh, repo, before.issue_number, { title: renderDriftTitle(stack.name), body, state: "open" });
        return before.issue_number;
      }
      return createIssue(gh, repo, { title: renderDriftTitle(stack.name), body, labels: [DRIFT_LABEL] });
    }
    if (state === "clean" && before?.issue_number && before.state !== "clean") {
      await createComment(gh, repo, before.issue_number, renderDriftResolved(stack.name, workflow.head_sha));
      await updateIssue(gh, repo, before.issue_number, { state: "closed" });
    }
    return before?.issue_number ?? null;
  });
  await auditWorkflow(deps.db, workflow, state === "drifted" ? "drift.detected" : state === "clean" ? "drift.clean" : "drift.check_failed", { stack: stack.name, sha: workflow.head_sha, resources: drifted.map((r) => ({ op: r.op, urn: r.urn })), issue: row.issue_number, since: row.since, error: outcome.error }, task.id);
}
