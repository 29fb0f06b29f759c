/**
 * The sticky comment's summary phase: the header (marker, title with the overall state, the
 * notice), one layout context per stack, the stacks table and the footer.
 */
import { COMMENT_BODY_LIMIT } from "../../connectors/github.js";
import type { StackView } from "../../connectors/store/workflows.js";
import type { TaskState } from "../../domain/states.js";
import { code, escapeHtml, fmtInt, shortSha } from "../markdown.js";
import { changesLabel, linesLength, notableDiagnostics, planRows } from "../plan.js";
import { STATUS_ICON } from "../steps.js";
import { STICKY_MARKER, type StackCtx, type StickyPartsInput } from "./layout.js";

const TASK_ICON: Record<TaskState, string> = {
  PENDING: "⏳ queued",
  RUNNING: "🔄 running",
  SUCCEEDED: "✅ succeeded",
  FAILED: "❌ failed",
  CANCELLED: "🚫 cancelled",
  BLOCKED: "⛔ blocked",
};

/** What main says when no stack has a preview: the whole body after the header. */
export const NO_PREVIEW_YET = "No preview yet. Comment `/agent preview` to run one.";

export const FOOTER: readonly string[] = ["", "<sub>Updated in place by the agent. Commands: `/agent help`.</sub>"];

function overall(stacks: StackView[]): string {
  const states = stacks.map((s) => s.task.state);
  if (states.some((s) => s === "RUNNING" || s === "PENDING")) return "🔄 in progress";
  if (states.some((s) => s === "FAILED" || s === "BLOCKED")) return "❌ failed";
  if (states.length && states.every((s) => s === "SUCCEEDED")) return "✅ all previews succeeded";
  return "—";
}

/** Marker, title (with the commit when every stack is on the same one) and the notice. */
export function headerLines(input: Pick<StickyPartsInput, "stacks" | "notice">): string[] {
  const { stacks } = input;
  const shas = [...new Set(stacks.map((s) => s.headSha))];
  const head = shas.length === 1 ? ` on ${code(shortSha(shas[0]!))}` : "";
  const header = [STICKY_MARKER, `## 🛠️ Infrastructure preview${head}: ${overall(stacks)}`, ""];
  if (input.notice) header.push(input.notice, "");
  return header;
}

/** What every later phase needs to know of a stack, computed once. */
export function stackContexts(input: StickyPartsInput): StackCtx[] {
  return input.stacks.map((view, index) => {
    const plan = view.task.plan;
    const pulumi = plan?.engine === "pulumi" ? plan : null;
    return {
      index,
      view,
      stackCode: code(view.task.stack),
      stackFailure: escapeHtml(code(view.task.stack)),
      stackHtml: `<code>${escapeHtml(code(view.task.stack).slice(1, -1))}</code>`,
      runUrl: view.task.check_run_id ? `${input.webBaseUrl}/${input.repo}/runs/${view.task.check_run_id}` : null,
      logUrl: input.logUrlFor?.(view.task.id) ?? null,
      pulumi,
      command: plan?.engine === "command" ? plan : null,
      rows: pulumi ? planRows(pulumi) : null,
      diags: pulumi ? notableDiagnostics(pulumi) : [],
    };
  });
}

/** One row per stack, bounded (to a third of a comment) in case of absurdly many stacks. */
export function stacksTable(ctxs: readonly StackCtx[]): string[] {
  const table: string[] = [
    "| Stack | Commit | Status | Changes | Steps | Details |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  let tableLen = linesLength(table);
  for (let i = 0; i < ctxs.length; i++) {
    const { view, stackCode, runUrl } = ctxs[i]!;
    const { task, headSha } = view;
    const steps = task.steps.map((s) => `${STATUS_ICON[s.status]} ${s.name}`).join(" · ") || "—";
    const link = runUrl ? `[check run](${runUrl})` : "—";
    const row = `| ${stackCode} | ${code(shortSha(headSha))} | ${TASK_ICON[task.state]} | ${changesLabel(task.plan)} | ${steps} | ${link} |`;
    if (tableLen + row.length + 1 > COMMENT_BODY_LIMIT / 3) {
      table.push("", `… and ${fmtInt(ctxs.length - i)} more stacks not shown in this table.`);
      break;
    }
    table.push(row);
    tableLen += row.length + 1;
  }
  return table;
}
