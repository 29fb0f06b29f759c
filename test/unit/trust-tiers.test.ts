/**
 * Trust tiers, pure: the minimum of the actor's, the repository's and the stack's tiers (a
 * fork's code always the lowest), what each tier may run and receive, and how a denial names the
 * rule; the extra approvals a tier adds to the gate.
 */
import { describe, expect, it } from "vitest";
import { actorTierSource, credentialsFor, describeTier, effectiveTier, mayRunCommand, TIERS, type TierName, type TierSource } from "../../src/approval/tiers.js";
import { DEFAULT_GATE_POLICY, evaluateGate, type GateFacts } from "../../src/approval/gate.js";

const src = (of: TierSource["of"], subject: string, tier: TierName, assigned = true): TierSource => ({ of, subject, tier, assigned });
const HEAD = "1234567" + "a".repeat(33);

describe("effectiveTier", () => {
  it("is the minimum of the three, and names the source that set it", () => {
    const e = effectiveTier([src("actor", "alice", "architect"), src("repository", "acme/web", "builder"), src("stack", "acme/web:prod", "operator")]);
    expect(e.tier.name).toBe("operator");
    expect(e.bound).toMatchObject({ of: "stack", subject: "acme/web:prod" });
    expect(describeTier(e)).toBe("operator (T1), assigned to stack `acme/web:prod`");
    for (const [a, r, s, want] of [["observer", "architect", "architect", "observer"], ["architect", "observer", "architect", "observer"], ["executor", "executor", "builder", "builder"], ["architect", "architect", "architect", "architect"]] as const) {
      expect(effectiveTier([src("actor", "a", a), src("repository", "o/r", r), src("stack", "o/r:s", s)]).tier.name).toBe(want);
    }
  });

  it("a fork's code is always observer, whatever the others say", () => {
    const e = effectiveTier([src("actor", "maintainer", "architect"), src("repository", "acme/web", "architect"), src("fork", "fork", "observer", false)]);
    expect(e.tier.name).toBe("observer");
    expect(describeTier(e)).toBe("observer (T0), always, for a fork's code");
  });

  it("an unassigned source is the server's default, and says so", () => {
    expect(describeTier(effectiveTier([src("actor", "bob", "builder", false), src("repository", "acme/web", "executor", false)]))).toBe("builder (T2), the server's default for actor @\u200bbob");
  });
});

describe("what a tier may do", () => {
  it("observer reads, operator also approves, builder and up deploy", () => {
    const at = (t: TierName) => effectiveTier([src("actor", "alice", t)]);
    expect(mayRunCommand(at("observer"), "preview")).toEqual({ allowed: true });
    expect(mayRunCommand(at("observer"), "approve")).toMatchObject({ allowed: false, needs: "operator" });
    expect(mayRunCommand(at("operator"), "approve")).toEqual({ allowed: true });
    const denied = mayRunCommand(at("operator"), "deploy");
    expect(denied).toEqual({ allowed: false, needs: "builder", why: "`deploy` needs trust tier builder (T2) or higher, and the effective tier here is operator (T1), assigned to actor @\u200balice — the lowest of the actor's, the repository's and the stack's" });
    for (const t of ["builder", "executor", "architect"] as const) for (const c of ["deploy", "rollback", "destroy"]) expect(mayRunCommand(at(t), c).allowed).toBe(true);
  });

  it("credential sets: none, preview only, or deploy; a deploy without them is refused", () => {
    const at = (t: TierName) => effectiveTier([src("actor", "alice", t)]);
    expect(credentialsFor(at("observer"), "preview")).toEqual({ issue: false });
    expect(credentialsFor(at("operator"), "preview")).toEqual({ issue: true });
    expect(credentialsFor(at("operator"), "deploy")).toMatchObject({ refused: expect.stringContaining("does not receive") });
    expect(credentialsFor(at("builder"), "deploy")).toEqual({ issue: true });
  });

  it("the seed's lifetimes and runtimes", () => {
    expect(Object.values(TIERS).map((t) => [t.name, t.credentialTtlSeconds, t.runtime])).toEqual([["observer", 3600, "runsc"], ["operator", 1800, "runsc"], ["builder", 1800, null], ["executor", 900, null], ["architect", 900, null]]);
  });
});

