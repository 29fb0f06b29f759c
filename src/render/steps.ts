import type { StepResult, StepStatus } from "../domain/steps.js";
import { fencedWithin, formatDuration, headTail } from "./markdown.js";

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
  const why = s.reason ? ` — ${s.reason}` : "";
  return `${STATUS_ICON[s.status]} ${s.name}${dur}${why}`;
}

/**
 * Per-step output sections that together never exceed `budget` characters: each shown step
 * gets an equal share for its heading, its fence and the end of its output.
 */
export function stepOutputs(steps: StepResult[], budget: number): string {
  const shown = steps.filter((s) => s.status !== "pending" && s.status !== "skipped");
  if (shown.length === 0 || budget <= 0) return "";
  const separators = 2 * (shown.length - 1);
  const share = Math.floor((budget - separators) / shown.length);
  return shown
    .map((s) => {
      const heading = `### ${stepLine(s)}\n\n`;
      const cut = s.truncated ? "\n[output cut: the step printed more than the sandbox output limit]" : "";
      const room = share - heading.length;
      if (room < 20) return heading.slice(0, Math.max(0, share));
      const body = headTail(s.outputTail, Math.max(0, room - cut.length - 16)) + cut;
      return heading + fencedWithin(body || "(no output)", room);
    })
    .join("\n\n");
}
