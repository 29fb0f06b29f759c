/**
 * The deploy gate: may this pull request deploy this stack now, and if not, why not. Pure
 * policy: the caller gathers the facts (reviews, /approve and /deny comments, permissions, team
 * members, checks, the latest preview, the lock) and the current time, and asks here.
 *
 * Approvals are bound to what the approver saw: the head commit and the plan of the latest
 * successful preview of it that had finished before the approval (`previews`). A push, or a
 * re-preview of the head with a different plan, makes them stale; a re-preview with the same
 * plan does not (see `commandReason`). The people who changed the code (the author, pushers,
 * committers: `pr.changedBy`) never approve it, and an approval a deploy already used
 * (`consumed`) never counts again.
 *
 * Long (about 730 lines) on purpose: the fact and result types, the judging of approvals and
 * each requirement read the same facts and are the one policy a reviewer must read whole; it
 * is pure code with no I/O, tested requirement by requirement (test/unit/gate*.test.ts).
 */
import { describeBudget, type BudgetState } from "./error-budget.js";
import { environmentRequirements, type EnvironmentFacts, type EnvironmentRequirement } from "./environment.js";
import type { TaskState } from "../domain/states.js";
import { hasAtLeast, isBotActor, type RepoPermission } from "./permissions.js";
import { applyPlanDecision, missingRequiredApprovers, type PlanApprovalRequirement } from "./gate-plan.js";
import { joinAnd, joinOr, loginKey, peopleNames, teamKey } from "./names.js";
import type { PlanDecision } from "./plan-policy.js";

export type ApprovalSource = "reviews" | "comments" | "both";

export interface GateRequirements {
  previewSucceeded: boolean;
  statusChecks: boolean;
  mergeable: boolean;
  undiverged: boolean;
  notDraft: boolean;
  lockHeld: boolean;
}

export interface GatePolicy {
  /** ≥ 0 (0 = no approval needed). */
  requiredApprovals: number;
  /** null: anyone with write (or higher) permission may approve. */
  approvers: { users: string[]; teams: string[] } | null;
  sources: ApprovalSource;
  approvalTtlSeconds: number;
  require: GateRequirements;
}

export const DEFAULT_GATE_POLICY: GatePolicy = Object.freeze({
  requiredApprovals: 1,
  approvers: null,
  sources: "both" as const,
  approvalTtlSeconds: 86_400,
  require: Object.freeze({
    previewSucceeded: true,
    statusChecks: true,
    mergeable: true,
    undiverged: true,
    notDraft: true,
    lockHeld: true,
  }),
});

/** GitHub REST shapes (pulls.listReviews items), only the fields used. */
export interface ReviewFact {
  id: number;
  user: { login: string; type: string } | null;
  state: string;
  commit_id: string | null;
  submitted_at: string | null;
}

export interface ApprovalCommand {
  /** The approvals row id (what a deploy records as used); absent in facts built by hand. */
  id?: string;
  kind: "approve" | "deny";
  actor: string;
  actorType: string;
  headSha: string;
  planHash: string | null;
  at: Date;
}

/** Someone who changed the pull request's code, and how: they never approve it. */
export interface ChangedBy {
  login: string;
  /** As the checklist says it: "pushed to this pull request", "wrote a commit of it" … */
  why: string;
}

/** A successful preview of the head commit of this stack: the plan an approver could have seen from `finishedAt` on. */
export interface PreviewSeen {
  planHash: string;
  finishedAt: Date;
}

/** Which approval: an approvals row (`/approve`, a button, a Slack click) or a GitHub review. */
export interface ApprovalRef {
  source: "comment" | "review";
  id: string;
}

/** An approval a deploy already used (recorded when that deploy was claimed). */
export interface ConsumedApproval extends ApprovalRef {
  deploy: { planHash: string; state: string };
}

export interface CheckFact {
  name: string;
  status: string;
  conclusion: string | null;
}

