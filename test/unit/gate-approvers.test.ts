/**
 * The pure gate on who may approve and what an approval is bound to (issue 15): pushers and
 * committers never count, like the author; an approval counts for the plan previewed before it
 * (a re-preview with the same plan keeps it, one with another plan makes it stale); an approval
 * a deploy already used never counts again; a closed PR does not deploy.
 */
import { describe, expect, it } from "vitest";
import { mainlineGateFacts, mainlineGatePolicy } from "../../src/approval/mainline-gate.js";
import { DEFAULT_GATE_POLICY, evaluateGate, planSeenAt, type ApprovalCommand, type GateFacts, type GateResult, type ReviewFact } from "../../src/approval/gate.js";
import { renderGateChecklist } from "../../src/render/gate.js";

const HEAD = "1234567" + "a".repeat(33);
const NOW = new Date("2026-03-10T12:00:00Z");
const A = "sha256:" + "a".repeat(64);
const B = "sha256:" + "b".repeat(64);
const ago = (m: number) => new Date(NOW.getTime() - m * 60_000);

type Over = Partial<Omit<GateFacts, "pr">> & { pr?: Partial<GateFacts["pr"]> };
function facts(over: Over = {}): GateFacts {
  const { pr, ...rest } = over;
  return {
    now: NOW,
    stack: "prod",
    prNumber: 7,
    pr: { author: "alice", headSha: HEAD, draft: false, mergeable: true, behindBy: 0, fromFork: false, ...pr },
    preview: { headSha: HEAD, planHash: A, state: "SUCCEEDED", finishedAt: ago(60) },
    reviews: [],
    commands: [],
    permissions: { alice: "write", bob: "write", carol: "write", mallory: "write", wendy: "write" },
    teamMembers: {},
    checks: [],
    requiredChecks: [],
    lock: { prNumber: 7 },
    ...rest,
  };
}
let n = 1;
const approve = (actor: string, o: Partial<ApprovalCommand> = {}): ApprovalCommand => ({ id: String(n++), kind: "approve", actor, actorType: "User", headSha: HEAD, planHash: A, at: ago(30), ...o });
const review = (login: string, at: Date, o: Partial<ReviewFact> = {}): ReviewFact => ({ id: 900 + n++, user: { login, type: "User" }, state: "APPROVED", commit_id: HEAD, submitted_at: at.toISOString(), ...o });
const why = (r: GateResult, login: string) => r.ignored.filter((i) => i.login === login).map((i) => i.why);
const counted = (r: GateResult) => r.counted.map((c) => c.login);
const gate = (f: GateFacts) => evaluateGate(DEFAULT_GATE_POLICY, f);

