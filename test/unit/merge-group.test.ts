import { describe, expect, it } from "vitest";
import { groupMembers, judgeGroup, judgeStack, type ApprovedPlan, type PlanOf, type QueueEntry, type StackJudgement } from "../../src/approval/merge-group.js";
import { pulumiPlanHash } from "../../src/plan/hash.js";

describe("groupMembers", () => {
  const queue: QueueEntry[] = [
    { position: 1, prNumber: 5, headSha: "aaa" },
    { position: 2, prNumber: 6, headSha: "bbb" },
    { position: 3, prNumber: 7, headSha: "ccc" },
    { position: 4, prNumber: 8, headSha: "ddd" },
  ];

  it("holds the entry with that head and every entry ahead of it", () => {
    expect(groupMembers(queue, "aaa")).toEqual([5]);
    expect(groupMembers(queue, "ccc")).toEqual([5, 6, 7]);
    expect(groupMembers(queue, "ddd")).toEqual([5, 6, 7, 8]);
  });

  it("is null when no entry has that head", () => {
    expect(groupMembers(queue, "eee")).toBeNull();
    expect(groupMembers([], "aaa")).toBeNull();
    expect(groupMembers([{ position: 1, prNumber: 5, headSha: null }], "aaa")).toBeNull();
  });

  it("orders by position, not by the order read", () => {
    const shuffled = [queue[3]!, queue[1]!, queue[2]!, queue[0]!];
    expect(groupMembers(shuffled, "ccc")).toEqual([5, 6, 7]);
    expect(groupMembers(shuffled, "bbb")).toEqual([5, 6]);
  });

  it("names a PR once, at its first place", () => {
    const dup: QueueEntry[] = [
      { position: 3, prNumber: 5, headSha: "ccc" },
      { position: 1, prNumber: 5, headSha: "aaa" },
      { position: 2, prNumber: 6, headSha: null },
      { position: 4, prNumber: 7, headSha: "ddd" },
    ];
    expect(groupMembers(dup, "ddd")).toEqual([5, 6, 7]);
    expect(groupMembers(dup, "ccc")).toEqual([5, 6]);
  });
});

// Small plans shaped like Pulumi's DeploymentPlanV1.
const BUCKET = "urn:pulumi:prod::app::aws:s3/bucket:Bucket::logs";
const QUEUE = "urn:pulumi:prod::app::aws:sqs/queue:Queue::jobs";
const FN = "urn:pulumi:prod::app::aws:lambda/function:Function::worker";

type Props = Record<string, unknown>;
const BASE: Record<string, Props> = {
  [BUCKET]: { bucket: "logs-1", versioning: false },
  [QUEUE]: { name: "jobs", delaySeconds: 0 },
  [FN]: { runtime: "nodejs20.x", environment: { BUCKET: "logs-1" } },
};

let seedCounter = 0;
function resourcePlan(urn: string, steps: string[], props: Props = BASE[urn]!) {
  // Every preview draws new seeds: they must not matter.
  seedCounter += 1;
  return { goal: { type: urn.split("::")[2], name: urn.split("::")[3], custom: true, inputs: props }, steps, state: { urn, inputs: BASE[urn] }, seed: `c2VlZC0${seedCounter}` };
}

/** A saved plan: every base resource unchanged except those in `changed` (urn → new inputs). */
function savedPlan(changed: Record<string, Props>, opts: { config?: Record<string, unknown>; stepsOf?: Record<string, string[]> } = {}): string {
  const resourcePlans: Record<string, unknown> = {};
  for (const urn of Object.keys(BASE)) {
    const steps = opts.stepsOf?.[urn] ?? (changed[urn] ? ["update"] : ["same"]);
    resourcePlans[urn] = resourcePlan(urn, steps, changed[urn] ?? BASE[urn]!);
  }
  seedCounter += 1;
  const manifest = { time: new Date(Date.UTC(2025, 0, 1, 0, 0, seedCounter)).toISOString(), magic: `m${seedCounter}`, version: "v3.140.0" };
  return JSON.stringify({ manifest, ...(opts.config ? { config: opts.config } : {}), resourcePlans });
}