export interface GateFacts {
  now: Date;
  stack: string;
  prNumber: number;
  pr: {
    author: string;
    headSha: string;
    /**
     * Draft, mergeability and how far behind the base: facts of a pull request, omitted for a
     * mainline commit (rollback, merge commit), whose policy switches those requirements off.
     * Asked anyway, an omitted fact is unmet: nothing passes on a fact nobody gathered.
     */
    draft?: boolean;
    mergeable?: boolean | null;
    behindBy?: number | null;
    fromFork: boolean;
    /** How replies name `author` (default "the PR author"; a rollback's requester otherwise). */
    authorLabel?: string;
    /**
     * Whether the pull request is open; omitted for a default-branch commit (rollback, merge
     * commit), which has no pull request to be open.
     */
    open?: boolean;
    /** Pushers and committers (besides `author`): never approvers of this head, like the author. */
    changedBy?: ChangedBy[];
  };
  /** The latest preview of this stack on this PR, or null; `policy`: the plan policy's decision on it. */
  preview: { headSha: string; planHash: string | null; state: TaskState; finishedAt: Date | null; policy?: PlanDecision | null } | null;
  /**
   * Every successful preview of the head commit of this stack (any order): an approval counts
   * for the plan of the latest one that finished before it. Default: `preview` alone, when it
   * is a successful preview of the head.
   */
  previews?: PreviewSeen[];
  /** Approvals a deploy of this stack already used: they never count again. */
  consumed?: ConsumedApproval[];
  reviews: ReviewFact[];
  /** `/approve` and `/deny` comments on this PR that name this stack or no stack, oldest first. */
  commands: ApprovalCommand[];
  /** Repository permission of every login that appears in reviews/commands (missing = none). */
  permissions: Record<string, RepoPermission>;
  /** Members of the teams named in policy.approvers.teams (team slug → logins). */
  teamMembers: Record<string, string[]>;
  /** Check runs / statuses on the head SHA. */
  checks: CheckFact[];
  /** Names of the checks branch protection (or config) requires. */
  requiredChecks: string[];
  lock: { prNumber: number } | null;
  /** The stack's GitHub environment's protection rules and the ref deployed; absent: no environment (or none configured). */
  environment?: EnvironmentFacts | null;
  /** The stack's error budget now (src/approval/error-budget.ts); absent: budgets are off, or a rollback (never held by one). */
  budget?: BudgetState | null;
  /** The deploy's effective trust tier (src/approval/tiers.ts): its extra approvals add to the stack's; absent: not known (a rollback). */
  tier?: { name: string; extraApprovals: number; rule: string } | null;
}

export type RequirementId =
  | "pr-open"
  | "not-fork"
  | "preview-succeeded"
  | "plan-policy"
  | "approvals"
  | "not-denied"
  | "status-checks"
  | "mergeable"
  | "undiverged"
  | "not-draft"
  | "lock-held"
  /** Merge queue: the group commit plans each stack as the group's pull requests' approvals (src/approval/merge-group.ts). */
  | "merge-group"
  /** The stack's error budget: exhausted, its deploys need one more approval, from a maintainer (or are frozen). */
  | "error-budget"
  /** The stack's GitHub environment's protection rules (src/approval/environment.ts). */
  | EnvironmentRequirement["id"];

export interface Requirement {
  id: RequirementId;
  met: boolean;
  /** What is true now. */
  detail: string;
  /** What to do when unmet; null when met. */
  fix: string | null;
  /** Unmet, and an approval (of the right person) is all it lacks: no change to the code or plan needed. */
  waitsForApproval: boolean;
}

export interface CountedApproval {
  login: string;
  via: "review" | "comment";
  at: Date;
}

export interface IgnoredApproval {
  login: string;
  via: "review" | "comment";
  why: string;
}

/** What became of one approval (a review or an approvals row), by reference. */
export interface ApprovalVerdict {
  ref: ApprovalRef;
  login: string;
  via: "review" | "comment";
  /** counted; valid but the person counted already (`duplicate`); or ignored, with `why`. */
  status: "counted" | "duplicate" | "ignored";
  why: string | null;
}

export interface GateResult {
  /** Every checked requirement met. */
  allowed: boolean;
  /**
   * Every requirement the policy checks, in a fixed order (REQUIREMENT_ORDER); switched-off ones
   * are omitted, not-fork, approvals and not-denied are always present.
   */
  requirements: Requirement[];
  counted: CountedApproval[];
  /** Each candidate approval that did not count, with the reason. */
  ignored: IgnoredApproval[];
  deniedBy: string | null;
  /** The plan hash the approvals are bound to (the preview's), or null. */
  planHash: string | null;
  /** The unmet requirements, in REQUIREMENT_ORDER (empty when allowed). */
  blockedBy: RequirementId[];
  /** Not allowed, and only approvals are missing: asking people (e.g. in Slack) can unblock it. */
  waitsOnlyForApprovals: boolean;
  /** Every review and approvals row that has an id (`ref`), with what became of it. */
  verdicts: ApprovalVerdict[];
  /**
   * The approvals a deploy allowed now uses up: each one that counted, and each further valid
   * one of the same people (so no one's second approval of this plan outlives the deploy).
   */
  used: ApprovalRef[];
}

export const REQUIREMENT_ORDER: readonly RequirementId[] = [
  "pr-open",
  "not-fork",
  "preview-succeeded",
  "plan-policy",
  "approvals",
  "not-denied",
  "error-budget",
  "status-checks",
  "mergeable",
  "undiverged",
  "not-draft",
  "lock-held",
  "environment-reviewers",
  "environment-wait-timer",
  "environment-branch",
  "merge-group",
];