describe("the people who changed the code do not approve it", () => {
  const changedBy = [
    { login: "mallory", why: "pushed to this pull request" },
    { login: "Carol", why: "wrote a commit of it" },
  ];

  it("a pusher's /approve and review do not count, with the reason; another writer's do", () => {
    const r = gate(facts({ pr: { changedBy }, commands: [approve("mallory")], reviews: [review("mallory", ago(20))] }));
    expect(r.allowed).toBe(false);
    expect(counted(r)).toEqual([]);
    expect(why(r, "mallory")).toEqual(["pushed to this pull request: the people who changed the code do not approve it", "pushed to this pull request: the people who changed the code do not approve it"]);
    const control = gate(facts({ pr: { changedBy }, commands: [approve("bob")] }));
    expect(control.allowed).toBe(true);
    expect(counted(control)).toEqual(["bob"]);
  });

  it("a committer does not count either (case-insensitively), and the checklist says why", () => {
    const r = gate(facts({ pr: { changedBy }, commands: [approve("carol")] }));
    expect(counted(r)).toEqual([]);
    expect(why(r, "carol")).toEqual(["wrote a commit of it: the people who changed the code do not approve it"]);
    const md = renderGateChecklist("prod", r, HEAD);
    expect(md).toContain("@\u200bcarol (/approve): wrote a commit of it: the people who changed the code do not approve it");
    expect(md).toContain("not the PR author nor anyone who pushed to or wrote commits of it");
  });

  it("a pusher's /deny is ignored like the author's (only allowed approvers deny)", () => {
    const r = gate(facts({ pr: { changedBy }, commands: [approve("bob"), { ...approve("mallory"), kind: "deny", planHash: null, at: ago(10) }] }));
    expect(r.deniedBy).toBeNull();
    expect(r.allowed).toBe(true);
  });

  it("merge-first: the branch gate excludes the PR author and the pushers carried in `exclude`, and still the requester", () => {
    const policy = mainlineGatePolicy(DEFAULT_GATE_POLICY, 1);
    const base = {
      now: NOW,
      stack: "mf",
      threadNumber: 7,
      requestedBy: "carol",
      sha: HEAD,
      preview: { planHash: A, state: "SUCCEEDED" as const, finishedAt: ago(60) },
      permissions: { alice: "write" as const, bob: "write" as const, carol: "write" as const, mallory: "write" as const },
      teamMembers: {},
      exclude: [
        { login: "alice", why: "wrote the pull request" },
        { login: "mallory", why: "pushed to this pull request" },
      ],
    };
    const r = evaluateGate(policy, mainlineGateFacts({ ...base, commands: [approve("alice"), approve("mallory"), approve("carol")] }));
    expect(r.allowed).toBe(false);
    expect(why(r, "alice")).toEqual(["wrote the pull request: the people who changed the code do not approve it"]);
    expect(why(r, "mallory")).toEqual(["pushed to this pull request: the people who changed the code do not approve it"]);
    expect(why(r, "carol")).toEqual(["the person who asked for it cannot approve their own change"]);
    expect(evaluateGate(policy, mainlineGateFacts({ ...base, commands: [approve("bob")] })).allowed).toBe(true);
  });
});

describe("an approval counts for the plan its approver saw", () => {
  it("a re-preview of the head with the same plan keeps an /approve and a review valid", () => {
    const previews = [{ planHash: A, finishedAt: ago(60) }, { planHash: A, finishedAt: ago(10) }];
    const f = facts({ preview: { headSha: HEAD, planHash: A, state: "SUCCEEDED", finishedAt: ago(10) }, previews, commands: [approve("bob")], reviews: [review("carol", ago(30))] });
    expect(counted(gate(f)).sort()).toEqual(["bob", "carol"]);
  });

  it("a re-preview with another plan makes them stale, and a later return to the first plan does not revive them", () => {
    const changed = facts({ preview: { headSha: HEAD, planHash: B, state: "SUCCEEDED", finishedAt: ago(10) }, previews: [{ planHash: A, finishedAt: ago(60) }, { planHash: B, finishedAt: ago(10) }], commands: [approve("bob")], reviews: [review("carol", ago(30))] });
    const r = gate(changed);
    expect(counted(r)).toEqual([]);
    expect(why(r, "bob")).toEqual(["approved a different plan"]);
    expect(why(r, "carol")).toEqual(["approved a different plan"]);
    const back = facts({
      preview: { headSha: HEAD, planHash: A, state: "SUCCEEDED", finishedAt: ago(5) },
      previews: [{ planHash: A, finishedAt: ago(60) }, { planHash: B, finishedAt: ago(10) }, { planHash: A, finishedAt: ago(5) }],
      commands: [approve("bob")],
      reviews: [review("carol", ago(30))],
    });
    const r2 = gate(back);
    expect(counted(r2)).toEqual([]);
    expect(why(r2, "bob")).toEqual([`the plan changed after the approval (re-previewed as ${"b".repeat(12)})`]);
    expect(why(r2, "carol")).toEqual([`the plan changed after the approval (re-previewed as ${"b".repeat(12)})`]);
  });

  it("a review submitted before the re-preview that changed the plan does not count; one submitted after it does", () => {
    const f = (at: Date) => facts({ preview: { headSha: HEAD, planHash: B, state: "SUCCEEDED", finishedAt: ago(10) }, previews: [{ planHash: A, finishedAt: ago(60) }, { planHash: B, finishedAt: ago(10) }], reviews: [review("carol", at)] });
    expect(counted(gate(f(ago(20))))).toEqual([]);
    expect(counted(gate(f(ago(5))))).toEqual(["carol"]);
  });

  it("a review submitted before any preview of the head finished does not count; with no preview required and none made, the commit alone binds it", () => {
    const r = gate(facts({ reviews: [review("carol", ago(90))] }));
    expect(why(r, "carol")).toEqual(["submitted before any preview of 1234567 finished"]);
    const noPreview = evaluateGate({ ...DEFAULT_GATE_POLICY, require: { ...DEFAULT_GATE_POLICY.require, previewSucceeded: false } }, facts({ preview: null, reviews: [review("carol", ago(90))] }));
    expect(counted(noPreview)).toEqual(["carol"]);
  });

  it("planSeenAt: the latest preview that finished strictly before the time", () => {
    const h = [{ planHash: A, finishedAt: ago(60) }, { planHash: B, finishedAt: ago(10) }];
    expect(planSeenAt(h, ago(30))?.planHash).toBe(A);
    expect(planSeenAt(h, ago(10))?.planHash).toBe(A);
    expect(planSeenAt(h, ago(9))?.planHash).toBe(B);
    expect(planSeenAt(h, ago(61))).toBeNull();
  });
});

