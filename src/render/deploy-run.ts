import type { DeployRow } from "../connectors/store/gate.js";
import { code, inlineText, shortSha } from "./markdown.js";

/** How one stack of a deploy run ended, as the summary tells it. */
function outcomeLine(d: DeployRow): string {
  const plan = code(d.plan_hash.slice(7, 19));
  switch (d.state) {
    case "SUCCEEDED":
      return `- ✅ ${code(d.stack)}: applied (plan ${plan})`;
    case "FAILED":
      return `- ❌ ${code(d.stack)}: failed — ${inlineText(d.error ?? "no reason recorded", 300)}`;
    case "NEEDS_ATTENTION":
      return `- ⚠️ ${code(d.stack)}: needs attention — ${inlineText(d.error ?? "interrupted", 300)}`;
    case "BLOCKED":
      return d.error?.startsWith("not started:") ? `- ⏭️ ${code(d.stack)}: ${inlineText(d.error, 300)}` : `- ⛔ ${code(d.stack)}: blocked when it was about to apply — ${inlineText(d.error ?? "", 300)}`;
    default:
      return `- ${code(d.stack)}: ${d.state.toLowerCase()}`;
  }
}

/**
 * The one comment a deploy run ends with: what was applied, what failed, what was not started,
 * and whether the pull request was merged. `order`: the stacks in dependency order.
 */
export function renderRunSummary(input: { headSha: string; deploys: DeployRow[]; order: string[]; merge: { merged: true; sha: string } | { merged: false; message: string } | null; rollback?: boolean }): string {
  const ordered = [...input.deploys].sort((a, b) => input.order.indexOf(a.stack) - input.order.indexOf(b.stack));
  const applied = ordered.filter((d) => d.state === "SUCCEEDED").length;
  const all = applied === ordered.length;
  if (input.rollback) {
    // Each stack goes back to its own last good commit: the line names it.
    const head = all ? `⏪ Rolled back ${ordered.length} stacks in reverse dependency order` : `❌ The rollback stopped: ${applied} of ${ordered.length} stacks rolled back`;
    const lines = ordered.map((d) => `${outcomeLine(d)}${d.state === "SUCCEEDED" ? ` at ${code(shortSha(d.head_sha))}` : ""}`);
    const next = all ? "Nothing was merged." : "What was not rolled back is as it was. Check the failed stack, then `/agent rollback` the remaining stacks again (each previews afresh).";
    return [head + ":", "", ...lines, "", next].join("\n");
  }
  const head = all
    ? `🚀 Deployed ${ordered.length} stacks at ${code(shortSha(input.headSha))} in dependency order`
    : `❌ The deploy run at ${code(shortSha(input.headSha))} stopped: ${applied} of ${ordered.length} stacks applied`;
  const lines = [head + ":", "", ...ordered.map(outcomeLine), ""];
  if (input.merge?.merged) lines.push("The pull request was merged.");
  else if (input.merge) lines.push(`GitHub refused the merge (${inlineText(input.merge.message, 200)}). If the branch moved after the approval, the new commits were not deployed: preview them and get them approved.`);
  else if (applied > 0) lines.push("The pull request stays open and keeps its stack locks. Fix what failed, preview again and deploy the stacks that were not applied; `/agent rollback <stack>` goes back to the default branch's last good deploy.");
  else lines.push("Nothing was applied. The pull request stays open.");
  return lines.join("\n");
}