/** The app's own deploy check run: never a prerequisite of itself. */
export function isOwnDeployCheck(name: string): boolean {
  return name === "agent/deploy" || name.startsWith("agent/deploy (");
}

/** Check conclusions that let a deploy through. */
const PASSING_CONCLUSIONS = new Set(["success", "neutral", "skipped"]);

/** Review states that decide a reviewer's verdict; COMMENTED and PENDING do not (GitHub's review decision). */
const DECISIVE_REVIEW_STATES = new Set(["APPROVED", "CHANGES_REQUESTED", "DISMISSED"]);

export function evaluateGate(stackPolicy: GatePolicy, facts: GateFacts): GateResult {
  // A lower trust tier asks for more approvals than the stack's own (src/approval/tiers.ts).
  const basePolicy = facts.tier?.extraApprovals ? { ...stackPolicy, requiredApprovals: stackPolicy.requiredApprovals + facts.tier.extraApprovals } : stackPolicy;
  // The plan policy's decision on the previewed plan raises the approvals needed (and may name
  // approvers) or denies outright; only a decision on the head commit's preview applies.
  const decision = facts.preview && facts.preview.headSha === facts.pr.headSha ? (facts.preview.policy ?? null) : null;
  const applied = decision ? applyPlanDecision(basePolicy, decision) : null;
  const policy = applied ? { ...basePolicy, requiredApprovals: applied.requiredApprovals, approvers: applied.approvers } : basePolicy;
  const judged = judgeApprovals(policy, facts);
  const { require } = policy;
  const requirements: Requirement[] = [];
  if (facts.pr.open !== undefined) requirements.push(prOpen(facts));
  requirements.push(notFork(facts));
  if (require.previewSucceeded) requirements.push(previewSucceeded(facts));
  if (decision && applied) requirements.push(planPolicy(decision, applied, judged.counted, facts.teamMembers));
  requirements.push(approvals(policy, facts, judged.counted));
  requirements.push(notDenied(policy, facts, judged.deniers));
  if (facts.budget) requirements.push(errorBudget(policy, facts, facts.budget, judged.counted));
  if (require.statusChecks) requirements.push(statusChecks(facts));
  if (require.mergeable) requirements.push(mergeable(facts));
  if (require.undiverged) requirements.push(undiverged(facts));
  if (require.notDraft) requirements.push(notDraft(facts));
  if (require.lockHeld) requirements.push(lockHeld(facts));
  if (facts.environment) requirements.push(...environmentRequirements(facts.environment, { now: facts.now, author: facts.pr.author, counted: judged.counted, teamMembers: facts.teamMembers }));
  const blockedBy = requirements.filter((r) => !r.met).map((r) => r.id);
  return {
    allowed: blockedBy.length === 0,
    blockedBy,
    waitsOnlyForApprovals: blockedBy.length > 0 && requirements.every((r) => r.met || r.waitsForApproval),
    requirements,
    counted: judged.counted,
    ignored: judged.ignored,
    deniedBy: judged.deniers[0] ?? null,
    planHash: facts.preview?.planHash ?? null,
    verdicts: judged.verdicts,
    used: judged.verdicts.filter((v) => v.status !== "ignored").map((v) => v.ref),
  };
}

// ---------------------------------------------------------------------------------------------
// Approvals and denials

interface Candidate {
  login: string;
  key: string;
  via: "review" | "comment";
  at: Date;
  ref: ApprovalRef | null;
  /** Why it does not count, or null while it still might. */
  why: string | null;
  /** Valid, but a deploy already used it (it still lifts its author's earlier /deny). */
  usedBy: string | null;
  duplicate?: boolean;
}

