import { z } from "zod";
import { EnvVarName } from "./fields.js";
import { checkConfig, readConfigFile } from "./file.js";
import type { YamlSource } from "./issues.js";

/**
 * Server-side credential configuration: which Vault secrets become which environment variables
 * of a task, per stack and per task kind. It lives with the server (file named by
 * CREDENTIALS_CONFIG), never in the repository, so a pull request cannot widen what it gets.
 */

// A Vault HTTP API path under /v1/: plain segments only, so it can be put in a URL as is.
const PATH_SEGMENT = /^[A-Za-z0-9_@+-][A-Za-z0-9_@.+-]*$/;


const VaultPath = z
  .string()
  .min(1)
  .refine((p) => p.split("/").every((s) => PATH_SEGMENT.test(s)), {
    error: "must be a Vault API path without a leading slash (e.g. secret/data/app or database/creds/role)",
  });

const SecretRef = z
  .strictObject({
    kv: VaultPath.optional(),
    dynamic: VaultPath.optional(),
    key: z.string().min(1),
  })
  .refine((r) => (r.kv === undefined) !== (r.dynamic === undefined), {
    error: "give exactly one of `kv` (a KV v2 secret) or `dynamic` (a dynamic secret with a lease)",
  })
  // KV v2 is read through <mount>/data/<path>; `secret/app` would silently hit the v1 API.
  .refine((r) => r.kv === undefined || r.kv.split("/").slice(1, -1).includes("data"), {
    error: "a KV v2 path is the API path <mount>/data/<path> (e.g. secret/data/app)",
    path: ["kv"],
  })
  .transform((r) =>
    r.kv !== undefined
      ? { source: "kv" as const, path: r.kv, key: r.key }
      : { source: "dynamic" as const, path: r.dynamic as string, key: r.key },
  );

/** Task variable → secret. */
const CredentialSet = z.record(EnvVarName, SecretRef);

const StackCredentials = z.strictObject({
  preview: CredentialSet.default({}),
  deploy: CredentialSet.default({}),
  /** What the service probes of an issue diagnosis read (API keys, a read-only database URL). */
  diagnose: CredentialSet.default({}),
  /** Env fallback only: variable in the task ← variable of the app's own process. */
  env: z.record(EnvVarName, EnvVarName).default({}),
});

const AppRole = z
  .strictObject({
    role_id: z.string().min(1),
    secret_id_file: z.string().min(1).optional(),
    secret_id_env: EnvVarName.optional(),
    /** The secret id source holds a response-wrapping token, unwrapped once at start-up. */
    wrapped: z.boolean().default(false),
    /** Where the AppRole auth method is mounted. */
    mount: VaultPath.default("approle"),
  })
  .refine((a) => (a.secret_id_file === undefined) !== (a.secret_id_env === undefined), {
    error: "give exactly one of secret_id_file or secret_id_env",
  });

/** A KV v2 value: the GitHub App's private key, read once at start-up instead of PRIVATE_KEY. */
const KvRef = z
  .strictObject({ kv: VaultPath, key: z.string().min(1) })
  .refine((r) => r.kv.split("/").slice(1, -1).includes("data"), {
    error: "a KV v2 path is the API path <mount>/data/<path> (e.g. secret/data/app)",
    path: ["kv"],
  });

const VaultSettings = z.strictObject({
  address: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).transform((u) => u.replace(/\/+$/, "")),
  namespace: z.string().min(1).optional(),
  approle: AppRole,
  /** Renew the app's token this long before it expires. */
  renew_before_seconds: z.number().int().min(0).max(86_400).default(60),
  /** A Vault call that takes longer is treated as Vault being unavailable. */
  request_timeout_seconds: z.number().int().min(1).max(300).default(10),
  /** Where the GitHub App's private key lives; the app starts only once it has read it. */
  github_private_key: KvRef.optional(),
  /**
   * Read each task's dynamic secrets with a child token whose TTL is the task's trust-tier
   * lifetime: Vault revokes its leases when it dies, even if the worker died first. Needs
   * "update" on auth/token/create in the app's policy.
   */
  task_tokens: z.boolean().default(false),
});

/** A static secret rotated on a schedule (src/ops/rotation.ts): a key of a KV v2 secret. */
const RotatedSecret = z
  .strictObject({
    /** How operators name it (`npm run agent -- rotate --secret <name>`, metrics). */
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: "must be a lowercase name: letters, digits, `.`, `_`, `-`" }),
    kv: VaultPath,
    key: z.string().min(1),
    every_days: z.number().int().min(1).max(365).default(90),
    /** Where a new value comes from: random bytes (base64url), or the provider's HTTP endpoint (POST, answers `{"value": "…"}`). */
    generator: z
      .union([
        z.strictObject({ random: z.strictObject({ bytes: z.number().int().min(16).max(256).default(32) }) }),
        z.strictObject({ http: z.strictObject({ url: z.url({ protocol: /^https?$/ }), token_env: EnvVarName.optional() }) }),
      ])
      .default({ random: { bytes: 32 } }),
  })
  .refine((r) => r.kv.split("/").slice(1, -1).includes("data"), { error: "a KV v2 path is the API path <mount>/data/<path> (e.g. secret/data/app)", path: ["kv"] });

