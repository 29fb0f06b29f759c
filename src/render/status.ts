import type { StackLock } from "../connectors/store/locks.js";
import type { StackView } from "../connectors/store/workflows.js";
import { code, inlineText, shortSha } from "./markdown.js";
import { changesLabel } from "./plan.js";
import { STATUS_ICON } from "./steps.js";

/** `/agent status`: one line per declared stack — its latest preview on this PR and its lock. */
export function renderStatus(input: {
  prNumber: number;
  stacks: string[];
  previews: StackView[];
  locks: Map<string, StackLock>;
  webBaseUrl: string;
  repo: string;
}): string {
  const lines = ["| Stack | Latest preview on this PR | Changes | Steps | Lock |", "| --- | --- | --- | --- | --- |"];
  for (const stack of input.stacks) {
    const view = input.previews.find((p) => p.task.stack === stack);
    const preview = view
      ? `${view.task.state === "PENDING" && view.task.depends_on.length > 0 ? "waiting for its shared checks" : view.task.state.toLowerCase()} on ${code(shortSha(view.headSha))}${view.task.check_run_id ? ` ([check run](${input.webBaseUrl}/${input.repo}/runs/${view.task.check_run_id}))` : ""}`
      : "none yet";
    const steps = view ? view.task.steps.map((s) => `${STATUS_ICON[s.status]} ${s.name}`).join(" · ") || "—" : "—";
    const lock = input.locks.get(stack);
    const lockText = !lock ? "free" : lock.prNumber === input.prNumber ? `held by this PR until ${lock.expiresAt.toISOString()}` : `held by #${lock.prNumber} until ${lock.expiresAt.toISOString()}`;
    const changes = view ? changesLabel(view.task.plan) : "—";
    lines.push(`| ${code(stack)} | ${preview} | ${changes} | ${steps} | ${lockText} |`);
  }
  return lines.join("\n");
}

/** The PR's recent audit trail for `/agent status`: newest last, in a collapsed block. */
export function renderAuditTail(rows: Array<{ at: Date; actor: string; action: string; detail: Record<string, unknown> }>, shown = 15): string {
  if (rows.length === 0) return "";
  const tail = rows.slice(-shown);
  const lines = tail.map((r) => {
    const stack = typeof r.detail.stack === "string" ? ` ${code(r.detail.stack)}` : "";
    const sha = typeof r.detail.head_sha === "string" ? ` ${code(shortSha(r.detail.head_sha))}` : "";
    return `- ${r.at.toISOString().slice(0, 19).replace("T", " ")}Z ${code(r.action, 60)}${stack}${sha} by ${inlineText(r.actor, 60)}`;
  });
  return ["<details>", `<summary>Audit trail of this PR (last ${tail.length} of ${rows.length})</summary>`, "", ...lines, "", "</details>"].join("\n");
}
