/**
 * Plans for the plan policy's tests, built the way the app builds them: a stand-in fixture
 * (test/fixtures/pulumi/*.json) is turned into the `pulumi preview --json` digest the stand-in
 * prints (no --show-sames, no replacement steps) and parsed by the real parser; the CLI capture
 * in test/fixtures/pulumi-output/ is parsed as is.
 */
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import { evaluatePlanPolicy, type PlanDecision, type PlanPolicyConfig } from "../../src/approval/plan-policy.js";
import { PlanPolicySchema } from "../../src/config/plan-policy.js";
import { parsePreviewJson } from "../../src/connectors/pulumi/preview-json.js";
import type { CommandPreview, PreviewOutcome, PulumiPreview } from "../../src/plan/types.js";

interface StandinResource {
  type: string;
  name: string;
  op: "create" | "update" | "replace" | "delete" | "same" | "read";
  diff?: string[];
  replaceReasons?: string[];
}

export const PROJECT = "web-infra";
export const urn = (type: string, name: string, stack = "prod") => `urn:pulumi:${stack}::${PROJECT}::${type}::${name}`;

/**
 * The digest the stand-in prints for a fixture on an existing stack (root stack `same`): steps
 * in engine order (registrations, then deletions last-registered first), sames left out, a
 * replacement as its logical `replace` step, and the change summary counting every resource.
 */
function digestOf(fixture: { resources?: StandinResource[] }, stack: string): string {
  const rootType = "pulumi:pulumi:Stack";
  const root = { op: "same", urn: urn(rootType, `${PROJECT}-${stack}`, stack), oldState: { type: rootType }, newState: { type: rootType }, detailedDiff: null };
  const resources = fixture.resources ?? [];
  const step = (r: StandinResource) => {
    const diff = (r.diff ?? []).map((d) => d.replace(/^[-+~]/, ""));
    const reasons = r.op === "replace" ? (r.replaceReasons ?? []) : [];
    return {
      op: r.op,
      urn: urn(r.type, r.name, stack),
      ...(r.op !== "create" && r.op !== "read" ? { oldState: { type: r.type } } : {}),
      ...(r.op !== "delete" ? { newState: { type: r.type } } : {}),
      ...(r.op === "update" || r.op === "replace" ? { diffReasons: [...new Set([...diff, ...reasons])] } : {}),
      ...(reasons.length ? { replaceReasons: reasons } : {}),
      detailedDiff: r.op === "update" || r.op === "replace" ? Object.fromEntries(diff.map((k) => [k, { kind: "update" }])) : null,
    };
  };
  const steps = [
    root,
    ...resources.filter((r) => r.op !== "delete" && r.op !== "same").map(step),
    ...[...resources].reverse().filter((r) => r.op === "delete").map(step),
  ];
  const changeSummary: Record<string, number> = { same: 1 };
  for (const r of resources) changeSummary[r.op] = (changeSummary[r.op] ?? 0) + 1;
  return JSON.stringify({ steps, changeSummary });
}

export function fixturePlan(name: string, stack = "prod"): PulumiPreview {
  const raw = JSON.parse(readFileSync(new URL(`../fixtures/pulumi/${name}.json`, import.meta.url), "utf8")) as { resources?: StandinResource[] };
  return parsePreviewJson(digestOf(raw, stack), stack);
}

/** A real `pulumi preview --json` capture (stack dev, project shop). */
export function cliPlan(): PulumiPreview {
  return parsePreviewJson(readFileSync(new URL("../fixtures/pulumi-output/preview-mixed.json", import.meta.url), "utf8"), "dev");
}

export const commandPlan: CommandPreview = { engine: "command", output: "Plan: 2 to add, 0 to change, 1 to destroy.", truncated: false };

/** protected.json: replaces bucket assets, creates ec2 web-1 and web-2, updates bucket logs, deletes rds orders-db and elasticache sessions. */
export const PROTECTED = fixturePlan("protected");
export const ORDERS_DB = urn("aws:rds/instance:Instance", "orders-db");
export const SESSIONS = urn("aws:elasticache/cluster:Cluster", "sessions");
export const ASSETS = urn("aws:s3/bucket:Bucket", "assets");
export const WEB_1 = urn("aws:ec2/instance:Instance", "web-1");
export const WEB_2 = urn("aws:ec2/instance:Instance", "web-2");

/** creates.json (stack dev): creates bucket logs, iam role app-role, bucket policy logs-policy. */
export const CREATES = fixturePlan("creates", "dev");

/** Evaluates a policy that a server or repository could write (it passes the schema) on a plan. */
export function evaluate(policy: PlanPolicyConfig, plan: PreviewOutcome | null = PROTECTED): PlanDecision {
  expect(PlanPolicySchema.safeParse(policy).error?.issues ?? []).toEqual([]);
  return evaluatePlanPolicy(policy, plan);
}
