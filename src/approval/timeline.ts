/**
 * What a person saw when they approved, vouched or clicked: the pull request's head and plan
 * at that moment, from the recorded pushes and previews. Pure policy, no I/O: the caller reads
 * the pushes (pr_events) and previews (tasks) and asks here. Times are GitHub's (a comment's
 * `created_at`, a push's `pull_request.updated_at`) or the app's for its own previews.
 *
 * "Before" is strict everywhere: a comment written in the same second as a push (GitHub's
 * times have whole seconds) is not taken to have seen it. Doubt falls on the side of asking
 * again, never of counting.
 */

/** A recorded change of the PR's head (a push, an opening) or its closing. */
export interface PushFact {
  kind: "opened" | "reopened" | "synchronize" | "closed" | "observed";
  actor: string;
  headSha: string;
  at: Date;
}

/** A successful preview of a stack on the PR, of whichever commit was the head then. */
export interface PreviewFact {
  headSha: string;
  planHash: string;
  finishedAt: Date;
}

/** The head as recorded at `at`: the latest push (or opening, or observation) strictly before it; null when none is recorded. */
export function headAt(pushes: readonly PushFact[], at: Date): PushFact | null {
  let best: PushFact | null = null;
  for (const p of pushes) {
    if (p.kind === "closed") continue;
    if (p.at.getTime() < at.getTime() && (!best || p.at.getTime() >= best.at.getTime())) best = p;
  }
  return best;
}

/** Whether the PR was closed after its last opening, by the records (null: nothing recorded). */
export function closedByRecords(pushes: readonly PushFact[]): boolean | null {
  let last: PushFact | null = null;
  for (const p of pushes) {
    if (p.kind === "synchronize" || p.kind === "observed") continue;
    if (!last || p.at.getTime() >= last.at.getTime()) last = p;
  }
  return last ? last.kind === "closed" : null;
}

/** The latest preview that finished strictly before `at`. */
function seenAt(previews: readonly PreviewFact[], at: Date): PreviewFact | null {
  let seen: PreviewFact | null = null;
  for (const p of previews) {
    if (p.finishedAt.getTime() < at.getTime() && (!seen || p.finishedAt.getTime() >= seen.finishedAt.getTime())) seen = p;
  }
  return seen;
}

/** The newest successful preview of `sha`, or null. */
function latestOf(previews: readonly PreviewFact[], sha: string): PreviewFact | null {
  let out: PreviewFact | null = null;
  for (const p of previews) if (p.headSha === sha && (!out || p.finishedAt.getTime() >= out.finishedAt.getTime())) out = p;
  return out;
}

export type ApprovalBinding =
  /** Nothing of this stack had been previewed when the comment was written: nothing to record. */
  | { kind: "nothing-seen"; why: string }
  /**
   * What the approval is bound to: the head at the comment's time and the plan the commenter
   * saw of it (null: the head had moved past every finished preview). `stale`: why it cannot
   * count now (the head or plan changed after it), or null.
   */
  | { kind: "bound"; headSha: string; planHash: string | null; stale: string | null };

/**
 * `/approve` written at `at`: binds to the head then and the plan of the latest successful
 * preview of this stack that had finished before it, and says whether that is still current.
 */
export function bindApproval(i: { at: Date; currentHead: string; pushes: readonly PushFact[]; previews: readonly PreviewFact[] }): ApprovalBinding {
  const seen = seenAt(i.previews, i.at);
  const head = headAt(i.pushes, i.at)?.headSha ?? null;
  if (!seen) {
    const later = latestOf(i.previews, i.currentHead);
    return {
      kind: "nothing-seen",
      why: later
        ? `your comment was written before the preview of ${short(i.currentHead)} finished, so it approved no plan`
        : `there is no successful preview of the head commit ${short(i.currentHead)} to approve`,
    };
  }
  if (head !== null && head !== seen.headSha) {
    return {
      kind: "bound",
      headSha: head,
      planHash: null,
      stale: `when you commented, the head was already ${short(head)}, whose preview had not finished (the plan you saw was of ${short(seen.headSha)})`,
    };
  }
  const bound = { kind: "bound" as const, headSha: seen.headSha, planHash: seen.planHash };
  if (seen.headSha !== i.currentHead) {
    // With the push on record before the comment we know it came after; without records, only that it moved.
    return {
      ...bound,
      stale: head !== null ? `the head moved to ${short(i.currentHead)} after your comment (you saw the plan of ${short(seen.headSha)})` : `the head is now ${short(i.currentHead)}, not ${short(seen.headSha)} whose plan you saw`,
    };
  }
  const current = latestOf(i.previews, i.currentHead)!;
  const changed = i.previews.find((p) => p.headSha === i.currentHead && p.finishedAt.getTime() >= i.at.getTime() && p.planHash !== seen.planHash);
  if (changed) {
    return {
      ...bound,
      stale: `the plan changed after your comment: you saw plan ${shortPlan(seen.planHash)}, ${current.planHash === seen.planHash ? `and a later preview planned ${shortPlan(changed.planHash)}` : `the current plan is ${shortPlan(current.planHash)}`}`,
    };
  }
  return { ...bound, stale: null };
}

