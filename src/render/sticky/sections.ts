/**
 * The sticky comment's per-stack sections in main: for each stack with a plan, its heading with
 * the change summary, the plan hash and links, the plan policy's decision, then its destructive
 * operations and diagnostics. Together they get at most a budget (a share of main); each stack
 * a max-min fair share of it, and within a stack the two lists share again.
 */
import { COMMENT_BODY_LIMIT } from "../../connectors/github.js";
import { code, fmtInt } from "../markdown.js";
import { destructiveHeader, destructiveLine, diagnosticLine, diagnosticsHeader, fitLines, linesLength, shortPlanHash, summaryLine } from "../plan.js";
import { policyLines } from "../policy.js";
import type { Reserves } from "./notes.js";
import { SAFETY, seeFull, waterFill, type Chunk, type Line, type Slot, type StackCtx } from "./layout.js";

/** Upper bound on what the essentials (destructive operations, diagnostics) may take in main. */
const ESSENTIALS_MAX = 30_000;
const MAX_DESTRUCTIVE_LINES = 200;
const MAX_DIAGNOSTIC_LINES = 30;

interface Section {
  ctx: StackCtx;
  /** Heading, plan line and policy: always shown. */
  fixed: string[];
  destructiveLines: string[];
  diagLines: string[];
}

/** What the sections may take in main, given what main holds for sure (`fixedLen`) and the reserves. */
export function sectionsBudget(fixedLen: number, reserved: Reserves, maxCont: number): number {
  const avail0 = COMMENT_BODY_LIMIT - fixedLen - reserved.pointer - (maxCont === 0 ? reserved.note : 0) - SAFETY;
  return Math.max(0, Math.min(ESSENTIALS_MAX, Math.floor(avail0 * (maxCont === 0 ? 0.5 : 0.8))));
}

function sectionOf(ctx: StackCtx): Section | null {
  const plan = ctx.view.task.plan;
  if (!plan) return null;
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
  return {
    ctx,
    fixed,
    destructiveLines: ctx.rows ? ctx.rows.destructive.slice(0, MAX_DESTRUCTIVE_LINES + 1).map(destructiveLine) : [],
    diagLines: ctx.diags.slice(0, MAX_DIAGNOSTIC_LINES + 1).map(diagnosticLine),
  };
}

/**
 * "… and N more destructive operations: see …", pointing where the rest lands in the resource
 * table: known only after packing, so a slot that `chunksOf` fills in when main is joined.
 */
function destructiveMore(ctx: StackCtx, shown: number, maxPartNo: number, chunksOf: (ctx: StackCtx) => readonly Chunk[]): Slot {
  const total = ctx.rows!.destructive.length;
  const hidden = total - shown;
  const text = (where: string) => `- … and ${fmtInt(hidden)} more destructive operation${hidden === 1 ? "" : "s"}: ${where}`;
  const variants = [text(`see part ${maxPartNo}`), text("see the resource table below"), text(seeFull(ctx))];
  return {
    reserve: Math.max(...variants.map((v) => v.length)),
    fill: () => {
      const chunk = chunksOf(ctx).find((c) => c.from <= shown && shown < c.to);
      if (!chunk) return text(seeFull(ctx));
      return chunk.part === 0 ? text("see the resource table below") : text(`see part ${chunk.part + 1}`);
    },
  };
}

/** One section's lines within `share`: the fixed lines, then the two lists sharing the rest. */
function sectionLines(e: Section, share: number, maxPartNo: number, chunksOf: (ctx: StackCtx) => readonly Chunk[]): Line[] {
  const ctx = e.ctx;
  const out: Line[] = [...e.fixed];
  const dTotal = ctx.rows?.destructive.length ?? 0;
  const dHead = dTotal > 0 ? ["", destructiveHeader(dTotal)] : [];
  const gHead = ctx.diags.length > 0 ? ["", diagnosticsHeader(ctx.diags)] : [];
  const fixedLen = linesLength(e.fixed) + linesLength(dHead) + linesLength(gHead);
  const room = Math.max(0, share - fixedLen);
  const [dRoom, gRoom] = waterFill([dTotal ? linesLength(e.destructiveLines) + 200 : 0, ctx.diags.length ? linesLength(e.diagLines) + 200 : 0], room);
  if (dTotal > 0) {
    out.push(...dHead);
    const moreReserve = destructiveMore(ctx, 0, maxPartNo, chunksOf).reserve;
    const n = fitLines(e.destructiveLines, dRoom!, moreReserve, Math.min(MAX_DESTRUCTIVE_LINES, dTotal));
    out.push(...e.destructiveLines.slice(0, n));
    if (n < dTotal) out.push(destructiveMore(ctx, n, maxPartNo, chunksOf));
  }
  if (ctx.diags.length > 0) {
    out.push(...gHead);
    const gTotal = ctx.diags.length;
    const moreText = (k: number) => `- … and ${fmtInt(k)} more: ${seeFull(ctx)}`;
    const n = fitLines(e.diagLines, gRoom!, moreText(gTotal).length, Math.min(MAX_DIAGNOSTIC_LINES, gTotal));
    out.push(...e.diagLines.slice(0, n));
    if (n < gTotal) out.push(moreText(gTotal - n));
  }
  return out;
}

/**
 * Every stack's section, in stack order, within `budget`. `chunksOf` tells where a stack's
 * resource rows were placed; it is read only when main is joined, after packing.
 */
export function stackSections(ctxs: readonly StackCtx[], budget: number, opts: { maxPartNo: number; chunksOf: (ctx: StackCtx) => readonly Chunk[] }): Line[] {
  const sections = ctxs.map(sectionOf).filter((e): e is Section => e !== null);
  const demands = sections.map(
    (e) =>
      linesLength(e.fixed) +
      (e.destructiveLines.length ? destructiveHeader(1).length + 16 + linesLength(e.destructiveLines) + 200 : 0) +
      (e.diagLines.length ? 80 + linesLength(e.diagLines) + 200 : 0),
  );
  const shares = waterFill(demands, budget);
  return sections.flatMap((e, i) => sectionLines(e, shares[i]!, opts.maxPartNo, opts.chunksOf));
}