function judgeApprovals(
  policy: GatePolicy,
  facts: GateFacts,
): { counted: CountedApproval[]; ignored: IgnoredApproval[]; deniers: string[]; verdicts: ApprovalVerdict[] } {
  const who = approverRules(policy, facts);
  const candidates = [...reviewCandidates(policy, facts, who), ...commandCandidates(policy, facts, who)];

  // /deny: by an allowed approver, on the current head. The latest per person.
  const denies = new Map<string, { login: string; at: Date }>();
  for (const c of facts.commands) {
    if (c.kind !== "deny") continue;
    if (who.personReason(c.actor, c.actorType) !== null) continue;
    if (c.headSha !== facts.pr.headSha) continue; // a push clears it
    const key = loginKey(c.actor);
    const prev = denies.get(key);
    if (!prev || c.at.getTime() >= prev.at.getTime()) denies.set(key, { login: c.actor, at: c.at });
  }

  // A deny withdraws that person's earlier approvals; a later valid approval lifts it.
  const deniers: { login: string; at: Date }[] = [];
  for (const [key, deny] of denies) {
    let lifted = false;
    for (const c of candidates) {
      if (c.why !== null || c.key !== key) continue;
      if (c.at.getTime() > deny.at.getTime()) lifted = true;
      else c.why = "withdrawn by their later /deny";
    }
    if (!lifted) deniers.push(deny);
  }
  deniers.sort((a, b) => a.at.getTime() - b.at.getTime());

  // Used by an earlier deploy: it took back no one's /deny above, but it never counts again.
  for (const c of candidates) if (c.why === null && c.usedBy) c.why = c.usedBy;

  // One person counts once: the earliest of their valid approvals.
  const valid = candidates.filter((c) => c.why === null).sort((a, b) => a.at.getTime() - b.at.getTime());
  const seen = new Set<string>();
  const counted: CountedApproval[] = [];
  for (const c of valid) {
    if (seen.has(c.key)) {
      c.why = "already counted (one approval per person)";
      c.duplicate = true;
      continue;
    }
    seen.add(c.key);
    counted.push({ login: c.login, via: c.via, at: c.at });
  }
  const ignored = candidates.filter((c) => c.why !== null).map((c) => ({ login: c.login, via: c.via, why: c.why! }));
  const verdicts = candidates.flatMap((c): ApprovalVerdict[] =>
    c.ref ? [{ ref: c.ref, login: c.login, via: c.via, status: c.why === null ? "counted" : c.duplicate ? "duplicate" : "ignored", why: c.why }] : [],
  );
  return { counted, ignored, deniers: deniers.map((d) => d.login), verdicts };
}

interface ApproverRules {
  /** Why this person can never approve (bot, author, pusher or committer, not allowed), or null. */
  personReason(login: string, type: string): string | null;
}

function approverRules(policy: GatePolicy, facts: GateFacts): ApproverRules {
  const author = loginKey(facts.pr.author);
  // The first reason given for a person is the one shown.
  const changed = new Map<string, string>();
  for (const c of facts.pr.changedBy ?? []) if (!changed.has(loginKey(c.login))) changed.set(loginKey(c.login), c.why);
  const users = new Set((policy.approvers?.users ?? []).map(loginKey));
  const members = new Set<string>();
  for (const team of policy.approvers?.teams ?? []) {
    for (const m of teamMembersOf(facts.teamMembers, team)) members.add(loginKey(m));
  }
  const allowed = (login: string): boolean => {
    if (policy.approvers === null) return hasAtLeast(permissionOf(facts.permissions, login), "write");
    const key = loginKey(login);
    return users.has(key) || members.has(key);
  };
  return {
    personReason(login, type) {
      if (isBotActor({ login, type })) return "bots do not count";
      if (loginKey(login) === author) return `${authorLabel(facts)} cannot approve their own change`;
      const changedHow = changed.get(loginKey(login));
      if (changedHow) return `${changedHow}: the people who changed the code do not approve it`;
      if (!allowed(login)) return "not an allowed approver";
      return null;
    },
  };
}

function reviewCandidates(policy: GatePolicy, facts: GateFacts, who: ApproverRules): Candidate[] {
  // Each reviewer's latest decisive review (COMMENTED and PENDING never withdraw an approval).
  const latest = new Map<string, { review: ReviewFact; at: Date }>();
  for (const review of facts.reviews) {
    if (!DECISIVE_REVIEW_STATES.has(review.state.toUpperCase())) continue;
    const at = parseDate(review.submitted_at);
    if (!at) continue;
    const key = review.user ? loginKey(review.user.login) : "\u0000deleted";
    const prev = latest.get(key);
    if (!prev || at.getTime() > prev.at.getTime() || (at.getTime() === prev.at.getTime() && review.id > prev.review.id)) {
      latest.set(key, { review, at });
    }
  }
  const out: Candidate[] = [];
  for (const [key, { review, at }] of latest) {
    const login = review.user?.login ?? "ghost";
    const ref: ApprovalRef = { source: "review", id: String(review.id) };
    out.push({ login, key, via: "review", at, ref, why: reviewReason(policy, facts, who, review, at), usedBy: usedBy(facts, ref) });
  }
  return out;
}

