import { describe, it, expect } from "vitest";
import {
  DEFAULT_GATE_POLICY,
  evaluateGate,
  type ApprovalCommand,
  type CheckFact,
  type GateFacts,
  type GatePolicy,
  type GateRequirements,
  type GateResult,
  type ReviewFact,
  type RequirementId,
} from "../../src/approval/gate.js";
import { renderGateChecklist } from "../../src/render/gate.js";

const HEAD = "1234567" + "a".repeat(33);
const OLD = "abc1234" + "b".repeat(33);
const NOW = new Date("2025-03-10T12:00:00Z");
const PLAN = "sha256:plan-1";
const PREVIEW_AT = minutesAgo(60);

function minutesAgo(m: number): Date {
  return new Date(NOW.getTime() - m * 60_000);
}

type FactsOverrides = Partial<Omit<GateFacts, "pr">> & { pr?: Partial<GateFacts["pr"]> };

/** Everything but approvals is in order: a fresh successful preview of the head, green checks, the lock. */
function facts(over: FactsOverrides = {}): GateFacts {
  const { pr, ...rest } = over;
  return {
    now: NOW,
    stack: "prod",
    prNumber: 7,
    pr: { author: "alice", headSha: HEAD, draft: false, mergeable: true, behindBy: 0, fromFork: false, ...pr },
    preview: { headSha: HEAD, planHash: PLAN, state: "SUCCEEDED", finishedAt: PREVIEW_AT },
    reviews: [],
    commands: [],
    permissions: { alice: "admin", bob: "write", carol: "maintain", dave: "admin", erin: "read", frank: "triage", mallory: "none" },
    teamMembers: {},
    checks: [{ name: "ci", status: "completed", conclusion: "success" }],
    requiredChecks: ["ci"],
    lock: { prNumber: 7 },
    ...rest,
  };
}

function policy(over: Partial<Omit<GatePolicy, "require">> & { require?: Partial<GateRequirements> } = {}): GatePolicy {
  const { require, ...rest } = over;
  return { ...DEFAULT_GATE_POLICY, ...rest, require: { ...DEFAULT_GATE_POLICY.require, ...require } };
}

let reviewId = 1;
function review(login: string, state: string, o: { sha?: string | null; at?: Date | null; type?: string } = {}): ReviewFact {
  const at = o.at === undefined ? minutesAgo(30) : o.at;
  return {
    id: reviewId++,
    user: { login, type: o.type ?? "User" },
    state,
    commit_id: o.sha === undefined ? HEAD : o.sha,
    submitted_at: at ? at.toISOString() : null,
  };
}

function approve(actor: string, o: Partial<Omit<ApprovalCommand, "kind" | "actor">> = {}): ApprovalCommand {
  return { kind: "approve", actor, actorType: "User", headSha: HEAD, planHash: PLAN, at: minutesAgo(30), ...o };
}

function deny(actor: string, o: Partial<Omit<ApprovalCommand, "kind" | "actor">> = {}): ApprovalCommand {
  return { kind: "deny", actor, actorType: "User", headSha: HEAD, planHash: PLAN, at: minutesAgo(20), ...o };
}

function req(r: GateResult, id: RequirementId) {
  const found = r.requirements.find((x) => x.id === id);
  if (!found) throw new Error(`requirement ${id} not present`);
  return found;
}

function ids(r: GateResult): RequirementId[] {
  return r.requirements.map((x) => x.id);
}

function logins(r: GateResult): string[] {
  return r.counted.map((c) => c.login);
}

function whyIgnored(r: GateResult, login: string): string[] {
  return r.ignored.filter((i) => i.login === login).map((i) => i.why);
}

const ALL_IDS: RequirementId[] = [
  "not-fork",
  "preview-succeeded",
  "approvals",
  "not-denied",
  "status-checks",
  "mergeable",
  "undiverged",
  "not-draft",
  "lock-held",
];

describe("DEFAULT_GATE_POLICY", () => {
  it("requires one approval from anyone with write, from reviews or comments, for a day, and every requirement", () => {
    expect(DEFAULT_GATE_POLICY).toEqual({
      requiredApprovals: 1,
      approvers: null,
      sources: "both",
      approvalTtlSeconds: 86_400,
      require: { previewSucceeded: true, statusChecks: true, mergeable: true, undiverged: true, notDraft: true, lockHeld: true },
    });
  });
});

describe("evaluateGate: overall", () => {
  it("allows a deploy when every requirement is met, listing them all in a fixed order", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("bob")] }));
    expect(r.allowed).toBe(true);
    expect(ids(r)).toEqual(ALL_IDS);
    expect(r.requirements.every((x) => x.met && x.fix === null)).toBe(true);
    expect(r.counted).toEqual([{ login: "bob", via: "comment", at: minutesAgo(30) }]);
    expect(r.ignored).toEqual([]);
    expect(r.deniedBy).toBeNull();
    expect(r.planHash).toBe(PLAN);
  });

  it("blocks when any one requirement is unmet, and every unmet requirement has a fix", () => {
    const r = evaluateGate(policy(), facts({ pr: { draft: true } }));
    expect(r.allowed).toBe(false);
    for (const x of r.requirements) expect(x.fix === null).toBe(x.met);
  });

  it("omits switched-off requirements but always keeps not-fork, approvals and not-denied", () => {
    const off: GateRequirements = { previewSucceeded: false, statusChecks: false, mergeable: false, undiverged: false, notDraft: false, lockHeld: false };
    const r = evaluateGate(policy({ require: off }), facts({ commands: [approve("bob")] }));
    expect(ids(r)).toEqual(["not-fork", "approvals", "not-denied"]);
    expect(r.allowed).toBe(true);
  });

  it("reports the preview's plan hash, or null without a preview", () => {
    expect(evaluateGate(policy(), facts()).planHash).toBe(PLAN);
    expect(evaluateGate(policy(), facts({ preview: null })).planHash).toBeNull();
  });
});

