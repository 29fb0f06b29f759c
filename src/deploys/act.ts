/**
 * The `act` rollout phase after a merge (src/approval/phase.ts): each stack the merged pull
 * request previewed at its last head and did not deploy is previewed at the merge commit, and
 * that plan applies without a human when it qualifies; otherwise it waits for an approval like a
 * merge-first deploy's merge commit (`/approve`, then `/agent deploy <stack>`).
 */
import { decideImage } from "../approval/images.js";
import { defaultBranchConfig, type GitHub, type RepoRef } from "../connectors/github.js";
import { appendAudit } from "../connectors/store/audit.js";
import { repoPhase } from "../connectors/store/phases.js";
import { latestPreviewPerStack } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";
import { pullChangers } from "./gate-facts.js";
import { startMainlinePreview } from "./mainline.js";

export interface MergedPull {
  repo: RepoRef;
  repoFullName: string;
  installationId: number;
  pr: number;
  headSha: string;
  mergeSha: string | null;
  mergedBy: string;
  deliveryId: string;
  cloneUrl: string;
  defaultBranch: string;
}

/** Starts the `act` previews of a merged pull request's stacks; the stacks started (none outside `act`). */
export async function applyMergedInAct(deps: AppDeps, gh: GitHub, m: MergedPull): Promise<string[]> {
  const phase = await repoPhase(deps.db, m.repoFullName, deps.config.defaultPhase);
  if (phase.phase !== "act" || !m.mergeSha) return [];
  const loaded = await defaultBranchConfig(gh, m.repo, m.defaultBranch);
  if (!loaded?.ok) return [];
  const image = decideImage(loaded.config.sandbox?.image, deps.config.sandbox);
  if (!image.ok) return [];
  const deployed = new Set(
    (await deps.db.query<{ stack: string }>("SELECT DISTINCT stack FROM deploys WHERE repo = $1 AND pr_number = $2 AND kind = 'deploy' AND state IN ('PENDING', 'RUNNING', 'SUCCEEDED')", [m.repoFullName, m.pr])).rows.map((r) => r.stack),
  );
  const started: string[] = [];
  for (const view of await latestPreviewPerStack(deps.db, m.repoFullName, m.pr)) {
    if (view.task.state !== "SUCCEEDED" || view.headSha !== m.headSha || deployed.has(view.task.stack)) continue;
    // Declared stacks only (not review stacks); the merge queue applies its own.
    const stack = loaded.stacks.find((s) => s.name === view.task.stack);
    if (!stack || stack.gate.mode === "merge-queue") continue;
    const exclude = await pullChangers({ deps, gh, repo: m.repo, repoFullName: m.repoFullName, threadNumber: m.pr }, m.mergedBy);
    const preview = await startMainlinePreview(deps, {
      repo: m.repo,
      repoFullName: m.repoFullName,
      installationId: m.installationId,
      threadNumber: m.pr,
      sha: m.mergeSha,
      stack,
      requestedBy: m.mergedBy,
      deliveryId: m.deliveryId,
      config: { image: image.image, cloneUrl: m.cloneUrl, defaultBranch: m.defaultBranch },
      branch: { purpose: "act", approvals: Math.max(stack.gate.approvals, deps.config.gate.minApprovals), command: `/agent deploy ${stack.name}`, exclude },
    });
    if (preview) started.push(stack.name);
  }
  if (started.length) await appendAudit(deps.db, { actor: m.mergedBy, action: "act.previewed", repo: m.repoFullName, prNumber: m.pr, deliveryId: m.deliveryId, detail: { stacks: started, merge_sha: m.mergeSha, scope: phase.scope } });
  return started;
}
