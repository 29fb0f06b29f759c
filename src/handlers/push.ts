/**
 * `push` to the default branch: when it is a merge group landing, the group's checked plans are
 * applied (src/deploys/merge-queue.ts); when it touches the runbook folder, the repository's runbooks
 * are re-read into the knowledge base (sections added, changed and removed).
 */
import type { Context } from "probot";
import { REPO_CONFIG_PATH } from "../connectors/github.js";
import { loadDiagnoseSettings } from "../diagnose/repo-settings.js";
import { appendAudit } from "../connectors/store/audit.js";
import type { AppDeps } from "../deps.js";
import { indexRunbooks } from "../jobs/diagnose.js";
import { onMergeGroupLanded } from "../deploys/merge-queue.js";
import { syncDriftFromDefaultBranch } from "../deploys/drift.js";

export function touchesFolder(commits: Array<{ added?: string[]; modified?: string[]; removed?: string[] }>, dir: string): boolean {
  const prefix = `${dir.replace(/\/+$/, "")}/`;
  return commits.some((c) => [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])].some((p) => p.startsWith(prefix)));
}

export async function onPush(context: Context<"push">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  const branch = payload.repository.default_branch;
  if (payload.deleted || payload.ref !== `refs/heads/${branch}`) return;
  const installationId = payload.installation?.id;
  if (installationId) {
    const [owner, repo] = payload.repository.full_name.split("/") as [string, string];
    // A merge group landing: apply what the queue checked (src/deploys/merge-queue.ts).
    await onMergeGroupLanded(deps, context.octokit, {
      repo: { owner, repo },
      repoFullName: payload.repository.full_name,
      installationId,
      cloneUrl: payload.repository.clone_url,
      defaultBranch: branch,
      before: payload.before,
      after: payload.after,
      deliveryId: context.id,
    });
    // The config changed (or the push is too long to tell): drift schedules follow it.
    const commits = payload.commits ?? [];
    if (commits.length >= 20 || commits.some((c) => [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])].includes(REPO_CONFIG_PATH))) {
      await syncDriftFromDefaultBranch(deps, context.octokit, { repo: { owner, repo }, repoFullName: payload.repository.full_name, installationId, cloneUrl: payload.repository.clone_url, defaultBranch: branch, actor: payload.sender?.login ?? "github", deliveryId: context.id });
    }
  }
  await reindexRunbooks(context, deps);
}

async function reindexRunbooks(context: Context<"push">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  const rt = deps.diagnose;
  if (!rt) return;
  const repoFullName = payload.repository.full_name;
  const [owner, repo] = repoFullName.split("/") as [string, string];
  const dir = (await loadDiagnoseSettings(context.octokit, { owner, repo }, payload.after)).settings.runbooks;
  // A push lists at most 20 commits; a longer one (or the config changing the folder) re-reads anyway.
  const commits = payload.commits ?? [];
  const configChanged = commits.some((c) => [...(c.added ?? []), ...(c.modified ?? [])].includes(REPO_CONFIG_PATH));
  if (!touchesFolder(commits, dir) && !configChanged && commits.length < 20) return;
  const result = await indexRunbooks(rt.kb, context.octokit, repoFullName, payload.after, dir);
  await appendAudit(deps.db, { actor: payload.sender?.login ?? "github", action: "diagnose.runbooks_indexed", repo: repoFullName, deliveryId: context.id, detail: { dir, sha: payload.after, ...result } });
  deps.log.info({ repo: repoFullName, dir, ...result }, "runbooks re-indexed");
}
