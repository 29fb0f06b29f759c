/**
 * The sticky comment's layout vocabulary, shared by its phases (run in order by
 * `renderStickyParts`, src/render/sticky-comment.ts):
 *
 *   summary.ts        header, one context per stack, the stacks table, the footer
 *   details.ts        the detail items (resource-table rows, command output, failure output)
 *   notes.ts          lines reserved up front: the left-out note, the pointer, part headings
 *   sections.ts       per stack with a plan its essentials in main (plan line, policy,
 *                     destructive operations, diagnostics), bounded by a fair share
 *   packing.ts        continuation splitting: room per part, fair shares, packing into parts
 *
 * Part 1 (main): header, stacks table, then per stack with a plan its essentials (summary
 * line, plan hash, destructive operations, diagnostics), each list bounded by a fair share.
 * Then the detail (resource-table chunks, command outputs, failure outputs) flows, in stack
 * order, into whatever room main has left and then into continuation parts 2…(1+max). Each
 * stack's detail is capped by a max-min fair share of the total room first, so one huge stack
 * cannot crowd out the others. Whatever is left out is named in a note in the last part.
 * Every length is counted as the text is built: nothing is rendered twice to be measured.
 */
import type { StackView } from "../../connectors/store/workflows.js";
import type { CommandPreview, PlanDiagnostic, PulumiPreview } from "../../plan/types.js";
import type { PlanRows } from "../plan.js";

/** Marks the app's one living comment per pull request. */
export const STICKY_MARKER = "<!-- pr-infra-agent:sticky -->";

/** Marks continuation comment `part` (2, 3, …) of the sticky comment. */
export function continuationMarker(part: number): string {
  return `<!-- pr-infra-agent:sticky-part ${part} -->`;
}

export interface StickyInput {
  repo: string;
  webBaseUrl: string;
  stacks: StackView[];
  /** A notice shown above the table (e.g. a configuration error). */
  notice?: string;
}

export interface StickyPartsInput extends StickyInput {
  /** How many continuation comments (parts 2, 3, …) may be used; 0 keeps everything in one. */
  maxContinuations: number;
  /** The full task log of a task, when there is a place to read it. */
  logUrlFor?: (taskId: string) => string | null;
}

export interface StickyParts {
  /** The sticky comment itself (part 1), starting with STICKY_MARKER. */
  main: string;
  /** Continuation comments, parts 2, 3, …, each starting with `continuationMarker(n)`. */
  continuations: string[];
}

/** Slack per part for rounding in the arithmetic of the phases. */
export const SAFETY = 64;

/** A line of main whose text depends on where the detail lands; `reserve` bounds its length. */
export interface Slot {
  reserve: number;
  fill: () => string;
}
export type Line = string | Slot;

export interface StackCtx {
  index: number;
  view: StackView;
  stackCode: string;
  /** Stack name for HTML context (`<summary>`). */
  stackHtml: string;
  /** Stack name as the failure summary has always shown it. */
  stackFailure: string;
  runUrl: string | null;
  logUrl: string | null;
  pulumi: PulumiPreview | null;
  command: CommandPreview | null;
  rows: PlanRows | null;
  diags: PlanDiagnostic[];
}

/** Rows `[from, to)` of a stack's resource table, placed in part `part` (0 is main). */
export interface Chunk {
  part: number;
  from: number;
  to: number;
}

export interface RowsItem {
  kind: "rows";
  ctx: StackCtx;
  rows: string[];
  rowLens: number[];
  /** Upper bound of the chunk wrapper around rows (summary with the largest numbers). */
  overhead: number;
  /** Rows allowed by the stack's share (a prefix). */
  allowed: number;
}

export interface ElasticItem {
  kind: "elastic";
  ctx: StackCtx;
  /** For the left-out note: "failure output", "preview output". */
  what: string;
  preferred: number;
  min: number;
  budget: number;
  render: (max: number) => string;
}

export type DetailItem = RowsItem | ElasticItem;

export type PlannedBlock = { kind: "rows"; it: RowsItem; from: number; to: number } | { kind: "text"; text: string };

export interface PartPlan {
  blocks: PlannedBlock[];
  /** Characters the blocks take, each with the blank line before it. */
  used: number;
  cap: number;
}

export interface Packing {
  parts: PartPlan[];
  rowsPlaced: Map<RowsItem, { placed: number; chunks: Chunk[] }>;
  elasticPlaced: Set<ElasticItem>;
  /** True when something allowed did not fit (the estimate of the room was too generous). */
  unplanned: boolean;
  /** Room left in all allowed parts. */
  free: number;
}

/** Max-min fair shares of `budget` for `demands` (no share above its demand). */
export function waterFill(demands: readonly number[], budget: number): number[] {
  const order = demands.map((d, i) => ({ d: Math.max(0, d), i })).sort((a, b) => a.d - b.d);
  const out = new Array<number>(demands.length).fill(0);
  let remaining = Math.max(0, budget);
  let left = order.length;
  for (const { d, i } of order) {
    const share = Math.floor(remaining / left);
    const a = Math.min(d, share);
    out[i] = a;
    remaining -= a;
    left--;
  }
  return out;
}

export function join(lines: Line[]): string {
  return lines.map((l) => (typeof l === "string" ? l : l.fill())).join("\n");
}

export function lineLen(l: Line): number {
  return (typeof l === "string" ? l.length : l.reserve) + 1;
}

/** Where the full detail of a stack is: its check run and its log. */
export function fullDetailLinks(ctx: StackCtx): string {
  const links = [ctx.runUrl ? `[check run](${ctx.runUrl})` : "", ctx.logUrl ? `[full log](${ctx.logUrl})` : ""].filter(Boolean);
  return links.length > 0 ? links.join(" · ") : "not available yet (no check run)";
}

export function seeFull(ctx: StackCtx): string {
  const links = [ctx.runUrl ? `the [check run](${ctx.runUrl})` : "", ctx.logUrl ? `the [full log](${ctx.logUrl})` : ""].filter(Boolean);
  return links.length > 0 ? `see ${links.join(" or ")}` : "not shown here";
}
