import type { TaskRow } from "../../src/connectors/store/workflows.js";
import type { StepResult } from "../../src/domain/steps.js";

/** A step result with neutral defaults. */
export function step(over: Partial<StepResult> & Pick<StepResult, "name" | "status">): StepResult {
  return { exitCode: null, durationMs: null, outputTail: "", truncated: false, ...over };
}

/** A task row as the store returns it, with neutral defaults (no steps, no plan). */
export function taskRow(over: Partial<TaskRow> & Pick<TaskRow, "stack" | "state">): TaskRow {
  return {
    id: `task-${over.stack}`,
    workflow_id: "wf-1",
    kind: "preview",
    job_id: `job-${over.stack}`,
    check_run_id: null,
    attempts: 1,
    steps: [],
    error: null,
    plan_hash: null,
    plan: null,
    depends_on: [],
    policy: null,
    created_at: new Date("2024-01-01T00:00:00Z"),
    started_at: null,
    finished_at: null,
    ...over,
  };
}
