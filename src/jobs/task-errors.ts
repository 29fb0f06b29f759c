/**
 * The typed ends of a task other than success, for control flow: a processor throws one and
 * src/jobs/preview-task.ts / deploy-task.ts decide from its class what happens to the job.
 */
import { UnrecoverableError } from "bullmq";

/** The worker is shutting down past its grace period: the task goes back to the queue. */
export class HandBackError extends Error {
  override name = "HandBackError";
}

/** The task was cancelled (a newer commit) while it ran: its sandbox was stopped. */
export class TaskCancelledError extends Error {
  override name = "TaskCancelledError";
}

/** The task cannot succeed by retrying (bad SHA, missing stack): fail it once, clearly. */
export class TaskUserError extends UnrecoverableError {
  override name = "TaskUserError";
}

/**
 * The server will not give this task a sandbox as configured (a runtime it does not allow, an
 * egress allowlist without the proxy): nothing ran, and retrying will not change it.
 */
export class SandboxRefusedError extends TaskUserError {
  override name = "SandboxRefusedError";
}

/**
 * The task's credentials reached the lifetime its trust tier allows, and its sandbox was killed
 * (src/jobs/sandbox-session.ts). A deploy stopped this way may have applied part of its plan.
 */
export class CredentialLifetimeError extends TaskUserError {
  override name = "CredentialLifetimeError";
}
