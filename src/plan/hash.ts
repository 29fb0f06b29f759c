/**
 * The plan hash: a stable digest of what a preview proposes, which approvals are bound to.
 * Stable means the same proposal hashes the same on a re-preview: Pulumi's saved plan carries
 * a timestamp (`manifest`) and per-resource random `seed`s, which are left out; everything
 * else (goals, steps, config) is hashed as canonical JSON (sorted keys).
 */
import { createHash } from "node:crypto";

const VOLATILE_PLAN_KEYS = new Set(["manifest", "seed"]);

/** JSON with object keys sorted at every level, optionally without some keys. */
export function canonicalJson(value: unknown, omit: ReadonlySet<string> = new Set()): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, omit)).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value as Record<string, unknown>)
      .filter((k) => !omit.has(k) && (value as Record<string, unknown>)[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k], omit)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function sha256(text: string): string {
  return `sha256:${createHash("sha256").update(text).digest("hex")}`;
}

/** Digest of a Pulumi saved plan (`--save-plan`); throws on text that is not JSON. */
export function pulumiPlanHash(savedPlan: string): string {
  return sha256(canonicalJson(JSON.parse(savedPlan), VOLATILE_PLAN_KEYS));
}

/** Digest of a `command` engine's preview output (already redacted). */
export function commandPlanHash(output: string): string {
  return sha256(output);
}
