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

/** Pull request `from` waits for `to`: `to` holds `stack`, or is ahead of `from` in its queue. */
export interface WaitEdge {
  from: number;
  to: number;
  stack: string;
}

/**
 * Hold-and-wait across commands: a PR keeps its stack locks until it merges or closes, so two
 * PRs each holding a stack the other waits for would wait for ever. Would `requester` waiting
 * along `next` close a cycle in the waits-for graph `edges`? The cycle, from the requester back
 * to it, or null. Pure.
 */
export function waitCycle(edges: readonly WaitEdge[], requester: number, next: readonly WaitEdge[]): WaitEdge[] | null {
  const out = new Map<number, WaitEdge[]>();
  for (const e of edges) if (e.from !== e.to) out.set(e.from, [...(out.get(e.from) ?? []), e]);
  for (const first of next) {
    if (first.to === requester) continue;
    // Breadth-first from the PR waited for: the shortest way back to the requester.
    const via = new Map<number, WaitEdge>([[first.to, first]]);
    const queue = [first.to];
    while (queue.length) {
      const at = queue.shift()!;
      for (const e of out.get(at) ?? []) {
        if (e.to === requester) {
          const path = [e];
          for (let p = at; p !== first.to; p = via.get(p)!.from) path.unshift(via.get(p)!);
          return [first, ...path];
        }
        if (!via.has(e.to)) {
          via.set(e.to, e);
          queue.push(e.to);
        }
      }
    }
  }
  return null;
}