function reviewReason(policy: GatePolicy, facts: GateFacts, who: ApproverRules, review: ReviewFact, at: Date): string | null {
  if (policy.sources === "comments") return "approving reviews do not count here (only /approve comments)";
  if (!review.user) return "the reviewer's account no longer exists";
  const person = who.personReason(review.user.login, review.user.type);
  if (person) return person;
  const state = review.state.toUpperCase();
  if (state === "DISMISSED") return "review dismissed";
  if (state === "CHANGES_REQUESTED") return "latest review requests changes";
  if (review.commit_id !== facts.pr.headSha) {
    return review.commit_id ? `approved an older commit ${short(review.commit_id)}` : "approved an unknown commit";
  }
  if (expired(policy, facts, at)) return "approval expired";
  // A review approves the commit, and the plan previewed of it before it was submitted. With
  // no preview required and none made, there is no plan to bind to: the commit alone.
  const history = previewHistory(facts);
  if (history.length === 0 && !policy.require.previewSucceeded) return null;
  const current = currentPlan(facts);
  if (current === null) return "there is no previewed plan to approve";
  const seen = planSeenAt(history, at);
  if (!seen) return `submitted before any preview of ${short(facts.pr.headSha)} finished`;
  if (seen.planHash !== current) return "approved a different plan";
  return planChangedSince(history, at, seen.planHash);
}

function commandCandidates(policy: GatePolicy, facts: GateFacts, who: ApproverRules): Candidate[] {
  const out: Candidate[] = [];
  for (const c of facts.commands) {
    if (c.kind !== "approve") continue;
    const ref: ApprovalRef | null = c.id ? { source: "comment", id: c.id } : null;
    out.push({ login: c.actor, key: loginKey(c.actor), via: "comment", at: c.at, ref, why: commandReason(policy, facts, who, c), usedBy: ref ? usedBy(facts, ref) : null });
  }
  return out;
}

function commandReason(policy: GatePolicy, facts: GateFacts, who: ApproverRules, c: ApprovalCommand): string | null {
  if (policy.sources === "reviews") return "/approve comments do not count here (only approving reviews)";
  const person = who.personReason(c.actor, c.actorType);
  if (person) return person;
  if (c.headSha !== facts.pr.headSha) return `approved an older commit ${short(c.headSha)}`;
  const preview = facts.preview;
  if (!preview || preview.planHash === null) return "there is no previewed plan to approve";
  if (c.planHash !== preview.planHash) return "approved a different plan";
  if (expired(policy, facts, c.at)) return "approval expired";
  // Bound to the plan previewed before it was given. The old rule here ("approved before the
  // latest preview") made every approval stale on any re-preview; now a re-preview of the same
  // commit that plans the same (the same hash: the very artifact that is applied) keeps it,
  // because what is applied is still exactly what was approved. One that plans differently
  // makes it stale for good, even if a later preview plans the first plan again: the approver
  // was shown that the plan is not stable, and is asked again.
  const history = previewHistory(facts);
  const seen = planSeenAt(history, c.at);
  if (!seen) return `approved before any preview of ${short(facts.pr.headSha)} finished`;
  if (seen.planHash !== c.planHash) return "approved a different plan";
  return planChangedSince(history, c.at, c.planHash);
}

/** The successful previews of the head an approval can bind to, oldest first. */
function previewHistory(facts: GateFacts): PreviewSeen[] {
  const p = facts.preview;
  const list =
    facts.previews ??
    (p && p.state === "SUCCEEDED" && p.planHash !== null && p.finishedAt && p.headSha === facts.pr.headSha ? [{ planHash: p.planHash, finishedAt: p.finishedAt }] : []);
  return [...list].sort((a, b) => a.finishedAt.getTime() - b.finishedAt.getTime());
}

/** The plan the approvals are for: the latest preview's, when it is a successful preview of the head. */
function currentPlan(facts: GateFacts): string | null {
  const p = facts.preview;
  return p && p.headSha === facts.pr.headSha && p.state === "SUCCEEDED" ? p.planHash : null;
}

/** The latest preview that had finished strictly before `at` (what an approver could have seen). */
export function planSeenAt(history: readonly PreviewSeen[], at: Date): PreviewSeen | null {
  let seen: PreviewSeen | null = null;
  for (const p of history) {
    if (p.finishedAt.getTime() < at.getTime() && (!seen || p.finishedAt.getTime() >= seen.finishedAt.getTime())) seen = p;
  }
  return seen;
}

function planChangedSince(history: readonly PreviewSeen[], at: Date, planHash: string): string | null {
  const other = history.find((p) => p.finishedAt.getTime() >= at.getTime() && p.planHash !== planHash);
  return other ? `the plan changed after the approval (re-previewed as ${shortPlan(other.planHash)})` : null;
}

function usedBy(facts: GateFacts, ref: ApprovalRef): string | null {
  const hit = (facts.consumed ?? []).find((c) => c.source === ref.source && c.id === ref.id);
  if (!hit) return null;
  const how: Record<string, string> = { SUCCEEDED: "succeeded", FAILED: "failed", RUNNING: "is applying", NEEDS_ATTENTION: "needs attention" };
  return `already used by the deploy of plan ${shortPlan(hit.deploy.planHash)}, which ${how[hit.deploy.state] ?? hit.deploy.state.toLowerCase()}`;
}