describe("not-fork", () => {
  it("is met for a branch in this repository", () => {
    expect(req(evaluateGate(policy(), facts()), "not-fork").met).toBe(true);
  });

  it("refuses a fork even when everything else is met and every switch is off", () => {
    const off: GateRequirements = { previewSucceeded: false, statusChecks: false, mergeable: false, undiverged: false, notDraft: false, lockHeld: false };
    const r = evaluateGate(policy({ require: off, requiredApprovals: 0 }), facts({ pr: { fromFork: true } }));
    expect(r.allowed).toBe(false);
    const x = req(r, "not-fork");
    expect(x.met).toBe(false);
    expect(x.detail).toContain("fork");
    expect(x.fix).toBeTruthy();
  });
});

describe("preview-succeeded", () => {
  const withApproval = { commands: [approve("bob")] };

  it("is met by a successful preview of the head commit with a plan hash", () => {
    const x = req(evaluateGate(policy(), facts(withApproval)), "preview-succeeded");
    expect(x).toEqual({ id: "preview-succeeded", met: true, detail: expect.stringContaining("1234567"), fix: null, waitsForApproval: false });
  });

  it("is unmet without a preview, telling to run /agent preview <stack>", () => {
    const x = req(evaluateGate(policy(), facts({ preview: null })), "preview-succeeded");
    expect(x.met).toBe(false);
    expect(x.detail).toContain("no preview");
    expect(x.fix).toContain("/agent preview prod");
  });

  it("is unmet for a preview of an older commit, naming it, telling to preview again", () => {
    const x = req(
      evaluateGate(policy(), facts({ preview: { headSha: OLD, planHash: PLAN, state: "SUCCEEDED", finishedAt: PREVIEW_AT } })),
      "preview-succeeded",
    );
    expect(x.met).toBe(false);
    expect(x.detail).toContain("older commit abc1234");
    expect(x.fix).toContain("/agent preview prod");
  });

  it("is unmet when the preview failed", () => {
    const x = req(evaluateGate(policy(), facts({ preview: { headSha: HEAD, planHash: null, state: "FAILED", finishedAt: PREVIEW_AT } })), "preview-succeeded");
    expect(x.met).toBe(false);
    expect(x.detail).toContain("failed");
    expect(x.fix).toContain("/agent preview prod");
  });

  it("is unmet while the preview is still running or queued, telling to wait", () => {
    for (const state of ["RUNNING", "PENDING"] as const) {
      const x = req(evaluateGate(policy(), facts({ preview: { headSha: HEAD, planHash: null, state, finishedAt: null } })), "preview-succeeded");
      expect(x.met).toBe(false);
      expect(x.detail).toMatch(/still running|queued/);
      expect(x.fix).toContain("Wait");
    }
  });

  it("is unmet for a successful preview without a plan hash", () => {
    const x = req(evaluateGate(policy(), facts({ preview: { headSha: HEAD, planHash: null, state: "SUCCEEDED", finishedAt: PREVIEW_AT } })), "preview-succeeded");
    expect(x.met).toBe(false);
  });

  it("can be switched off", () => {
    const r = evaluateGate(policy({ require: { previewSucceeded: false } }), facts({ ...withApproval, preview: { headSha: OLD, planHash: PLAN, state: "SUCCEEDED", finishedAt: PREVIEW_AT } }));
    expect(ids(r)).not.toContain("preview-succeeded");
  });
});

