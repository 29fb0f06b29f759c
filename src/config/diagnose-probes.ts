/**
 * Server-side configuration of the service probes of an incident report (the `probes` key of
 * DIAGNOSE_CONFIG). Every probe is optional: a section that is absent is not probed. Secrets are
 * never written here, only the names of the variables the credentials layer (kind `diagnose`)
 * fills at run time; buildProbes (src/diagnose/probes/index.ts) reads their values from that map.
 */
import { z } from "zod";
import { EnvVarName, HttpUrl } from "./fields.js";

/** One path segment of a provider's API (ids, names); no slashes, no whitespace. */
const Segment = z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/, "must be an id or name (letters, digits, . _ ~ -)");

const QdrantCollection = z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, "must be a collection name ([A-Za-z0-9_-])");

export const RedisProbeSchema = z.strictObject({
  /** Redis URL in this variable; absent: the app's own Redis connection is probed. */
  url_env: EnvVarName.optional(),
  /** DEGRADED when a queue has more waiting (incl. prioritized) jobs than this. */
  max_waiting: z.number().int().min(0).default(100),
  /** DEGRADED when a queue keeps more failed jobs than this. */
  max_failed: z.number().int().min(0).default(50),
});

export const PostgresProbeSchema = z.strictObject({
  /** PostgreSQL URL in this variable (read-only user recommended); absent: `DATABASE_URL`. */
  url_env: EnvVarName.optional(),
  /** DEGRADED when `SELECT 1` takes longer than this. */
  slow_ms: z.number().int().min(1).max(60_000).default(500),
});

export const NeonProbeSchema = z.strictObject({
  api_url: HttpUrl.default("https://console.neon.tech/api/v2"),
  project_id: Segment,
  /** Absent: the project's default branch (all branches when none is flagged default). */
  branch_id: Segment.optional(),
  api_key_env: EnvVarName,
});

export const QdrantProbeSchema = z.strictObject({
  url: HttpUrl,
  /** Sent as the `api-key` header when set. */
  api_key_env: EnvVarName.optional(),
  collections: z.array(QdrantCollection).default([]),
});

export const LambdaLabsProbeSchema = z.strictObject({
  api_url: HttpUrl.default("https://cloud.lambdalabs.com/api/v1"),
  api_key_env: EnvVarName,
  /** Instances that must be running; absent: every instance of the account is judged. */
  instance_names: z.array(z.string().min(1).max(200)).min(1).optional(),
});

export const EstuaryProbeSchema = z.strictObject({
  /** Host of Estuary's OpenMetrics API (docs.estuary.dev/reference/openmetrics-api). */
  api_url: HttpUrl.default("https://agent-api-1084703453822.us-central1.run.app"),
  /** Catalog prefix, trailing slash included: `acmeCo/` or `acmeCo/sub/path/`. */
  prefix: z.string().regex(/^([A-Za-z0-9._-]+\/)+$/, "must be a catalog prefix ending with '/' (e.g. acmeCo/ or acmeCo/sub/)"),
  /** An Estuary refresh token (Admin → API) in this variable, sent as a bearer token. */
  refresh_token_env: EnvVarName,
  /** Task names (`acmeCo/sub/source-postgres`) that must report metrics; DOWN when one does not. */
  tasks: z.array(z.string().regex(/^[A-Za-z0-9._/-]+$/, "must be a task name")).min(1).optional(),
  /** DEGRADED when a materialization/derivation last processed a source document longer ago than this. */
  stale_after_s: z.number().int().min(60).max(7 * 86_400).default(900),
});

export const PulumiProbeSchema = z.strictObject({
  api_url: HttpUrl.default("https://api.pulumi.com"),
  organization: Segment,
  project: Segment,
  access_token_env: EnvVarName,
  /** The agent's stack name → Pulumi stack name; a stack not listed is used as is. */
  stacks: z.record(z.string().min(1), Segment).optional(),
  /** DEGRADED when the latest update has been in progress (or not started) longer than this. */
  in_progress_max_s: z.number().int().min(60).max(86_400).default(1800),
});

export const ProbesConfigSchema = z.strictObject({
  /** Per-probe time limit; a probe still running is reported DOWN "timed out after N ms". */
  timeout_ms: z.number().int().min(100).max(60_000).default(5000),
  redis: RedisProbeSchema.optional(),
  postgres: PostgresProbeSchema.optional(),
  neon: NeonProbeSchema.optional(),
  qdrant: QdrantProbeSchema.optional(),
  lambda_labs: LambdaLabsProbeSchema.optional(),
  estuary: EstuaryProbeSchema.optional(),
  pulumi: PulumiProbeSchema.optional(),
});

export type ProbesConfig = z.infer<typeof ProbesConfigSchema>;
export type RedisProbeConfig = z.infer<typeof RedisProbeSchema>;
export type PostgresProbeConfig = z.infer<typeof PostgresProbeSchema>;
export type NeonProbeConfig = z.infer<typeof NeonProbeSchema>;
export type QdrantProbeConfig = z.infer<typeof QdrantProbeSchema>;
export type LambdaLabsProbeConfig = z.infer<typeof LambdaLabsProbeSchema>;
export type EstuaryProbeConfig = z.infer<typeof EstuaryProbeSchema>;
export type PulumiProbeConfig = z.infer<typeof PulumiProbeSchema>;
