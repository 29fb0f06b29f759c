import { policyLines } from "./policy.js";
import type { StackView } from "../connectors/store/workflows.js";
import { COMMENT_BODY_LIMIT } from "../connectors/github.js";
import type { TaskState } from "../jobs/states.js";
import type { CommandPreview, PlanDiagnostic, PulumiPreview } from "../plan/types.js";
import { code, escapeHtml, fmtInt, shortSha } from "./markdown.js";
import {
  changesLabel,
  commandOutputBlock,
  commandOutputFull,
  commandOutputMin,
  destructiveHeader,
  destructiveLine,
  diagnosticLine,
  diagnosticsHeader,
  fitLines,
  linesLength,
  notableDiagnostics,
  planRows,
  shortPlanHash,
  summaryLine,
  tableBlock,
  tableBlockOverhead,
  type PlanRows,
} from "./plan.js";
import { STATUS_ICON, stepLine, stepOutputs } from "./steps.js";

/** Marks the app's one living comment per pull request. */
export const STICKY_MARKER = "<!-- pr-infra-agent:sticky -->";

/** Marks continuation comment `part` (2, 3, …) of the sticky comment. */
export function continuationMarker(part: number): string {
  return `<!-- pr-infra-agent:sticky-part ${part} -->`;
}

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

function overall(stacks: StackView[]): string {
  const states = stacks.map((s) => s.task.state);
  if (states.some((s) => s === "RUNNING" || s === "PENDING")) return "🔄 in progress";
  if (states.some((s) => s === "FAILED" || s === "BLOCKED")) return "❌ failed";
  if (states.length && states.every((s) => s === "SUCCEEDED")) return "✅ all previews succeeded";
  return "—";
}

/** The main part only (what fits in one comment); see `renderStickyParts`. */
export function renderStickyComment(input: StickyInput): string {
  return renderStickyParts({ ...input, maxContinuations: 0 }).main;
}

// ---------------------------------------------------------------------------------------------
// Layout
//
// Part 1 (main): header, stacks table, then per stack with a plan its essentials (summary
// line, plan hash, destructive operations, diagnostics), each list bounded by a fair share.
// Then the detail (resource-table chunks, command outputs, failure outputs) flows, in stack
// order, into whatever room main has left and then into continuation parts 2…(1+max). Each
// stack's detail is capped by a max-min fair share of the total room first, so one huge stack
// cannot crowd out the others. Whatever is left out is named in a note in the last part.
// Every length is counted as the text is built: nothing is rendered twice to be measured.
// ---------------------------------------------------------------------------------------------

/** Slack per part for rounding in the arithmetic below. */
const SAFETY = 64;
/** Upper bound on what the essentials (destructive operations, diagnostics) may take in main. */
const ESSENTIALS_MAX = 30_000;
const MAX_DESTRUCTIVE_LINES = 200;
const MAX_DIAGNOSTIC_LINES = 30;
/** Room lost per part to rows and blocks that do not fit its end, assumed when sharing out. */
const FRAGMENTATION = 4_000;
/** Preferred size of a failed stack's output (as before parts existed). */
const FAILURE_PREFERRED = 8_000;
const FAILURE_MIN = 600;
/** Fewest rows worth a table chunk of their own at the end of a part, when another part follows. */
const MIN_CHUNK_ROWS = 5;

/** A line of main whose text depends on where the detail lands; `reserve` bounds its length. */
interface Slot {
  reserve: number;
  fill: () => string;
}
type Line = string | Slot;

