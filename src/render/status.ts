import type { StackLock } from "../connectors/store/locks.js";
import type { StackView } from "../connectors/store/workflows.js";
import { code, inlineText, shortSha } from "./markdown.js";
import { changesLabel } from "./plan.js";
import { STATUS_ICON } from "./steps.js";
import type { StackNode } from "../domain/stack-graph.js";
import type { TaskState } from "../domain/states.js";

/** `/agent status`: one line per declared stack — its latest preview on this PR and its lock. */
export function renderStatus(input: {
  prNumber: number;
  stacks: string[];
  previews: StackView[];
  locks: Map<string, StackLock>;
  webBaseUrl: string;
  repo: string;
  /** What each waiting preview waits for (labels of its unfinished dependencies), by task id. */
  waitingFor?: Map<string, string[]>;
  /** This PR's place in a stack's lock queue, by stack. */
  queued?: Map<string, number>;
}): string {
  const lines = ["| Stack | Latest preview on this PR | Changes | Steps | Lock |", "| --- | --- | --- | --- | --- |"];
  for (const stack of input.stacks) {
    const view = input.previews.find((p) => p.task.stack === stack);
    const preview = view
      ? `${view.task.state === "PENDING" && view.task.depends_on.length > 0 ? waitingText(input.waitingFor?.get(view.task.id)) : view.task.state.toLowerCase()} on ${code(shortSha(view.headSha))}${view.task.check_run_id ? ` ([check run](${input.webBaseUrl}/${input.repo}/runs/${view.task.check_run_id}))` : ""}`
      : "none yet";
    const steps = view ? view.task.steps.map((s) => `${STATUS_ICON[s.status]} ${s.name}`).join(" · ") || "—" : "—";
    const lock = input.locks.get(stack);
    const place = input.queued?.get(stack);
    const lockText =
      (!lock ? "free" : lock.prNumber === input.prNumber ? `held by this PR until ${lock.expiresAt.toISOString()}` : `held by #${lock.prNumber} until ${lock.expiresAt.toISOString()}`) +
      (place !== undefined ? `; this PR is number ${place} in its queue` : "");
    const changes = view ? changesLabel(view.task.plan) : "—";
    lines.push(`| ${code(stack)} | ${preview} | ${changes} | ${steps} | ${lockText} |`);
  }
  return lines.join("\n");
}

function waitingText(labels: string[] | undefined): string {
  if (labels === undefined) return "waiting for its shared checks";
  return labels.length ? `waiting for ${labels.map((l) => code(l)).join(", ")}` : "queued";
}

/** Mermaid caps a diagram's size; GitHub shows an error box past it. Larger graphs are summarised. */
const MAX_GRAPH_NODES = 100;

/** A state per node: the latest preview on this PR, or "not previewed". */
const NODE_CLASS: Record<TaskState, string> = {
  SUCCEEDED: "ok",
  FAILED: "failed",
  BLOCKED: "failed",
  RUNNING: "running",
  PENDING: "waiting",
  CANCELLED: "idle",
};

/**
 * The stacks' dependency graph as a Mermaid `graph` (GitHub renders it in comments), each node
 * with its latest preview's state on this PR; only stacks on some `depends_on` edge. Empty when
 * no stack declares one.
 */
export function renderStackGraph(graph: readonly StackNode[], previews: readonly StackView[]): string {
  const onEdge = new Set(graph.flatMap((s) => (s.dependsOn.length ? [s.name, ...s.dependsOn] : [])));
  const nodes = graph.filter((s) => onEdge.has(s.name));
  if (nodes.length === 0) return "";
  if (nodes.length > MAX_GRAPH_NODES) return `_The dependency graph has ${nodes.length} stacks, more than the ${MAX_GRAPH_NODES} drawn here; their order is in \`.github/agent.yml\`._`;
  const id = new Map(nodes.map((s, i) => [s.name, `s${i}`]));
  const lines = ["```mermaid", "graph LR"];
  for (const s of nodes) {
    const view = previews.find((p) => p.task.stack === s.name);
    const state = view ? view.task.state.toLowerCase() : "not previewed";
    // Stack names are [A-Za-z0-9._-] (the schema), safe inside a quoted label.
    lines.push(`  ${id.get(s.name)}["${s.name}<br/>${state}"]:::${view ? NODE_CLASS[view.task.state] : "idle"}`);
  }
  for (const s of nodes) for (const up of s.dependsOn) if (id.has(up)) lines.push(`  ${id.get(up)} --> ${id.get(s.name)}`);
  lines.push(
    "  classDef ok fill:#dafbe1,stroke:#1a7f37",
    "  classDef failed fill:#ffebe9,stroke:#cf222e",
    "  classDef running fill:#ddf4ff,stroke:#0969da",
    "  classDef waiting fill:#fff8c5,stroke:#9a6700",
    "  classDef idle fill:#f6f8fa,stroke:#8c959f",
    "```",
  );
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
