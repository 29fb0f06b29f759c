import { REPO_CONFIG_PATH } from "../connectors/github.js";
import { code, shortSha } from "./markdown.js";

/** Stack names shown in the held notice; the rest are counted. */
const SHOWN_STACKS = 10;

/**
 * The PR comment when a push matched more stacks than autoplan's blast radius: what was held,
 * why, and the two ways on (all of them, or some by name).
 */
export function autoplanHeldMessage(stacks: readonly string[], maxStacks: number, headSha: string): string {
  const shown = stacks.slice(0, SHOWN_STACKS).map((s) => code(s)).join(", ");
  const more = stacks.length > SHOWN_STACKS ? ` and ${stacks.length - SHOWN_STACKS} more` : "";
  return [
    `**Autoplan held:** ${stacks.length} stacks match the changes at ${code(shortSha(headSha))}, more than this repository's limit of ${maxStacks} (${code("autoplan_max_stacks")} in ${code(REPO_CONFIG_PATH)}). Nothing was previewed.`,
    "",
    `Stacks: ${shown}${more}.`,
    "",
    `- Preview all ${stacks.length}: comment ${code("/agent preview --all")}`,
    `- Preview some: ${code("/agent preview <stack> [<stack>…]")}`,
  ].join("\n");
}
