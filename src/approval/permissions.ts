/**
 * Who may ask for what. Pure policy: the caller fetches the commenter's permission
 * (collaborator permission API) and asks here.
 */
export const REPO_PERMISSIONS = ["none", "read", "triage", "write", "maintain", "admin"] as const;
export type RepoPermission = (typeof REPO_PERMISSIONS)[number];

/**
 * The API's `permission` field folds maintain into write and triage into read; `role_name`
 * keeps them apart (and may be a custom role, which then falls back to `permission`).
 */
export function permissionFrom(api: { permission?: string | null; role_name?: string | null }): RepoPermission {
  for (const v of [api.role_name, api.permission]) {
    if (v && (REPO_PERMISSIONS as readonly string[]).includes(v)) return v as RepoPermission;
  }
  return "none";
}

export function hasAtLeast(actual: RepoPermission, required: RepoPermission): boolean {
  return REPO_PERMISSIONS.indexOf(actual) >= REPO_PERMISSIONS.indexOf(required);
}

export type PermissionDecision = { allowed: true } | { allowed: false; required: RepoPermission; actual: RepoPermission };

/**
 * Whether someone with `actual` may run a command that needs `required` (the command table,
 * src/commands/table.ts, names what each command needs).
 */
export function decidePermission(required: RepoPermission, actual: RepoPermission): PermissionDecision {
  return hasAtLeast(actual, required) ? { allowed: true } : { allowed: false, required, actual };
}

/** Comments from bots, including this app, are never commands. */
export function isBotActor(user: { type?: string | null; login?: string | null } | null | undefined): boolean {
  if (!user) return true;
  return user.type === "Bot" || Boolean(user.login?.endsWith("[bot]"));
}
