import { hasAtLeast, type RepoPermission } from "./permissions.js";

/**
 * Code from a fork runs in a sandbox only when someone with maintain (or admin) access asks
 * for it, per head commit: writers can be tricked into running it, maintainers decide. A run
 * started that way still never receives deploy credentials (deploys from forks are refused by
 * the gate). Pure policy.
 */
export function mayPreviewFork(input: { fromFork: boolean; permission: RepoPermission | null }): { allowed: true } | { allowed: false; why: string } {
  if (!input.fromFork) return { allowed: true };
  if (input.permission !== null && hasAtLeast(input.permission, "maintain")) return { allowed: true };
  return {
    allowed: false,
    why: "this pull request comes from a fork: its code runs only when a maintainer (maintain or admin access) comments `/agent preview` or `/agent ok-to-test`, once per new commit. Nothing was run.",
  };
}
