/**
 * The server's plan policy (PLAN_POLICY_CONFIG): a YAML file of policy blocks by selector.
 *
 *   "*":              { max_deletes: 10 }                 # every repository and stack
 *   prod:             { protect: [{ types: ["aws:rds/*"] }] }   # stack `prod` of any repository
 *   "acme/infra:*":   { ... }                              # every stack of one repository
 *   "acme/infra:prod": { budget: { monthly_usd: 1000, cost_hints: { "*": 0 } } }
 *
 * The most specific selector wins (repo:stack, repo:*, stack, *); blocks are not merged with
 * each other. A repository's own `policy` (default branch) can only add to it.
 */
import type { PlanPolicyConfig } from "../approval/plan-policy.js";
import { STACK_NAME_SOURCE } from "./fields.js";
import { readConfigFile } from "./file.js";
import { issueLines, lineOf, type ConfigIssue, type YamlSource } from "./issues.js";
import { parsePlanPolicy } from "./plan-policy.js";

export type ServerPlanPolicy = Record<string, PlanPolicyConfig>;

const SELECTOR = new RegExp(`^(\\*|${STACK_NAME_SOURCE}|[A-Za-z0-9-]+\\/[A-Za-z0-9._-]+:(\\*|${STACK_NAME_SOURCE}))$`);

export class PlanPolicyConfigError extends Error {
  override name = "PlanPolicyConfigError";
}

/** Parses the file's document; every problem is named with its selector and path (and line, given the YAML `source`). */
export function parseServerPlanPolicy(doc: unknown, file: string, source?: YamlSource): ServerPlanPolicy {
  const top = doc ?? {};
  if (typeof top !== "object" || Array.isArray(top)) throw new PlanPolicyConfigError(`${file}: must be a mapping of selector → policy`);
  const out: ServerPlanPolicy = {};
  const problems: ConfigIssue[] = [];
  for (const [selector, block] of Object.entries(top)) {
    if (!SELECTOR.test(selector)) {
      problems.push({ path: selector, line: lineOf(source, [selector]), message: "not a selector (use *, <stack>, <owner/repo>:* or <owner/repo>:<stack>)" });
      continue;
    }
    const parsed = parsePlanPolicy(block, { doc: top, at: [selector], source });
    if (parsed.ok) out[selector] = parsed.policy;
    else problems.push(...parsed.issues);
  }
  if (problems.length) throw new PlanPolicyConfigError(`${file} is not a valid plan policy:\n${issueLines(problems)}`);
  return out;
}

export function loadServerPlanPolicy(file: string): ServerPlanPolicy {
  const { data, source } = readConfigFile(file, "plan policy (PLAN_POLICY_CONFIG)", PlanPolicyConfigError);
  return parseServerPlanPolicy(data, file, source);
}

/** The block that applies to a repository's stack, most specific first; undefined: none. */
export function serverPlanPolicyFor(policy: ServerPlanPolicy | null, repo: string, stack: string): PlanPolicyConfig | undefined {
  if (!policy) return undefined;
  return policy[`${repo}:${stack}`] ?? policy[`${repo}:*`] ?? policy[stack] ?? policy["*"];
}