describe("an approval is used at most once", () => {
  it("an approval a deploy already used does not count, naming that deploy; an unused one does", () => {
    const used = approve("bob");
    const r = gate(facts({ commands: [used], consumed: [{ source: "comment", id: used.id!, deploy: { planHash: A, state: "FAILED" } }] }));
    expect(r.allowed).toBe(false);
    expect(why(r, "bob")).toEqual([`already used by the deploy of plan ${"a".repeat(12)}, which failed`]);
    const fresh = approve("bob", { at: ago(5) });
    expect(gate(facts({ commands: [used, fresh], consumed: [{ source: "comment", id: used.id!, deploy: { planHash: A, state: "FAILED" } }] })).allowed).toBe(true);
  });

  it("a used review does not count; a used approval still lifted its author's earlier /deny", () => {
    const rv = review("carol", ago(20));
    const r = gate(facts({ reviews: [rv], consumed: [{ source: "review", id: String(rv.id), deploy: { planHash: A, state: "SUCCEEDED" } }] }));
    expect(why(r, "carol")).toEqual([`already used by the deploy of plan ${"a".repeat(12)}, which succeeded`]);
    const lifted = gate(facts({ commands: [{ ...approve("carol"), kind: "deny", planHash: null, at: ago(40) }, approve("carol", { id: "77", at: ago(20) })], consumed: [{ source: "comment", id: "77", deploy: { planHash: A, state: "FAILED" } }] }));
    expect(lifted.deniedBy).toBeNull();
  });

  it("`used` lists what a deploy allowed now uses: every counted approval and the same people's other valid ones", () => {
    const a1 = approve("bob", { at: ago(30) });
    const rv = review("bob", ago(20));
    const c1 = approve("carol", { at: ago(25) });
    const r = evaluateGate({ ...DEFAULT_GATE_POLICY, requiredApprovals: 2 }, facts({ commands: [a1, c1], reviews: [rv] }));
    expect(r.allowed).toBe(true);
    expect(r.used).toEqual(expect.arrayContaining([{ source: "comment", id: a1.id }, { source: "comment", id: c1.id }, { source: "review", id: String(rv.id) }]));
    expect(r.used).toHaveLength(3);
    expect(r.verdicts.find((v) => v.ref.id === String(rv.id))).toMatchObject({ status: "duplicate", login: "bob" });
  });
});

describe("the pull request must be open", () => {
  it("is checked when known, first, and blocks a closed PR", () => {
    const r = gate(facts({ pr: { open: false }, commands: [approve("bob")] }));
    expect(r.allowed).toBe(false);
    expect(r.requirements[0]).toMatchObject({ id: "pr-open", met: false, detail: "the pull request is closed" });
    expect(gate(facts({ pr: { open: true }, commands: [approve("bob")] })).allowed).toBe(true);
    expect(gate(facts({ commands: [approve("bob")] })).requirements.map((x) => x.id)).not.toContain("pr-open");
  });
});