function authorLabel(facts: GateFacts): string {
  return facts.pr.authorLabel ?? "the PR author";
}

function expired(policy: GatePolicy, facts: GateFacts, at: Date): boolean {
  return facts.now.getTime() - at.getTime() >= policy.approvalTtlSeconds * 1000;
}

// ---------------------------------------------------------------------------------------------
// Requirements

function prOpen(facts: GateFacts): Requirement {
  return facts.pr.open
    ? met("pr-open", "the pull request is open")
    : unmet("pr-open", "the pull request is closed", "Reopen it, preview again and get the new plan approved.");
}

function notFork(facts: GateFacts): Requirement {
  return facts.pr.fromFork
    ? unmet("not-fork", "the head branch is in a fork; deploys from forks are refused", "Push the branch to this repository and open a pull request from it.")
    : met("not-fork", "the head branch is in this repository");
}

function previewSucceeded(facts: GateFacts): Requirement {
  const id = "preview-succeeded";
  const { preview, stack } = facts;
  const head = short(facts.pr.headSha);
  const rerun = `Run /agent preview ${stack}.`;
  if (!preview) return unmet(id, `no preview of ${stack} on this pull request yet`, rerun);
  if (preview.headSha !== facts.pr.headSha) {
    return unmet(id, `the latest preview is of an older commit ${short(preview.headSha)}, not the head ${head}`, rerun);
  }
  switch (preview.state) {
    case "SUCCEEDED":
      return preview.planHash === null
        ? unmet(id, `the preview of ${head} succeeded but recorded no plan`, `Run /agent preview ${stack} again.`)
        : met(id, `the preview of ${head} succeeded`);
    case "FAILED":
      return unmet(id, `the preview of ${head} failed`, `Fix the errors it reports, push, and run /agent preview ${stack} again.`);
    case "BLOCKED":
      return unmet(id, `the preview of ${head} was blocked`, `See why on its check run, then run /agent preview ${stack} again.`);
    case "CANCELLED":
      return unmet(id, `the preview of ${head} was cancelled`, rerun);
    case "PENDING":
      return unmet(id, `the preview of ${head} is queued`, "Wait for it to finish, then try again.");
    case "RUNNING":
      return unmet(id, `the preview of ${head} is still running`, "Wait for it to finish, then try again.");
  }
}

function planPolicy(decision: PlanDecision, applied: PlanApprovalRequirement, counted: CountedApproval[], teamMembers: Record<string, string[]>): Requirement {
  const id = "plan-policy";
  const rules = (kind: "DENY" | "NEEDS_APPROVAL") =>
    decision.findings
      .filter((f) => f.decision === kind)
      .map((f) => `${f.rule}: ${f.message.replace(/\.+$/, "")}`)
      .join("; ");
  if (applied.denied) {
    return unmet(id, `DENY — ${rules("DENY")}`, "A denied plan cannot be approved: change it so no DENY rule fires (or have the policy changed on the default branch or the server), then preview again.");
  }
  if (decision.decision === "ALLOW") return met(id, "ALLOW — no rule fired");
  const missing = missingRequiredApprovers(applied.requiredApprovers, counted.map((c) => c.login), teamMembers);
  const extra = decision.extraApprovals ? ` (+${decision.extraApprovals} approval${decision.extraApprovals === 1 ? "" : "s"}, counted under Approvals)` : "";
  if (missing.users.length || missing.teams.length) {
    return unmet(id, `NEEDS_APPROVAL${extra} — ${rules("NEEDS_APPROVAL")}`, `Needs an approval from ${joinAnd(peopleNames(missing))}.`, true);
  }
  return met(id, `NEEDS_APPROVAL${extra} — ${rules("NEEDS_APPROVAL")}`);
}

function approvals(policy: GatePolicy, facts: GateFacts, counted: CountedApproval[]): Requirement {
  const id = "approvals";
  const need = Math.max(0, Math.ceil(Number.isFinite(policy.requiredApprovals) ? policy.requiredApprovals : 0));
  const names = counted.map((c) => `@${c.login}`).join(", ");
  if (need === 0) return met(id, counted.length ? `no approval required (${counted.length} given: ${names})` : "no approval required");
  const detail = `${counted.length} of ${need} approval${need === 1 ? "" : "s"}${counted.length ? ` (${names})` : ""}`;
  if (counted.length >= need) return met(id, detail);
  const missing = need - counted.length;
  const notWho = facts.pr.changedBy?.length ? `not ${authorLabel(facts)} nor anyone who pushed to or wrote commits of it` : `not ${authorLabel(facts)}`;
  return unmet(id, detail, `Needs ${missing} more approval${missing === 1 ? "" : "s"} from ${whoMayApprove(policy)}, ${notWho}: ${howToApprove(policy, facts)}.`, true);
}

