import type { PlanDecision } from "../approval/plan-policy.js";
import { policyLines } from "./policy.js";
import { type CheckRunAnnotation, type CheckRunUpdate, CHECK_RUN_TEXT_LIMIT, MAX_ANNOTATIONS_PER_REQUEST } from "../connectors/github.js";
import type { StepResult } from "../domain/steps.js";
import { orderForDisplay, type PreviewOutcome, type PulumiPreview } from "../plan/types.js";
import { code, fmtInt, shortSha } from "./markdown.js";
import {
  commandOutputBlock,
  destructiveHeader,
  destructiveLine,
  diagnosticLine,
  diagnosticsHeader,
  fitLines,
  linesLength,
  notableDiagnostics,
  planRows,
  RESOURCE_TABLE_HEADER,
  resourceRow,
  shortPlanHash,
  summaryLine,
} from "./plan.js";
import { stepLine, stepOutputs } from "./steps.js";

export function previewCheckRunName(stack: string): string {
  return `agent/preview (${stack})`;
}

/** A shared checks task's label is `checks (dev, prod)`: its check run reads `agent/checks (dev, prod)`. */
export function checksCheckRunName(label: string): string {
  return `agent/${label}`;
}

export function queuedOutput(stack: string, headSha: string, requestedBy: string): CheckRunUpdate {
  return {
    status: "queued",
    output: {
      title: `Preview of ${stack} queued`,
      summary: `Requested by @${requestedBy} on ${code(shortSha(headSha))}. Waiting for a worker.`,
    },
  };
}

/** A preview waiting in a stack's lock queue: who holds the lock, its place, how it moves. */
export function lockWaitOutput(stack: string, headSha: string, requestedBy: string, wait: { holderPr: number | null; position: number }): CheckRunUpdate {
  const held = wait.holderPr !== null ? `held by #${wait.holderPr}` : "about to be handed to the PR ahead";
  return {
    status: "queued",
    output: {
      title: `Waiting for ${wait.holderPr !== null ? `#${wait.holderPr}'s lock` : "the lock"} on ${stack}, position ${wait.position}`,
      summary: `Requested by @${requestedBy} on ${code(shortSha(headSha))}. The lock on ${code(stack)} is ${held}; this preview is number ${wait.position} in its queue and starts by itself when the lock is released (the holder is merged or closed, \`/agent unlock ${stack}\` there, or the lock expires). \`/agent cancel\` leaves the queue.`,
    },
  };
}

export function progressOutput(stack: string, steps: StepResult[]): CheckRunUpdate {
  return {
    status: "in_progress",
    output: {
      title: `Preview of ${stack} running`,
      summary: steps.map((s) => `- ${stepLine(s)}`).join("\n"),
      text: stepOutputs(steps, CHECK_RUN_TEXT_LIMIT - 1000),
    },
  };
}

export interface CompletedOutcome {
  succeeded: boolean;
  steps: StepResult[];
  error: string | null;
  logUrl?: string | null;
  /** The typed preview result, when the preview step produced one. */
  plan?: PreviewOutcome | null;
  /** Digest of the saved plan (`sha256:…`). */
  planHash?: string | null;
  /** The plan policy's decision, shown above the plan. */
  policy?: PlanDecision | null;
  /** File/line findings (lint); at most 50 are sent, the summary counts the rest. */
  annotations?: CheckRunAnnotation[];
  /** How many findings there were in all, when more than `annotations` holds. */
  annotationsTotal?: number;
}

/** Summary and text each stay this far under the check-run field limit. */
const MARGIN = 1000;
const SUMMARY_BUDGET = CHECK_RUN_TEXT_LIMIT - MARGIN;
const TEXT_BUDGET = CHECK_RUN_TEXT_LIMIT - MARGIN;
const MAX_DESTRUCTIVE_LINES = 1000;
const MAX_DIAGNOSTIC_LINES = 100;

