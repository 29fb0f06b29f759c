/**
 * The `agent/merge-queue` check: may a merge-queue group commit merge, given what its pull
 * requests had approved? Pure policy, no I/O. A group commit holds the changes of several PRs at
 * once, so its plan can differ from every single approved plan; it passes a stack when its plan
 * is the one approved plan (one PR), or when it is exactly the approved plans side by side
 * (several PRs changing disjoint resources of a Pulumi stack, under the same configuration).
 */
import { canonicalJson } from "../plan/hash.js";

/** One entry of GitHub's merge queue (GraphQL MergeQueueEntry), as read. */
export interface QueueEntry {
  position: number;
  prNumber: number;
  headSha: string | null;
}

/**
 * The PRs whose changes a merge-group commit holds, in queue order: every entry up to and
 * including the one whose head is `headSha`, since GitHub builds each entry on all entries ahead
 * of it. null when no entry has that head.
 */
export function groupMembers(entries: readonly QueueEntry[], headSha: string): number[] | null {
  const sorted = [...entries].sort((a, b) => a.position - b.position);
  const last = sorted.findIndex((e) => e.headSha === headSha);
  if (last < 0) return null;
  const prs: number[] = [];
  for (const e of sorted.slice(0, last + 1)) if (!prs.includes(e.prNumber)) prs.push(e.prNumber);
  return prs;
}

/** A plan as previewed: its hash (as stored), engine, and for Pulumi the saved plan JSON text (`pulumi preview --save-plan`). */
export interface PlanOf {
  hash: string;
  engine: "pulumi" | "command";
  saved: string | null;
}

/** What one PR of the group has approved for the stack: `plan` is its approved plan (null if none); `refused` says why its gate does not hold (null when it holds). */
export interface ApprovedPlan {
  pr: number;
  plan: PlanOf | null;
  refused: string | null;
}

export type StackJudgement =
  | { stack: string; pass: true; rule: "same-plan" | "composed"; prs: number[] }
  | { stack: string; pass: false; why: string; prs: number[] };

/** As in src/plan/hash.ts: a re-preview changes the timestamp and the seeds, not the proposal. */
const VOLATILE = new Set(["manifest", "seed"]);
/** Steps that leave a resource as it is. */
const UNCHANGING = new Set(["same", "read"]);

type ResourcePlan = { steps?: unknown } & Record<string, unknown>;
interface SavedPlan {
  config: unknown;
  resources: Map<string, ResourcePlan>;
}

