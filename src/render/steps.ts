import type { StepResult, StepStatus } from "../jobs/types.js";
import { fenced, formatDuration, tail } from "./markdown.js";

export const STATUS_ICON: Record<StepStatus, string> = {
  pending: "⏳",
  running: "🔄",
  succeeded: "✅",
  failed: "❌",
  timed_out: "⏱️",
  skipped: "⏭️",
};

export function stepLine(s: StepResult): string {
  const exit = s.exitCode !== null && s.status === "failed" ? `, exit ${s.exitCode}` : "";
  const dur = s.durationMs !== null ? ` (${formatDuration(s.durationMs)}${exit})` : exit ? ` (${exit.slice(2)})` : "";
  return `${STATUS_ICON[s.status]} ${s.name}${dur}`;
}

/** Per-step output sections within a total character budget, failing steps first in line for space. */
export function stepOutputs(steps: StepResult[], budget: number): string {
  const shown = steps.filter((s) => s.status !== "pending" && s.status !== "skipped");
  if (shown.length === 0) return "";
  const per = Math.max(200, Math.floor(budget / shown.length) - 200);
  return shown
    .map((s) => {
      const cut = s.truncated ? "\n[output cut: the step printed more than the sandbox output limit]" : "";
      const body = tail(s.outputTail, per) + cut;
      return `### ${stepLine(s)}\n\n${fenced(body || "(no output)")}`;
    })
    .join("\n\n");
}
