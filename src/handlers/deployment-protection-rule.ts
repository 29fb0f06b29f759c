/**
 * `deployment_protection_rule.requested`: GitHub Actions waits for this app's answer before a
 * job deploys to an environment a stack claims. The decision is in src/deploys/protection-rule.ts.
 */
import type { Context } from "probot";
import type { AppDeps } from "../deps.js";
import { answerProtectionRule, runIdOfCallback } from "../deploys/protection-rule.js";

export async function onDeploymentProtectionRule(context: Context<"deployment_protection_rule.requested">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  const repository = payload.repository;
  const runId = runIdOfCallback(payload.deployment_callback_url);
  if (!repository || !payload.environment || runId === null) {
    deps.log.warn({ delivery_id: context.id }, "deployment_protection_rule without an environment or a callback URL; not answered");
    return;
  }
  const [owner, repo] = repository.full_name.split("/") as [string, string];
  await answerProtectionRule(deps, context.octokit, {
    repo: { owner, repo },
    repoFullName: repository.full_name,
    defaultBranch: repository.default_branch,
    environment: payload.environment,
    runId,
    sha: payload.deployment?.sha ?? null,
    pullRequests: (payload.pull_requests ?? []).map((p) => ({ number: p.number, headSha: p.head.sha })),
    deliveryId: context.id,
    sender: payload.sender?.login ?? "github",
  });
}