export type ClickedPreviewJudgement = { current: true } | { current: false; why: string };

/**
 * A check run's Approve or Deploy button stands for its own preview task: its commit and plan.
 * It is honoured only while that is still the head and the plan of its latest successful
 * preview (a re-preview with the same plan keeps it current).
 */
export function judgeClickedPreview(i: {
  clicked: { headSha: string; planHash: string | null; state: string };
  currentHead: string;
  /** The plan of the latest successful preview of the current head, or null. */
  currentPlan: string | null;
}): ClickedPreviewJudgement {
  const { clicked } = i;
  if (clicked.state !== "SUCCEEDED" || !clicked.planHash) return { current: false, why: "that preview did not produce a plan" };
  if (clicked.headSha !== i.currentHead) {
    return {
      current: false,
      why: `the head moved to ${short(i.currentHead)} since${i.currentPlan ? `; its current plan is ${shortPlan(i.currentPlan)}` : ", which has no successful preview yet"}`,
    };
  }
  if (i.currentPlan !== clicked.planHash) {
    return { current: false, why: i.currentPlan ? `a newer preview of ${short(i.currentHead)} planned ${shortPlan(i.currentPlan)}` : `${short(i.currentHead)} has no successful preview now` };
  }
  return { current: true };
}

export type VouchDecision =
  | { ok: true; headSha: string }
  /** `observe`: no push recorded; the caller records the current head as seen now and asks again. */
  | { ok: false; observe: boolean; why: string };

/**
 * A maintainer's `/agent ok-to-test` (or `/agent preview` of a fork) written at `at` vouches
 * for the head at that moment, never for whatever was pushed after it.
 */
export function decideVouch(i: { at: Date; currentHead: string; pushes: readonly PushFact[] }): VouchDecision {
  const head = headAt(i.pushes, i.at);
  if (!head) {
    const any = i.pushes.some((p) => p.kind !== "closed");
    return {
      ok: false,
      observe: !any,
      why: any
        ? `I have no record of which commit was the head when you commented, so I can't tell what you vouched for. The head is now ${short(i.currentHead)}: review it, then comment again. Nothing was run.`
        : `I have no record of this pull request's pushes from before your comment, so I can't tell which commit you vouched for. I have now recorded its head ${short(i.currentHead)}: review that commit, then comment again. Nothing was run.`,
    };
  }
  if (head.headSha !== i.currentHead) {
    return {
      ok: false,
      observe: false,
      why: `the head moved from ${short(head.headSha)} (what you vouched for) to ${short(i.currentHead)} after your comment. Nothing was run: review the new commit, then comment again.`,
    };
  }
  return { ok: true, headSha: head.headSha };
}

function short(sha: string): string {
  return sha.slice(0, 7);
}

function shortPlan(hash: string): string {
  return hash.replace(/^sha256:/, "").slice(0, 12);
}

/**
 * The people who changed a pull request, besides its author: everyone who pushed to it (a
 * recorded `synchronize` sender; opened/reopened carry the author), and the GitHub accounts that
 * authored or committed its commits — GitHub's `web-flow` (the committer of commits made in the
 * web UI) is not a person. The first reason found for a login is kept. Stricter than GitHub's
 * "most recent push" rule on purpose: a pusher stays excluded even after their commits were
 * force-pushed away (the push history is what is known for certain).
 */
export function changedByFrom(i: {
  author: string;
  pushes: readonly PushFact[];
  commits: ReadonlyArray<{ author: string | null; committer: string | null }>;
}): Array<{ login: string; why: string }> {
  const out = new Map<string, { login: string; why: string }>();
  const add = (login: string | null, why: string) => {
    if (!login) return;
    const key = login.toLowerCase();
    if (key === "web-flow" || key === i.author.toLowerCase() || out.has(key)) return;
    out.set(key, { login, why });
  };
  for (const p of i.pushes) if (p.kind === "synchronize" || p.kind === "opened" || p.kind === "reopened") add(p.actor, "pushed to this pull request");
  for (const c of i.commits) add(c.author, "wrote a commit of it");
  for (const c of i.commits) add(c.committer, "committed a commit of it");
  return [...out.values()];
}
