/**
 * Task and workflow states, as stored in Postgres. Only states the code assigns are listed; the
 * database's CHECK and enum still accept older values that no code writes (never reused).
 */
export const TASK_STATES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "BLOCKED"] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** A preview workflow's state follows its tasks (previewWorkflowState); a deploy workflow's its one task. */
export type WorkflowState = "PENDING" | "VALIDATING" | "READY_FOR_APPLY" | "BLOCKED" | "CANCELLED";

export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "BLOCKED"]);

/**
 * The state of a preview workflow, from the states of its tasks: validating while any task
 * is live, ready for apply when every stack previewed cleanly, blocked when any failed.
 */
export function previewWorkflowState(tasks: readonly TaskState[]): WorkflowState {
  if (tasks.length === 0 || tasks.every((s) => s === "PENDING")) return "PENDING";
  if (tasks.some((s) => !TERMINAL_TASK_STATES.has(s))) return "VALIDATING";
  if (tasks.every((s) => s === "CANCELLED")) return "CANCELLED";
  if (tasks.some((s) => s === "FAILED" || s === "BLOCKED")) return "BLOCKED";
  if (tasks.every((s) => s === "SUCCEEDED" || s === "CANCELLED")) return "READY_FOR_APPLY";
  return "BLOCKED";
}
