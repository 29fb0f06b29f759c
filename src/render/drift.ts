/**
 * The drift issue of a stack: what differs between the real resources and the default
 * branch's code (destructive first, as in the sticky comment), since when, and how to fix it.
 */
import type { PulumiPreview, ResourceChange } from "../plan/types.js";
import { orderForDisplay } from "../plan/types.js";
import { code, shortSha } from "./markdown.js";
import { destructiveHeader, destructiveLine, RESOURCE_TABLE_HEADER, resourceRow } from "./plan.js";

export const DRIFT_LABEL = "agent:drift";
const MAX_ROWS = 200;

export const driftMarker = (stack: string) => `<!-- pr-infra-agent:drift:${stack} -->`;

/** The resources a drift check found different: changed ones, not the stack itself or its providers (which a fresh state always creates). */
export function driftedResources(plan: PulumiPreview): ResourceChange[] {
  return plan.resources.filter((r) => r.op !== "same" && r.op !== "read" && !r.type.startsWith("pulumi:"));
}

export function renderDriftTitle(stack: string): string {
  return `Drift: ${stack} differs from the default branch`;
}

export interface RelatedDrift {
  stack: string;
  issue: number | null;
  /** The resource types both drifted in. */
  types: string[];
}

/** The fleet view: other stacks drifting in the same resource types in the same run. */
export function renderRelatedDrift(related: readonly RelatedDrift[]): string[] {
  if (related.length === 0) return [];
  return [
    `**Drifting together** (other stacks whose check in the same run found the same resource types changed — perhaps one cause):`,
    ...related.map((r) => `- ${code(r.stack)}${r.issue ? ` #${r.issue}` : ""}: ${r.types.map((t) => code(t)).join(", ")}`),
    "",
  ];
}

export function renderDriftIssue(d: { stack: string; defaultBranch: string; sha: string; since: Date; checkedAt: Date; resources: ResourceChange[]; logUrl: string | null; related?: RelatedDrift[] }): string {
  const ordered = orderForDisplay(d.resources);
  const destructive = ordered.filter((r) => r.op === "delete" || r.op === "replace");
  return [
    driftMarker(d.stack),
    `The real resources of ${code(d.stack)} differ from what the ${code(d.defaultBranch)} branch's code declares: a preview with \`--refresh\` of ${code(shortSha(d.sha))} would change **${d.resources.length}** resource${d.resources.length === 1 ? "" : "s"}.`,
    "",
    `- Drifting since: ${d.since.toISOString()}`,
    `- Last checked: ${d.checkedAt.toISOString()} at ${code(shortSha(d.sha))}${d.logUrl ? ` ([log](${d.logUrl}))` : ""}`,
    "",
    ...(destructive.length ? [destructiveHeader(destructive.length), ...destructive.slice(0, 20).map(destructiveLine), ""] : []),
    RESOURCE_TABLE_HEADER,
    ...ordered.slice(0, MAX_ROWS).map(resourceRow),
    ...(ordered.length > MAX_ROWS ? ["", `…and ${ordered.length - MAX_ROWS} more (the log has all).`] : []),
    "",
    ...renderRelatedDrift(d.related ?? []),
    "**How to fix it**",
    `- Make the resources match the code again: comment \`/agent deploy ${d.stack}\` here. The default branch's head is previewed and, once approved, applied through the same gate as a pull request (approvals, policy, audit).`,
    `- Or keep the change: open a pull request that makes the code declare it, and deploy it as usual.`,
    `- \`/agent drift ${d.stack}\` checks again now. This issue closes by itself when a check finds no drift.`,
  ].join("\n");
}

export function renderDriftResolved(stack: string, sha: string): string {
  return `✅ No drift any more: a check of ${code(stack)} at ${code(shortSha(sha))} found the resources as the code declares them. Closing.`;
}
