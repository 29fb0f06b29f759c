/**
 * The names and fields every config shares: stack names, GitHub logins and team slugs (the
 * repository config, the server's plan policy, Slack, egress selectors, the command grammar and
 * the operator tools all check them the same way), environment variable names and URLs.
 */
import { z } from "zod";

// Unanchored pattern bodies, for composite patterns such as `owner/repo:stack` selectors.
/** 1-63 of [A-Za-z0-9._-], starting with a letter or digit. */
export const STACK_NAME_SOURCE = "[A-Za-z0-9][A-Za-z0-9._-]{0,62}";
/** GitHub's rule: 1-39 letters, digits or `-`, not starting with `-`. */
export const GITHUB_LOGIN_SOURCE = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})";
/** A team's slug (the part after `org/`). */
const TEAM_SLUG_SOURCE = "[A-Za-z0-9][A-Za-z0-9_.-]{0,99}";

export const STACK_NAME_RE = new RegExp(`^${STACK_NAME_SOURCE}$`);
export const GITHUB_LOGIN_RE = new RegExp(`^${GITHUB_LOGIN_SOURCE}$`);
export const TEAM_SLUG_RE = new RegExp(`^${TEAM_SLUG_SOURCE}$`);
/** A login as people write it in a list of approvers: `alice` or `@alice`. */
export const GITHUB_LOGIN_REF_RE = new RegExp(`^@?${GITHUB_LOGIN_SOURCE}$`);
/** A team as people write it in a list of approvers: `slug`, `org/slug` or `@org/slug`. */
export const TEAM_REF_RE = new RegExp(`^@?(?:${TEAM_SLUG_SOURCE}\\/)?${TEAM_SLUG_SOURCE}$`);
/** A runtime name as registered with dockerd (`runc`, `runsc`, `kata-runtime`). */
export const RUNTIME_NAME_RE = /^[a-z][a-z0-9._-]{0,63}$/;
export const ENV_VAR_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const StackName = z
  .string()
  .regex(STACK_NAME_RE, "must be 1-63 characters of letters, digits, `.`, `_` or `-`, starting with a letter or digit");
export const GitHubLogin = z.string().regex(GITHUB_LOGIN_RE, "must be a GitHub login");
export const TeamSlug = z.string().regex(TEAM_SLUG_RE, "must be a team slug (the part after `org/`)");
/** `alice` or `@alice`. */
export const GitHubLoginRef = z.string().regex(GITHUB_LOGIN_REF_RE, "must be a GitHub login");
/** `slug`, `org/slug` or `@org/slug`. */
export const TeamRef = z.string().regex(TEAM_REF_RE, "must be a team slug (`slug` or `org/slug`)");

/** The name of an environment variable: config files name secrets, never hold them. */
export const EnvVarName = z.string().regex(ENV_VAR_NAME_RE, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");

/** An http(s) URL without user:password (credentials belong in an env var); a trailing slash is removed. */
export const HttpUrl = z
  .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
  .refine((u) => {
    const parsed = new URL(u);
    return parsed.username === "" && parsed.password === "";
  }, "must not contain credentials (name an env var instead)")
  .transform((u) => u.replace(/\/+$/, ""));