describe("the gate with a tier", () => {
  const facts = (tier: GateFacts["tier"], approvers: string[]): GateFacts => ({
    now: new Date("2026-12-06T12:00:00Z"),
    stack: "prod",
    prNumber: 7,
    pr: { author: "alice", headSha: HEAD, draft: false, mergeable: true, behindBy: 0, fromFork: false },
    preview: { headSha: HEAD, planHash: "sha256:p", state: "SUCCEEDED", finishedAt: new Date("2026-12-06T11:00:00Z") },
    reviews: [],
    commands: approvers.map((actor) => ({ kind: "approve" as const, actor, actorType: "User", headSha: HEAD, planHash: "sha256:p", at: new Date("2026-12-06T11:30:00Z") })),
    permissions: { bob: "write", carol: "write" },
    teamMembers: {},
    checks: [],
    requiredChecks: [],
    lock: { prNumber: 7 },
    ...(tier ? { tier } : {}),
  });
  it("a builder's deploy needs one approval beyond the stack's own", () => {
    const builder = { name: "builder", extraApprovals: 1, rule: "builder (T2), assigned to stack `o/r:prod`" };
    const one = evaluateGate(DEFAULT_GATE_POLICY, facts(builder, ["bob"]));
    expect(one.allowed).toBe(false);
    expect(one.requirements.find((r) => r.id === "approvals")?.detail).toBe("1 of 2 approvals (@bob)");
    expect(evaluateGate(DEFAULT_GATE_POLICY, facts(builder, ["bob", "carol"])).allowed).toBe(true);
    expect(evaluateGate(DEFAULT_GATE_POLICY, facts({ name: "executor", extraApprovals: 0, rule: "" }, ["bob"])).allowed).toBe(true);
  });
});

describe("actorTierSource: an actor's own assignment, else their teams', else the default", () => {
  const teams = [
    { team: "octo-org/contractors", tier: "operator" as TierName },
    { team: "octo-org/platform", tier: "architect" as TierName },
  ];
  const base = { login: "dave", teams, fallback: "executor" as TierName };

  it("the actor's own assignment wins over every team", () => {
    expect(actorTierSource({ ...base, own: "builder", memberOf: ["octo-org/platform"] })).toEqual({ of: "actor", subject: "dave", tier: "builder", assigned: true });
  });
  it("the highest tier of the assigned teams the actor is in", () => {
    expect(actorTierSource({ ...base, own: null, memberOf: ["octo-org/contractors", "octo-org/platform"] })).toMatchObject({ of: "team", subject: "octo-org/platform", tier: "architect" });
    expect(actorTierSource({ ...base, own: null, memberOf: ["octo-org/contractors"] })).toMatchObject({ of: "team", subject: "octo-org/contractors", tier: "operator", assigned: true });
  });
  it("in no assigned team, or no team assigned: the server's default", () => {
    expect(actorTierSource({ ...base, own: null, memberOf: [] })).toEqual({ of: "actor", subject: "dave", tier: "executor", assigned: false });
    expect(actorTierSource({ ...base, teams: [], own: null, memberOf: "unknown" })).toEqual({ of: "actor", subject: "dave", tier: "executor", assigned: false });
  });
  it("membership unreadable: the lowest of the teams' tiers and the default (an outage promotes nobody)", () => {
    expect(actorTierSource({ ...base, own: null, memberOf: "unknown" })).toMatchObject({ of: "team", subject: "octo-org/contractors", tier: "operator" });
    expect(actorTierSource({ ...base, fallback: "observer", own: null, memberOf: "unknown" })).toEqual({ of: "actor", subject: "dave", tier: "observer", assigned: false });
  });
  it("the refusal names the team", () => {
    const e = effectiveTier([actorTierSource({ ...base, own: null, memberOf: ["octo-org/contractors"] }), { of: "repository", subject: "octo-org/x", tier: "executor", assigned: false }]);
    expect(describeTier(e)).toBe("operator (T1), assigned to team `octo-org/contractors` (@\u200bdave is a member)");
  });
});
