/** What a person saw when they approved, vouched or clicked (src/approval/timeline.ts): pure. */
import { describe, expect, it } from "vitest";
import { bindApproval, changedByFrom, closedByRecords, decideVouch, headAt, judgeClickedPreview, type PreviewFact, type PushFact } from "../../src/approval/timeline.js";

const T = (s: number) => new Date(Date.UTC(2026, 2, 10, 12, 0, s));
const S1 = "1".repeat(40);
const S2 = "2".repeat(40);
const PA = "sha256:" + "a".repeat(64);
const PB = "sha256:" + "b".repeat(64);
const push = (headSha: string, at: Date, actor = "alice", kind: PushFact["kind"] = "synchronize"): PushFact => ({ kind, actor, headSha, at });
const preview = (headSha: string, planHash: string, finishedAt: Date): PreviewFact => ({ headSha, planHash, finishedAt });

describe("headAt", () => {
  it("is the latest recorded push strictly before the time, closings aside", () => {
    const pushes = [push(S1, T(10), "alice", "opened"), push(S2, T(20)), push(S2, T(25), "bob", "closed")];
    expect(headAt(pushes, T(15))?.headSha).toBe(S1);
    expect(headAt(pushes, T(20))?.headSha).toBe(S1);
    expect(headAt(pushes, T(21))?.headSha).toBe(S2);
    expect(headAt(pushes, T(30))?.kind).toBe("synchronize");
    expect(headAt(pushes, T(5))).toBeNull();
  });

  it("closedByRecords: the last opening or closing decides; nothing recorded is unknown", () => {
    expect(closedByRecords([])).toBeNull();
    expect(closedByRecords([push(S1, T(1), "a", "opened"), push(S1, T(2), "a", "closed")])).toBe(true);
    expect(closedByRecords([push(S1, T(1), "a", "closed"), push(S1, T(2), "a", "reopened"), push(S2, T(3))])).toBe(false);
  });
});

describe("bindApproval: /approve binds to the head and plan at the comment's time", () => {
  it("binds to the latest preview finished before the comment and counts when still current", () => {
    const b = bindApproval({ at: T(30), currentHead: S1, pushes: [push(S1, T(1), "alice", "opened")], previews: [preview(S1, PA, T(20))] });
    expect(b).toEqual({ kind: "bound", headSha: S1, planHash: PA, stale: null });
  });

  it("a re-preview with another plan after the comment makes it stale, saying what was seen and what is current", () => {
    const b = bindApproval({ at: T(30), currentHead: S1, pushes: [], previews: [preview(S1, PA, T(20)), preview(S1, PB, T(40))] });
    expect(b).toMatchObject({ kind: "bound", planHash: PA });
    expect(b.kind === "bound" && b.stale).toBe(`the plan changed after your comment: you saw plan ${"a".repeat(12)}, the current plan is ${"b".repeat(12)}`);
  });

  it("the same plan previewed again after the comment keeps it current", () => {
    expect(bindApproval({ at: T(30), currentHead: S1, pushes: [], previews: [preview(S1, PA, T(20)), preview(S1, PA, T(40))] })).toMatchObject({ stale: null });
  });

  it("a push after the comment makes it stale: the head moved", () => {
    const b = bindApproval({ at: T(30), currentHead: S2, pushes: [push(S1, T(1)), push(S2, T(35))], previews: [preview(S1, PA, T(20)), preview(S2, PB, T(50))] });
    expect(b).toMatchObject({ kind: "bound", headSha: S1, planHash: PA });
    expect(b.kind === "bound" && b.stale).toContain(`the head moved to ${S2.slice(0, 7)} after your comment`);
  });

  it("without any push on record, says only that the head is another one now", () => {
    const b = bindApproval({ at: T(30), currentHead: S2, pushes: [], previews: [preview(S1, PA, T(20))] });
    expect(b).toMatchObject({ kind: "bound", headSha: S1, planHash: PA, stale: `the head is now ${S2.slice(0, 7)}, not ${S1.slice(0, 7)} whose plan you saw` });
  });

  it("a push before the comment whose preview had not finished: bound to that head with no plan", () => {
    const b = bindApproval({ at: T(30), currentHead: S2, pushes: [push(S1, T(1)), push(S2, T(25))], previews: [preview(S1, PA, T(20)), preview(S2, PB, T(50))] });
    expect(b).toMatchObject({ kind: "bound", headSha: S2, planHash: null });
    expect(b.kind === "bound" && b.stale).toContain("whose preview had not finished");
  });

  it("nothing previewed before the comment: nothing is recorded, and it says why", () => {
    expect(bindApproval({ at: T(10), currentHead: S1, pushes: [], previews: [preview(S1, PA, T(20))] })).toEqual({ kind: "nothing-seen", why: `your comment was written before the preview of ${S1.slice(0, 7)} finished, so it approved no plan` });
  });
});

