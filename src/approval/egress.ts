import type { EgressRule } from "../connectors/egress-proxy.js";

/**
 * Which destinations a stack's steps may reach. Server configuration only (invariant 2):
 * keys are `owner/repo:stack`, with `*` allowed for either side; all matching entries add up.
 * No matching entry means no egress at all (network `none`).
 */
export type EgressAllowlist = ReadonlyArray<{ repo: string; stack: string; rules: EgressRule[] }>;

export function egressRulesFor(allowlist: EgressAllowlist, repo: string, stack: string): EgressRule[] {
  const out: EgressRule[] = [];
  for (const entry of allowlist) {
    const repoOk = entry.repo === "*" || entry.repo.toLowerCase() === repo.toLowerCase();
    const stackOk = entry.stack === "*" || entry.stack === stack;
    if (repoOk && stackOk) out.push(...entry.rules);
  }
  const seen = new Set<string>();
  return out.filter((r) => {
    const k = `${r.host}:${r.port}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
}
