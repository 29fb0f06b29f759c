/**
 * The diagnostic report comment on an issue. Everything from outside (log text, titles,
 * resolutions, probe reasons) goes through the escaping helpers; the whole body stays under
 * GitHub's comment limit.
 */
import { clip, COMMENT_BODY_LIMIT } from "../connectors/github.js";
import type { DiagnosticReport } from "../diagnose/report.js";
import type { ProbeStatus, SearchHit } from "../domain/diagnose.js";
import { MIN_SIMILARITY } from "../diagnose/knowledge.js";
import { cell, code, escapeHtml, fencedWithin, formatDuration, inlineText, shortSha } from "./markdown.js";

/** Marks the app's report comment (hidden once rendered). */
export const REPORT_MARKER = "<!-- agent:diagnose-report -->";
/** Characters of each failing step's log shown. */
export const FAILURE_TAIL_CHARS = 1500;

const STATUS_ICON: Record<ProbeStatus, string> = { OK: "🟢 OK", DEGRADED: "🟡 DEGRADED", DOWN: "🔴 DOWN" };
const STATE_ICON: Record<string, string> = {
  SUCCEEDED: "✅ succeeded",
  FAILED: "❌ failed",
  RUNNING: "⏳ running",
  PENDING: "🕓 queued",
  CANCELLED: "⏹️ cancelled",
  BLOCKED: "⛔ blocked",
};

