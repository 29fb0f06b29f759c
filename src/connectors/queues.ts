import { Queue, type JobsOptions } from "bullmq";
import { Redis } from "ioredis";

/** BullMQ job data for a task. Holds identifiers only: no tokens, no secrets (invariant 8). */
export interface TaskJobData {
  taskId: string;
  workflowId: string;
  deliveryId: string | null;
  /** W3C trace context (`traceparent`) of the span that enqueued it, when tracing is on (src/ops/tracing.ts). */
  trace?: Record<string, string>;
}

/** BullMQ job data for a webhook delivery handed from the web tier to the workers. */
export interface WebhookJobData {
  id: string;
  name: string;
  payload: unknown;
  /** W3C trace context (`traceparent`) of the web tier's `webhook.receive` span, when tracing is on. */
  trace?: Record<string, string>;
}

/** BullMQ job data for an issue diagnosis (src/jobs/diagnose.ts). */
export interface DiagnoseJobData {
  repo: string;
  installationId: number;
  issueNumber: number;
  /** The stack asked about, or null for the whole repository. */
  stack: string | null;
  requestedBy: string;
  trigger: "comment" | "label" | "template";
  deliveryId: string;
  defaultBranch: string;
  /** The issue's title and body (bounded): what the knowledge base is searched with. */
  query: string;
  /** W3C trace context of the span that queued it (tracing on only). */
  trace?: Record<string, string>;
}

export const WEBHOOK_QUEUE = "webhooks";
export const TASK_QUEUE = "tasks";
export const DIAGNOSE_QUEUE = "diagnostics";
/** Drift checks: one BullMQ job scheduler per stack with `drift.schedule` (src/deploys/drift.ts). */
export const DRIFT_QUEUE = "drift";

export interface DriftJobData {
  repo: string;
  installationId: number;
  stack: string;
  cloneUrl: string;
  defaultBranch: string;
}

/** Review stacks: `destroy` jobs (one per stack at a time) and the `sweep` scheduler's ticks (TTL warnings and expiry). */
export const REVIEW_QUEUE = "review";
export type ReviewJobData = { kind: "destroy"; repo: string; stack: string } | { kind: "sweep" };

/** Secret rotation: one job scheduler's ticks (src/ops/rotation.ts). */
export const ROTATION_QUEUE = "rotation";

export function reviewDestroyJobId(repo: string, stack: string): string {
  return jobIdFrom(["review-destroy", repo.replace("/", "~"), stack]);
}

/**
 * A destroy waits for a running deploy of its stack by failing and being retried (the stack's
 * apply must end first); past that, the row says `destroy_failed` and the next sweep or close
 * starts it again.
 */
export const REVIEW_DESTROY_JOB_OPTIONS: JobsOptions = {
  attempts: 30,
  backoff: { type: "fixed", delay: 10_000 },
  removeOnComplete: true,
  removeOnFail: true,
};

export function createRedis(url: string): Redis {
  // BullMQ workers block on Redis; they need unlimited retries per request.
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
}

/** BullMQ job ids may not contain ':'; keep them readable and bounded. */
export function jobIdFrom(parts: Array<string | number>): string {
  return parts
    .map((p) => String(p).replace(/[^A-Za-z0-9._-]/g, "_"))
    .join("__")
    .slice(0, 512);
}

export function previewJobId(repo: string, prNumber: number, headSha: string, stack: string): string {
  return jobIdFrom(["preview", repo.replace("/", "~"), prNumber, headSha, stack]);
}

export function checksJobId(repo: string, prNumber: number, headSha: string, key: string): string {
  return jobIdFrom(["checks", repo.replace("/", "~"), prNumber, headSha, key]);
}

export function mainlineDeployJobId(repo: string, stack: string, previewTaskId: string): string {
  return jobIdFrom(["branch-deploy", repo.replace("/", "~"), stack, previewTaskId]);
}

export function mainlinePreviewJobId(repo: string, threadNumber: number, sha: string, stack: string, deliveryId: string): string {
  return jobIdFrom(["branch-preview", repo.replace("/", "~"), threadNumber, sha, stack, deliveryId]);
}

export function deployJobId(repo: string, stack: string, headSha: string, planHash: string): string {
  return jobIdFrom(["deploy", repo.replace("/", "~"), stack, headSha, planHash.replace(/^sha256:/, "").slice(0, 16)]);
}

/**
 * A deploy is never retried by the queue: a second `pulumi up` after a half-done one could
 * apply twice. A job that comes back (its worker died) finds its deploy RUNNING and is turned
 * over to a human instead (src/jobs/deploy-task.ts).
 */
export const DEPLOY_JOB_OPTIONS: JobsOptions = {
  attempts: 1,
  removeOnComplete: true,
  removeOnFail: true,
};

export const WEBHOOK_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: "exponential", delay: 1000 },
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 24 * 3600 },
};

/**
 * Task jobs are removed when done: the database keeps the record, and a later identical
 * command must be able to enqueue again. While one is queued or running, the same id collapses.
 */
export const TASK_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: "exponential", delay: 2000 },
  removeOnComplete: true,
  removeOnFail: true,
};

/**
 * One diagnosis per issue at a time: a trigger while one is queued collapses into it; once it
 * ran, a new trigger runs again and updates the same report comment.
 */
export function diagnoseJobId(repo: string, issueNumber: number): string {
  return jobIdFrom(["diagnose", repo.replace("/", "~"), issueNumber]);
}

export const DIAGNOSE_JOB_OPTIONS: JobsOptions = {
  attempts: 2,
  backoff: { type: "exponential", delay: 2000 },
  removeOnComplete: true,
  removeOnFail: { age: 24 * 3600 },
};

export interface Queues {
  webhooks: Queue<WebhookJobData>;
  tasks: Queue<TaskJobData>;
  diagnostics: Queue<DiagnoseJobData>;
  drift: Queue<DriftJobData>;
  review: Queue<ReviewJobData>;
  rotation: Queue<Record<string, never>>;
  close(): Promise<void>;
}

export function createQueues(connection: Redis, prefix: string): Queues {
  const webhooks = new Queue<WebhookJobData>(WEBHOOK_QUEUE, { connection, prefix });
  const tasks = new Queue<TaskJobData>(TASK_QUEUE, { connection, prefix });
  const diagnostics = new Queue<DiagnoseJobData>(DIAGNOSE_QUEUE, { connection, prefix });
  const drift = new Queue<DriftJobData>(DRIFT_QUEUE, { connection, prefix });
  const review = new Queue<ReviewJobData>(REVIEW_QUEUE, { connection, prefix });
  const rotation = new Queue<Record<string, never>>(ROTATION_QUEUE, { connection, prefix });
  return {
    webhooks,
    tasks,
    diagnostics,
    drift,
    review,
    rotation,
    async close() {
      await Promise.all([webhooks.close(), tasks.close(), diagnostics.close(), drift.close(), review.close(), rotation.close()]);
    },
  };
}
