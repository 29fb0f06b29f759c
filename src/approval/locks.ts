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

/** A user-facing explanation of a held lock and the ways it goes away. */
export function describeLock(l: { stack: string; prNumber: number; lockedBy: string; expiresAt: Date }): string {
  return (
    `\`${l.stack}\` is locked by #${l.prNumber} (previewed by @${l.lockedBy}) until ${l.expiresAt.toISOString()}. ` +
    `It is released when #${l.prNumber} is merged or closed, by \`/agent unlock ${l.stack}\` on #${l.prNumber} (its author or a maintainer), or when it expires.`
  );
}