export function judgeStack(stack: string, group: PlanOf | null, approved: readonly ApprovedPlan[]): StackJudgement {
  const prs = approved.map((a) => a.pr);
  const fail = (why: string): StackJudgement => ({ stack, pass: false, why, prs });
  if (!group) return fail(`the group commit's preview of \`${stack}\` failed, so it cannot be shown to plan what was approved`);
  if (approved.length === 0) return fail(`the group commit changes \`${stack}\`, but no pull request in the group touches it`);
  const unapproved = approved.find((a) => a.refused !== null || a.plan === null);
  if (unapproved) {
    return fail(unapproved.refused !== null ? `#${unapproved.pr}'s approval of \`${stack}\` does not hold: ${unapproved.refused}` : `#${unapproved.pr} has no approved plan for \`${stack}\``);
  }
  const plans = approved.map((a) => ({ pr: a.pr, plan: a.plan! }));

  if (plans.length === 1) {
    const only = plans[0]!;
    if (only.plan.hash === group.hash) return { stack, pass: true, rule: "same-plan", prs };
    return fail(
      `the group commit plans \`${stack}\` as ${shortPlan(group.hash)}, but #${only.pr}'s approved plan is ${shortPlan(only.plan.hash)}: something ahead of it in the queue or on the base branch changed it`,
    );
  }

  // Several PRs: only Pulumi saved plans say per resource what changes, so only they compose.
  const several = `${changeTogether(prs)} \`${stack}\``;
  const uncomposable = [...plans.map((p) => p.plan), group].find((p) => p.engine !== "pulumi" || p.saved === null);
  if (uncomposable) {
    const reason = uncomposable.engine !== "pulumi" ? `its \`${uncomposable.engine}\` engine's plans cannot be composed` : "not every plan has a saved Pulumi plan to compose";
    return fail(`${several}, and ${reason}; merge them in separate groups`);
  }
  const groupSaved = readSaved(group.saved!);
  if (typeof groupSaved === "string") return fail(`the group commit's saved plan of \`${stack}\` ${groupSaved}`);
  const parsed: Array<{ pr: number; saved: SavedPlan }> = [];
  for (const p of plans) {
    const saved = readSaved(p.plan.saved!);
    if (typeof saved === "string") return fail(`#${p.pr}'s saved plan of \`${stack}\` ${saved}`);
    parsed.push({ pr: p.pr, saved });
  }

  // Resources are composed one by one; a configuration change can alter any of them, so it must be the same everywhere.
  const groupConfig = canonicalJson(groupSaved.config, VOLATILE);
  const reconfigured = parsed.find((p) => canonicalJson(p.saved.config, VOLATILE) !== groupConfig);
  if (reconfigured) {
    return fail(`the group commit's configuration of \`${stack}\` differs from #${reconfigured.pr}'s approved plan, while another pull request in the group changes the same stack; merge #${reconfigured.pr} alone`);
  }

  const urns = new Set([...groupSaved.resources.keys(), ...parsed.flatMap((p) => [...p.saved.resources.keys()])]);
  for (const urn of [...urns].sort()) {
    const changers = parsed.filter((p) => changes(p.saved.resources.get(urn)));
    const inGroup = groupSaved.resources.get(urn);
    // Several PRs may plan the very same change (a new stack's root, a provider upgrade): then it is one approved change.
    const variants = new Set(changers.map((c) => canonicalJson(c.saved.resources.get(urn), VOLATILE)));
    if (variants.size > 1) return fail(`${changeTogether(changers.map((c) => c.pr))} \`${urn}\` in \`${stack}\` differently; merge them in separate groups`);
    if (changers.length >= 1) {
      // The whole resource plan (goal inputs included), not just its steps: another PR may change a value this resource reads.
      const changer = changers[0]!;
      if (!inGroup || canonicalJson(inGroup, VOLATILE) !== canonicalJson(changer.saved.resources.get(urn), VOLATILE)) {
        return fail(`the group commit plans \`${urn}\` in \`${stack}\` differently from #${changer.pr}'s approved plan`);
      }
    } else if (changes(inGroup)) {
      return fail(`the group commit changes \`${urn}\` in \`${stack}\`, which no approved plan changes`);
    }
  }
  return { stack, pass: true, rule: "composed", prs };
}

/** The group commit passes when every stack it affects passes; none affected is a pass. */
export function judgeGroup(judgements: readonly StackJudgement[]): { pass: boolean; failed: StackJudgement[] } {
  const failed = judgements.filter((j) => !j.pass);
  return { pass: failed.length === 0, failed };
}

/** A saved plan's config and resource plans, or what is wrong with the text (it comes from a preview run, so it is never trusted to be well formed). */
function readSaved(text: string): SavedPlan | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "is not valid JSON";
  }
  if (!isObject(value)) return "is not a Pulumi saved plan";
  // Pulumi omits empty `config` and `resourcePlans`.
  const resourcePlans = value["resourcePlans"] ?? {};
  if (!isObject(resourcePlans)) return "is not a Pulumi saved plan";
  const resources = new Map<string, ResourcePlan>();
  for (const [urn, plan] of Object.entries(resourcePlans)) {
    if (!isObject(plan) || (plan["steps"] !== undefined && !Array.isArray(plan["steps"]))) return `has an unreadable plan for \`${urn}\``;
    resources.set(urn, plan);
  }
  return { config: value["config"] ?? {}, resources };
}

function changes(plan: ResourcePlan | undefined): boolean {
  const steps = plan?.steps;
  return Array.isArray(steps) && steps.some((s) => typeof s !== "string" || !UNCHANGING.has(s));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** As plans are shown everywhere (render/plan.ts shortPlanHash): 12 hex digits after `sha256:`. */
function shortPlan(hash: string): string {
  return hash.replace(/^sha256:/, "").slice(0, 12);
}

/** "#1 and #2 both change", "#1, #2 and #3 all change" (always two or more PRs). */
function changeTogether(prs: readonly number[]): string {
  const named = prs.map((n) => `#${n}`);
  return `${named.slice(0, -1).join(", ")} and ${named[named.length - 1]} ${named.length === 2 ? "both" : "all"} change`;
}
