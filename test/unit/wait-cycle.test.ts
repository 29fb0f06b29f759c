import { describe, expect, it } from "vitest";
import { waitCycle, type WaitEdge } from "../../src/approval/locks.js";

const e = (from: number, to: number, stack: string): WaitEdge => ({ from, to, stack });

describe("waitCycle (hold-and-wait across commands)", () => {
  it("finds the two-PR cycle: #1 waits for #2's dev, #2 would wait for #1's prod", () => {
    expect(waitCycle([e(1, 2, "dev")], 2, [e(2, 1, "prod")])).toEqual([e(2, 1, "prod"), e(1, 2, "dev")]);
  });

  it("finds a longer cycle through queue places and holders, and returns the shortest way back", () => {
    const edges = [e(1, 2, "a"), e(2, 3, "b"), e(3, 4, "c"), e(1, 4, "d")];
    expect(waitCycle(edges, 4, [e(4, 1, "x")])).toEqual([e(4, 1, "x"), e(1, 4, "d")]);
    expect(waitCycle([e(1, 2, "a"), e(2, 3, "b")], 3, [e(3, 1, "c")])).toEqual([e(3, 1, "c"), e(1, 2, "a"), e(2, 3, "b")]);
  });

  it("is null when the PRs waited for do not wait (directly or not) for the requester", () => {
    expect(waitCycle([], 2, [e(2, 1, "prod")])).toBeNull();
    expect(waitCycle([e(1, 3, "dev")], 2, [e(2, 1, "prod")])).toBeNull();
    expect(waitCycle([e(1, 3, "dev"), e(3, 1, "qa")], 2, [e(2, 1, "prod")])).toBeNull(); // others' cycle is not the requester's
  });

  it("ignores self-edges (a PR's own lock is never a wait)", () => {
    expect(waitCycle([e(1, 1, "prod")], 1, [e(1, 1, "prod")])).toBeNull();
    expect(waitCycle([e(2, 2, "dev"), e(2, 1, "dev")], 1, [e(1, 2, "prod")])).toEqual([e(1, 2, "prod"), e(2, 1, "dev")]);
  });
});