/**
 * The GitHub App's private key (`vault.github_private_key`): GitHub lets only a person generate
 * one, so the app tracks its age, opens an issue with the steps before it is due, and picks the
 * new key up from Vault (src/ops/github-app-key.ts).
 */
const GithubAppKeyRotation = z
  .strictObject({
    every_days: z.number().int().min(7).max(365).default(90),
    /** Days before it is due that the issue is opened. */
    notice_days: z.number().int().min(1).max(60).default(14),
    /** `owner/name` of a repository the app is installed on, where the issue is opened. */
    issue_repo: z.string().regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/, { error: "must be owner/name of a repository the app is installed on" }),
  })
  .refine((k) => k.notice_days < k.every_days, { error: "notice_days must be fewer than every_days", path: ["notice_days"] });

const Rotation = z.strictObject({
  secrets: z.array(RotatedSecret).max(100).default([]),
  /** Days before a secret is due that its age alert fires (the metric's threshold). */
  warn_days: z.number().int().min(1).max(60).default(10),
  github_app_key: GithubAppKeyRotation.optional(),
});

export type RotatedSecretConfig = z.infer<typeof RotatedSecret>;
export type GithubAppKeyRotationConfig = z.infer<typeof GithubAppKeyRotation>;
/** How the GitHub App key is named in metrics, audit rows and `rotate`. */
export const GITHUB_APP_KEY_SECRET = "github-app-key";
/** What `rotate --secret github-app-key` answers. */
export const GITHUB_APP_KEY_MANUAL =
  `the GitHub App key cannot be rotated by the app: GitHub lets only a person generate one. Generate a new key in the app's settings, write it to Vault as the next version of vault.github_private_key, and every instance picks it up once GitHub accepts it (README "Secret rotation")`;

export const CredentialsConfigSchema = z.strictObject({
  /** Without it, credentials come from the app's environment (development only). */
  vault: VaultSettings.optional(),
  /** Static secrets rotated on a schedule (default every 90 days), and by `rotate` in an emergency. */
  rotation: Rotation.optional(),
  /** Stack name → its credentials; "*" applies to every stack without an entry of its own; `review:<stack>` / `review:*` to review stacks (never "*"). */
  stacks: z.record(z.string().min(1), StackCredentials).default({}),
})
  .refine((c) => !c.rotation?.github_app_key || c.vault?.github_private_key, {
    error: "rotation.github_app_key needs the key in Vault: set vault.github_private_key",
    path: ["rotation", "github_app_key"],
  })
  .refine((c) => !c.rotation?.secrets.some((s) => s.name === GITHUB_APP_KEY_SECRET), {
    error: `"${GITHUB_APP_KEY_SECRET}" names the GitHub App key (rotation.github_app_key); give this secret another name`,
    path: ["rotation", "secrets"],
  });

export type CredentialsConfig = z.infer<typeof CredentialsConfigSchema>;
export type VaultSettings = NonNullable<CredentialsConfig["vault"]>;
export type StackCredentials = CredentialsConfig["stacks"][string];
export type SecretRef = StackCredentials["preview"][string];

export const DEFAULT_STACK = "*";

export class CredentialsConfigError extends Error {
  override name = "CredentialsConfigError";
}

/**
 * A stack's credentials: its own entry, else the "*" entry, else none. An entry replaces "*"
 * as a whole (no per-kind merging), so what a stack gets is always visible in one place.
 */
export function stackCredentials(config: Pick<CredentialsConfig, "stacks">, stack: string, reviewOf?: string): StackCredentials | null {
  // A review stack (`pr-<n>-<stack>`) gets only what is configured for review stacks: never
  // its base stack's credentials, never "*" (which may be production's).
  if (reviewOf !== undefined) return config.stacks[`${REVIEW_PREFIX}${reviewOf}`] ?? config.stacks[`${REVIEW_PREFIX}${DEFAULT_STACK}`] ?? null;
  return config.stacks[stack] ?? config.stacks[DEFAULT_STACK] ?? null;
}

/** `review:<stack>`: the credentials of that stack's review stacks; `review:*`: of every review stack without its own. */
export const REVIEW_PREFIX = "review:";

/** Validates a parsed document; `name` names it in errors, `yaml` (the file read) gives their lines. */
export function parseCredentialsConfig(doc: unknown, name: string, yaml?: YamlSource): CredentialsConfig {
  return checkConfig(CredentialsConfigSchema, doc, { what: "credentials config", name, source: yaml }, CredentialsConfigError);
}

/** Reads and validates a YAML (or JSON, a subset of YAML) file. */
export function loadCredentialsConfig(file: string): CredentialsConfig {
  const { data, source } = readConfigFile(file, "credentials config", CredentialsConfigError);
  return parseCredentialsConfig(data, file, source);
}

/** The file named by CREDENTIALS_CONFIG, or null when it is not set (no credentials at all). */
export function credentialsConfigFromEnv(env: NodeJS.ProcessEnv = process.env): CredentialsConfig | null {
  const file = env.CREDENTIALS_CONFIG?.trim();
  return file ? loadCredentialsConfig(file) : null;
}