export function completedOutput(stack: string, outcome: CompletedOutcome): CheckRunUpdate {
  const failed = outcome.steps.find((s) => s.status === "failed" || s.status === "timed_out");
  const plan = outcome.plan ?? null;
  const pulumi = plan?.engine === "pulumi" ? plan : null;
  const title = outcome.succeeded
    ? pulumi
      ? `Preview of ${stack}: ${summaryLine(pulumi.summary)}`
      : `Preview of ${stack} succeeded`
    : failed
      ? `Preview of ${stack} failed at ${failed.name}`
      : `Preview of ${stack} failed`;
  const logUrl = outcome.logUrl ?? null;
  const annotations = (outcome.annotations ?? []).slice(0, MAX_ANNOTATIONS_PER_REQUEST);
  const findings = Math.max(outcome.annotations?.length ?? 0, outcome.annotationsTotal ?? 0);
  const notAnnotated = findings - annotations.length;

  // Summary: the error, the plan's essentials, the steps, the log link, the annotation note.
  const before = [...(outcome.error ? [`**${outcome.error.slice(0, 4000)}**\n`] : []), ...(outcome.policy ? [...policyLines(outcome.policy), ""] : [])];
  const after = [
    ...outcome.steps.map((s) => `- ${stepLine(s)}`),
    logUrl ? `\n[Full log](${logUrl})` : "",
    notAnnotated > 0
      ? `\n**${fmtInt(notAnnotated)} of ${fmtInt(findings)} findings were not annotated** (a check run takes at most ${MAX_ANNOTATIONS_PER_REQUEST} annotations per update)${logUrl ? "; see the full log" : ""}.`
      : "",
  ].filter(Boolean);
  const planLines = plan ? planSummary(plan, outcome.planHash ?? null, logUrl, SUMMARY_BUDGET - linesLength(before) - linesLength(after)) : [];
  const summary = [...before, ...planLines, ...after].join("\n");

  // Text: the resource table (or the command's output), then the step outputs.
  // The plan gets what the step outputs do not need, and at least 60% (table) or 50% (output).
  const stepsWanted = plan ? stepOutputs(outcome.steps, Math.floor(TEXT_BUDGET * 0.5)).length : 0;
  const planBudget = (share: number) => Math.max(Math.floor(TEXT_BUDGET * share), TEXT_BUDGET - stepsWanted - 2);
  let planText = "";
  if (pulumi) planText = resourceTable(pulumi, planBudget(0.6), logUrl);
  else if (plan?.engine === "command") {
    const heading = "## Preview output\n\n";
    planText = heading + commandOutputBlock("Preview output", plan, planBudget(0.5) - heading.length, logUrl);
  }
  const steps = stepOutputs(outcome.steps, TEXT_BUDGET - (planText ? planText.length + 2 : 0));
  const text = planText && steps ? `${planText}\n\n${steps}` : planText || steps;
  return {
    status: "completed",
    conclusion: outcome.succeeded ? "success" : failed?.status === "timed_out" ? "timed_out" : "failure",
    completedAt: new Date().toISOString(),
    output: { title, summary, text, ...(annotations.length > 0 ? { annotations } : {}) },
  };
}