function ago(at: Date | string | null, now: Date): string {
  if (!at) return "";
  const s = Math.max(0, Math.round((now.getTime() - new Date(at).getTime()) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function duration(start: Date | string | null, end: Date | string | null): string {
  return start && end ? formatDuration(new Date(end).getTime() - new Date(start).getTime()) : "";
}

function link(text: string, url: string | null): string {
  // Only our own links (GitHub URLs we built) are linked; anything else is shown as text.
  return url && /^https?:\/\/[^\s()<>]+$/.test(url) ? `[${inlineText(text, 120)}](${url})` : inlineText(text, 120);
}

function pct(score: number): string {
  return `${Math.round(Math.max(0, score) * 100)}%`;
}

function summaryLine(r: DiagnosticReport): string {
  const failed = r.runs.filter((x) => x.state === "FAILED").length;
  const counts = { OK: 0, DEGRADED: 0, DOWN: 0 } as Record<ProbeStatus, number>;
  for (const p of r.probes) counts[p.status]++;
  const parts = [
    `${failed} of the last ${r.runs.length} runs failed`,
    `${r.locks.length} lock${r.locks.length === 1 ? "" : "s"}`,
    `${r.stuck.length} stuck task${r.stuck.length === 1 ? "" : "s"}`,
    `${r.pending.length} waiting on a human`,
  ];
  if (r.probes.length) parts.push(`probes ${counts.OK} OK · ${counts.DEGRADED} degraded · ${counts.DOWN} down`);
  return parts.join(" · ");
}

function probesSection(r: DiagnosticReport): string[] {
  if (!r.probes.length) return ["### Services", "", "_No service probes are configured on the server (DIAGNOSE_CONFIG `probes`)._"];
  const lines = ["### Services", "", "| Service | Status | Why | Details | Took |", "| --- | --- | --- | --- | --- |"];
  for (const p of r.probes) {
    const details = p.details.map((d) => `${inlineText(d.label, 40)}: ${inlineText(d.value, 80)}`).join("<br>");
    lines.push(`| ${cell(p.name, 40)} | ${STATUS_ICON[p.status]} | ${inlineText(p.reason, 200)} | ${details} | ${formatDuration(p.durationMs)} |`);
  }
  return lines;
}

function runsSection(r: DiagnosticReport, now: Date): string[] {
  const lines = ["### Recent runs", ""];
  if (!r.runs.length) return [...lines, "_No runs recorded for this repository" + (r.stack ? ` and stack ${code(r.stack)}` : "") + "._"];
  lines.push("| When | PR | Stack | Task | Outcome | Duration | Commit | By |", "| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const run of r.runs) {
    const kind = run.workflowKind === "branch" ? `${run.kind} (default branch)` : run.kind;
    lines.push(
      `| ${ago(run.createdAt, now)} | #${run.prNumber} | ${cell(run.stack, 40)} | ${kind} | ${STATE_ICON[run.state] ?? run.state} | ${duration(run.startedAt, run.finishedAt)} | ${code(shortSha(run.headSha))} | ${cell(run.requestedBy, 40)} |`,
    );
  }
  return lines;
}

function failuresSection(r: DiagnosticReport, now: Date): string[] {
  if (!r.failures.length) return [];
  const lines = ["### Latest failures", ""];
  for (const f of r.failures) {
    const where = f.step ? ` at step ${code(f.step)}` : "";
    const why = f.reason ? ` (${escapeHtml(inlineText(f.reason, 120))})` : "";
    lines.push(
      `<details><summary>${escapeHtml(f.kind)} of ${escapeHtml(code(f.stack, 40))} failed${escapeHtml(where)}${why}: #${f.prNumber}, ${escapeHtml(shortSha(f.headSha))}, ${ago(f.finishedAt ?? f.createdAt, now)}</summary>`,
      "",
    );
    if (f.error) lines.push(`**Error:** ${inlineText(f.error, 300)}`, "");
    lines.push(f.log.trim() ? fencedWithin(f.log.slice(-FAILURE_TAIL_CHARS), FAILURE_TAIL_CHARS + 40) : "_No output was recorded._", "", "</details>", "");
  }
  return lines;
}

function stateSection(r: DiagnosticReport, now: Date): string[] {
  const lines = ["### Locks, approvals and queues", ""];
  lines.push(
    r.locks.length
      ? `**Locks:** ${r.locks.map((l) => `${code(l.stack, 40)} held by #${l.prNumber} (${inlineText(l.heldBy, 40)}, since ${ago(l.acquiredAt, now)}, expires ${new Date(l.expiresAt).toISOString()})`).join("; ")}`
      : "**Locks:** none",
  );
  if (r.budgets?.length) lines.push(`**Error budgets:** ${r.budgets.map((b) => `${code(b.stack, 40)} ${b.summary}${b.exhausted ? " — **exhausted**" : ""}`).join("; ")}`);
  if (r.drift?.length) lines.push(`**Open drift:** ${r.drift.map((d) => `${code(d.stack, 40)} since ${ago(d.since, now)}${d.issueNumber ? ` (#${d.issueNumber})` : ""}`).join("; ")}`);
  lines.push(
    r.pending.length
      ? `**Waiting on a human:** ${r.pending.map((p) => `${p.what} of ${code(p.stack, 40)} for #${p.prNumber} at ${code(shortSha(p.headSha))} (${inlineText(p.state, 40)}, ${ago(p.since, now)})`).join("; ")}`
      : "**Waiting on a human:** nothing",
  );
  lines.push(
    r.stuck.length
      ? `**Stuck:** ${r.stuck.map((s) => `${s.kind} of ${code(s.stack, 40)} for #${s.prNumber} running since ${ago(s.startedAt, now)} (limit ${formatDuration(r.stuckAfterSeconds * 1000)})`).join("; ")}`
      : "**Stuck:** no task is running past its timeout",
  );
  if (r.queues.length) {
    lines.push(`**Queues:** ${r.queues.map((q) => `${code(q.name)} ${q.waiting} waiting, ${q.active} active, ${q.delayed} delayed, ${q.failed} failed`).join("; ")}`);
  }
  return lines.map((l, i) => (i > 1 ? `${l}  ` : l));
}

function hitLine(h: SearchHit, i: number): string[] {
  const e = h.entry;
  const head = `${i + 1}. ${link(e.title, e.url)} — ${pct(h.score)} similar${e.stack ? `, stack ${code(e.stack, 40)}` : ""}, ${new Date(e.occurredAt).toISOString().slice(0, 10)}`;
  const res = e.resolution ? `   - **Resolution:** ${inlineText(e.resolution, 400)}` : "   - _No resolution recorded yet._";
  return [head, res];
}

function similarSection(r: DiagnosticReport): string[] {
  const hits = r.similar.filter((h) => h.score >= MIN_SIMILARITY);
  const lines = ["### Similar past incidents", ""];
  if (!hits.length) return [...lines, "_Nothing similar in the knowledge base yet._"];
  return [...lines, ...hits.flatMap(hitLine)];
}

function nextStepsSection(r: DiagnosticReport): string[] {
  const hits = r.runbooks.filter((h) => h.score >= MIN_SIMILARITY);
  const lines = ["### Suggested next steps", ""];
  if (!hits.length) return [...lines, "_No runbook section matches. Add Markdown runbooks under the configured folder (`diagnose.runbooks`, default `docs/runbooks`)._"];
  for (const [i, h] of hits.entries()) {
    const steps = h.entry.text
      .split("\n")
      .slice(1)
      .map((l) => l.trim())
      .filter((l) => l)
      .slice(0, 6);
    lines.push(`${i + 1}. From the runbook ${link(h.entry.title, h.entry.url)} (${pct(h.score)} match):`);
    for (const s of steps) lines.push(`   > ${inlineText(s, 200)}`);
  }
  return lines;
}

/** The whole comment. */
export function renderDiagnosticReport(r: DiagnosticReport): string {
  const now = new Date(r.generatedAt);
  const via = r.trigger === "comment" ? "`/agent diagnose`" : r.trigger === "label" ? "the diagnose label" : "the incident template";
  const lines = [
    REPORT_MARKER,
    `## 🩺 Diagnosis of ${code(r.repo)}${r.stack ? `, stack ${code(r.stack, 40)}` : ""}`,
    "",
    `Asked by ${inlineText(r.requestedBy, 40)} via ${via}, gathered ${r.generatedAt}. Comment \`/agent diagnose${r.stack ? ` ${r.stack}` : ""}\` to refresh it.`,
    "",
    `**Summary:** ${summaryLine(r)}`,
    "",
    ...probesSection(r),
    "",
    ...runsSection(r, now),
    "",
    ...failuresSection(r, now),
    ...stateSection(r, now),
    "",
    ...similarSection(r),
    "",
    ...nextStepsSection(r),
  ];
  if (r.notes.length) lines.push("", ...r.notes.map((n) => `> ⚠️ ${inlineText(n, 300)}`));
  return clip(lines.join("\n"), COMMENT_BODY_LIMIT - 100);
}
