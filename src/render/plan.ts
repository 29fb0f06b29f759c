/**
 * Markdown pieces for a typed preview result (src/plan/types.ts), shared by the sticky comment
 * and the check run. Everything a pull request's program names (types, names, URNs, property
 * paths, diagnostic messages, command output) is untrusted text: it only ever appears inside
 * inline code (`code`/`cell`), escaped inline text (`inlineText`), HTML-escaped in a `<summary>`,
 * or in a fence sealed against its content (`fencedWithin`).
 */
import type {
  ChangeCounts,
  CommandPreview,
  PlanDiagnostic,
  PreviewOutcome,
  PulumiPreview,
  ResourceChange,
  ResourceOp,
} from "../plan/types.js";
import { DESTRUCTIVE_OPS, orderForDisplay } from "../plan/types.js";
import { cell, code, fencedWithin, fmtInt, headTail, inlineText } from "./markdown.js";

export const OP_ICON: Record<ResourceOp, string> = {
  create: "➕",
  update: "✏️",
  delete: "🗑️",
  replace: "🔁",
  read: "📖",
  same: "▫️",
};

const SUMMARY_SIGNS: readonly [ResourceOp, string][] = [
  ["create", "+"],
  ["update", "~"],
  ["delete", "-"],
  ["replace", "±"],
];

/** `+3 ~1 -2 ±1` (create, update, delete, replace; zeros left out), or `no changes`. */
export function summaryLine(counts: ChangeCounts): string {
  const parts = SUMMARY_SIGNS.filter(([op]) => (counts[op] ?? 0) > 0).map(([op, sign]) => `${sign}${counts[op]}`);
  return parts.length > 0 ? parts.join(" ") : "no changes";
}

/** What the stacks table shows in its Changes column. */
export function changesLabel(plan: PreviewOutcome | null): string {
  if (!plan) return "—";
  return plan.engine === "pulumi" ? summaryLine(plan.summary) : "see output";
}

/** The first 12 hex digits of a plan digest (`sha256:…`), or null when there is none. */
export function shortPlanHash(hash: string | null | undefined): string | null {
  if (!hash) return null;
  const hex = hash.replace(/^sha256:/i, "").replace(/[^0-9a-f]/gi, "").slice(0, 12);
  return hex || null;
}

function opName(op: ResourceOp): string {
  return op in OP_ICON ? op : "unknown";
}

function opIcon(op: ResourceOp): string {
  return OP_ICON[op] ?? "•";
}

/** The logical name at the end of a URN (`…::name`), or the URN itself. */
export function urnName(urn: string): string {
  const i = urn.lastIndexOf("::");
  return i >= 0 ? urn.slice(i + 2) : urn;
}

// ---------------------------------------------------------------------------------------------
// Resource table
// ---------------------------------------------------------------------------------------------

export const RESOURCE_TABLE_HEADER = "| Op | Type | Name | Changed properties |\n| --- | --- | --- | --- |";

const MAX_PROPS_IN_CELL = 10;
const MAX_PROPS_CHARS = 400;

function propsCell(r: ResourceChange): string {
  const reasons = new Set(r.replaceReasons);
  const changed = r.replaceReasons.length > 0 ? new Set(r.changedProperties) : reasons;
  const out: string[] = [];
  let len = 0;
  let total = 0;
  const add = (p: string) => {
    total++;
    if (out.length >= MAX_PROPS_IN_CELL || len > MAX_PROPS_CHARS) return;
    const c = cell(p, 60) + (reasons.has(p) ? " (forces replacement)" : "");
    out.push(c);
    len += c.length + 2;
  };
  for (const p of r.changedProperties) add(p);
  for (const p of r.replaceReasons) if (!changed.has(p)) add(p);
  if (total === 0) return "—";
  const more = total - out.length;
  return out.join(", ") + (more > 0 ? ` +${fmtInt(more)} more` : "");
}

/** One table row: op, type, name and changed properties, each cell safe for a GFM table. */
export function resourceRow(r: ResourceChange): string {
  return `| ${opIcon(r.op)} ${opName(r.op)} | ${cell(r.type, 120)} | ${cell(r.name, 100)} | ${propsCell(r)} |`;
}

export interface PlanRows {
  /** Table rows of every resource that is not `same`, in display order (destructive first). */
  rows: string[];
  /** The destructive changes, in display order: `rows[i]` is `destructive[i]` for i < destructive.length. */
  destructive: ResourceChange[];
  /** How many resources are `same` (not listed). */
  unchanged: number;
}

/** Rows, destructive changes and the unchanged count; `rows: false` skips building the rows. */
export function planRows(plan: PulumiPreview, opts: { rowsWanted?: boolean } = {}): PlanRows {
  const wanted = opts.rowsWanted ?? true;
  const ordered = orderForDisplay(plan.resources);
  const rows: string[] = [];
  const destructive: ResourceChange[] = [];
  let unchanged = 0;
  for (const r of ordered) {
    if (r.op === "same") {
      unchanged++;
      continue;
    }
    if (DESTRUCTIVE_OPS.has(r.op)) destructive.push(r);
    if (wanted) rows.push(resourceRow(r));
  }
  return { rows, destructive, unchanged };
}

