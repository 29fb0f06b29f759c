import { hasAtLeast, type RepoPermission } from "./permissions.js";

/**
 * Who may release a stack lock: the author of the pull request that holds it (from that PR),
 * or a maintainer (maintain or admin) from anywhere — Atlantis's unlock, with a steal for
 * maintainers. Pure policy.
 */
export function mayUnlock(p: {
  actor: string;
  actorPermission: RepoPermission;
  holderPr: number;
  commandPr: number;
  commandPrAuthor: string;
}): { allowed: true } | { allowed: false; why: string } {
  if (hasAtLeast(p.actorPermission, "maintain")) return { allowed: true };
  if (p.holderPr === p.commandPr && p.actor === p.commandPrAuthor) return { allowed: true };
  if (p.holderPr !== p.commandPr) {
    return { allowed: false, why: `the lock is held by #${p.holderPr}; only its author (from #${p.holderPr}) or a maintainer can release it` };
  }
  return { allowed: false, why: `only the author of #${p.holderPr} or a maintainer can release its locks` };
}
