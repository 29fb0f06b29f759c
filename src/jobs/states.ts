/** Task states: seed 000 §3.2.1 plus CANCELLED and BLOCKED. */
export const TASK_STATES = [
  "PENDING",
  "RUNNING",
  "AWAITING_APPROVAL",
  "SUCCEEDED",
  "FAILED",
  "CANCELLED",
  "BLOCKED",
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** Workflow states: seed 001 §6.2, plus CANCELLED. */
export type WorkflowState =
  | "PENDING"
  | "IN_PROGRESS"
  | "VALIDATING"
  | "READY_FOR_APPLY"
  | "WAIT_FOR_APPROVE"
  | "APPLYING"
  | "DONE"
  | "ROLLBACK"
  | "BLOCKED"
  | "CANCELLED";

export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set([
  "SUCCEEDED",
  "FAILED",
  "CANCELLED",
  "BLOCKED",
]);

const ALLOWED: Record<TaskState, readonly TaskState[]> = {
  PENDING: ["RUNNING", "CANCELLED", "BLOCKED"],
  // RUNNING -> RUNNING: a retried attempt after a crash or a transient error.
  RUNNING: ["RUNNING", "AWAITING_APPROVAL", "SUCCEEDED", "FAILED", "CANCELLED"],
  AWAITING_APPROVAL: ["RUNNING", "CANCELLED", "BLOCKED"],
  SUCCEEDED: [],
  FAILED: [],
  CANCELLED: [],
  BLOCKED: [],
};

export function canTransition(from: TaskState, to: TaskState): boolean {
  return ALLOWED[from].includes(to);
}

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
