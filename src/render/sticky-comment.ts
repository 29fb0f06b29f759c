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
  const footer = ["", "<sub>Updated in place by the agent. Commands: `/agent help`.</sub>"];
  const failures = stacks.filter((s) => s.task.state === "FAILED");
  // Budget the failure details from what is left after the fixed parts, so the whole body
  // stays within GitHub's comment limit however many stacks fail.
  const fixed = [...lines, ...footer].join("\n").length;
  const wrappers = failures.map(({ task }) => {
    const failedSteps = task.steps.filter((s) => s.status === "failed" || s.status === "timed_out");
    const summary = task.error ? escapeHtml(task.error) : failedSteps.map(stepLine).join(", ");
    return { failedSteps, open: `<details><summary>❌ ${code(task.stack)}: ${summary}</summary>` };
  });
  const overhead = wrappers.reduce((n, w) => n + w.open.length + 20, 0);
  const perFailure = Math.floor((COMMENT_BODY_LIMIT - fixed - overhead - 200) / Math.max(1, failures.length));
  for (const w of wrappers) {
    lines.push("", w.open, "", stepOutputs(w.failedSteps, Math.min(perFailure, 8000)), "", "</details>");
  }
  lines.push(...footer);
  return lines.join("\n");
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]!).slice(0, 300);
}
