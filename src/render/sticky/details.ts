/**
 * The sticky comment's detail phase: what flows after main's essentials into the room left and
 * the continuation parts, in stack order: each stack's resource table (split into chunks of
 * whole rows), its command output, its failure output. Elastic items render to any budget
 * between their minimum and preferred size.
 */
import { escapeHtml, fmtInt } from "../markdown.js";
import { commandOutputBlock, commandOutputFull, commandOutputMin, tableBlock, tableBlockOverhead } from "../plan.js";
import { stepLine, stepOutputs } from "../steps.js";
import type { DetailItem, PlannedBlock, StackCtx } from "./layout.js";

/** Preferred size of a failed stack's output (as before parts existed). */
const FAILURE_PREFERRED = 8_000;
const FAILURE_MIN = 600;

/** Renders at a budget once: layout rounds ask for the same budgets again. */
function memo(render: (max: number) => string): (max: number) => string {
  const cache = new Map<number, string>();
  return (max) => {
    let text = cache.get(max);
    if (text === undefined) cache.set(max, (text = render(max)));
    return text;
  };
}

function failedSteps(ctx: StackCtx) {
  return ctx.view.task.steps.filter((s) => s.status === "failed" || s.status === "timed_out");
}

function failureOpen(ctx: StackCtx): string {
  const { task } = ctx.view;
  const summary = task.error ? escapeHtml(task.error.slice(0, 300)) : escapeHtml(failedSteps(ctx).map(stepLine).join(", ").slice(0, 300));
  return `<details><summary>❌ ${ctx.stackFailure}: ${summary}</summary>`;
}

function chunkSummary(ctx: StackCtx, from: string, to: string, total: string, whole: boolean): string {
  return whole ? `Resource changes of ${ctx.stackHtml} (${total})` : `Resource changes of ${ctx.stackHtml} (rows ${from}–${to} of ${total})`;
}

/** Every stack's detail items, in stack order; allowances are set later (packing.ts). */
export function detailItems(ctxs: readonly StackCtx[]): DetailItem[] {
  const items: DetailItem[] = [];
  for (const ctx of ctxs) {
    if (ctx.rows && ctx.rows.rows.length > 0) {
      const rows = ctx.rows.rows;
      const total = fmtInt(rows.length);
      items.push({
        kind: "rows",
        ctx,
        rows,
        rowLens: rows.map((r) => r.length),
        overhead: tableBlockOverhead(chunkSummary(ctx, total, total, total, false)),
        allowed: rows.length,
      });
    }
    if (ctx.command) {
      const cmd = ctx.command;
      const summary = `Preview output of ${ctx.stackHtml}`;
      items.push({
        kind: "elastic",
        ctx,
        what: "preview output",
        preferred: commandOutputFull(summary, cmd, ctx.logUrl),
        min: commandOutputMin(summary, cmd, ctx.logUrl),
        budget: 0,
        render: memo((max) => commandOutputBlock(summary, cmd, max, ctx.logUrl)),
      });
    }
    if (ctx.view.task.state === "FAILED") {
      const open = failureOpen(ctx);
      const failed = failedSteps(ctx);
      const wrap = open.length + "\n\n".length + "\n\n</details>".length;
      items.push({
        kind: "elastic",
        ctx,
        what: "failure output",
        preferred: wrap + FAILURE_PREFERRED,
        min: wrap + FAILURE_MIN,
        budget: 0,
        render: memo((max) => `${open}\n\n${stepOutputs(failed, Math.min(FAILURE_PREFERRED, max - wrap))}\n\n</details>`),
      });
    }
  }
  return items;
}

/** A planned block's text: a chunk of a resource table, or an elastic item's (or the note's) text. */
export function blockText(b: PlannedBlock): string {
  if (b.kind === "text") return b.text;
  const { it, from, to } = b;
  return tableBlock(chunkSummary(it.ctx, fmtInt(from + 1), fmtInt(to), fmtInt(it.rows.length), from === 0 && to === it.rows.length), it.rows, from, to);
}
