import picomatch from "picomatch";
import { hasAtLeast, type RepoPermission } from "./permissions.js";

/** The stacks whose autoplan globs match any changed file (dotfiles included). */
export function stacksToAutoplan(stacks: readonly { name: string; paths: string[] }[], changedFiles: readonly string[]): string[] {
  return stacks
    .filter((s) => {
      const match = picomatch(s.paths, { dot: true });
      return changedFiles.some((f) => match(f));
    })
    .map((s) => s.name);
}

/**
 * Pushes preview automatically only when nobody has to vouch for the code: the branch is in
 * the repository itself (not a fork) and its author may write to it. Otherwise a writer asks
 * explicitly with `/agent preview` (invariant 3: fork code runs only when a maintainer says so).
 */
export function mayAutoplan(p: { fork: boolean; authorPermission: RepoPermission }): { allowed: true } | { allowed: false; why: string } {
  if (p.fork) return { allowed: false, why: "pull request from a fork" };
  if (!hasAtLeast(p.authorPermission, "write")) return { allowed: false, why: `author has ${p.authorPermission} permission` };
  return { allowed: true };
}

/**
 * The blast radius (the Atmos Pro pattern): a push whose changes match more stacks than
 * `maxStacks` previews nothing by itself; a human confirms with `/agent preview --all`.
 */
export function autoplanWithinBlastRadius(matched: readonly string[], maxStacks: number): { run: true } | { run: false; why: string } {
  if (matched.length <= maxStacks) return { run: true };
  return { run: false, why: `${matched.length} stacks match this push, more than autoplan's limit of ${maxStacks} (\`autoplan_max_stacks\`)` };
}