describe("judgeClickedPreview: a button stands for its own preview", () => {
  const clicked = { headSha: S1, planHash: PA, state: "SUCCEEDED" };
  it("is current while the head and its latest plan are the clicked ones", () => {
    expect(judgeClickedPreview({ clicked, currentHead: S1, currentPlan: PA })).toEqual({ current: true });
  });
  it("is stale after a re-preview with another plan, or a push", () => {
    expect(judgeClickedPreview({ clicked, currentHead: S1, currentPlan: PB })).toEqual({ current: false, why: `a newer preview of ${S1.slice(0, 7)} planned ${"b".repeat(12)}` });
    expect(judgeClickedPreview({ clicked, currentHead: S2, currentPlan: null })).toEqual({ current: false, why: `the head moved to ${S2.slice(0, 7)} since, which has no successful preview yet` });
    expect(judgeClickedPreview({ clicked: { ...clicked, state: "FAILED", planHash: null }, currentHead: S1, currentPlan: PA }).current).toBe(false);
  });
});

describe("decideVouch: ok-to-test vouches for the head at the comment's time", () => {
  it("runs when the head then is the head now", () => {
    expect(decideVouch({ at: T(30), currentHead: S1, pushes: [push(S1, T(10), "mallory", "opened")] })).toEqual({ ok: true, headSha: S1 });
  });
  it("refuses when the head moved after the comment", () => {
    const d = decideVouch({ at: T(30), currentHead: S2, pushes: [push(S1, T(10), "mallory", "opened"), push(S2, T(40), "mallory")] });
    expect(d).toMatchObject({ ok: false, observe: false });
    expect(!d.ok && d.why).toContain(`the head moved from ${S1.slice(0, 7)} (what you vouched for) to ${S2.slice(0, 7)} after your comment`);
  });
  it("with no push recorded at all, asks to record the head and comment again", () => {
    const d = decideVouch({ at: T(30), currentHead: S1, pushes: [] });
    expect(d).toMatchObject({ ok: false, observe: true });
    expect(!d.ok && d.why).toContain("comment again");
  });
  it("with pushes recorded only after the comment, refuses without observing", () => {
    expect(decideVouch({ at: T(30), currentHead: S1, pushes: [push(S1, T(40))] })).toMatchObject({ ok: false, observe: false });
  });
});

describe("changedByFrom", () => {
  it("lists pushers, commit authors and committers once each, without the author or web-flow", () => {
    const out = changedByFrom({
      author: "alice",
      pushes: [push(S1, T(1), "alice", "opened"), push(S2, T(2), "mallory"), push(S2, T(3), "carol", "observed"), push(S2, T(4), "bob", "closed")],
      commits: [
        { author: "alice", committer: "web-flow" },
        { author: "Dave", committer: "erin" },
        { author: null, committer: "mallory" },
      ],
    });
    expect(out).toEqual([
      { login: "mallory", why: "pushed to this pull request" },
      { login: "Dave", why: "wrote a commit of it" },
      { login: "erin", why: "committed a commit of it" },
    ]);
  });
});