/**
 * An exhausted error budget takes autonomy away: one approval more than the stack needs, and one
 * of the approvals from a maintainer (maintain or admin), or no deploy at all when the server
 * freezes exhausted stacks. Within budget it is met and says how much is used.
 */
function errorBudget(policy: GatePolicy, facts: GateFacts, budget: BudgetState, counted: CountedApproval[]): Requirement {
  const id = "error-budget";
  const used = describeBudget(budget);
  if (!budget.exhausted) return met(id, used);
  const until = budget.frees ? ` until ${budget.frees.toISOString().replace(/\.\d+Z$/, "Z")}, when its oldest error leaves the window, or until an operator resets it` : "";
  const detail = `exhausted — ${used} (${budget.why.join("; ")})`;
  if (budget.limits.onExhausted === "freeze") return unmet(id, detail, `Deploys ${budget.scope === "repository" ? "in this repository" : `of ${facts.stack}`} are frozen${until}. Rollbacks still work: /agent rollback ${facts.stack}.`);
  const need = Math.max(0, Math.ceil(Number.isFinite(policy.requiredApprovals) ? policy.requiredApprovals : 0)) + 1;
  const maintainer = counted.find((c) => hasAtLeast(facts.permissions[c.login] ?? "none", "maintain"));
  if (counted.length >= need && maintainer) return met(id, `${detail}; ${counted.length} of ${need} approvals, @${maintainer.login} a maintainer`);
  const missing: string[] = [];
  if (counted.length < need) missing.push(`${need} approvals in all (${counted.length} now)`);
  if (!maintainer) missing.push("one of them from a maintainer (maintain or admin access)");
  return unmet(id, detail, `While the budget is exhausted${until}, a deploy needs ${missing.join(" and ")}.`, true);
}

/** "anyone with write access" or "@alice, @bob or a member of team platform". */
export function whoMayApprove(policy: GatePolicy): string {
  if (policy.approvers === null) return "anyone with write access";
  const parts = policy.approvers.users.map((u) => `@${u.replace(/^@/, "")}`);
  const teams = policy.approvers.teams.map((t) => t.replace(/^@/, ""));
  if (teams.length) parts.push(`a member of team ${joinOr(teams)}`);
  return parts.length ? joinOr(parts) : "nobody (no approvers are configured)";
}

function howToApprove(policy: GatePolicy, facts: GateFacts): string {
  const sha = short(facts.pr.headSha);
  const comment = `comment /approve after the latest preview of ${sha}`;
  const review = `submit an approving review on ${sha}`;
  if (policy.sources === "comments") return comment;
  if (policy.sources === "reviews") return review;
  return `${comment}, or ${review}`;
}

function notDenied(policy: GatePolicy, facts: GateFacts, deniers: string[]): Requirement {
  const id = "not-denied";
  if (!deniers.length) return met(id, "no /deny in force");
  const names = joinAnd(deniers.map((d) => `@${d}`));
  const how = policy.sources === "comments" ? "/approve" : policy.sources === "reviews" ? "an approving review" : "/approve or an approving review";
  const who = deniers.length === 1 ? `${names} can lift it` : "Each of them can lift their /deny";
  return unmet(id, `denied by ${names} on ${short(facts.pr.headSha)}`, `${capitalize(who)} by approving this commit (${how}); a new push also clears it.`);
}

function statusChecks(facts: GateFacts): Requirement {
  const id = "status-checks";
  const required = [...new Set(facts.requiredChecks.filter((n) => !isOwnDeployCheck(n)))];
  if (!required.length) return met(id, "no required checks");
  const missing: string[] = [];
  const pending: string[] = [];
  const failing: string[] = [];
  for (const name of required) {
    // Several runs of one name (the caller should pass the latest): every one must pass.
    const runs = facts.checks.filter((c) => c.name === name);
    const open = runs.find((c) => c.status.toLowerCase() !== "completed");
    const bad = runs.find((c) => c.status.toLowerCase() === "completed" && !PASSING_CONCLUSIONS.has((c.conclusion ?? "").toLowerCase()));
    if (!runs.length) missing.push(`"${name}"`);
    else if (open) pending.push(`"${name}" (${open.status})`);
    else if (bad) failing.push(`"${name}" (${bad.conclusion ?? "no conclusion"})`);
  }
  if (!missing.length && !pending.length && !failing.length) {
    return met(id, `all ${required.length} required check${required.length === 1 ? "" : "s"} passed`);
  }
  const detail: string[] = [];
  const todo: string[] = [];
  if (failing.length) {
    detail.push(`failing: ${failing.join(", ")}`);
    todo.push("fix or re-run the failing checks");
  }
  if (pending.length) {
    detail.push(`pending: ${pending.join(", ")}`);
    todo.push("wait for the pending checks to finish");
  }
  if (missing.length) {
    detail.push(`not reported yet: ${missing.join(", ")}`);
    todo.push(`wait for the missing checks to report on ${short(facts.pr.headSha)}`);
  }
  return unmet(id, detail.join("; "), `${capitalize(todo.join("; "))}, then try again.`);
}

