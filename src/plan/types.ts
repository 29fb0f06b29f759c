/**
 * What a preview found, engine-neutral: the typed result the sticky comment, the check run and
 * (later) the gate and plan policies read. Produced by the engine connectors
 * (`src/connectors/pulumi/`, the command engine), stored with the task, already redacted.
 */

/** The six operations a reader cares about; Pulumi's finer step ops fold into these. */
export const RESOURCE_OPS = ["create", "update", "replace", "delete", "same", "read"] as const;
export type ResourceOp = (typeof RESOURCE_OPS)[number];

/** Operations that destroy something that exists now: listed first and flagged. */
export const DESTRUCTIVE_OPS: ReadonlySet<ResourceOp> = new Set(["delete", "replace"]);

export interface ResourceChange {
  op: ResourceOp;
  /** Pulumi URN (`urn:pulumi:<stack>::<project>::<type>::<name>`). */
  urn: string;
  /** Resource type token, e.g. `aws:s3/bucket:Bucket`. */
  type: string;
  /** The resource's logical name (last URN segment). */
  name: string;
  /** Input properties that differ (update and replace), sorted. */
  changedProperties: string[];
  /** Properties whose change forces the replacement (replace only), sorted. */
  replaceReasons: string[];
}

export type DiagnosticSeverity = "error" | "warning" | "info";

export interface PlanDiagnostic {
  severity: DiagnosticSeverity;
  message: string;
  /** The resource the message is about, when there is one. */
  urn: string | null;
}

export type ChangeCounts = Record<ResourceOp, number>;

/** A Pulumi preview, parsed from `pulumi preview --json`. */
export interface PulumiPreview {
  engine: "pulumi";
  /** Pulumi stack name the preview ran against. */
  stack: string;
  /** One entry per resource (a replacement's create/delete steps fold into one `replace`), in engine order. */
  resources: ResourceChange[];
  diagnostics: PlanDiagnostic[];
  summary: ChangeCounts;
}

/** A `command` engine preview: the preview command's output is the plan, shown as text. */
export interface CommandPreview {
  engine: "command";
  /** The preview step's output, redacted and bounded (head and tail kept). */
  output: string;
  /** True when `output` had to be shortened; the full text is in the task log. */
  truncated: boolean;
}

export type PreviewOutcome = PulumiPreview | CommandPreview;

export function emptyCounts(): ChangeCounts {
  return { create: 0, update: 0, replace: 0, delete: 0, same: 0, read: 0 };
}

export function countChanges(resources: readonly ResourceChange[]): ChangeCounts {
  const counts = emptyCounts();
  for (const r of resources) counts[r.op]++;
  return counts;
}

/** True when the preview would change anything (reads and no-ops do not count). */
export function hasChanges(counts: ChangeCounts): boolean {
  return counts.create + counts.update + counts.replace + counts.delete > 0;
}

/** Display order: destructive first (delete, replace), then create, update, read, same; stable within an op. */
const OP_RANK: Record<ResourceOp, number> = { delete: 0, replace: 1, create: 2, update: 3, read: 4, same: 5 };

export function orderForDisplay(resources: readonly ResourceChange[]): ResourceChange[] {
  return resources
    .map((r, i) => ({ r, i }))
    .sort((a, b) => OP_RANK[a.r.op] - OP_RANK[b.r.op] || a.i - b.i)
    .map(({ r }) => r);
}
