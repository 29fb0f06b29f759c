import type { StackView } from "../connectors/store/workflows.js";
import { COMMENT_BODY_LIMIT } from "../connectors/github.js";
import type { TaskState } from "../jobs/states.js";
import { code, shortSha } from "./markdown.js";
import { STATUS_ICON, stepLine, stepOutputs } from "./steps.js";

/** Marks the app's one living comment per pull request. */
export const STICKY_MARKER = "<!-- pr-infra-agent:sticky -->";

const TASK_ICON: Record<TaskState, string> = {
  PENDING: "⏳ queued",
  RUNNING: "🔄 running",
  AWAITING_APPROVAL: "✋ awaiting approval",
  SUCCEEDED: "✅ succeeded",
  FAILED: "❌ failed",
  CANCELLED: "🚫 cancelled",
  BLOCKED: "⛔ blocked",
};

export interface StickyInput {
  repo: string;
  webBaseUrl: string;
  stacks: StackView[];
  /** A notice shown above the table (e.g. a configuration error). */
  notice?: string;
}

function overall(stacks: StackView[]): string {
  const states = stacks.map((s) => s.task.state);
  if (states.some((s) => s === "RUNNING" || s === "PENDING")) return "🔄 in progress";
  if (states.some((s) => s === "FAILED" || s === "BLOCKED")) return "❌ failed";
  if (states.length && states.every((s) => s === "SUCCEEDED")) return "✅ all previews succeeded";
  return "—";
}

export function renderStickyComment(input: StickyInput): string {
  const { stacks } = input;
  const shas = [...new Set(stacks.map((s) => s.headSha))];
  const head = shas.length === 1 ? ` on ${code(shortSha(shas[0]!))}` : "";
  const lines: string[] = [STICKY_MARKER, `## 🛠️ Infrastructure preview${head}: ${overall(stacks)}`, ""];
  if (input.notice) lines.push(input.notice, "");
  if (stacks.length === 0) {
    lines.push("No preview yet. Comment `/agent preview` to run one.");
    return lines.join("\n");
  }
  lines.push("| Stack | Commit | Status | Steps | Details |", "| --- | --- | --- | --- | --- |");
  for (const { task, headSha } of stacks) {
    const steps = task.steps.map((s) => `${STATUS_ICON[s.status]} ${s.name}`).join(" · ") || "—";
    const link = task.check_run_id
      ? `[check run](${input.webBaseUrl}/${input.repo}/runs/${task.check_run_id})`
      : "—";
    lines.push(`| ${code(task.stack)} | ${code(shortSha(headSha))} | ${TASK_ICON[task.state]} | ${steps} | ${link} |`);
  }
  const failures = stacks.filter((s) => s.task.state === "FAILED");
  const budget = Math.floor((COMMENT_BODY_LIMIT - 4000) / Math.max(1, failures.length));
  for (const { task } of failures) {
    const failedSteps = task.steps.filter((s) => s.status === "failed" || s.status === "timed_out");
    lines.push(
      "",
      `<details><summary>❌ ${code(task.stack)}: ${task.error ? escapeHtml(task.error) : failedSteps.map(stepLine).join(", ")}</summary>`,
      "",
      stepOutputs(failedSteps, Math.min(budget, 8000)),
      "",
      "</details>",
    );
  }
  lines.push("", "<sub>Updated in place by the agent. Commands: `/agent help`.</sub>");
  return lines.join("\n");
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]!).slice(0, 300);
}
