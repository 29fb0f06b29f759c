/** The data of one diagnostic report: gathered by src/jobs/diagnose.ts, rendered by src/render/diagnose.ts. */
import type { FailureRow, LockRow, OpenDriftRow, PendingApprovalRow, RunRow } from "../connectors/store/diagnostics.js";
import type { ProbeResult, SearchHit } from "../domain/diagnose.js";

export type DiagnoseTrigger = "comment" | "label" | "template";

export interface QueueDepth {
  name: string;
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

export interface DiagnosticReport {
  repo: string;
  issueNumber: number;
  stack: string | null;
  requestedBy: string;
  trigger: DiagnoseTrigger;
  /** ISO time the report was gathered; relative ages in the comment are measured from it. */
  generatedAt: string;
  runs: RunRow[];
  failures: FailureRow[];
  locks: LockRow[];
  /** Stacks whose last drift check found drift; absent in reports saved before drift existed. */
  drift?: OpenDriftRow[];
  /** Error budgets of the stacks with errors in their window (src/approval/error-budget.ts); absent before budgets existed. */
  budgets?: Array<{ stack: string; summary: string; exhausted: boolean }>;
  pending: PendingApprovalRow[];
  stuck: RunRow[];
  /** Seconds a task may run before it counts as stuck. */
  stuckAfterSeconds: number;
  queues: QueueDepth[];
  probes: ProbeResult[];
  /** Past failures and resolved diagnostic issues like this one, best first. */
  similar: SearchHit[];
  /** Runbook sections that match, best first. */
  runbooks: SearchHit[];
  /** Things the reader should know about the report itself (a section that could not be gathered). */
  notes: string[];
}