describe("approvals: counting", () => {
  it("counts an approving review of the head commit by a writer", () => {
    const r = evaluateGate(policy(), facts({ reviews: [review("bob", "APPROVED")] }));
    expect(r.counted).toEqual([{ login: "bob", via: "review", at: minutesAgo(30) }]);
    expect(req(r, "approvals")).toEqual({ id: "approvals", met: true, detail: "1 of 1 approval (@bob)", fix: null, waitsForApproval: false });
  });

  it("counts an /approve of the head commit and plan made after the preview", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("carol")] }));
    expect(logins(r)).toEqual(["carol"]);
    expect(req(r, "approvals").met).toBe(true);
  });

  it("with no approvals: 0 of 1, and the fix says who may approve and how", () => {
    const x = req(evaluateGate(policy(), facts()), "approvals");
    expect(x.met).toBe(false);
    expect(x.detail).toBe("0 of 1 approval");
    expect(x.fix).toContain("write access");
    expect(x.fix).toContain("/approve");
    expect(x.fix).toContain("approving review");
    expect(x.fix).toContain("1234567");
  });

  it("requiredApprovals 2 with one approval is blocked with '1 of 2'", () => {
    const r = evaluateGate(policy({ requiredApprovals: 2 }), facts({ commands: [approve("bob")] }));
    expect(r.allowed).toBe(false);
    const x = req(r, "approvals");
    expect(x.met).toBe(false);
    expect(x.detail).toBe("1 of 2 approvals (@bob)");
    expect(x.fix).toContain("1 more approval");
  });

  it("requiredApprovals 2 with two different people is met", () => {
    const r = evaluateGate(policy({ requiredApprovals: 2 }), facts({ commands: [approve("bob")], reviews: [review("carol", "APPROVED")] }));
    expect(req(r, "approvals").met).toBe(true);
    expect(logins(r).sort()).toEqual(["bob", "carol"]);
  });

  it("requiredApprovals 0 is met without any approval", () => {
    const r = evaluateGate(policy({ requiredApprovals: 0 }), facts());
    expect(r.allowed).toBe(true);
    expect(req(r, "approvals")).toEqual({ id: "approvals", met: true, detail: "no approval required", fix: null, waitsForApproval: false });
  });

  it("one person counts once: a review and an /approve by the same person keep the earliest", () => {
    const r = evaluateGate(
      policy({ requiredApprovals: 2 }),
      facts({ reviews: [review("bob", "APPROVED", { at: minutesAgo(10) })], commands: [approve("bob", { at: minutesAgo(30) })] }),
    );
    expect(r.counted).toEqual([{ login: "bob", via: "comment", at: minutesAgo(30) }]);
    expect(req(r, "approvals").detail).toBe("1 of 2 approvals (@bob)");
    expect(r.ignored).toEqual([{ login: "bob", via: "review", why: expect.stringContaining("already counted") }]);
  });

  it("one person counts once across case differences in the login", () => {
    const r = evaluateGate(policy({ requiredApprovals: 2 }), facts({ commands: [approve("bob"), approve("BOB", { at: minutesAgo(25) })] }));
    expect(r.counted).toHaveLength(1);
    expect(r.counted[0]!.login).toBe("bob");
  });
});

describe("approvals: who may approve", () => {
  it("never counts the PR author's approving review, even as admin", () => {
    const r = evaluateGate(policy(), facts({ reviews: [review("alice", "APPROVED")] }));
    expect(r.counted).toEqual([]);
    expect(r.ignored).toEqual([{ login: "alice", via: "review", why: "the PR author cannot approve their own change" }]);
  });

  it("never counts the PR author's /approve, even as admin, case-insensitively", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("ALICE")], permissions: { ALICE: "admin" } }));
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "ALICE")).toEqual(["the PR author cannot approve their own change"]);
  });

  it("never counts the PR author even when listed as an approver", () => {
    const r = evaluateGate(policy({ approvers: { users: ["alice"], teams: [] } }), facts({ commands: [approve("alice")] }));
    expect(r.counted).toEqual([]);
  });

  it("never counts bots: type Bot or a [bot] login", () => {
    const r = evaluateGate(
      policy(),
      facts({
        reviews: [review("ci-app", "APPROVED", { type: "Bot" })],
        commands: [approve("renovate[bot]", { actorType: "User" })],
        permissions: { "ci-app": "admin", "renovate[bot]": "admin" },
      }),
    );
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "ci-app")).toEqual(["bots do not count"]);
    expect(whyIgnored(r, "renovate[bot]")).toEqual(["bots do not count"]);
  });

  it("with approvers null, write, maintain and admin count", () => {
    const r = evaluateGate(
      policy({ requiredApprovals: 3, approvers: null }),
      facts({ commands: [approve("bob"), approve("carol"), approve("dave")] }),
    );
    expect(logins(r).sort()).toEqual(["bob", "carol", "dave"]);
    expect(req(r, "approvals").met).toBe(true);
  });

  it("with approvers null, read, triage, none and unknown users do not count", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("erin"), approve("frank"), approve("mallory"), approve("stranger")] }));
    expect(r.counted).toEqual([]);
    for (const who of ["erin", "frank", "mallory", "stranger"]) expect(whyIgnored(r, who)).toEqual(["not an allowed approver"]);
  });

  it("looks permissions up case-insensitively", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("Bob")] }));
    expect(logins(r)).toEqual(["Bob"]);
  });

  it("with an approvers list, a listed user counts (case-insensitive) and an unlisted writer does not", () => {
    const r = evaluateGate(
      policy({ requiredApprovals: 2, approvers: { users: ["Carol"], teams: [] } }),
      facts({ commands: [approve("carol"), approve("bob")] }),
    );
    expect(logins(r)).toEqual(["carol"]);
    expect(whyIgnored(r, "bob")).toEqual(["not an allowed approver"]);
  });

  it("a listed user counts whatever their repository permission", () => {
    const r = evaluateGate(policy({ approvers: { users: ["erin"], teams: [] } }), facts({ commands: [approve("erin")] }));
    expect(logins(r)).toEqual(["erin"]);
  });

  it("a member of a listed team counts; a non-member does not", () => {
    const p = policy({ requiredApprovals: 2, approvers: { users: [], teams: ["platform"] } });
    const r = evaluateGate(p, facts({ teamMembers: { platform: ["Erin", "zed"] }, commands: [approve("erin"), approve("bob")] }));
    expect(logins(r)).toEqual(["erin"]);
    expect(whyIgnored(r, "bob")).toEqual(["not an allowed approver"]);
  });

  it("a member of a team that is not listed does not count", () => {
    const p = policy({ approvers: { users: [], teams: ["platform"] } });
    const r = evaluateGate(p, facts({ teamMembers: { platform: [], security: ["bob"] }, commands: [approve("bob")] }));
    expect(r.counted).toEqual([]);
  });

  it("names the configured users and teams in the fix", () => {
    const x = req(evaluateGate(policy({ approvers: { users: ["carol"], teams: ["platform"] } }), facts()), "approvals");
    expect(x.fix).toContain("@carol");
    expect(x.fix).toContain("platform");
    expect(x.fix).not.toContain("write access");
  });
});

