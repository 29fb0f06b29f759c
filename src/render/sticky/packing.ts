/**
 * Continuation splitting: how much room each part has, each stack's max-min fair share of the
 * total, and the layout of the allowed detail over main and parts 2…(1+max), by lengths alone
 * (blocks are joined only at assembly, src/render/sticky-comment.ts).
 */
import { COMMENT_BODY_LIMIT } from "../../connectors/github.js";
import { linesLength } from "../plan.js";
import type { Reserves } from "./notes.js";
import { SAFETY, waterFill, type Chunk, type DetailItem, type ElasticItem, type Packing, type PartPlan, type RowsItem, type StackCtx } from "./layout.js";

/** Room lost per part to rows and blocks that do not fit its end, assumed when sharing out. */
const FRAGMENTATION = 4_000;
/** Fewest rows worth a table chunk of their own at the end of a part, when another part follows. */
const MIN_CHUNK_ROWS = 5;

/** The room of each part for detail blocks. */
export interface PartRoom {
  /** How many continuation parts may be used. */
  maxCont: number;
  mainCap: number;
  /** Room of continuation part `partNo` (2, 3, …). */
  contCap(partNo: number): number;
  /** Room of part `partIndex` (0 is main). */
  capOf(partIndex: number): number;
}

/** Each part's room, given the length of main without detail (`mainLen`) and the reserves. */
export function partRoom(mainLen: number, maxCont: number, reserved: Reserves): PartRoom {
  const maxPartNo = maxCont + 1;
  const mainCap = COMMENT_BODY_LIMIT - mainLen - reserved.pointer - (maxCont === 0 ? reserved.note : 0) - SAFETY;
  const contCap = (partNo: number) => COMMENT_BODY_LIMIT - reserved.heading - (partNo === maxPartNo ? reserved.note : 0) - SAFETY;
  return { maxCont, mainCap, contCap, capOf: (partIndex) => (partIndex === 0 ? mainCap : contCap(partIndex + 1)) };
}

/** Sets each item's allowance (rows allowed, elastic budget) from a fair share of `room`. */
function allocate(ctxs: readonly StackCtx[], items: readonly DetailItem[], stackDemand: readonly number[], room: number, contCap2: number): void {
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
      let used = it.overhead * (Math.ceil(left / Math.max(1, contCap2)) + 1);
      let n = 0;
      while (n < it.rows.length && used + it.rowLens[n]! + 1 <= left) used += it.rowLens[n++]! + 1;
      it.allowed = n;
    }
  }
}

/** Lays the allowed detail out over the parts, in order, by lengths alone (nothing is joined here). */
function pack(items: readonly DetailItem[], room: PartRoom): Packing {
  const { maxCont, capOf } = room;
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
}

/**
 * Shares out a conservative estimate of the room, then hands out what the layout left unused
 * (rows that do not fit a part's end) and lays out again, while that places more. Sets the
 * items' allowances (and caps elastic sizes to a part) in place.
 */
export function layOutDetail(ctxs: readonly StackCtx[], items: readonly DetailItem[], room: PartRoom): Packing {
  const { maxCont, mainCap, contCap } = room;
  const maxElastic = Math.max(0, Math.max(mainCap, maxCont > 0 ? contCap(2) : 0) - 2);
  for (const it of items) {
    if (it.kind !== "elastic") continue;
    it.preferred = Math.min(it.preferred, maxElastic);
    it.min = Math.min(it.min, it.preferred);
  }
  const contCap2 = contCap(2);
  const rowsDemand = (it: RowsItem) => {
    const bytes = linesLength(it.rows);
    return bytes + it.overhead * (Math.ceil(bytes / Math.max(1, contCap2)) + 1);
  };
  const stackDemand = ctxs.map(() => 0);
  for (const it of items) stackDemand[it.ctx.index]! += it.kind === "rows" ? rowsDemand(it) : it.preferred;

  let total = Math.max(0, mainCap) - FRAGMENTATION;
  for (let p = 2; p <= maxCont + 1; p++) total += contCap(p) - FRAGMENTATION;
  allocate(ctxs, items, stackDemand, total, contCap2);
  let packing = pack(items, room);
  for (let round = 0; round < 3; round++) {
    const unmet = items.some((it) => (it.kind === "rows" ? it.allowed < it.rows.length : it.budget < it.preferred));
    if (!unmet || packing.unplanned || packing.free < 2 * FRAGMENTATION) break;
    total += Math.floor(packing.free * 0.8);
    const saved = items.map((it) => (it.kind === "rows" ? it.allowed : it.budget));
    allocate(ctxs, items, stackDemand, total, contCap2);
    const next = pack(items, room);
    if (next.unplanned) {
      items.forEach((it, i) => (it.kind === "rows" ? (it.allowed = saved[i]!) : (it.budget = saved[i]!)));
      break;
    }
    packing = next;
  }
  return packing;
}
