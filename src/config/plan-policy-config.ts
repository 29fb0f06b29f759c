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
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { parsePlanPolicy, type PlanPolicyConfig } from "../approval/plan-policy.js";

export type ServerPlanPolicy = Record<string, PlanPolicyConfig>;

const SELECTOR = /^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,62}|[A-Za-z0-9-]+\/[A-Za-z0-9._-]+:(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,62}))$/;

export class PlanPolicyConfigError extends Error {
  override name = "PlanPolicyConfigError";
}

/** Parses the file's document; every problem is named with its selector and path. */
export function parseServerPlanPolicy(doc: unknown, source: string): ServerPlanPolicy {
  const top = z.record(z.string(), z.unknown()).safeParse(doc ?? {});
  if (!top.success) throw new PlanPolicyConfigError(`${source}: must be a mapping of selector → policy`);
  const out: ServerPlanPolicy = {};
  const problems: string[] = [];
  for (const [selector, block] of Object.entries(top.data)) {
    if (!SELECTOR.test(selector)) {
      problems.push(`  ${selector}: not a selector (use *, <stack>, <owner/repo>:* or <owner/repo>:<stack>)`);
      continue;
    }
    const parsed = parsePlanPolicy(block);
    if (parsed.ok) out[selector] = parsed.policy;
    else problems.push(...parsed.issues.map((i) => `  ${selector}.${i.path}: ${i.message}`));
  }
  if (problems.length) throw new PlanPolicyConfigError(`${source} is not a valid plan policy:\n${problems.join("\n")}`);
  return out;
}

export function loadServerPlanPolicy(file: string): ServerPlanPolicy {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new PlanPolicyConfigError(`PLAN_POLICY_CONFIG: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new PlanPolicyConfigError(`PLAN_POLICY_CONFIG: ${file} is not valid YAML: ${(err as Error).message}`);
  }
  return parseServerPlanPolicy(doc, file);
}

/** The block that applies to a repository's stack, most specific first; undefined: none. */
export function serverPlanPolicyFor(policy: ServerPlanPolicy | null, repo: string, stack: string): PlanPolicyConfig | undefined {
  if (!policy) return undefined;
  return policy[`${repo}:${stack}`] ?? policy[`${repo}:*`] ?? policy[stack] ?? policy["*"];
}
