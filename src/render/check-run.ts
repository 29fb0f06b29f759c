import type { CheckRunUpdate } from "../connectors/github.js";
import { CHECK_RUN_TEXT_LIMIT } from "../connectors/github.js";
import type { StepResult } from "../jobs/types.js";
import { code, shortSha } from "./markdown.js";
import { stepLine, stepOutputs } from "./steps.js";

export function previewCheckRunName(stack: string): string {
  return `agent/preview (${stack})`;
}

export function queuedOutput(stack: string, headSha: string, requestedBy: string): CheckRunUpdate {
  return {
    status: "queued",
    output: {
      title: `Preview of ${stack} queued`,
      summary: `Requested by @${requestedBy} on ${code(shortSha(headSha))}. Waiting for a worker.`,
    },
  };
}

export function progressOutput(stack: string, steps: StepResult[]): CheckRunUpdate {
  return {
    status: "in_progress",
    output: {
      title: `Preview of ${stack} running`,
      summary: steps.map((s) => `- ${stepLine(s)}`).join("\n"),
      text: stepOutputs(steps, CHECK_RUN_TEXT_LIMIT - 1000),
    },
  };
}

export function completedOutput(
  stack: string,
  outcome: { succeeded: boolean; steps: StepResult[]; error: string | null; logUrl?: string | null },
): CheckRunUpdate {
  const failed = outcome.steps.find((s) => s.status === "failed" || s.status === "timed_out");
  const title = outcome.succeeded
    ? `Preview of ${stack} succeeded`
    : failed
      ? `Preview of ${stack} failed at ${failed.name}`
      : `Preview of ${stack} failed`;
  const summary = [
    outcome.error ? `**${outcome.error}**\n` : "",
    ...outcome.steps.map((s) => `- ${stepLine(s)}`),
    outcome.logUrl ? `\n[Full log](${outcome.logUrl})` : "",
  ]
    .filter(Boolean)
    .join("\n");
  return {
    status: "completed",
    conclusion: outcome.succeeded ? "success" : failed?.status === "timed_out" ? "timed_out" : "failure",
    completedAt: new Date().toISOString(),
    output: { title, summary, text: stepOutputs(outcome.steps, CHECK_RUN_TEXT_LIMIT - 1000) },
  };
}

export function cancelledOutput(stack: string, reason: string): CheckRunUpdate {
  return {
    status: "completed",
    conclusion: "cancelled",
    completedAt: new Date().toISOString(),
    output: { title: `Preview of ${stack} cancelled`, summary: reason },
  };
}
