/**
 * The check that the preview digest (what is shown and checked by policy) and the saved plan
 * (what is hashed, approved and applied) describe the same change. Pure; the end-to-end
 * attacks are in test/integration/plan-integrity.test.ts.
 */
import { describe, expect, it } from "vitest";
import { assertPlanIntegrity, PlanIntegrityError, planIntegrityProblems, plannedOperations } from "../../src/connectors/pulumi/integrity.js";
import { parsePreviewJson } from "../../src/connectors/pulumi/preview-json.js";

const urn = (type: string, name: string) => `urn:pulumi:prod::shop::${type}::${name}`;
const DB = urn("aws:rds/instance:Instance", "orders-db");
const BUCKET = urn("aws:s3/bucket:Bucket", "assets");
const ROLE = urn("aws:iam/role:Role", "app-role");
const STACK = urn("pulumi:pulumi:Stack", "shop-prod");

/** A digest as `pulumi preview --json` prints it, and the saved plan of the same run. */
function run() {
  const digest = {
    steps: [
      { op: "same", urn: STACK },
      { op: "create-replacement", urn: BUCKET, newState: { type: "aws:s3/bucket:Bucket" } },
      { op: "replace", urn: BUCKET, newState: { type: "aws:s3/bucket:Bucket" } },
      { op: "delete-replaced", urn: BUCKET, oldState: { type: "aws:s3/bucket:Bucket" } },
      { op: "delete", urn: DB, oldState: { type: "aws:rds/instance:Instance" } },
    ],
    changeSummary: { same: 2, replace: 1, delete: 1 },
  };
  const plan = {
    manifest: { time: "2026-12-01T00:00:00Z" },
    resourcePlans: {
      [STACK]: { steps: ["same"] },
      [ROLE]: { steps: ["same"] },
      [BUCKET]: { steps: ["create-replacement", "replace", "delete-replaced"] },
      [DB]: { steps: ["delete"] },
    },
  };
  return { digest, plan };
}
const parse = (digest: unknown) => parsePreviewJson(JSON.stringify(digest), "prod");

describe("plan integrity", () => {
  it("control: the digest and the saved plan of one run agree (unchanged resources need not be listed)", () => {
    const { digest, plan } = run();
    expect(planIntegrityProblems(parse(digest), plan)).toEqual([]);
    expect(() => assertPlanIntegrity(parse(digest), JSON.stringify(plan))).not.toThrow();
  });

  it("folds a replacement's three steps into one replace, as the display does", () => {
    expect(plannedOperations(run().plan)?.get(BUCKET)).toBe("replace");
    expect(plannedOperations(run().plan)?.get(ROLE)).toBe("same");
  });

  it("a delete missing from the digest (a rewritten 'no changes' preview) is found, destructive first", () => {
    const { digest, plan } = run();
    const hidden = { steps: [], changeSummary: { same: 4 } };
    const problems = planIntegrityProblems(parse(hidden), plan);
    expect(problems.slice(0, 2)).toEqual([`${DB} is planned to delete but shown as unchanged`, `${BUCKET} is planned to replace but shown as unchanged`]);
    expect(problems).toContain("the summary counts 0 to delete, the saved plan 1");
    expect(() => assertPlanIntegrity(parse(hidden), JSON.stringify(plan))).toThrow(PlanIntegrityError);
    expect(planIntegrityProblems(parse(digest), plan)).toEqual([]);
  });

  it("a delete shown as an update, or a change shown that the plan does not hold, is found", () => {
    const { digest, plan } = run();
    const softened = { ...digest, steps: digest.steps.map((s) => (s.urn === DB ? { ...s, op: "update" } : s)), changeSummary: { same: 2, replace: 1, update: 1 } };
    expect(planIntegrityProblems(parse(softened), plan)).toEqual(
      expect.arrayContaining([`${DB} is planned to delete but shown to update`, `${DB} is shown to update but planned to delete`]),
    );
    const extra = { ...digest, steps: [...digest.steps, { op: "create", urn: urn("aws:s3/bucket:Bucket", "ghost") }], changeSummary: { ...digest.changeSummary, create: 1 } };
    expect(planIntegrityProblems(parse(extra), plan)).toContain(`${urn("aws:s3/bucket:Bucket", "ghost")} is shown to create but not in the saved plan`);
  });

  it("a summary line that hides a delete is found even when the steps are right", () => {
    const { digest, plan } = run();
    expect(planIntegrityProblems(parse({ ...digest, changeSummary: { same: 3, replace: 1 } }), plan)).toEqual(["the summary counts 0 to delete, the saved plan 1"]);
  });

  it("a resource relabelled with another type (to dodge a policy on types) is found", () => {
    const { digest, plan } = run();
    const relabelled = { ...digest, steps: digest.steps.map((s) => (s.urn === DB ? { ...s, oldState: { type: "aws:s3/bucket:Bucket" } } : s)) };
    expect(planIntegrityProblems(parse(relabelled), plan)).toEqual([`${DB} is shown as type aws:s3/bucket:Bucket`]);
  });

  it("a saved plan that is not a plan is refused", () => {
    const { digest } = run();
    expect(planIntegrityProblems(parse(digest), { resourcePlans: [] })).toEqual(["the saved plan has no resource plans"]);
    expect(() => assertPlanIntegrity(parse(digest), "not json")).toThrow(/not JSON/);
  });
});