describe("approvals: reviews", () => {
  it("APPROVED then COMMENTED still counts (a comment-only review does not withdraw an approval)", () => {
    const r = evaluateGate(
      policy(),
      facts({ reviews: [review("bob", "APPROVED", { at: minutesAgo(30) }), review("bob", "COMMENTED", { at: minutesAgo(5) })] }),
    );
    expect(r.counted).toEqual([{ login: "bob", via: "review", at: minutesAgo(30) }]);
  });

  it("a PENDING review (no submitted_at) is ignored", () => {
    const r = evaluateGate(policy(), facts({ reviews: [review("bob", "APPROVED"), review("bob", "PENDING", { at: null })] }));
    expect(logins(r)).toEqual(["bob"]);
  });

  it("APPROVED then CHANGES_REQUESTED does not count", () => {
    const r = evaluateGate(
      policy(),
      facts({ reviews: [review("bob", "APPROVED", { at: minutesAgo(30) }), review("bob", "CHANGES_REQUESTED", { at: minutesAgo(10) })] }),
    );
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "bob")).toEqual(["latest review requests changes"]);
  });

  it("CHANGES_REQUESTED then APPROVED counts", () => {
    const r = evaluateGate(
      policy(),
      facts({ reviews: [review("bob", "CHANGES_REQUESTED", { at: minutesAgo(30) }), review("bob", "APPROVED", { at: minutesAgo(10) })] }),
    );
    expect(logins(r)).toEqual(["bob"]);
  });

  it("orders by submitted_at, not by list order", () => {
    const r = evaluateGate(
      policy(),
      facts({ reviews: [review("bob", "CHANGES_REQUESTED", { at: minutesAgo(5) }), review("bob", "APPROVED", { at: minutesAgo(30) })] }),
    );
    expect(r.counted).toEqual([]);
  });

  it("a DISMISSED review does not count", () => {
    const r = evaluateGate(policy(), facts({ reviews: [review("bob", "DISMISSED")] }));
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "bob")).toEqual(["review dismissed"]);
  });

  it("an approving review of an older commit does not count, naming the commit", () => {
    const r = evaluateGate(policy(), facts({ reviews: [review("bob", "APPROVED", { sha: OLD })] }));
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "bob")).toEqual(["approved an older commit abc1234"]);
  });

  it("a push after the approving review makes it stale", () => {
    const reviews = [review("bob", "APPROVED", { sha: HEAD })];
    expect(logins(evaluateGate(policy(), facts({ reviews })))).toEqual(["bob"]);
    const NEW = "9999999" + "c".repeat(33);
    const r = evaluateGate(
      policy(),
      facts({ reviews, pr: { headSha: NEW }, preview: { headSha: NEW, planHash: PLAN, state: "SUCCEEDED", finishedAt: PREVIEW_AT } }),
    );
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "bob")).toEqual(["approved an older commit 1234567"]);
  });

  it("an approving review older than the TTL has expired; a younger one counts", () => {
    const p = policy({ approvalTtlSeconds: 3600 });
    const old = evaluateGate(p, facts({ reviews: [review("bob", "APPROVED", { at: minutesAgo(61) })] }));
    expect(old.counted).toEqual([]);
    expect(whyIgnored(old, "bob")).toEqual(["approval expired"]);
    const fresh = evaluateGate(p, facts({ reviews: [review("bob", "APPROVED", { at: minutesAgo(59) })] }));
    expect(logins(fresh)).toEqual(["bob"]);
  });

  // Changed (issue 15): a review is bound to the plan previewed before it was submitted, not
  // only to the commit; one submitted before any preview of the head finished approved no plan.
  it("an approving review submitted before any preview of the head finished does not count", () => {
    const r = evaluateGate(policy(), facts({ reviews: [review("bob", "APPROVED", { at: minutesAgo(90) })] }));
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "bob")).toEqual(["submitted before any preview of 1234567 finished"]);
  });
});

describe("approvals: /approve comments", () => {
  it("an /approve on an older commit does not count, naming the commit", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("bob", { headSha: OLD })] }));
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "bob")).toEqual(["approved an older commit abc1234"]);
  });

  it("a re-preview with a different plan hash makes an /approve stale", () => {
    const r = evaluateGate(
      policy(),
      facts({
        commands: [approve("bob", { at: minutesAgo(30) })],
        preview: { headSha: HEAD, planHash: "sha256:plan-2", state: "SUCCEEDED", finishedAt: minutesAgo(10) },
      }),
    );
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "bob")).toEqual(["approved a different plan"]);
    expect(r.planHash).toBe("sha256:plan-2");
  });

  it("an /approve without a plan hash does not count", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("bob", { planHash: null })] }));
    expect(whyIgnored(r, "bob")).toEqual(["approved a different plan"]);
  });

  // Reworded (issue 15): an approval binds to the plan previewed before it; with none, it approved nothing.
  it("an /approve made before any preview of the head finished does not count, even with the same plan", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("bob", { at: minutesAgo(90) })] }));
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "bob")).toEqual(["approved before any preview of 1234567 finished"]);
    const same = evaluateGate(policy(), facts({ commands: [approve("bob", { at: PREVIEW_AT })] }));
    expect(whyIgnored(same, "bob")).toEqual(["approved before any preview of 1234567 finished"]);
  });

  it("an /approve older than the TTL has expired", () => {
    const r = evaluateGate(
      policy({ approvalTtlSeconds: 600 }),
      facts({ commands: [approve("bob", { at: minutesAgo(30) })] }),
    );
    expect(whyIgnored(r, "bob")).toEqual(["approval expired"]);
    expect(logins(evaluateGate(policy({ approvalTtlSeconds: 3600 }), facts({ commands: [approve("bob", { at: minutesAgo(30) })] })))).toEqual(["bob"]);
  });

  it("an /approve without any preview does not count", () => {
    const r = evaluateGate(policy({ require: { previewSucceeded: false } }), facts({ preview: null, commands: [approve("bob")] }));
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "bob")).toHaveLength(1);
  });
});

