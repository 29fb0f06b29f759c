import type { ResolvedStack } from "../config/repo/resolve.js";
import type { StepName } from "../config/repo/schema.js";
import type { ChecksGroup } from "./dag.js";

export type StepStatus = "pending" | "running" | "succeeded" | "failed" | "timed_out" | "skipped";

export interface StepResult {
  name: StepName;
  status: StepStatus;
  exitCode: number | null;
  durationMs: number | null;
  /** The last part of the step's combined output, already redacted and size-bounded. */
  outputTail: string;
  /** True when the output was longer than the sandbox's output limit and was cut. */
  truncated: boolean;
  /** Why the step was stopped, when the sandbox stopped it (timeout, memory, processes, output). */
  reason?: string | null;
}

/** What a workflow runs, fixed when the command is accepted (from the default branch). */
export interface WorkflowConfig {
  image: string;
  /** `repository.clone_url` from the webhook payload; the task fetches the head SHA from it. */
  cloneUrl: string;
  defaultBranch: string;
  stacks: ResolvedStack[];
  /** Lint/test shared by several of the stacks, run once as `checks` tasks (the DAG's first layer). */
  checks?: ChecksGroup[];
  /**
   * The head branch is in a fork: its code is untrusted. Its tasks get no credentials and no
   * egress, and run under the server's untrusted runtime (gVisor). Absent: not a fork.
   */
  fork?: boolean;
  /** A `branch` workflow: why a default-branch commit is previewed and how many approvals it needs. */
  branch?: BranchApply;
}

export interface BranchApply {
  /** `rollback`: `/agent rollback`; `merge-commit`: a merge-first deploy whose merge commit planned differently. */
  purpose: "rollback" | "merge-commit";
  /** Approvals the apply needs (the stack's policy at request time, with the server's floor). */
  approvals: number;
  /** The command that applies it once approved. */
  command: string;
  /**
   * Who may not approve it besides the requester, with why: for a merge commit, the pull
   * request's author and everyone who pushed to it or wrote its commits (src/approval/branch-gate.ts).
   */
  exclude?: Array<{ login: string; why: string }>;
}

/** BullMQ job data for a task. Holds identifiers only: no tokens, no secrets (invariant 7). */
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