/** A collapsed table of `rows[from, to)`; never split inside a row. */
export function tableBlock(summary: string, rows: readonly string[], from: number, to: number): string {
  return `<details><summary>${summary}</summary>\n\n${RESOURCE_TABLE_HEADER}\n${rows.slice(from, to).join("\n")}\n\n</details>`;
}

/** Characters `tableBlock` adds around its rows (rows themselves cost their length plus a newline each). */
export function tableBlockOverhead(summary: string): number {
  return `<details><summary>${summary}</summary>\n\n${RESOURCE_TABLE_HEADER}\n\n\n</details>`.length - 1;
}

// ---------------------------------------------------------------------------------------------
// Destructive operations and diagnostics
// ---------------------------------------------------------------------------------------------

function codeList(items: readonly string[], max: number): string {
  const shown = items.slice(0, max).map((p) => code(p, 60));
  return shown.join(", ") + (items.length > max ? ` +${fmtInt(items.length - max)} more` : "");
}

export function destructiveHeader(n: number): string {
  return `⚠️ **${fmtInt(n)} destructive operation${n === 1 ? "" : "s"}**`;
}

/** `- 🔁 **replace** `type` `name` — replaced because of `ami`` */
export function destructiveLine(r: ResourceChange): string {
  const why = r.op === "replace" && r.replaceReasons.length > 0 ? ` — replaced because of ${codeList(r.replaceReasons, 5)}` : "";
  return `- ${opIcon(r.op)} **${opName(r.op)}** ${code(r.type, 120)} ${code(r.name, 100)}${why}`;
}

/** Errors first, then warnings (info left out), each in engine order. */
export function notableDiagnostics(plan: PulumiPreview): PlanDiagnostic[] {
  const errors = plan.diagnostics.filter((d) => d.severity === "error");
  const warnings = plan.diagnostics.filter((d) => d.severity === "warning");
  return [...errors, ...warnings];
}

export function diagnosticsHeader(diags: readonly PlanDiagnostic[]): string {
  let errors = 0;
  for (const d of diags) if (d.severity === "error") errors++;
  const warnings = diags.length - errors;
  const parts = [
    errors ? `${fmtInt(errors)} error${errors === 1 ? "" : "s"}` : "",
    warnings ? `${fmtInt(warnings)} warning${warnings === 1 ? "" : "s"}` : "",
  ].filter(Boolean);
  return `**Diagnostics:** ${parts.join(", ")}`;
}

export const DIAGNOSTIC_MESSAGE_MAX = 400;

export function diagnosticLine(d: PlanDiagnostic): string {
  const icon = d.severity === "error" ? "❌" : "⚠️";
  const about = d.urn ? ` ${code(urnName(d.urn), 100)}` : "";
  return `- ${icon} ${d.severity === "error" ? "error" : "warning"}${about}: ${inlineText(d.message, DIAGNOSTIC_MESSAGE_MAX)}`;
}

/** Characters `lines` take joined by newlines, each counted with its newline. */
export function linesLength(lines: readonly string[]): number {
  let n = 0;
  for (const l of lines) n += l.length + 1;
  return n;
}

/**
 * How many of `lines` (each costing its length plus a newline) to show within `budget`: all
 * when they fit, else as many as fit while leaving `reserve` characters for a "… and N more" line.
 */
export function fitLines(lines: readonly string[], budget: number, reserve: number, maxLines = Infinity): number {
  if (lines.length <= maxLines && linesLength(lines) <= budget) return lines.length;
  let used = reserve + 1;
  let n = 0;
  while (n < lines.length && n < maxLines && used + lines[n]!.length + 1 <= budget) used += lines[n++]!.length + 1;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Command engine output
// ---------------------------------------------------------------------------------------------

/** The fixed text `commandOutputBlock` puts around the fence. */
function commandOutputWrapper(summary: string, preview: CommandPreview, logUrl: string | null): { open: string; close: string } {
  const note = preview.truncated
    ? `\n\n_The output was shortened (head and tail kept)${logUrl ? `; the full output is in the [log](${logUrl})` : ""}._`
    : "";
  return { open: `<details><summary>${summary}</summary>\n\n`, close: `${note}\n\n</details>` };
}

/** Smallest useful size of a command output block. */
export function commandOutputMin(summary: string, preview: CommandPreview, logUrl: string | null): number {
  const w = commandOutputWrapper(summary, preview, logUrl);
  return w.open.length + w.close.length + 400;
}

/** Size of the block when the whole output fits. */
export function commandOutputFull(summary: string, preview: CommandPreview, logUrl: string | null): number {
  const w = commandOutputWrapper(summary, preview, logUrl);
  return w.open.length + w.close.length + preview.output.length + 64;
}

/** The command's output, fenced, collapsed, at most `max` characters. */
export function commandOutputBlock(summary: string, preview: CommandPreview, max: number, logUrl: string | null): string {
  const w = commandOutputWrapper(summary, preview, logUrl);
  const room = Math.max(0, max - w.open.length - w.close.length);
  const text = preview.output.length > 0 ? preview.output : "(no output)";
  const body = headTail(text, Math.max(0, room - 16));
  return `${w.open}${fencedWithin(body, room)}${w.close}`;
}