interface StackCtx {
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

interface Chunk {
  part: number;
  from: number;
  to: number;
}

interface RowsItem {
  kind: "rows";
  ctx: StackCtx;
  rows: string[];
  rowLens: number[];
  /** Upper bound of the chunk wrapper around rows (summary with the largest numbers). */
  overhead: number;
  /** Rows allowed by the stack's share (a prefix). */
  allowed: number;
}

interface ElasticItem {
  kind: "elastic";
  ctx: StackCtx;
  /** For the left-out note: "failure output", "preview output". */
  what: string;
  preferred: number;
  min: number;
  budget: number;
  render: (max: number) => string;
}

type DetailItem = RowsItem | ElasticItem;

type PlannedBlock = { kind: "rows"; it: RowsItem; from: number; to: number } | { kind: "text"; text: string };

interface PartPlan {
  blocks: PlannedBlock[];
  /** Characters the blocks take, each with the blank line before it. */
  used: number;
  cap: number;
}

interface Packing {
  parts: PartPlan[];
  rowsPlaced: Map<RowsItem, { placed: number; chunks: Chunk[] }>;
  elasticPlaced: Set<ElasticItem>;
  /** True when something allowed did not fit (the estimate of the room was too generous). */
  unplanned: boolean;
  /** Room left in all allowed parts. */
  free: number;
}

/** Max-min fair shares of `budget` for `demands` (no share above its demand). */
function waterFill(demands: readonly number[], budget: number): number[] {
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

/** Renders at a budget once: layout rounds ask for the same budgets again. */
function memo(render: (max: number) => string): (max: number) => string {
  const cache = new Map<number, string>();
  return (max) => {
    let text = cache.get(max);
    if (text === undefined) cache.set(max, (text = render(max)));
    return text;
  };
}

function join(lines: Line[]): string {
  return lines.map((l) => (typeof l === "string" ? l : l.fill())).join("\n");
}

function lineLen(l: Line): number {
  return (typeof l === "string" ? l.length : l.reserve) + 1;
}

/** Where the full detail of a stack is: its check run and its log. */
function fullDetailLinks(ctx: StackCtx): string {
  const links = [ctx.runUrl ? `[check run](${ctx.runUrl})` : "", ctx.logUrl ? `[full log](${ctx.logUrl})` : ""].filter(Boolean);
  return links.length > 0 ? links.join(" · ") : "not available yet (no check run)";
}

function seeFull(ctx: StackCtx): string {
  const links = [ctx.runUrl ? `the [check run](${ctx.runUrl})` : "", ctx.logUrl ? `the [full log](${ctx.logUrl})` : ""].filter(Boolean);
  return links.length > 0 ? `see ${links.join(" or ")}` : "not shown here";
}

function failureOpen(ctx: StackCtx): string {
  const { task } = ctx.view;
  const failedSteps = task.steps.filter((s) => s.status === "failed" || s.status === "timed_out");
  const summary = task.error ? escapeHtml(task.error.slice(0, 300)) : escapeHtml(failedSteps.map(stepLine).join(", ").slice(0, 300));
  return `<details><summary>❌ ${ctx.stackFailure}: ${summary}</summary>`;
}

export function renderStickyParts(input: StickyPartsInput): StickyParts {
  const LIMIT = COMMENT_BODY_LIMIT;
  const maxCont = Number.isFinite(input.maxContinuations) ? Math.max(0, Math.floor(input.maxContinuations)) : 0;
  const { stacks } = input;
  const shas = [...new Set(stacks.map((s) => s.headSha))];
  const head = shas.length === 1 ? ` on ${code(shortSha(shas[0]!))}` : "";
  const header: Line[] = [STICKY_MARKER, `## 🛠️ Infrastructure preview${head}: ${overall(stacks)}`, ""];
  if (input.notice) header.push(input.notice, "");
  if (stacks.length === 0) {
    header.push("No preview yet. Comment `/agent preview` to run one.");
    return { main: join(header), continuations: [] };
  }

  const ctxs: StackCtx[] = stacks.map((view, index) => {
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

  // -- Stacks table (bounded, in case of absurdly many stacks). --------------------------------
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
    if (tableLen + row.length + 1 > LIMIT / 3) {
      table.push("", `… and ${fmtInt(ctxs.length - i)} more stacks not shown in this table.`);
      break;
    }
    table.push(row);
    tableLen += row.length + 1;
  }
  const footer = ["", "<sub>Updated in place by the agent. Commands: `/agent help`.</sub>"];

  // -- Detail items, in stack order. ---------------------------------------------------------
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
      const failedSteps = ctx.view.task.steps.filter((s) => s.status === "failed" || s.status === "timed_out");
      const wrap = open.length + "\n\n".length + "\n\n</details>".length;
      items.push({
        kind: "elastic",
        ctx,
        what: "failure output",
        preferred: wrap + FAILURE_PREFERRED,
        min: wrap + FAILURE_MIN,
        budget: 0,
        render: memo((max) => `${open}\n\n${stepOutputs(failedSteps, Math.min(FAILURE_PREFERRED, max - wrap))}\n\n</details>`),
      });
    }
  }

  // -- Reserved lines: the left-out note, the pointer to continuations, continuation headings. --
  const noteHeader = "**Not shown for lack of room** (each comment is limited to 65,536 characters):";
  const noteLine = (it: DetailItem, count: number, from: number): string =>
    it.kind === "rows"
      ? `- ${fmtInt(count)} resource rows of stack ${it.ctx.stackCode} not shown (rows ${fmtInt(from)}–${fmtInt(it.rows.length)} of ${fmtInt(it.rows.length)}); full detail: ${fullDetailLinks(it.ctx)}`
      : `- the ${it.what} of stack ${it.ctx.stackCode}; full detail: ${fullDetailLinks(it.ctx)}`;
  const noteReserve =
    items.length === 0
      ? 0
      : noteHeader.length + 2 + items.reduce((n, it) => n + noteLine(it, it.kind === "rows" ? it.rows.length : 0, it.kind === "rows" ? it.rows.length : 0).length + 1, 0) + 2;
  const pointer = (n: number) => `Detail continues in ${fmtInt(n)} more comment${n === 1 ? "" : "s"} below (part${n === 1 ? ` 2` : `s 2–${n + 1}`}).`;
  const pointerReserve = maxCont > 0 ? pointer(maxCont).length + 2 : 0;
  const heading = (n: number, m: number) =>
    `${continuationMarker(n)}\n### 🛠️ Preview detail, part ${n} of ${m} — continued from the main comment`;
  const headingReserve = heading(maxCont + 1, maxCont + 1).length;

  // -- Essentials, each stack with a plan bounded by a fair share. -----------------------------
  const fixedLen = linesLength([...header, ...table, ...footer].map((l) => (typeof l === "string" ? l : "")));
  const avail0 = LIMIT - fixedLen - pointerReserve - (maxCont === 0 ? noteReserve : 0) - SAFETY;
  const essBudget = Math.max(0, Math.min(ESSENTIALS_MAX, Math.floor(avail0 * (maxCont === 0 ? 0.5 : 0.8))));
  // Where each stack's table rows landed, known after packing; "… and N more destructive
  // operations: see part K" lines (slots) read it when main is joined.
  const rowItemOf = new Map<StackCtx, RowsItem>();
  let finalChunks: (ctx: StackCtx) => Chunk[] = () => [];
  for (const it of items) if (it.kind === "rows") rowItemOf.set(it.ctx, it);

  interface Essentials {
    ctx: StackCtx;
    fixed: string[];
    destructiveLines: string[];
    diagLines: string[];
  }
  const essentials: Essentials[] = [];
  for (const ctx of ctxs) {
    const plan = ctx.view.task.plan;
    if (!plan) continue;
    const hash = shortPlanHash(ctx.view.task.plan_hash);
    const info = [
      hash ? `Plan ${code(hash)}` : "",
      ctx.rows?.unchanged ? `${fmtInt(ctx.rows.unchanged)} unchanged` : "",
      ctx.runUrl ? `[check run](${ctx.runUrl})` : "",
      ctx.logUrl ? `[full log](${ctx.logUrl})` : "",
    ].filter(Boolean);
    const fixed: string[] = ["", `### ${ctx.stackCode}: ${plan.engine === "pulumi" ? summaryLine(plan.summary) : "see output"}`];
    if (info.length) fixed.push(info.join(" · "));
    if (ctx.view.task.policy) fixed.push(...policyLines(ctx.view.task.policy));
    essentials.push({
      ctx,
      fixed,
      destructiveLines: ctx.rows ? ctx.rows.destructive.slice(0, MAX_DESTRUCTIVE_LINES + 1).map(destructiveLine) : [],
      diagLines: ctx.diags.slice(0, MAX_DIAGNOSTIC_LINES + 1).map(diagnosticLine),
    });
  }
  const maxPartNo = maxCont + 1;
  const destructiveMore = (e: Essentials, shown: number): Slot => {
    const ctx = e.ctx;
    const total = ctx.rows!.destructive.length;
    const hidden = total - shown;
    const text = (where: string) => `- … and ${fmtInt(hidden)} more destructive operation${hidden === 1 ? "" : "s"}: ${where}`;
    const variants = [text(`see part ${maxPartNo}`), text("see the resource table below"), text(seeFull(ctx))];
    return {
      reserve: Math.max(...variants.map((v) => v.length)),
      fill: () => {
        const chunk = finalChunks(ctx).find((c) => c.from <= shown && shown < c.to);
        if (!chunk) return text(seeFull(ctx));
        return chunk.part === 0 ? text("see the resource table below") : text(`see part ${chunk.part + 1}`);
      },
    };
  };
  const essentialLines: Line[] = [];
  {
    const demands = essentials.map(
      (e) =>
        linesLength(e.fixed) +
        (e.destructiveLines.length ? destructiveHeader(1).length + 16 + linesLength(e.destructiveLines) + 200 : 0) +
        (e.diagLines.length ? 80 + linesLength(e.diagLines) + 200 : 0),
    );
    const shares = waterFill(demands, essBudget);
    essentials.forEach((e, i) => {
      const ctx = e.ctx;
      const out: Line[] = [...e.fixed];
      const dTotal = ctx.rows?.destructive.length ?? 0;
      const dHead = dTotal > 0 ? ["", destructiveHeader(dTotal)] : [];
      const gHead = ctx.diags.length > 0 ? ["", diagnosticsHeader(ctx.diags)] : [];
      const fixedLen = linesLength(e.fixed) + linesLength(dHead) + linesLength(gHead);
      const room = Math.max(0, shares[i]! - fixedLen);
      const [dRoom, gRoom] = waterFill([dTotal ? linesLength(e.destructiveLines) + 200 : 0, ctx.diags.length ? linesLength(e.diagLines) + 200 : 0], room);
      if (dTotal > 0) {
        out.push(...dHead);
        const moreReserve = destructiveMore(e, 0).reserve;
        const n = fitLines(e.destructiveLines, dRoom!, moreReserve, Math.min(MAX_DESTRUCTIVE_LINES, dTotal));
        out.push(...e.destructiveLines.slice(0, n));
        if (n < dTotal) out.push(destructiveMore(e, n));
      }
      if (ctx.diags.length > 0) {
        out.push(...gHead);
        const gTotal = ctx.diags.length;
        const moreText = (k: number) => `- … and ${fmtInt(k)} more: ${seeFull(ctx)}`;
        const n = fitLines(e.diagLines, gRoom!, moreText(gTotal).length, Math.min(MAX_DIAGNOSTIC_LINES, gTotal));
        out.push(...e.diagLines.slice(0, n));
        if (n < gTotal) out.push(moreText(gTotal - n));
      }
      essentialLines.push(...out);
    });
  }

  // -- Room per part, and each stack's fair share of it. ---------------------------------------
  let mainLen = 0;
  for (const l of [...header, ...table, ...essentialLines, ...footer]) mainLen += lineLen(l);
  const mainCap = LIMIT - mainLen - pointerReserve - (maxCont === 0 ? noteReserve : 0) - SAFETY;
  const contCap = (partNo: number) => LIMIT - headingReserve - (partNo === maxPartNo ? noteReserve : 0) - SAFETY;
  const capOf = (partIndex: number) => (partIndex === 0 ? mainCap : contCap(partIndex + 1));
  const maxElastic = Math.max(0, Math.max(mainCap, maxCont > 0 ? contCap(2) : 0) - 2);
  for (const it of items) {
    if (it.kind !== "elastic") continue;
    it.preferred = Math.min(it.preferred, maxElastic);
    it.min = Math.min(it.min, it.preferred);
  }
  const rowsDemand = (it: RowsItem) => {
    const bytes = linesLength(it.rows);
    return bytes + it.overhead * (Math.ceil(bytes / Math.max(1, contCap(2))) + 1);
  };
  const stackDemand = ctxs.map(() => 0);
  for (const it of items) stackDemand[it.ctx.index]! += it.kind === "rows" ? rowsDemand(it) : it.preferred;

  /** Sets each item's allowance (rows allowed, elastic budget) from a fair share of `room`. */
  const allocate = (room: number) => {
    const stackShare = waterFill(stackDemand, Math.max(0, room));
    for (const ctx of ctxs) {
      const mine = items.filter((it) => it.ctx === ctx);
      if (mine.length === 0) continue;
      const share = stackShare[ctx.index]!;
      const enough = share >= stackDemand[ctx.index]!;
      const hasRows = mine.some((it) => it.kind === "rows");
      let left = share;
      for (const it of mine) {
        if (it.kind !== "elastic") continue;
        it.budget = enough ? it.preferred : Math.min(it.preferred, Math.max(it.min, Math.floor(hasRows ? share / 2 : share / mine.length)));
        left -= it.budget;
      }
      for (const it of mine) {
        if (it.kind !== "rows") continue;
        if (enough) {
          it.allowed = it.rows.length;
          continue;
        }
        let used = it.overhead * (Math.ceil(left / Math.max(1, contCap(2))) + 1);
        let n = 0;
        while (n < it.rows.length && used + it.rowLens[n]! + 1 <= left) used += it.rowLens[n++]! + 1;
        it.allowed = n;
      }
    }
  };

  /** Lays the allowed detail out over the parts, in order, by lengths alone (nothing is joined here). */
  const pack = (): Packing => {
    const parts: PartPlan[] = [{ blocks: [], used: 0, cap: capOf(0) }];
    const rowsPlaced = new Map<RowsItem, { placed: number; chunks: Chunk[] }>();
    const elasticPlaced = new Set<ElasticItem>();
    let unplanned = false;
    const canAdvance = () => parts.length - 1 < maxCont;
    const advance = (): boolean => {
      if (!canAdvance()) return false;
      parts.push({ blocks: [], used: 0, cap: capOf(parts.length) });
      return true;
    };
    const cur = () => parts[parts.length - 1]!;
    for (const it of items) {
      if (it.kind === "rows") {
        const chunks: Chunk[] = [];
        let i = 0;
        while (i < it.allowed) {
          const p = cur();
          const room = p.cap - p.used - it.overhead - 2;
          let j = i;
          let len = 0;
          while (j < it.allowed && len + it.rowLens[j]! + 1 <= room) len += it.rowLens[j++]! + 1;
          const fresh = p.used === 0;
          if (j === i || (!fresh && j - i < Math.min(MIN_CHUNK_ROWS, it.allowed - i) && canAdvance())) {
            if (fresh && j === i) break; // a row larger than a whole part: cannot happen with bounded cells
            if (!advance()) break;
            continue;
          }
          const chunk = { part: parts.length - 1, from: i, to: j };
          chunks.push(chunk);
          p.blocks.push({ kind: "rows", it, from: i, to: j });
          p.used += it.overhead + len + 2;
          i = j;
        }
        if (i < it.allowed) unplanned = true;
        rowsPlaced.set(it, { placed: i, chunks });
      } else {
        let p = cur();
        let room = p.cap - p.used - 2;
        // Its text at the allowed budget is often much shorter (a short failure output).
        let text: string | null = it.render(it.budget);
        if (text.length > room) {
          if (room >= it.min && (room >= it.budget / 2 || !canAdvance())) text = it.render(room);
          else if (advance()) {
            p = cur();
            room = p.cap - p.used - 2;
            const budget = Math.min(it.budget, room);
            text = budget >= it.min ? it.render(budget) : null;
          } else text = null;
        }
        if (text !== null && text.length <= room) {
          p.blocks.push({ kind: "text", text });
          p.used += text.length + 2;
          elasticPlaced.add(it);
        } else unplanned = true;
      }
    }
    let free = 0;
    for (let k = 0; k <= maxCont; k++) free += k < parts.length ? Math.max(0, parts[k]!.cap - parts[k]!.used) : capOf(k);
    return { parts, rowsPlaced, elasticPlaced, unplanned, free };
  };

  // Share out a conservative estimate of the room, then hand out what the layout left unused
  // (rows that do not fit a part's end) and lay out again, while that places more.
  let room = Math.max(0, mainCap) - FRAGMENTATION;
  for (let p = 2; p <= maxPartNo; p++) room += contCap(p) - FRAGMENTATION;
  allocate(room);
  let packing = pack();
  for (let round = 0; round < 3; round++) {
    const unmet = items.some((it) => (it.kind === "rows" ? it.allowed < it.rows.length : it.budget < it.preferred));
    if (!unmet || packing.unplanned || packing.free < 2 * FRAGMENTATION) break;
    room += Math.floor(packing.free * 0.8);
    const saved = items.map((it) => (it.kind === "rows" ? it.allowed : it.budget));
    allocate(room);
    const next = pack();
    if (next.unplanned) {
      items.forEach((it, i) => (it.kind === "rows" ? (it.allowed = saved[i]!) : (it.budget = saved[i]!)));
      break;
    }
    packing = next;
  }
  const { parts, rowsPlaced, elasticPlaced } = packing;
  finalChunks = (ctx) => {
    const it = rowItemOf.get(ctx);
    return it ? (rowsPlaced.get(it)?.chunks ?? []) : [];
  };

  // -- The note on what was left out, in the last part. ----------------------------------------
  const noteLines: string[] = [];
  for (const it of items) {
    const placed = it.kind === "rows" ? (rowsPlaced.get(it)?.placed ?? 0) : 0;
    if (it.kind === "rows" && placed < it.rows.length) noteLines.push(noteLine(it, it.rows.length - placed, placed + 1));
    if (it.kind === "elastic" && !elasticPlaced.has(it)) noteLines.push(noteLine(it, 0, 0));
  }
  let mainNote: string | null = null;
  if (noteLines.length > 0) {
    const note = [noteHeader, "", ...noteLines].join("\n");
    const last = parts[parts.length - 1]!;
    const lastIsMain = parts.length === 1;
    const reserved = lastIsMain ? maxCont === 0 : parts.length === maxPartNo;
    const placeNote = (p: PartPlan) => {
      p.blocks.push({ kind: "text", text: note });
      p.used += note.length + 2;
    };
    if (last.used + note.length + 2 <= last.cap + (reserved ? noteReserve : 0)) {
      if (lastIsMain) mainNote = note;
      else placeNote(last);
    } else if (parts.length - 1 < maxCont) {
      const p: PartPlan = { blocks: [], used: 0, cap: capOf(parts.length) };
      parts.push(p);
      placeNote(p);
    } else if (lastIsMain) mainNote = note; // reserved in main when there are no continuations
    else placeNote(last); // reserved in the last allowed part
  }

  // -- Assembly: the only place where blocks are joined. ---------------------------------------
  const blockText = (b: PlannedBlock) =>
    b.kind === "text"
      ? b.text
      : tableBlock(chunkSummary(b.it.ctx, fmtInt(b.from + 1), fmtInt(b.to), fmtInt(b.it.rows.length), b.from === 0 && b.to === b.it.rows.length), b.it.rows, b.from, b.to);
  const continuationCount = parts.length - 1;
  const main: Line[] = [...header, ...table, ...essentialLines];
  for (const b of parts[0]!.blocks) main.push("", blockText(b));
  if (mainNote) main.push("", mainNote);
  if (continuationCount > 0) main.push("", pointer(continuationCount));
  main.push(...footer);
  let mainText = join(main);
  const m = continuationCount + 1;
  const continuations = parts.slice(1).map((p, k) => [heading(k + 2, m), ...p.blocks.map(blockText)].join("\n\n"));
  if (mainText.length > LIMIT) mainText = fallbackMain(header, table, footer, LIMIT);
  return { main: mainText, continuations: continuations.map((c) => (c.length > LIMIT ? fallbackPart(c) : c)) };
}

function chunkSummary(ctx: StackCtx, from: string, to: string, total: string, whole: boolean): string {
  return whole ? `Resource changes of ${ctx.stackHtml} (${total})` : `Resource changes of ${ctx.stackHtml} (rows ${from}–${to} of ${total})`;
}

/** Never reached with bounded inputs; keeps the limit if the arithmetic above is ever wrong. */
function fallbackMain(header: Line[], table: string[], footer: string[], limit: number): string {
  const lines: Line[] = [...header];
  let len = 0;
  for (const l of lines) len += lineLen(l);
  const tail = ["", "The preview detail does not fit in a comment; see each stack's check run.", ...footer];
  const tailLen = linesLength(tail);
  for (const l of table) {
    if (len + lineLen(l) + tailLen + 100 > limit) break;
    lines.push(l);
    len += lineLen(l);
  }
  return join([...lines, ...tail]);
}

function fallbackPart(text: string): string {
  const firstLine = text.slice(0, text.indexOf("\n"));
  return `${firstLine}\n\nThis part of the preview detail did not fit; see each stack's check run.`;
}