describe("approvals: sources", () => {
  const both = { reviews: [review("bob", "APPROVED")], commands: [approve("carol")] };

  it("both: reviews and comments count", () => {
    expect(logins(evaluateGate(policy({ requiredApprovals: 2, sources: "both" }), facts(both))).sort()).toEqual(["bob", "carol"]);
  });

  it("reviews: /approve comments are ignored", () => {
    const r = evaluateGate(policy({ sources: "reviews" }), facts(both));
    expect(logins(r)).toEqual(["bob"]);
    expect(r.ignored).toEqual([{ login: "carol", via: "comment", why: expect.stringContaining("only approving reviews") }]);
    expect(req(r, "approvals").met).toBe(true);
  });

  it("comments: approving reviews are ignored", () => {
    const r = evaluateGate(policy({ sources: "comments" }), facts(both));
    expect(logins(r)).toEqual(["carol"]);
    expect(r.ignored).toEqual([{ login: "bob", via: "review", why: expect.stringContaining("only /approve comments") }]);
  });

  it("the fix describes only the accepted way of approving", () => {
    expect(req(evaluateGate(policy({ sources: "reviews" }), facts()), "approvals").fix).not.toContain("/approve");
    expect(req(evaluateGate(policy({ sources: "comments" }), facts()), "approvals").fix).not.toContain("approving review");
  });
});

describe("not-denied", () => {
  it("is met without any /deny", () => {
    const x = req(evaluateGate(policy(), facts({ commands: [approve("bob")] })), "not-denied");
    expect(x).toEqual({ id: "not-denied", met: true, detail: "no /deny in force", fix: null, waitsForApproval: false });
  });

  it("a /deny by an allowed approver on the head commit blocks, naming them", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("bob"), deny("carol")] }));
    expect(r.allowed).toBe(false);
    expect(r.deniedBy).toBe("carol");
    const x = req(r, "not-denied");
    expect(x.met).toBe(false);
    expect(x.detail).toContain("@carol");
    expect(x.fix).toContain("@carol");
    expect(req(r, "approvals").met).toBe(true);
  });

  it("a /deny by the PR author is ignored", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("bob"), deny("alice")] }));
    expect(r.deniedBy).toBeNull();
    expect(r.allowed).toBe(true);
  });

  it("a /deny by someone who may not approve is ignored (read permission, bot, not in the list)", () => {
    expect(evaluateGate(policy(), facts({ commands: [approve("bob"), deny("erin")] })).deniedBy).toBeNull();
    expect(evaluateGate(policy(), facts({ commands: [approve("bob"), deny("ops[bot]")], permissions: { bob: "write", "ops[bot]": "admin" } })).deniedBy).toBeNull();
    const listed = policy({ approvers: { users: ["bob"], teams: [] } });
    expect(evaluateGate(listed, facts({ commands: [approve("bob"), deny("carol")] })).deniedBy).toBeNull();
  });

  it("a /deny on an older head commit is ignored (a new push clears it)", () => {
    const r = evaluateGate(policy(), facts({ commands: [deny("carol", { headSha: OLD, at: minutesAgo(40) }), approve("bob")] }));
    expect(r.deniedBy).toBeNull();
    expect(r.allowed).toBe(true);
  });

  it("is lifted by the same person's later /approve", () => {
    const r = evaluateGate(policy(), facts({ commands: [deny("carol", { at: minutesAgo(40) }), approve("carol", { at: minutesAgo(20) })] }));
    expect(r.deniedBy).toBeNull();
    expect(logins(r)).toEqual(["carol"]);
    expect(r.allowed).toBe(true);
  });

  it("is lifted by the same person's later approving review", () => {
    const r = evaluateGate(
      policy(),
      facts({ commands: [deny("carol", { at: minutesAgo(40) })], reviews: [review("carol", "APPROVED", { at: minutesAgo(20) })] }),
    );
    expect(r.deniedBy).toBeNull();
    expect(r.allowed).toBe(true);
  });

  it("is not lifted by someone else's approval", () => {
    const r = evaluateGate(policy(), facts({ commands: [deny("carol", { at: minutesAgo(40) }), approve("bob", { at: minutesAgo(20) })] }));
    expect(r.deniedBy).toBe("carol");
  });

  it("is not lifted by an approval that does not count (older commit)", () => {
    const r = evaluateGate(
      policy(),
      facts({ commands: [deny("carol", { at: minutesAgo(40) }), approve("carol", { at: minutesAgo(20), headSha: OLD })] }),
    );
    expect(r.deniedBy).toBe("carol");
  });

  it("withdraws the same person's earlier approval", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("carol", { at: minutesAgo(40) }), deny("carol", { at: minutesAgo(20) })] }));
    expect(r.deniedBy).toBe("carol");
    expect(r.counted).toEqual([]);
    expect(whyIgnored(r, "carol")).toEqual(["withdrawn by their later /deny"]);
  });

  it("blocks even when no approval is required", () => {
    const r = evaluateGate(policy({ requiredApprovals: 0 }), facts({ commands: [deny("carol")] }));
    expect(r.allowed).toBe(false);
  });
});