const pulumi = (saved: string): PlanOf => ({ hash: pulumiPlanHash(saved), engine: "pulumi", saved });
const approvedBy = (pr: number, plan: PlanOf | null, refused: string | null = null): ApprovedPlan => ({ pr, plan, refused });

function failed(j: StackJudgement): string {
  expect(j.pass, JSON.stringify(j)).toBe(false);
  return j.pass ? "" : j.why;
}

const VERSIONED = { [BUCKET]: { bucket: "logs-1", versioning: true } };
const DELAYED = { [QUEUE]: { name: "jobs", delaySeconds: 30 } };

describe("judgeStack: one pull request", () => {
  it("passes when the group commit plans exactly the approved plan, even re-previewed with new seeds", () => {
    const approved = pulumi(savedPlan(VERSIONED));
    const group = pulumi(savedPlan(VERSIONED));
    expect(group.saved).not.toBe(approved.saved);
    expect(judgeStack("prod", group, [approvedBy(11, approved)])).toEqual({ stack: "prod", pass: true, rule: "same-plan", prs: [11] });
    const command: PlanOf = { hash: "sha256:" + "c".repeat(64), engine: "command", saved: null };
    expect(judgeStack("prod", command, [approvedBy(11, { ...command })])).toMatchObject({ pass: true, rule: "same-plan" });
  });

  it("fails when the group commit plans something else, naming both short hashes", () => {
    const approved = pulumi(savedPlan(VERSIONED));
    const group = pulumi(savedPlan({ ...VERSIONED, ...DELAYED }));
    const j = judgeStack("prod", group, [approvedBy(11, approved)]);
    const why = failed(j);
    expect(j.prs).toEqual([11]);
    expect(why).toContain("#11");
    expect(why).toContain("`prod`");
    expect(why).toContain(group.hash.slice(7, 19));
    expect(why).toContain(approved.hash.slice(7, 19));
    expect(why).not.toContain("sha256:");
  });
});

describe("judgeStack: refusals before any plan is compared", () => {
  const plan = pulumi(savedPlan(VERSIONED));

  it("fails when the group commit's preview failed", () => {
    const why = failed(judgeStack("prod", null, [approvedBy(11, plan)]));
    expect(why).toMatch(/preview of `prod` failed/);
  });

  it("fails when no pull request in the group touches the stack", () => {
    const j = judgeStack("prod", plan, []);
    expect(failed(j)).toMatch(/no pull request in the group touches it/);
    expect(j.prs).toEqual([]);
  });

  it("names the first pull request whose gate does not hold, with its reason", () => {
    const j = judgeStack("prod", plan, [approvedBy(11, plan), approvedBy(12, plan, "it needs 2 approvals, has 1"), approvedBy(13, null, "no approval")]);
    const why = failed(j);
    expect(why).toContain("#12");
    expect(why).toContain("it needs 2 approvals, has 1");
    expect(why).not.toContain("#13");
    expect(j.prs).toEqual([11, 12, 13]);
  });

  it("refuses a pull request with no approved plan even when nothing else is said", () => {
    const why = failed(judgeStack("prod", plan, [approvedBy(14, null), approvedBy(11, plan)]));
    expect(why).toContain("#14 has no approved plan");
    // Checked before the hash: one PR with no plan fails rather than comparing.
    expect(failed(judgeStack("prod", plan, [approvedBy(14, null)]))).toContain("#14");
  });
});

