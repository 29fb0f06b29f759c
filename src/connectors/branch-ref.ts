/**
 * The full name of a branch, for reading files "on the default branch". GitHub resolves a bare
 * name the way git does, and a tag of the same name can win; tags are pushed without going
 * through a pull request or branch protection. Whoever can push a tag named like the default
 * branch could then pick the configuration that gates their own deploy (approvals, approvers,
 * steps). `refs/heads/<name>` can only mean the branch (invariant 2).
 */
export function branchRef(name: string): string {
  return name.startsWith("refs/heads/") ? name : `refs/heads/${name}`;
}
