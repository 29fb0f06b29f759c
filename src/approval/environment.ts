/**
 * A GitHub environment's protection rules as gate requirements (the stack deploys to the
 * environment of its name, or `environment.name`). GitHub enforces these rules only on
 * GitHub Actions jobs; a deploy this app runs is held to them here instead, so an environment
 * configured in the repository's settings gates `/agent deploy` too. Pure policy, no I/O.
 *
 * - required reviewers: at least one approval that counts for this plan must come from one of
 *   them (a user, or a member of a team); with "prevent self-review", never the PR's author;
 * - wait timer: the deploy may start only that many minutes after the plan was approved (the
 *   approval that completed it), GitHub's delay before a protected job starts;
 * - deployment branches: the ref being deployed (the PR's head branch; the default branch for a
 *   merge-first, merge-queue or rollback apply) must be protected, or match a branch policy.
 */
import picomatch from "picomatch";

/** A requirement as the gate lists it (src/approval/gate.ts imports this module, not the other way). */
export interface EnvironmentRequirement {
  id: "environment-reviewers" | "environment-wait-timer" | "environment-branch";
  met: boolean;
  detail: string;
  fix: string | null;
  waitsForApproval: boolean;
}

export interface EnvironmentRules {
  name: string;
  /** null: no required reviewers. */
  reviewers: { users: string[]; teams: string[] } | null;
  preventSelfReview: boolean;
  waitTimerMinutes: number;
  /** null: any branch may deploy. */
  branchPolicy: { protectedBranches: true } | { protectedBranches: false; patterns: string[] } | null;
}

export interface EnvironmentFacts {
  rules: EnvironmentRules;
  /** The branch whose commit is deployed, and whether GitHub protects it. */
  ref: { name: string; protected: boolean };
}

const login = (s: string) => s.replace(/^@/, "").toLowerCase();

export function environmentRequirements(env: EnvironmentFacts, facts: { now: Date; author: string; counted: Array<{ login: string; at: Date }>; teamMembers: Record<string, string[]> }): EnvironmentRequirement[] {
  const { rules } = env;
  const out: EnvironmentRequirement[] = [];
  const where = `the ${rules.name} environment`;
  if (rules.reviewers) {
    const users = new Set(rules.reviewers.users.map(login));
    const isReviewer = (who: string) => users.has(login(who)) || rules.reviewers!.teams.some((t) => (facts.teamMembers[t] ?? []).map(login).includes(login(who)));
    const by = facts.counted.filter((c) => isReviewer(c.login) && !(rules.preventSelfReview && login(c.login) === login(facts.author)));
    const who = [...rules.reviewers.users.map((u) => `@${u.replace(/^@/, "")}`), ...rules.reviewers.teams.map((t) => `a member of team ${t}`)].join(", ") || "nobody (no reviewers are listed)";
    out.push(
      by.length
        ? met("environment-reviewers", `${where}: approved by its required reviewer @${by[0]!.login}`)
        : unmet("environment-reviewers", `${where} needs one of its required reviewers to approve this plan (${who})`, `Ask ${who} to approve this plan${rules.preventSelfReview ? " (not the PR's author: the environment prevents self-review)" : ""}.`, true),
    );
  }
  if (rules.waitTimerMinutes > 0) {
    const approvedAt = facts.counted.length ? Math.max(...facts.counted.map((c) => c.at.getTime())) : null;
    const ready = approvedAt === null ? null : approvedAt + rules.waitTimerMinutes * 60_000;
    out.push(
      ready !== null && facts.now.getTime() >= ready
        ? met("environment-wait-timer", `${where}: its ${rules.waitTimerMinutes}-minute wait timer has passed since the approval`)
        : unmet(
            "environment-wait-timer",
            ready === null ? `${where} waits ${rules.waitTimerMinutes} minutes after the approval, which is not given yet` : `${where} waits ${rules.waitTimerMinutes} minutes after the approval: until ${new Date(ready).toISOString()}`,
            "Deploy again once the wait timer has passed.",
          ),
    );
  }
  if (rules.branchPolicy) {
    const policy = rules.branchPolicy;
    const allowed = policy.protectedBranches ? env.ref.protected : picomatch.isMatch(env.ref.name, policy.patterns, { dot: true });
    const rule = policy.protectedBranches ? "protected branches only" : `branches matching ${policy.patterns.join(", ") || "(none)"}`;
    out.push(
      allowed
        ? met("environment-branch", `${where} accepts deploys from ${env.ref.name} (${rule})`)
        : unmet("environment-branch", `${where} accepts deploys from ${rule}, not from ${env.ref.name}`, "Deploy from an allowed branch (for example with `gate.mode: merge-then-deploy`, which applies the default branch), or change the environment's deployment branches."),
    );
  }
  return out;
}

function met(id: EnvironmentRequirement["id"], detail: string): EnvironmentRequirement {
  return { id, met: true, detail, fix: null, waitsForApproval: false };
}

function unmet(id: EnvironmentRequirement["id"], detail: string, fix: string, waitsForApproval = false): EnvironmentRequirement {
  return { id, met: false, detail, fix, waitsForApproval };
}
