/**
 * How plan policy findings word things (plan-policy.ts): who must approve, what a plan does to
 * which resources, amounts of money and shares of a budget.
 */
import { joinAnd, peopleNames } from "./names.js";

export function needsText(extra: number, approvers: { users: readonly string[]; teams: readonly string[] }): string {
  const parts: string[] = [];
  if (extra > 0) parts.push(`${extra} more approval${extra === 1 ? "" : "s"}`);
  const who = peopleNames(approvers);
  if (who.length) parts.push(`approval by ${joinAnd(who)}`);
  return parts.join(", including ") || "another approval";
}

const OP_VERB: Record<string, string> = { delete: "deletes", replace: "replaces" };

/** "deletes urn:… and replaces urn:…", at most 10 URNs named in all. */
export function describeOps(hits: readonly { op: string; urn: string }[]): string {
  const byOp = new Map<string, string[]>();
  for (const h of hits) byOp.set(h.op, [...(byOp.get(h.op) ?? []), h.urn]);
  const parts: string[] = [];
  let room = 10;
  for (const [op, urns] of byOp) {
    const shown = urns.slice(0, Math.max(0, room));
    room -= shown.length;
    const more = urns.length - shown.length;
    const list = shown.length ? `${joinAnd(shown)}${more ? ` and ${more} more` : ""}` : `${more} more`;
    parts.push(`${OP_VERB[op] ?? `${op}s`} ${list}`);
  }
  return joinAnd(parts);
}

export function urnList(urns: readonly string[]): string {
  const shown = urns.slice(0, 10);
  return `${shown.join(", ")}${urns.length > shown.length ? ` and ${urns.length - shown.length} more` : ""}`;
}

export function usd(cents: number): string {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  const dollars = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const rest = abs % 100;
  return `${sign}$${dollars}${rest ? `.${String(rest).padStart(2, "0")}` : ""}`;
}

export function percent(part: number, whole: number): string {
  return `${Math.round((part / whole) * 1000) / 10}%`;
}

export function percentOfThreshold(threshold: number): string {
  return `${Math.round(threshold * 1000) / 10}%`;
}
