/**
 * This app as a GitHub custom deployment protection rule: when a GitHub Actions job targets an
 * environment a stack claims (`environment: { protection_rule: true }`), GitHub asks the app
 * (`deployment_protection_rule.requested`) and waits for its answer. It is `approved` only when
 * this app's gate holds for the deployed commit: the commit is the head of an open pull request,
 * the stack's plan of it was previewed and approved (the approvals bound to that plan), the plan
 * policy allows it and nobody denied it — the same gate as `/agent deploy`, with the status-check
 * requirement left out (the waiting job is itself one of the head's checks). Anything else is
 * `rejected` with the unmet requirements, and nothing unknown is approved (fail closed).
 */
import { evaluateGate, type GateResult } from "../approval/gate.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import { defaultBranchConfig, REPO_CONFIG_PATH, reviewCustomGate, type GitHub, type RepoRef } from "../connectors/github.js";
import { appendAudit } from "../connectors/store/audit.js";
import type { AppDeps } from "../deps.js";
import { shortPlanHash } from "../render/plan.js";
import { gatePolicy, gatherFacts } from "./gate-facts.js";

export interface ProtectionRuleRequest {
  repo: RepoRef;
  repoFullName: string;
  defaultBranch: string;
  environment: string;
  /** The Actions run waiting for the answer (from `deployment_callback_url`). */
  runId: number;
  /** The commit the job deploys. */
  sha: string | null;
  /** Pull requests GitHub associates with the run. */
  pullRequests: Array<{ number: number; headSha: string }>;
  deliveryId: string | null;
  sender: string;
}

export type ProtectionDecision = { state: "approved" | "rejected"; comment: string; stack: string | null; pr: number | null };

/** The run id in a `deployment_callback_url`, or null. */
export function runIdOfCallback(url: string | undefined): number | null {
  const m = url ? /\/actions\/runs\/(\d+)\/deployment_protection_rule$/.exec(url) : null;
  return m ? Number(m[1]) : null;
}

export async function answerProtectionRule(deps: AppDeps, gh: GitHub, q: ProtectionRuleRequest): Promise<ProtectionDecision> {
  const decision = await decide(deps, gh, q);
  // GitHub shows the comment with the decision; it takes at most 1,024 characters.
  await reviewCustomGate(gh, q.repo, q.runId, { environment: q.environment, state: decision.state, comment: decision.comment.slice(0, 1024) });
  await appendAudit(deps.db, {
    actor: q.sender,
    action: decision.state === "approved" ? "environment.approved" : "environment.rejected",
    repo: q.repoFullName,
    prNumber: decision.pr,
    deliveryId: q.deliveryId,
    detail: { environment: q.environment, run_id: q.runId, sha: q.sha, stack: decision.stack, comment: decision.comment },
  });
  return decision;
}

async function decide(deps: AppDeps, gh: GitHub, q: ProtectionRuleRequest): Promise<ProtectionDecision> {
  const reject = (comment: string, stack: string | null = null, pr: number | null = null): ProtectionDecision => ({ state: "rejected", comment: `pr-infra-agent: ${comment}`, stack, pr });
  const loaded = await defaultBranchConfig(gh, q.repo, q.defaultBranch);
  if (!loaded?.ok) return reject(`there is no valid ${REPO_CONFIG_PATH} on ${q.defaultBranch}, so no stack's gate can be checked.`);
  const stack: ResolvedStack | undefined = loaded.stacks.find((s) => s.environment?.protectionRule && s.environment.name === q.environment);
  if (!stack) return reject(`no stack in ${REPO_CONFIG_PATH} answers for environment ${q.environment} (\`environment: { protection_rule: true }\`).`);
  const pr = q.pullRequests.find((p) => q.sha !== null && p.headSha === q.sha);
  if (!q.sha || !pr) return reject(`the deployed commit ${q.sha?.slice(0, 7) ?? "(unknown)"} is not the head of a pull request this run belongs to; only a pull request's previewed and approved head is approved.`, stack.name);
  const base = gatePolicy(stack, deps.config.gate);
  const policy = { ...base, require: { ...base.require, statusChecks: false } };
  const { facts } = await gatherFacts({ deps, gh, repo: q.repo, repoFullName: q.repoFullName, threadNumber: pr.number }, stack, policy);
  const gate: GateResult = evaluateGate(policy, facts);
  if (facts.pr.headSha !== q.sha) return reject(`#${pr.number}'s head is now ${facts.pr.headSha.slice(0, 7)}, not the deployed ${q.sha.slice(0, 7)}.`, stack.name, pr.number);
  if (!gate.allowed) {
    const unmet = gate.requirements.filter((r) => !r.met).map((r) => `${r.id}: ${r.detail}`);
    return reject(`the gate of \`${stack.name}\` does not hold for #${pr.number} at ${q.sha.slice(0, 7)} — ${unmet.join("; ")}.`, stack.name, pr.number);
  }
  const by = gate.counted.map((c) => `@${c.login}`).join(", ");
  return { state: "approved", comment: `pr-infra-agent: the gate of \`${stack.name}\` holds for #${pr.number} at ${q.sha.slice(0, 7)}: plan ${shortPlanHash(gate.planHash) ?? ""} approved by ${by || "nobody (none required)"}.`, stack: stack.name, pr: pr.number };
}