describe("judgeStack: several pull requests compose", () => {
  it("passes two PRs changing disjoint resources, though seeds and manifests differ", () => {
    const a = pulumi(savedPlan(VERSIONED));
    const b = pulumi(savedPlan(DELAYED));
    const group = pulumi(savedPlan({ ...VERSIONED, ...DELAYED }));
    expect(new Set([a.hash, b.hash, group.hash]).size).toBe(3);
    expect(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, b)])).toEqual({ stack: "prod", pass: true, rule: "composed", prs: [11, 12] });
  });

  it("counts `read` steps as no change", () => {
    const a = pulumi(savedPlan(VERSIONED, { stepsOf: { [FN]: ["read"] } }));
    const b = pulumi(savedPlan(DELAYED, { stepsOf: { [FN]: ["read"] } }));
    const group = pulumi(savedPlan({ ...VERSIONED, ...DELAYED }, { stepsOf: { [FN]: ["read"] } }));
    expect(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, b)])).toMatchObject({ pass: true, rule: "composed" });
  });

  it("fails when the group commit changes a resource no approved plan changes", () => {
    const a = pulumi(savedPlan(VERSIONED));
    const b = pulumi(savedPlan(DELAYED));
    const group = pulumi(savedPlan({ ...VERSIONED, ...DELAYED, [FN]: { runtime: "nodejs22.x", environment: { BUCKET: "logs-1" } } }));
    const why = failed(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, b)]));
    expect(why).toContain(`the group commit changes \`${FN}\``);
    expect(why).toContain("no approved plan changes");
  });

  it("fails when the group commit changes a resource only in its steps", () => {
    const a = pulumi(savedPlan(VERSIONED));
    const b = pulumi(savedPlan(DELAYED));
    const group = pulumi(savedPlan({ ...VERSIONED, ...DELAYED }, { stepsOf: { [FN]: ["delete"] } }));
    expect(failed(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, b)]))).toContain(`\`${FN}\``);
  });

  it("fails when two PRs change the same resource differently, naming both", () => {
    const a = pulumi(savedPlan(VERSIONED));
    const b = pulumi(savedPlan({ [BUCKET]: { bucket: "logs-1", versioning: true, forceDestroy: true }, ...DELAYED }));
    const group = pulumi(savedPlan({ ...VERSIONED, ...DELAYED }));
    const why = failed(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, b)]));
    expect(why).toContain(`#11 and #12 both change \`${BUCKET}\``);
    expect(why).toContain("separate groups");
  });

  it("names every PR when more than two change the same resource differently", () => {
    const plans = [11, 12, 13].map((pr) => approvedBy(pr, pulumi(savedPlan({ [BUCKET]: { bucket: "logs-1", versioning: true, tag: pr } }))));
    const why = failed(judgeStack("prod", pulumi(savedPlan(VERSIONED)), plans));
    expect(why).toContain(`#11, #12 and #13 all change \`${BUCKET}\``);
  });

  it("composes a change several PRs planned identically (a new stack's root, a provider upgrade) as one approved change", () => {
    const a = pulumi(savedPlan({ ...VERSIONED, ...DELAYED }));
    const b = pulumi(savedPlan(VERSIONED));
    const pass = judgeStack("prod", pulumi(savedPlan({ ...VERSIONED, ...DELAYED })), [approvedBy(11, a), approvedBy(12, b)]);
    expect(pass).toMatchObject({ pass: true, rule: "composed" });
    // …but the group must still plan it exactly so.
    const other = judgeStack("prod", pulumi(savedPlan({ [BUCKET]: { bucket: "logs-2", versioning: true }, ...DELAYED })), [approvedBy(11, a), approvedBy(12, b)]);
    expect(failed(other)).toContain(`differently from #11's approved plan`);
  });

  it("fails when the group plans a PR's resource with other inputs than it approved (a change only in combination)", () => {
    // #11 changes the worker's runtime, reading the bucket name; #12 renames the bucket. Each
    // plan alone is harmless, but together the worker is deployed pointing at a bucket #11's
    // approvers never saw.
    const a = pulumi(savedPlan({ [FN]: { runtime: "nodejs22.x", environment: { BUCKET: "logs-1" } } }));
    const b = pulumi(savedPlan({ [BUCKET]: { bucket: "logs-2", versioning: false } }, { stepsOf: { [BUCKET]: ["create-replacement", "replace", "delete-replaced"] } }));
    const group = pulumi(
      savedPlan(
        { [BUCKET]: { bucket: "logs-2", versioning: false }, [FN]: { runtime: "nodejs22.x", environment: { BUCKET: "logs-2" } } },
        { stepsOf: { [BUCKET]: ["create-replacement", "replace", "delete-replaced"] } },
      ),
    );
    const why = failed(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, b)]));
    expect(why).toContain(`the group commit plans \`${FN}\``);
    expect(why).toContain("differently from #11's approved plan");
  });

  it("fails when the group does not plan a resource a PR changes", () => {
    const a = pulumi(savedPlan(VERSIONED));
    const b = pulumi(savedPlan(DELAYED));
    const full = JSON.parse(savedPlan({ ...VERSIONED, ...DELAYED })) as { resourcePlans: Record<string, unknown> };
    delete full.resourcePlans[QUEUE];
    const why = failed(judgeStack("prod", pulumi(JSON.stringify(full)), [approvedBy(11, a), approvedBy(12, b)]));
    expect(why).toContain(`\`${QUEUE}\``);
    expect(why).toContain("#12");
  });

  it("fails when a PR's configuration differs from the group's", () => {
    const a = pulumi(savedPlan(VERSIONED, { config: { "aws:region": "eu-west-1" } }));
    const b = pulumi(savedPlan(DELAYED, { config: { "aws:region": "eu-west-1", "app:size": "large" } }));
    const group = pulumi(savedPlan({ ...VERSIONED, ...DELAYED }, { config: { "aws:region": "eu-west-1" } }));
    const why = failed(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, b)]));
    expect(why).toContain("#12");
    expect(why).not.toContain("#11");
    expect(why).toMatch(/configuration/);
  });

  it("reads a missing configuration as empty", () => {
    const a = pulumi(savedPlan(VERSIONED));
    const b = pulumi(savedPlan(DELAYED, { config: {} }));
    const group = pulumi(savedPlan({ ...VERSIONED, ...DELAYED }, { config: {} }));
    expect(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, b)])).toMatchObject({ pass: true, rule: "composed" });
  });

  it("fails for an engine whose plans cannot be composed", () => {
    const cmd = (h: string): PlanOf => ({ hash: `sha256:${h.repeat(64)}`, engine: "command", saved: null });
    const why = failed(judgeStack("prod", cmd("a"), [approvedBy(11, cmd("a")), approvedBy(12, cmd("a"))]));
    expect(why).toContain("#11 and #12");
    expect(why).toContain("`prod`");
    expect(why).toMatch(/cannot be composed; merge them in separate groups/);
  });

  it("fails when a Pulumi plan has no saved plan to compose", () => {
    const a = pulumi(savedPlan(VERSIONED));
    const b = pulumi(savedPlan(DELAYED));
    const group = pulumi(savedPlan({ ...VERSIONED, ...DELAYED }));
    expect(failed(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, { ...b, saved: null })]))).toMatch(/separate groups/);
    expect(failed(judgeStack("prod", { ...group, saved: null }, [approvedBy(11, a), approvedBy(12, b)]))).toMatch(/separate groups/);
  });

  it("fails on saved plans that are not JSON, without throwing", () => {
    const a = pulumi(savedPlan(VERSIONED));
    const group = pulumi(savedPlan({ ...VERSIONED, ...DELAYED }));
    const broken: PlanOf = { hash: "sha256:" + "b".repeat(64), engine: "pulumi", saved: "{ not json" };
    let why = "";
    expect(() => (why = failed(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, broken)])))).not.toThrow();
    expect(why).toContain("#12");
    expect(why).toMatch(/not valid JSON/);
    expect(() => (why = failed(judgeStack("prod", broken, [approvedBy(11, a), approvedBy(12, a)])))).not.toThrow();
    expect(why).toMatch(/group commit's saved plan .* not valid JSON/);
    const odd: PlanOf = { ...broken, saved: JSON.stringify({ resourcePlans: { [BUCKET]: { steps: "update" } } }) };
    expect(() => judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, odd)])).not.toThrow();
    expect(judgeStack("prod", group, [approvedBy(11, a), approvedBy(12, odd)]).pass).toBe(false);
  });
});

describe("judgeGroup", () => {
  it("passes when no stack is affected", () => {
    expect(judgeGroup([])).toEqual({ pass: true, failed: [] });
  });

  it("passes only when every stack passes, listing the failures in order", () => {
    const ok: StackJudgement = { stack: "a", pass: true, rule: "same-plan", prs: [1] };
    const bad1: StackJudgement = { stack: "b", pass: false, why: "x", prs: [2] };
    const bad2: StackJudgement = { stack: "c", pass: false, why: "y", prs: [3] };
    expect(judgeGroup([ok, { ...ok, stack: "d", rule: "composed" }])).toEqual({ pass: true, failed: [] });
    expect(judgeGroup([bad2, ok, bad1])).toEqual({ pass: false, failed: [bad2, bad1] });
  });
});