describe("status-checks", () => {
  const checks = (...c: CheckFact[]) => ({ checks: c, commands: [approve("bob")] });

  it("is met when every required check passed (success, neutral, skipped)", () => {
    const r = evaluateGate(
      policy(),
      facts({
        ...checks(
          { name: "ci", status: "completed", conclusion: "success" },
          { name: "lint", status: "completed", conclusion: "neutral" },
          { name: "docs", status: "completed", conclusion: "skipped" },
        ),
        requiredChecks: ["ci", "lint", "docs"],
      }),
    );
    expect(req(r, "status-checks").met).toBe(true);
    expect(r.allowed).toBe(true);
  });

  it("is met with no required checks", () => {
    const x = req(evaluateGate(policy(), facts({ ...checks(), requiredChecks: [] })), "status-checks");
    expect(x).toEqual({ id: "status-checks", met: true, detail: "no required checks", fix: null, waitsForApproval: false });
  });

  it("a missing required check is unmet: not reported yet", () => {
    const x = req(evaluateGate(policy(), facts({ ...checks(), requiredChecks: ["ci"] })), "status-checks");
    expect(x.met).toBe(false);
    expect(x.detail).toContain("not reported yet");
    expect(x.detail).toContain("ci");
  });

  it("failing and pending checks are unmet, naming them", () => {
    const x = req(
      evaluateGate(
        policy(),
        facts({
          ...checks(
            { name: "ci", status: "completed", conclusion: "failure" },
            { name: "e2e", status: "in_progress", conclusion: null },
            { name: "ok", status: "completed", conclusion: "success" },
          ),
          requiredChecks: ["ci", "e2e", "ok"],
        }),
      ),
      "status-checks",
    );
    expect(x.met).toBe(false);
    expect(x.detail).toContain('failing: "ci" (failure)');
    expect(x.detail).toContain('pending: "e2e" (in_progress)');
    expect(x.detail).not.toContain('"ok"');
    expect(x.fix).toBeTruthy();
  });

  it("checks that are not required do not matter", () => {
    const r = evaluateGate(
      policy(),
      facts({ ...checks({ name: "ci", status: "completed", conclusion: "success" }, { name: "flaky", status: "completed", conclusion: "failure" }), requiredChecks: ["ci"] }),
    );
    expect(req(r, "status-checks").met).toBe(true);
  });

  it("ignores the app's own deploy check (agent/deploy and agent/deploy (…))", () => {
    const r = evaluateGate(
      policy(),
      facts({
        ...checks(
          { name: "ci", status: "completed", conclusion: "success" },
          { name: "agent/deploy (prod)", status: "in_progress", conclusion: null },
          { name: "agent/deploy", status: "completed", conclusion: "failure" },
        ),
        requiredChecks: ["ci", "agent/deploy", "agent/deploy (prod)"],
      }),
    );
    expect(req(r, "status-checks").met).toBe(true);
    // a name merely starting with agent/deploy is not the app's check
    const other = evaluateGate(policy(), facts({ ...checks(), requiredChecks: ["agent/deployer"] }));
    expect(req(other, "status-checks").met).toBe(false);
  });

  it("can be switched off", () => {
    const r = evaluateGate(policy({ require: { statusChecks: false } }), facts({ ...checks(), requiredChecks: ["ci"] }));
    expect(ids(r)).not.toContain("status-checks");
    expect(r.allowed).toBe(true);
  });
});

describe("mergeable", () => {
  const ok = { commands: [approve("bob")] };

  it("is met when GitHub reports the PR mergeable", () => {
    expect(req(evaluateGate(policy(), facts(ok)), "mergeable").met).toBe(true);
  });

  it("null: GitHub is still computing mergeability", () => {
    const x = req(evaluateGate(policy(), facts({ ...ok, pr: { mergeable: null } })), "mergeable");
    expect(x.met).toBe(false);
    expect(`${x.detail}. ${x.fix}`).toContain("still computing mergeability");
    expect(x.fix).toContain("moment");
  });

  it("false: conflicts", () => {
    const x = req(evaluateGate(policy(), facts({ ...ok, pr: { mergeable: false } })), "mergeable");
    expect(x.met).toBe(false);
    expect(x.detail).toContain("conflicts");
  });

  it("can be switched off", () => {
    const r = evaluateGate(policy({ require: { mergeable: false } }), facts({ ...ok, pr: { mergeable: false } }));
    expect(ids(r)).not.toContain("mergeable");
    expect(r.allowed).toBe(true);
  });
});

