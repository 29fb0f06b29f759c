/**
 * The preview workflow as a DAG: lint and test, then a preview per stack (stacks in
 * parallel). Stacks that would run the very same lint/test commands in the same directory
 * share one `checks` task, which runs once; their previews wait for it and are skipped if it
 * fails. A stack with checks of its own keeps them in its preview task (one sandbox, one
 * checkout), so a one-stack preview costs what it always did. Pure: no I/O.
 */
import { createHash } from "node:crypto";
import { DEFAULT_GATE, type ResolvedStack, type StepSpec } from "./repo/resolve.js";

/** Steps that may run before and apart from the preview. */
const CHECK_STEPS: ReadonlySet<StepSpec["name"]> = new Set(["lint", "test"]);

export interface ChecksGroup {
  /** Digest of (dir, steps): the same checks collapse into one task, also across commands. */
  key: string;
  /** What people see: the task's label and its check run `agent/checks (<label>)`. */
  label: string;
  dir: string;
  steps: StepSpec[];
  /** The stacks whose previews wait for these checks. */
  stacks: string[];
}

export function checkSteps(stack: ResolvedStack): StepSpec[] {
  return stack.steps.filter((s) => CHECK_STEPS.has(s.name));
}

export function planChecks(stacks: readonly ResolvedStack[]): ChecksGroup[] {
  const groups = new Map<string, ChecksGroup>();
  for (const stack of stacks) {
    const steps = checkSteps(stack);
    if (steps.length === 0) continue;
    const key = createHash("sha256").update(JSON.stringify({ dir: stack.dir, steps })).digest("hex").slice(0, 16);
    const group = groups.get(key);
    if (group) group.stacks.push(stack.name);
    else groups.set(key, { key, label: "", dir: stack.dir, steps, stacks: [stack.name] });
  }
  // Only checks that more than one stack shares are worth a task of their own.
  return [...groups.values()]
    .filter((g) => g.stacks.length > 1)
    .map((g) => ({ ...g, label: `checks (${g.stacks.join(", ")})` }));
}

/** A stand-in stack for running a checks group through the same task path (no credentials match it). */
export function checksAsStack(group: ChecksGroup): ResolvedStack {
  return { name: group.label, dir: group.dir, engine: "command", pulumiStack: null, steps: group.steps, paths: [], gate: DEFAULT_GATE, policy: null };
}
