import type { PlanDecision } from "../approval/plan-policy.js";
import { code, inlineText } from "./markdown.js";

const MAX_FINDINGS = 10;

/**
 * The plan policy's decision in a few Markdown lines (check run summary, sticky comment): the
 * decision, what it asks for, the estimated cost change, and each rule that fired.
 */
export function policyLines(d: PlanDecision): string[] {
  const cost = d.costChangeUsd !== null && d.costChangeUsd !== 0 ? ` · est. cost change ${d.costChangeUsd > 0 ? "+" : "−"}$${Math.abs(d.costChangeUsd).toFixed(2)}/month` : "";
  if (d.decision === "ALLOW") return [`✅ Plan policy: **ALLOW**${cost}`];
  const asks: string[] = [];
  if (d.decision === "NEEDS_APPROVAL") {
    if (d.extraApprovals) asks.push(`${d.extraApprovals} more approval${d.extraApprovals === 1 ? "" : "s"}`);
    const named = [...d.requiredApprovers.users.map((u) => `@\u200b${inlineText(u.replace(/^@/, ""), 40)}`), ...d.requiredApprovers.teams.map((t) => `team ${inlineText(t.replace(/^@/, ""), 100)}`)];
    if (named.length) asks.push(`approval from ${named.join(", ")}`);
  }
  const head = `${d.decision === "DENY" ? "⛔" : "⚠️"} Plan policy: **${d.decision}**${d.decision === "DENY" ? " — this plan cannot be deployed" : asks.length ? ` — needs ${asks.join(" and ")}` : ""}${cost}`;
  const findings = d.findings.slice(0, MAX_FINDINGS).map((f) => `- ${code(f.rule, 60)} (${f.decision}): ${inlineText(f.message, 300)}`);
  const more = d.findings.length > MAX_FINDINGS ? [`- and ${d.findings.length - MAX_FINDINGS} more`] : [];
  return [head, ...findings, ...more];
}