function mergeable(facts: GateFacts): Requirement {
  const id = "mergeable";
  if (facts.pr.mergeable === true) return met(id, "no conflicts with the base branch");
  if (facts.pr.mergeable === null) return unmet(id, "GitHub is still computing mergeability", "Try again in a moment.");
  if (facts.pr.mergeable === undefined) return unmet(id, NOT_A_PULL_REQUEST, NOT_A_PULL_REQUEST_FIX);
  return unmet(id, "the branch has conflicts with the base branch", `Resolve the conflicts (merge or rebase the base branch), then run /agent preview ${facts.stack} again.`);
}

function undiverged(facts: GateFacts): Requirement {
  const id = "undiverged";
  const behind = facts.pr.behindBy;
  if (behind === 0) return met(id, "up to date with the base branch");
  if (behind === undefined) return unmet(id, NOT_A_PULL_REQUEST, NOT_A_PULL_REQUEST_FIX);
  if (behind === null) return unmet(id, "unknown whether the branch is behind the base branch", "Try again in a moment; if it persists, merge the base branch and preview again.");
  return unmet(id, `${behind} commit${behind === 1 ? "" : "s"} behind the base branch`, `Merge or rebase the base branch, then run /agent preview ${facts.stack} again.`);
}

function notDraft(facts: GateFacts): Requirement {
  if (facts.pr.draft === undefined) return unmet("not-draft", NOT_A_PULL_REQUEST, NOT_A_PULL_REQUEST_FIX);
  return facts.pr.draft
    ? unmet("not-draft", "the pull request is a draft", "Mark it ready for review.")
    : met("not-draft", "ready for review");
}

const NOT_A_PULL_REQUEST = "not known: this is a commit of the default branch, not a pull request";
const NOT_A_PULL_REQUEST_FIX = "This requirement applies to pull requests only; the server's gate policy should not ask it of a rollback or merge commit.";

function lockHeld(facts: GateFacts): Requirement {
  const id = "lock-held";
  const lock = facts.lock;
  if (lock?.prNumber === facts.prNumber) return met(id, `${facts.stack} is locked by this pull request`);
  if (lock) {
    return unmet(
      id,
      `${facts.stack} is locked by #${lock.prNumber}`,
      `Wait until #${lock.prNumber} is merged or closed, or ask its author or a maintainer to run /agent unlock ${facts.stack} there.`,
    );
  }
  return unmet(id, `${facts.stack} is not locked`, `Run /agent preview ${facts.stack} to take the lock.`);
}

// ---------------------------------------------------------------------------------------------
// Helpers

function met(id: RequirementId, detail: string): Requirement {
  return { id, met: true, detail, fix: null, waitsForApproval: false };
}

function unmet(id: RequirementId, detail: string, fix: string, waitsForApproval = false): Requirement {
  return { id, met: false, detail, fix, waitsForApproval };
}

function permissionOf(permissions: Record<string, RepoPermission>, login: string): RepoPermission {
  if (Object.hasOwn(permissions, login)) return permissions[login]!;
  const key = loginKey(login);
  for (const [name, p] of Object.entries(permissions)) if (loginKey(name) === key) return p;
  return "none";
}

/** A team's members by slug, tolerating `@org/slug`, `org/slug` and case differences. */
function teamMembersOf(teamMembers: Record<string, string[]>, team: string): string[] {
  if (Object.hasOwn(teamMembers, team)) return teamMembers[team]!;
  const slug = teamKey(team);
  for (const [name, members] of Object.entries(teamMembers)) if (teamKey(name) === slug) return members;
  return [];
}

function parseDate(s: string | null): Date | null {
  if (!s) return null;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

function short(sha: string): string {
  return sha.slice(0, 7);
}

/** As plans are shown everywhere (render/plan.ts shortPlanHash): 12 hex digits after `sha256:`. */
function shortPlan(hash: string): string {
  return hash.replace(/^sha256:/, "").slice(0, 12);
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
