/** Steps of a task (lint, test, preview, deploy) and what each came to. Plain data, no imports. */

/** The steps a stack may define, in the order they run. */
export const STEP_NAMES = ["lint", "test", "preview", "deploy"] as const;
export type StepName = (typeof STEP_NAMES)[number];

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