/** Summary lines for a plan within `budget` characters: counts, hash, destructive operations, diagnostics. */
function planSummary(plan: PreviewOutcome, planHash: string | null, logUrl: string | null, budget: number): string[] {
  const hash = shortPlanHash(planHash);
  if (plan.engine === "command") {
    return [`### Preview output below${hash ? ` · plan ${code(hash)}` : ""}`, ""];
  }
  const { destructive, unchanged } = planRows(plan, { rowsWanted: false });
  const diags = notableDiagnostics(plan);
  const head = [`### ${summaryLine(plan.summary)}`, [hash ? `Plan ${code(hash)}` : "", `${fmtInt(unchanged)} unchanged`].filter(Boolean).join(" · "), ""];
  const see = logUrl ? `see the [full log](${logUrl})` : "see the full log";
  const more = (n: number, what: string) => `- … and ${fmtInt(n)} more${what}: ${see}`;
  const dHead = destructive.length ? [destructiveHeader(destructive.length)] : [];
  const gHead = diags.length ? [diagnosticsHeader(diags)] : [];
  const room = Math.max(0, budget - linesLength(head) - linesLength(dHead) - linesLength(gHead) - 4);
  const dLines = destructive.slice(0, MAX_DESTRUCTIVE_LINES + 1).map(destructiveLine);
  const gLines = diags.slice(0, MAX_DIAGNOSTIC_LINES + 1).map(diagnosticLine);
  const [dRoom, gRoom] = waterFillTwo(dLines.length ? linesLength(dLines) + 100 : 0, gLines.length ? linesLength(gLines) + 100 : 0, room);
  const out = [...head];
  if (destructive.length) {
    const n = fitLines(dLines, dRoom, more(destructive.length, " destructive operations").length, Math.min(MAX_DESTRUCTIVE_LINES, destructive.length));
    out.push(...dHead, ...dLines.slice(0, n));
    if (n < destructive.length) out.push(more(destructive.length - n, " destructive operations"));
    out.push("");
  }
  if (diags.length) {
    const n = fitLines(gLines, gRoom, more(diags.length, "").length, Math.min(MAX_DIAGNOSTIC_LINES, diags.length));
    out.push(...gHead, ...gLines.slice(0, n));
    if (n < diags.length) out.push(more(diags.length - n, ""));
    out.push("");
  }
  return out;
}

function waterFillTwo(a: number, b: number, budget: number): [number, number] {
  const half = Math.floor(budget / 2);
  if (a <= half) return [a, budget - a];
  if (b <= half) return [budget - b, b];
  return [half, budget - half];
}

/** The resource table within `budget` characters (rows cut at row boundaries, the cut said); rows built only as far as they fit. */
function resourceTable(plan: PulumiPreview, budget: number, logUrl: string | null): string {
  const changed = orderForDisplay(plan.resources).filter((r) => r.op !== "same");
  const unchanged = plan.resources.length - changed.length;
  if (changed.length === 0) return `## Resource changes\n\nNo resource changes (${fmtInt(unchanged)} unchanged).`;
  const head = `## Resource changes (${fmtInt(changed.length)}; ${fmtInt(unchanged)} unchanged not listed)\n\n${RESOURCE_TABLE_HEADER}`;
  const moreLine = (n: number) => `\n\n… ${fmtInt(n)} more rows not shown: ${logUrl ? `see the [full log](${logUrl})` : "see the full log"}.`;
  const reserve = moreLine(changed.length).length;
  const rows: string[] = [];
  let used = head.length;
  for (const r of changed) {
    const row = resourceRow(r);
    if (used + row.length + 1 > budget) break;
    rows.push(row);
    used += row.length + 1;
  }
  // Not all fit: drop rows until the "more" line fits too.
  if (rows.length < changed.length) while (rows.length > 0 && used + reserve > budget) used -= rows.pop()!.length + 1;
  const body = rows.length > 0 ? `${head}\n${rows.join("\n")}` : head;
  return rows.length < changed.length ? body + moreLine(changed.length - rows.length) : body;
}

export function cancelledOutput(stack: string, reason: string): CheckRunUpdate {
  return {
    status: "completed",
    conclusion: "cancelled",
    completedAt: new Date().toISOString(),
    output: { title: `Preview of ${stack} cancelled`, summary: reason },
  };
}

export function deployCheckRunName(stack: string): string {
  return `agent/deploy (${stack})`;
}

export function deployQueuedOutput(stack: string, headSha: string, requestedBy: string): CheckRunUpdate {
  return {
    status: "queued",
    output: { title: `Deploy of ${stack} queued`, summary: `Requested by @${requestedBy} on ${code(shortSha(headSha))}; the gate passed.` },
  };
}
