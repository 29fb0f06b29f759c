/**
 * Lines of the sticky comment whose room is reserved before the layout: the note on what was
 * left out (in the last part), main's pointer to the continuations, and each continuation's
 * heading. Their reserves are the longest text they can have.
 */
import { fmtInt } from "../markdown.js";
import { continuationMarker, fullDetailLinks, type DetailItem, type Packing, type PartPlan } from "./layout.js";

const NOTE_HEADER = "**Not shown for lack of room** (each comment is limited to 65,536 characters):";

function noteLine(it: DetailItem, count: number, from: number): string {
  return it.kind === "rows"
    ? `- ${fmtInt(count)} resource rows of stack ${it.ctx.stackCode} not shown (rows ${fmtInt(from)}–${fmtInt(it.rows.length)} of ${fmtInt(it.rows.length)}); full detail: ${fullDetailLinks(it.ctx)}`
    : `- the ${it.what} of stack ${it.ctx.stackCode}; full detail: ${fullDetailLinks(it.ctx)}`;
}

/** Main's last line before the footer when continuations follow. */
export function pointer(n: number): string {
  return `Detail continues in ${fmtInt(n)} more comment${n === 1 ? "" : "s"} below (part${n === 1 ? ` 2` : `s 2–${n + 1}`}).`;
}

/** The first lines of continuation part `n` of `m`. */
export function heading(n: number, m: number): string {
  return `${continuationMarker(n)}\n### 🛠️ Preview detail, part ${n} of ${m} — continued from the main comment`;
}

/** Characters reserved for the note, main's pointer and a continuation's heading. */
export interface Reserves {
  note: number;
  pointer: number;
  heading: number;
}

export function reserves(items: readonly DetailItem[], maxCont: number): Reserves {
  const note =
    items.length === 0
      ? 0
      : NOTE_HEADER.length + 2 + items.reduce((n, it) => n + noteLine(it, it.kind === "rows" ? it.rows.length : 0, it.kind === "rows" ? it.rows.length : 0).length + 1, 0) + 2;
  return { note, pointer: maxCont > 0 ? pointer(maxCont).length + 2 : 0, heading: heading(maxCont + 1, maxCont + 1).length };
}

/** The note naming every item (or the rows of it) the packing left out; null when nothing was. */
export function leftOutNote(items: readonly DetailItem[], packing: Packing): string | null {
  const { rowsPlaced, elasticPlaced } = packing;
  const noteLines: string[] = [];
  for (const it of items) {
    const placed = it.kind === "rows" ? (rowsPlaced.get(it)?.placed ?? 0) : 0;
    if (it.kind === "rows" && placed < it.rows.length) noteLines.push(noteLine(it, it.rows.length - placed, placed + 1));
    if (it.kind === "elastic" && !elasticPlaced.has(it)) noteLines.push(noteLine(it, 0, 0));
  }
  return noteLines.length > 0 ? [NOTE_HEADER, "", ...noteLines].join("\n") : null;
}

/**
 * Puts the note in the last part (in its reserve where that is the last allowed part), or in a
 * new part when one is still allowed. Returns the note when it goes into main (which is joined
 * line by line, not as blocks), else null; `parts` is changed in place.
 */
export function placeNote(parts: PartPlan[], note: string, opts: { maxCont: number; noteReserve: number; capOf: (partIndex: number) => number }): string | null {
  const { maxCont, noteReserve, capOf } = opts;
  const last = parts[parts.length - 1]!;
  const lastIsMain = parts.length === 1;
  const reserved = lastIsMain ? maxCont === 0 : parts.length === maxCont + 1;
  const put = (p: PartPlan) => {
    p.blocks.push({ kind: "text", text: note });
    p.used += note.length + 2;
  };
  if (last.used + note.length + 2 <= last.cap + (reserved ? noteReserve : 0)) {
    if (lastIsMain) return note;
    put(last);
  } else if (parts.length - 1 < maxCont) {
    const p: PartPlan = { blocks: [], used: 0, cap: capOf(parts.length) };
    parts.push(p);
    put(p);
  } else if (lastIsMain) return note; // reserved in main when there are no continuations
  else put(last); // reserved in the last allowed part
  return null;
}
