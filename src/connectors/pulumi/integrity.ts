/**
 * One plan: what reviewers see and the policy checks (the preview digest, `pulumi preview
 * --json`) must be what is hashed, approved and applied (the saved plan, `--save-plan`, which
 * `pulumi up --plan` enforces). The two are separate files written during a run of pull-request
 * code, so each could be rewritten without the other; this check refuses any preview whose
 * parts disagree. Pure code, no I/O.
 *
 * What is compared, per resource URN: the operation, folded like the display folds it (a
 * replacement's create/delete halves are one `replace`), for every operation that changes
 * something (create, update, replace, delete); the summary counts of those operations; and
 * that each shown resource's type is the one its URN names (policy rules match on types).
 * Unchanged and read resources are not compared: the digest lists them only with
 * `--show-sames`, and neither is applied. Property-level details (which inputs changed) are
 * shown from the digest and are not compared: the plan records them in another form.
 */
import { foldStepOps, splitUrn } from "./preview-json.js";
import type { PulumiPreview, ResourceOp } from "../../plan/types.js";

/** Operations that change the stack: these must agree between what is shown and what is applied. */
const MUTATING: readonly ResourceOp[] = ["create", "update", "replace", "delete"];

/** The digest and the saved plan do not describe the same change. */
export class PlanIntegrityError extends Error {
  override name = "PlanIntegrityError";
  constructor(readonly problems: string[]) {
    super(`the preview's output does not match its saved plan: ${problems.slice(0, 3).join("; ")}${problems.length > 3 ? `; and ${problems.length - 3} more` : ""}`);
  }
}

/** Each URN of a saved plan (apitype.DeploymentPlanV1) with its folded operation; null when it is not a plan. */
export function plannedOperations(savedPlan: unknown): Map<string, ResourceOp> | null {
  if (savedPlan === null || typeof savedPlan !== "object") return null;
  const plans = (savedPlan as { resourcePlans?: unknown }).resourcePlans;
  if (plans === null || typeof plans !== "object" || Array.isArray(plans)) return null;
  const out = new Map<string, ResourceOp>();
  for (const [urn, rp] of Object.entries(plans as Record<string, unknown>)) {
    const steps = rp !== null && typeof rp === "object" ? (rp as { steps?: unknown }).steps : undefined;
    const ops = Array.isArray(steps) ? steps.filter((s): s is string => typeof s === "string") : [];
    out.set(urn, foldStepOps(ops));
  }
  return out;
}

/** Every way the shown preview departs from the saved plan; empty when they agree. */
export function planIntegrityProblems(preview: PulumiPreview, savedPlan: unknown): string[] {
  const planned = plannedOperations(savedPlan);
  if (!planned) return ["the saved plan has no resource plans"];
  const problems: string[] = [];
  const shown = new Map<string, ResourceOp>();
  for (const r of preview.resources) {
    shown.set(r.urn, r.op);
    const fromUrn = splitUrn(r.urn);
    if (fromUrn.type && r.type !== fromUrn.type) problems.push(`${r.urn} is shown as type ${r.type}`);
  }
  // The most destructive disagreements first: they are what the error message leads with.
  const byDanger = [...planned].sort(([, a], [, b]) => MUTATING.indexOf(b) - MUTATING.indexOf(a));
  for (const [urn, op] of byDanger) {
    if (!MUTATING.includes(op)) continue;
    const seen = shown.get(urn);
    if (seen !== op) problems.push(`${urn} is planned to ${op} but shown ${seen ? `to ${seen}` : "as unchanged"}`);
  }
  for (const [urn, op] of shown) {
    if (!MUTATING.includes(op)) continue;
    const plannedOp = planned.get(urn);
    if (plannedOp !== op) problems.push(`${urn} is shown to ${op} but ${plannedOp ? `planned to ${plannedOp}` : "not in the saved plan"}`);
  }
  for (const op of MUTATING) {
    const inPlan = [...planned.values()].filter((o) => o === op).length;
    if (preview.summary[op] !== inPlan) problems.push(`the summary counts ${preview.summary[op]} to ${op}, the saved plan ${inPlan}`);
  }
  return problems;
}

/** Throws PlanIntegrityError unless the preview and the saved plan (JSON text) agree. */
export function assertPlanIntegrity(preview: PulumiPreview, savedPlanText: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(savedPlanText);
  } catch {
    throw new PlanIntegrityError(["the saved plan is not JSON"]);
  }
  const problems = planIntegrityProblems(preview, parsed);
  if (problems.length) throw new PlanIntegrityError(problems);
}
