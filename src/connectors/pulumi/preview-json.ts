/**
 * Parses `pulumi preview --json` (the CLI's PreviewDigest, pulumi/sdk/go/common/display/json.go)
 * into the engine-neutral {@link PulumiPreview}. Lenient where newer CLIs add fields, strict
 * where a wrong guess would mislead a reviewer: an unknown step op counts as a change, never
 * as "same".
 */
import type { OpType } from "@pulumi/pulumi/automation/index.js";
import { z } from "zod";
import { countChanges, emptyCounts, type ChangeCounts, type DiagnosticSeverity, type PlanDiagnostic, type PulumiPreview, type ResourceChange, type ResourceOp } from "../../plan/types.js";

/** Every step op the CLI documents (the automation API's `OpType`), folded into six. */
const OP_FOLD = {
  same: "same",
  create: "create",
  update: "update",
  delete: "delete",
  replace: "replace",
  "create-replacement": "replace",
  "delete-replaced": "replace",
  read: "read",
  "read-replacement": "read",
  refresh: "read",
  // Dropping a resource from state without deleting it still removes it from the stack.
  discard: "delete",
  "discard-replaced": "replace",
  "remove-pending-replace": "replace",
  import: "create",
  "import-replacement": "replace",
} as const satisfies Record<OpType, ResourceOp>;

/** When several steps touch one URN (a replacement's three), the most consequential wins. */
const OP_WEIGHT: Record<ResourceOp, number> = { same: 0, read: 1, update: 2, create: 3, delete: 4, replace: 5 };

/** One operation for a resource from all of its steps (a replacement's three), as the display folds them. */
export function foldStepOps(ops: readonly string[]): ResourceOp {
  let folded: ResourceOp = "same";
  for (const raw of ops) {
    const op: ResourceOp = Object.hasOwn(OP_FOLD, raw) ? OP_FOLD[raw as OpType] : "update";
    if (OP_WEIGHT[op] > OP_WEIGHT[folded]) folded = op;
  }
  return folded;
}

const ResourceState = z.looseObject({ type: z.string().optional() });

const PreviewStep = z.looseObject({
  op: z.string(),
  urn: z.string(),
  oldState: ResourceState.nullish(),
  newState: ResourceState.nullish(),
  diffReasons: z.array(z.string()).nullish(),
  replaceReasons: z.array(z.string()).nullish(),
  detailedDiff: z.record(z.string(), z.unknown()).nullish(),
});

const PreviewDiagnostic = z.looseObject({
  urn: z.string().optional(),
  prefix: z.string().optional(),
  message: z.string().optional(),
  severity: z.string().optional(),
});

export const PreviewDigestSchema = z.looseObject({
  config: z.record(z.string(), z.unknown()).nullish(),
  steps: z.array(PreviewStep).nullish(),
  diagnostics: z.array(PreviewDiagnostic).nullish(),
  duration: z.number().optional(),
  changeSummary: z.record(z.string(), z.number()).nullish(),
});

export class PreviewParseError extends Error {
  override name = "PreviewParseError";
}

/** `urn:pulumi:<stack>::<project>::<qualified type>::<name>`; the name may itself hold `::`. */
export function splitUrn(urn: string): { type: string; name: string } {
  const parts = urn.split("::");
  if (parts.length < 4 || !parts[0]!.startsWith("urn:pulumi:")) return { type: "", name: urn };
  const qualified = parts[2]!;
  return { type: qualified.slice(qualified.lastIndexOf("$") + 1), name: parts.slice(3).join("::") };
}

function severityOf(raw: string | undefined): DiagnosticSeverity {
  if (raw === "error") return "error";
  if (raw === "warning") return "warning";
  return "info"; // info, info#err, debug
}

/** Top-level property names of a detailed-diff path (`tags.env`, `ingress[0].port`). */
function topProperty(path: string): string {
  const m = /^[^.[]+/.exec(path);
  return m ? m[0] : path;
}

export function parsePreviewJson(text: string, stack: string): PulumiPreview {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PreviewParseError(`pulumi preview did not print valid JSON: ${(err as Error).message}`);
  }
  const parsed = PreviewDigestSchema.safeParse(raw);
  if (!parsed.success) throw new PreviewParseError(`pulumi preview printed JSON of an unexpected shape: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  const digest = parsed.data;

  const byUrn = new Map<string, ResourceChange>();
  const diagnostics: PlanDiagnostic[] = [];
  for (const step of digest.steps ?? []) {
    const known = Object.hasOwn(OP_FOLD, step.op);
    const op: ResourceOp = known ? OP_FOLD[step.op as OpType] : "update";
    if (!known) diagnostics.push({ severity: "warning", message: `unrecognised step op "${step.op}" (shown as update)`, urn: step.urn });
    const changed = new Set([...(step.diffReasons ?? []), ...Object.keys(step.detailedDiff ?? {}).map(topProperty)]);
    const reasons = new Set(step.replaceReasons ?? []);
    const existing = byUrn.get(step.urn);
    if (existing) {
      if (OP_WEIGHT[op] > OP_WEIGHT[existing.op]) existing.op = op;
      existing.changedProperties = [...new Set([...existing.changedProperties, ...changed])].sort();
      existing.replaceReasons = [...new Set([...existing.replaceReasons, ...reasons])].sort();
      continue;
    }
    const fromUrn = splitUrn(step.urn);
    byUrn.set(step.urn, {
      op,
      urn: step.urn,
      type: step.newState?.type ?? step.oldState?.type ?? fromUrn.type,
      name: fromUrn.name,
      changedProperties: [...changed].sort(),
      replaceReasons: [...reasons].sort(),
    });
  }
  for (const d of digest.diagnostics ?? []) {
    // The CLI writes the prefix into the message ("warning: …"); the field is usually empty.
    const message = (d.message ?? "").replace(/^(?:error|warning|info): /, "").replace(/\s+$/, "");
    if (!message) continue;
    diagnostics.push({ severity: severityOf(d.severity), message, urn: d.urn ?? null });
  }
  const resources = [...byUrn.values()];
  return { engine: "pulumi", stack, resources, diagnostics, summary: summaryOf(digest.changeSummary, resources) };
}

/**
 * The CLI's own `changeSummary` is authoritative: `preview --json` leaves unchanged resources
 * out of `steps` unless `--show-sames`, but counts them. Folded like the steps; a replacement's
 * create/delete halves are already counted by its `replace`.
 */
function summaryOf(changeSummary: Record<string, number> | null | undefined, resources: ResourceChange[]): ChangeCounts {
  if (!changeSummary || Object.keys(changeSummary).length === 0) return countChanges(resources);
  const counts = emptyCounts();
  for (const [op, n] of Object.entries(changeSummary)) {
    if (op === "create-replacement" || op === "delete-replaced" || !Number.isInteger(n) || n < 0) continue;
    counts[Object.hasOwn(OP_FOLD, op) ? OP_FOLD[op as OpType] : "update"] += n;
  }
  return counts;
}
