/**
 * The app's one living comment per pull request, split into parts when the preview detail does
 * not fit one comment. `renderStickyParts` runs the phases in src/render/sticky/ in order (see
 * layout.ts there for the layout they share) and is the only place where blocks are joined.
 */
import { COMMENT_BODY_LIMIT } from "../connectors/github.js";
import { linesLength } from "./plan.js";
import { blockText, detailItems } from "./sticky/details.js";
import { join, lineLen, type Line, type Packing, type StackCtx, type StickyInput, type StickyParts, type StickyPartsInput } from "./sticky/layout.js";
import { heading, leftOutNote, placeNote, pointer, reserves } from "./sticky/notes.js";
import { layOutDetail, partRoom } from "./sticky/packing.js";
import { sectionsBudget, stackSections } from "./sticky/sections.js";
import { FOOTER, headerLines, NO_PREVIEW_YET, stackContexts, stacksTable } from "./sticky/summary.js";

export { continuationMarker, STICKY_MARKER, type StickyInput, type StickyParts, type StickyPartsInput } from "./sticky/layout.js";

/** The main part only (what fits in one comment); see `renderStickyParts`. */
export function renderStickyComment(input: StickyInput): string {
  return renderStickyParts({ ...input, maxContinuations: 0 }).main;
}

export function renderStickyParts(input: StickyPartsInput): StickyParts {
  const maxCont = Number.isFinite(input.maxContinuations) ? Math.max(0, Math.floor(input.maxContinuations)) : 0;
  const header = headerLines(input);
  if (input.stacks.length === 0) return { main: join([...header, NO_PREVIEW_YET]), continuations: [] };

  const ctxs = stackContexts(input);
  const table = stacksTable(ctxs);
  const items = detailItems(ctxs);
  const reserved = reserves(items, maxCont);

  // The sections' "… and N more destructive operations: see part K" lines read where each
  // stack's table rows landed, known once the detail is packed (below).
  let packing: Packing | null = null;
  const chunksOf = (ctx: StackCtx) => {
    const it = items.find((i) => i.kind === "rows" && i.ctx === ctx);
    return it?.kind === "rows" ? (packing?.rowsPlaced.get(it)?.chunks ?? []) : [];
  };
  const budget = sectionsBudget(linesLength([...header, ...table, ...FOOTER]), reserved, maxCont);
  const sections = stackSections(ctxs, budget, { maxPartNo: maxCont + 1, chunksOf });

  let mainLen = 0;
  for (const l of [...header, ...table, ...sections, ...FOOTER]) mainLen += lineLen(l);
  const room = partRoom(mainLen, maxCont, reserved);
  packing = layOutDetail(ctxs, items, room);
  const { parts } = packing;

  const note = leftOutNote(items, packing);
  const mainNote = note === null ? null : placeNote(parts, note, { maxCont, noteReserve: reserved.note, capOf: room.capOf });

  // -- Assembly: the only place where blocks are joined. ---------------------------------------
  const continuationCount = parts.length - 1;
  const main: Line[] = [...header, ...table, ...sections];
  for (const b of parts[0]!.blocks) main.push("", blockText(b));
  if (mainNote) main.push("", mainNote);
  if (continuationCount > 0) main.push("", pointer(continuationCount));
  main.push(...FOOTER);
  let mainText = join(main);
  const m = continuationCount + 1;
  const continuations = parts.slice(1).map((p, k) => [heading(k + 2, m), ...p.blocks.map(blockText)].join("\n\n"));
  if (mainText.length > COMMENT_BODY_LIMIT) mainText = fallbackMain(header, table, COMMENT_BODY_LIMIT);
  return { main: mainText, continuations: continuations.map((c) => (c.length > COMMENT_BODY_LIMIT ? fallbackPart(c) : c)) };
}

/** Never reached with bounded inputs; keeps the limit if the arithmetic of the phases is ever wrong. */
function fallbackMain(header: readonly string[], table: readonly string[], limit: number): string {
  const lines: string[] = [...header];
  let len = linesLength(lines);
  const tail = ["", "The preview detail does not fit in a comment; see each stack's check run.", ...FOOTER];
  const tailLen = linesLength(tail);
  for (const l of table) {
    if (len + l.length + 1 + tailLen + 100 > limit) break;
    lines.push(l);
    len += l.length + 1;
  }
  return [...lines, ...tail].join("\n");
}

function fallbackPart(text: string): string {
  const firstLine = text.slice(0, text.indexOf("\n"));
  return `${firstLine}\n\nThis part of the preview detail did not fit; see each stack's check run.`;
}
