import type { GateResult, IgnoredApproval, RequirementId } from "../approval/gate.js";
import type { DeployConflict } from "../connectors/store/gate.js";
import { code, inlineText, shortSha } from "./markdown.js";

export const REQUIREMENT_LABELS: Record<RequirementId, string> = {
  "pr-open": "Pull request is open",
  "not-fork": "Not from a fork",
  "preview-succeeded": "Preview of the head commit succeeded",
  "plan-policy": "Plan policy",
  approvals: "Approvals",
  "not-denied": "No /deny in force",
  "status-checks": "Required status checks",
  mergeable: "Mergeable",
  undiverged: "Up to date with the base branch",
  "not-draft": "Not a draft",
  "lock-held": "Stack lock held by this PR",
  "merge-group": "Merge group plans what its pull requests' approvals allow",
  "environment-reviewers": "Environment's required reviewer approved",
  "environment-wait-timer": "Environment's wait timer passed",
  "environment-branch": "Environment accepts this branch",
  "error-budget": "Error budget",
};

/** Details and fixes name logins and check names: escaped as plain text, long enough for many checks. */
const MAX_TEXT = 1500;

/**
 * The "why am I blocked" reply to `/agent deploy`: one checkbox per requirement the policy
 * checks, each unmet one with what to do, then the approvals that did not count and why.
 * Every detail is escaped (logins, check names are untrusted) and `@` cannot mention anyone.
 */
export function renderGateChecklist(stack: string, result: GateResult, headSha: string, what = "Deploy"): string {
  const lines = [`${what} of ${code(stack)} at ${code(shortSha(headSha))} ${result.allowed ? "can proceed" : "is blocked"}:`, ""];
  for (const r of result.requirements) {
    const label = REQUIREMENT_LABELS[r.id];
    const detail = text(r.detail);
    if (r.met) lines.push(`- [x] ${label} — ${detail}`);
    else lines.push(`- [ ] ${label} — ${detail}${r.fix ? `. ${text(r.fix)}` : ""}`);
  }
  if (result.ignored.length) {
    lines.push(
      "",
      "<details>",
      `<summary>Approvals that did not count (${result.ignored.length})</summary>`,
      "",
      ...result.ignored.map(ignoredLine),
      "",
      "</details>",
    );
  }
  return lines.join("\n");
}

/** Escaped plain text, with `#123` left as a pull request reference (a mid-line `#` opens no heading). */
function text(s: string): string {
  return inlineText(s, MAX_TEXT).replace(/\\#(?=\d)/g, "#");
}

function ignoredLine(i: IgnoredApproval): string {
  return `- ${inlineText(`@${i.login}`, 100)} (${i.via === "review" ? "review" : "/approve"}): ${inlineText(i.why, 300)}`;
}

/** One line per stack for `/agent status`: ready (and who approved), or each unmet requirement with its fix. */
export function renderGateSummary(stack: string, result: GateResult): string {
  const by = result.counted.length ? ` — approved by ${result.counted.map((a) => `@\u200b${inlineText(a.login, 40)}`).join(", ")}` : "";
  if (result.allowed) return `- ${code(stack)}: ✅ ready to deploy${by}`;
  const unmet = result.requirements.filter((r) => !r.met).map((r) => `  - [ ] ${REQUIREMENT_LABELS[r.id]} — ${text(r.detail)}${r.fix ? `. ${text(r.fix)}` : ""}`);
  return [`- ${code(stack)}: ⛔ not ready to deploy${by}`, ...unmet].join("\n");
}

/** How an earlier apply of a preview ended, for a refusal. */
export function appliedHow(state: string): string {
  return state === "SUCCEEDED" ? "succeeded" : state === "FAILED" ? "failed" : state === "NEEDS_ATTENTION" ? "was interrupted and needs attention" : state === "RUNNING" ? "is applying" : state.toLowerCase();
}

/** "@​alice, @​bob": who approved, mentions defused (a zero-width space after each @). */
export function approvedBy(result: GateResult): string {
  return result.counted.map((a) => `@\u200b${a.login}`).join(", ");
}

/**
 * Why an allowed apply was not queued: this preview was applied before (`subject` names it,
 * `again` says how to get a fresh one), or another deploy holds the stack.
 */
export function renderApplyConflict(stack: string, conflict: DeployConflict | null, subject: string, again: string): string {
  return conflict?.kind === "applied"
    ? `${subject} was already applied once (that deploy ${appliedHow(conflict.other.state)}); a preview is applied at most once. ${again}`
    : `a deploy of ${code(stack)} is already queued or running${conflict ? ` (from #${conflict.other.pr_number})` : ""}; one at a time per stack.`;
}
