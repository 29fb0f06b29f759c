/**
 * What the merge queue reads: the `agent/merge-queue` check on a group's head commit (why it
 * passed, or why GitHub should eject the group), and the comment every PR of a group gets when
 * what merged was not applied.
 */
import type { StackJudgement } from "../approval/merge-group.js";
import type { CheckRunUpdate } from "../connectors/github.js";
import { code, shortSha } from "./markdown.js";

interface GroupFacts {
  head_sha: string;
  pr_numbers: number[];
  stacks: string[];
}

const prList = (prs: number[]) => (prs.length ? prs.map((n) => `#${n}`).join(", ") : "no pull request");

function judgementLine(j: StackJudgement): string {
  if (!j.pass) return `- ❌ ${code(j.stack)}: ${j.why}`;
  return j.rule === "same-plan"
    ? `- ✅ ${code(j.stack)}: plans exactly ${prList(j.prs)}'s approved plan`
    : `- ✅ ${code(j.stack)}: plans exactly the approved changes of ${prList(j.prs)} together (each changed resource exactly as the pull request changing it approved it)`;
}

export function renderMergeGroupCheck(group: GroupFacts, verdict: { pass: boolean; judgements: StackJudgement[]; problem: string | null }): CheckRunUpdate {
  const at = `${code(shortSha(group.head_sha))} (${prList(group.pr_numbers)})`;
  const lines = verdict.judgements.map(judgementLine);
  if (verdict.problem) lines.push(`- ❌ ${verdict.problem}`);
  const summary = verdict.pass
    ? group.stacks.length
      ? `The merge group ${at} plans every stack it changes as its pull requests' approvals allow. Once it lands on the default branch, exactly these plans are applied.\n\n${lines.join("\n")}`
      : `The merge group ${at} changes no stack that deploys through the merge queue; nothing to apply.`
    : `The merge group ${at} cannot be shown to plan only what was approved, so it must not merge: GitHub removes it from the queue. Nothing was applied.\n\n${lines.join("\n")}\n\nFix the pull request named above (preview its head again and get the plan approved, or merge it in a group of its own), then add it to the queue again.`;
  return {
    status: "completed",
    conclusion: verdict.pass ? "success" : "failure",
    completedAt: new Date().toISOString(),
    output: { title: verdict.pass ? "Merge group checked: plans as approved" : "Merge group refused: plans differ from the approvals", summary },
  };
}

export function renderMergeGroupNotApplied(group: GroupFacts, reasons: string[]): string {
  return [
    `⛔ The merge group ${code(shortSha(group.head_sha))} (${prList(group.pr_numbers)}) landed on the default branch, but ${group.stacks.length ? group.stacks.map((s) => code(s)).join(", ") : "its stacks"} ${reasons.length === 1 ? "was" : "were"} not applied:`,
    "",
    ...reasons.map((r) => `- ${r}`),
    "",
    "Nothing unapproved was applied. Preview the default branch (`/agent rollback <stack>` goes back to the last good deploy) or open a pull request that fixes it.",
  ].join("\n");
}