describe("undiverged", () => {
  const ok = { commands: [approve("bob")] };

  it("is met when 0 commits behind", () => {
    expect(req(evaluateGate(policy(), facts(ok)), "undiverged").met).toBe(true);
  });

  it("is unmet when behind, counting the commits and telling to merge or rebase, then preview again", () => {
    const x = req(evaluateGate(policy(), facts({ ...ok, pr: { behindBy: 3 } })), "undiverged");
    expect(x.met).toBe(false);
    expect(x.detail).toBe("3 commits behind the base branch");
    expect(x.fix).toMatch(/merge or rebase/i);
    expect(x.fix).toContain("/agent preview prod");
    expect(req(evaluateGate(policy(), facts({ ...ok, pr: { behindBy: 1 } })), "undiverged").detail).toBe("1 commit behind the base branch");
  });

  it("is unmet when unknown (null)", () => {
    const x = req(evaluateGate(policy(), facts({ ...ok, pr: { behindBy: null } })), "undiverged");
    expect(x.met).toBe(false);
    expect(x.detail).toContain("unknown");
  });

  it("can be switched off", () => {
    const r = evaluateGate(policy({ require: { undiverged: false } }), facts({ ...ok, pr: { behindBy: 5 } }));
    expect(ids(r)).not.toContain("undiverged");
    expect(r.allowed).toBe(true);
  });
});

describe("not-draft", () => {
  const ok = { commands: [approve("bob")] };

  it("is met for a PR ready for review and unmet for a draft", () => {
    expect(req(evaluateGate(policy(), facts(ok)), "not-draft").met).toBe(true);
    const x = req(evaluateGate(policy(), facts({ ...ok, pr: { draft: true } })), "not-draft");
    expect(x.met).toBe(false);
    expect(x.detail).toContain("draft");
  });

  it("can be switched off", () => {
    const r = evaluateGate(policy({ require: { notDraft: false } }), facts({ ...ok, pr: { draft: true } }));
    expect(ids(r)).not.toContain("not-draft");
    expect(r.allowed).toBe(true);
  });
});

describe("lock-held", () => {
  const ok = { commands: [approve("bob")] };

  it("is met when this PR holds the lock", () => {
    expect(req(evaluateGate(policy(), facts(ok)), "lock-held").met).toBe(true);
  });

  it("is unmet when another PR holds it, naming that PR", () => {
    const x = req(evaluateGate(policy(), facts({ ...ok, lock: { prNumber: 12 } })), "lock-held");
    expect(x.met).toBe(false);
    expect(x.detail).toContain("#12");
  });

  it("is unmet when the stack is free, telling to preview to take the lock", () => {
    const x = req(evaluateGate(policy(), facts({ ...ok, lock: null })), "lock-held");
    expect(x.met).toBe(false);
    expect(x.fix).toContain("/agent preview prod");
    expect(x.fix).toContain("lock");
  });

  it("can be switched off", () => {
    const r = evaluateGate(policy({ require: { lockHeld: false } }), facts({ ...ok, lock: { prNumber: 12 } }));
    expect(ids(r)).not.toContain("lock-held");
    expect(r.allowed).toBe(true);
  });
});

describe("renderGateChecklist", () => {
  it("renders an allowed gate with every requirement checked", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("bob")] }));
    const md = renderGateChecklist("prod", r, HEAD);
    const lines = md.split("\n");
    expect(lines[0]).toBe("Deploy of `prod` at `1234567` can proceed:");
    for (const label of [
      "Not from a fork",
      "Preview of the head commit succeeded",
      "Approvals",
      "No /deny in force",
      "Required status checks",
      "Mergeable",
      "Up to date with the base branch",
      "Not a draft",
      "Stack lock held by this PR",
    ]) {
      expect(lines.some((l) => l.startsWith(`- [x] ${label} — `))).toBe(true);
    }
    expect(md).not.toContain("- [ ]");
    expect(md).not.toContain("<details>");
  });

  it("renders a blocked gate with [ ] and the fix on unmet requirements, and the ignored approvals", () => {
    const r = evaluateGate(
      policy({ requiredApprovals: 2 }),
      facts({ pr: { draft: true, behindBy: 2 }, commands: [approve("bob"), approve("alice")], reviews: [review("carol", "APPROVED", { sha: OLD })] }),
    );
    const md = renderGateChecklist("prod", r, HEAD);
    expect(md.split("\n")[0]).toBe("Deploy of `prod` at `1234567` is blocked:");
    expect(md).toMatch(/^- \[ \] Approvals — 1 of 2 approvals \(@\u200bbob\)\. Needs 1 more approval/m);
    expect(md).toMatch(/^- \[ \] Not a draft — the pull request is a draft\. Mark it ready for review\.$/m);
    expect(md).toMatch(/^- \[ \] Up to date with the base branch — 2 commits behind the base branch\. Merge or rebase/m);
    expect(md).toMatch(/^- \[x\] Mergeable — /m);
    expect(md.match(/^- \[[ x]\] /gm)).toHaveLength(r.requirements.length);
    expect(md).toContain("<details>");
    expect(md).toContain("the PR author cannot approve their own change");
    expect(md).toContain("approved an older commit abc1234");
    expect(md).toContain("</details>");
  });

  it("escapes a hostile login everywhere it appears", () => {
    const hostile = "a`b<img>";
    const r = evaluateGate(
      policy({ requiredApprovals: 2, approvers: { users: [hostile], teams: [] } }),
      facts({ pr: { author: "x`y<script>" }, commands: [approve(hostile), approve("x`y<script>"), deny(hostile, { at: minutesAgo(40) })] }),
    );
    expect(logins(r)).toEqual([hostile]);
    const md = renderGateChecklist("prod", r, HEAD);
    expect(md).not.toContain("<img>");
    expect(md).not.toContain("<script>");
    expect(md).not.toContain("a`b");
    expect(md).toContain("a\\`b&lt;img&gt;");
    expect(md).toContain("x\\`y&lt;script&gt;");
  });

  it("escapes hostile check names and stack names", () => {
    const r = evaluateGate(policy(), facts({ checks: [], requiredChecks: ["<img src=x onerror=alert(1)>"] }));
    const md = renderGateChecklist("p`rod", r, HEAD);
    expect(md).not.toContain("<img");
    expect(md.split("\n")[0]).toBe("Deploy of `prod` at `1234567` is blocked:");
  });
});

describe("renderGateChecklist: references", () => {
  it("keeps #123 as a pull request reference", () => {
    const md = renderGateChecklist("prod", evaluateGate(policy(), facts({ lock: { prNumber: 12 } })), HEAD);
    expect(md).toContain("locked by #12.");
  });
});

describe("the stack's GitHub environment (protection rules as requirements)", () => {
  const rules = (over: Partial<import("../../src/approval/environment.js").EnvironmentRules> = {}) => ({ name: "production", reviewers: null, preventSelfReview: false, waitTimerMinutes: 0, branchPolicy: null, ...over });
  const env = (over: Parameters<typeof rules>[0] = {}, ref = { name: "feature", protected: false }) => ({ environment: { rules: rules(over), ref } });

  it("no environment (or one without rules) adds nothing", () => {
    expect(ids(evaluateGate(policy(), facts({ commands: [approve("bob")] })))).not.toContain("environment-reviewers");
    const r = evaluateGate(policy(), facts({ commands: [approve("bob")], ...env() }));
    expect(r.allowed).toBe(true);
    expect(ids(r).filter((id) => id.startsWith("environment"))).toEqual([]);
  });

  it("required reviewers: an approval of the plan by one of them (user or team member) is needed, besides the stack's own count", () => {
    const need = env({ reviewers: { users: ["carol"], teams: ["sre"] } });
    const byBob = evaluateGate(policy(), facts({ commands: [approve("bob")], ...need }));
    expect(byBob.allowed).toBe(false);
    expect(req(byBob, "environment-reviewers")).toMatchObject({ met: false, waitsForApproval: true });
    expect(req(byBob, "environment-reviewers").detail).toContain("@carol, a member of team sre");
    expect(byBob.waitsOnlyForApprovals).toBe(true);
    expect(evaluateGate(policy(), facts({ commands: [approve("bob"), approve("carol")], ...need })).allowed).toBe(true);
    expect(evaluateGate(policy(), facts({ commands: [approve("dave")], teamMembers: { sre: ["dave"] }, ...need })).allowed).toBe(true);
    // An approval that does not count for the plan (another plan) does not satisfy the environment either.
    expect(evaluateGate(policy(), facts({ commands: [approve("bob"), approve("carol", { planHash: "sha256:other" })], ...need })).allowed).toBe(false);
  });

  it("prevent self-review: the PR's author never satisfies the reviewers rule (the gate never counts the author anyway)", () => {
    const need = env({ reviewers: { users: ["alice"], teams: [] }, preventSelfReview: true });
    const r = evaluateGate(policy({ requiredApprovals: 0 }), facts({ commands: [approve("alice")], ...need }));
    expect(req(r, "environment-reviewers").met).toBe(false);
    expect(req(r, "environment-reviewers").fix).toContain("prevents self-review");
  });

  it("wait timer: counted from the approval that completed it", () => {
    const need = env({ waitTimerMinutes: 45 });
    expect(req(evaluateGate(policy(), facts({ commands: [approve("bob", { at: minutesAgo(30) })], ...need })), "environment-wait-timer")).toMatchObject({ met: false });
    expect(req(evaluateGate(policy(), facts({ commands: [approve("bob", { at: minutesAgo(50) })], ...need })), "environment-wait-timer").met).toBe(true);
    expect(req(evaluateGate(policy(), facts({ ...need })), "environment-wait-timer").detail).toContain("not given yet");
  });

  it("deployment branches: protected branches only, or the custom patterns", () => {
    const prot = evaluateGate(policy(), facts({ commands: [approve("bob")], ...env({ branchPolicy: { protectedBranches: true } }, { name: "feature", protected: false }) }));
    expect(req(prot, "environment-branch")).toMatchObject({ met: false });
    expect(req(prot, "environment-branch").detail).toContain("protected branches only, not from feature");
    expect(evaluateGate(policy(), facts({ commands: [approve("bob")], ...env({ branchPolicy: { protectedBranches: true } }, { name: "main", protected: true }) })).allowed).toBe(true);
    const custom = { branchPolicy: { protectedBranches: false as const, patterns: ["release/*", "main"] } };
    expect(evaluateGate(policy(), facts({ commands: [approve("bob")], ...env(custom, { name: "release/v2", protected: false }) })).allowed).toBe(true);
    expect(req(evaluateGate(policy(), facts({ commands: [approve("bob")], ...env(custom, { name: "feature/x", protected: false }) })), "environment-branch").met).toBe(false);
  });

  it("the checklist names the environment's requirements", () => {
    const r = evaluateGate(policy(), facts({ commands: [approve("bob")], ...env({ reviewers: { users: ["carol"], teams: [] } }) }));
    expect(renderGateChecklist("prod", r, HEAD)).toMatch(/- \[ \] Environment's required reviewer approved — the production environment needs one of its required reviewers/);
  });
});
