import { describe, it, expect } from "vitest";
import {
  TASK_STATES,
  TERMINAL_TASK_STATES,
  canTransition,
  previewWorkflowState,
  type TaskState,
} from "../../src/jobs/states.js";

const TERMINAL: TaskState[] = ["SUCCEEDED", "FAILED", "CANCELLED", "BLOCKED"];
const LIVE: TaskState[] = ["PENDING", "RUNNING", "AWAITING_APPROVAL"];

describe("TERMINAL_TASK_STATES", () => {
  it("holds exactly SUCCEEDED, FAILED, CANCELLED and BLOCKED", () => {
    expect([...TERMINAL_TASK_STATES].sort()).toEqual([...TERMINAL].sort());
    for (const s of LIVE) expect(TERMINAL_TASK_STATES.has(s)).toBe(false);
  });
});

describe("canTransition", () => {
  it("allows no exit from any terminal state, not even to itself", () => {
    for (const from of TERMINAL) {
      for (const to of TASK_STATES) {
        expect(canTransition(from, to), `${from} -> ${to}`).toBe(false);
      }
    }
  });

  it("every live state has at least one exit", () => {
    for (const from of LIVE) {
      expect(TASK_STATES.some((to) => canTransition(from, to)), from).toBe(true);
    }
  });

  it("allows PENDING -> RUNNING, CANCELLED, BLOCKED only", () => {
    const allowed = TASK_STATES.filter((to) => canTransition("PENDING", to));
    expect(allowed).toEqual(["RUNNING", "CANCELLED", "BLOCKED"]);
  });

  it("refuses PENDING -> SUCCEEDED/FAILED (a task must run before it finishes)", () => {
    expect(canTransition("PENDING", "SUCCEEDED")).toBe(false);
    expect(canTransition("PENDING", "FAILED")).toBe(false);
    expect(canTransition("PENDING", "PENDING")).toBe(false);
  });

  it("allows RUNNING to finish, retry, wait for approval or be cancelled, but not to go back to PENDING or be BLOCKED", () => {
    expect(canTransition("RUNNING", "SUCCEEDED")).toBe(true);
    expect(canTransition("RUNNING", "FAILED")).toBe(true);
    expect(canTransition("RUNNING", "CANCELLED")).toBe(true);
    expect(canTransition("RUNNING", "AWAITING_APPROVAL")).toBe(true);
    expect(canTransition("RUNNING", "RUNNING")).toBe(true);
    expect(canTransition("RUNNING", "PENDING")).toBe(false);
    expect(canTransition("RUNNING", "BLOCKED")).toBe(false);
  });

  it("allows AWAITING_APPROVAL -> RUNNING, CANCELLED, BLOCKED but not straight to SUCCEEDED", () => {
    expect(canTransition("AWAITING_APPROVAL", "RUNNING")).toBe(true);
    expect(canTransition("AWAITING_APPROVAL", "CANCELLED")).toBe(true);
    expect(canTransition("AWAITING_APPROVAL", "BLOCKED")).toBe(true);
    expect(canTransition("AWAITING_APPROVAL", "SUCCEEDED")).toBe(false);
    expect(canTransition("AWAITING_APPROVAL", "PENDING")).toBe(false);
  });

  it("refuses SUCCEEDED -> RUNNING", () => {
    expect(canTransition("SUCCEEDED", "RUNNING")).toBe(false);
    expect(canTransition("FAILED", "RUNNING")).toBe(false);
  });
});

describe("previewWorkflowState", () => {
  it("is PENDING with no tasks", () => {
    expect(previewWorkflowState([])).toBe("PENDING");
  });

  it("is PENDING when every task is pending", () => {
    expect(previewWorkflowState(["PENDING"])).toBe("PENDING");
    expect(previewWorkflowState(["PENDING", "PENDING", "PENDING"])).toBe("PENDING");
  });

  it("is VALIDATING while any task is live and at least one has moved on", () => {
    expect(previewWorkflowState(["RUNNING"])).toBe("VALIDATING");
    expect(previewWorkflowState(["PENDING", "RUNNING"])).toBe("VALIDATING");
    expect(previewWorkflowState(["SUCCEEDED", "PENDING"])).toBe("VALIDATING");
    expect(previewWorkflowState(["SUCCEEDED", "RUNNING"])).toBe("VALIDATING");
    expect(previewWorkflowState(["CANCELLED", "PENDING"])).toBe("VALIDATING");
    expect(previewWorkflowState(["AWAITING_APPROVAL", "SUCCEEDED"])).toBe("VALIDATING");
  });

  it("stays VALIDATING (not BLOCKED) while a failed task's siblings are still running", () => {
    expect(previewWorkflowState(["FAILED", "RUNNING"])).toBe("VALIDATING");
    expect(previewWorkflowState(["BLOCKED", "PENDING"])).toBe("VALIDATING");
  });

  it("is READY_FOR_APPLY when every task succeeded", () => {
    expect(previewWorkflowState(["SUCCEEDED"])).toBe("READY_FOR_APPLY");
    expect(previewWorkflowState(["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"])).toBe("READY_FOR_APPLY");
  });

  it("is BLOCKED when all tasks are terminal and any failed or was blocked", () => {
    expect(previewWorkflowState(["FAILED"])).toBe("BLOCKED");
    expect(previewWorkflowState(["SUCCEEDED", "FAILED"])).toBe("BLOCKED");
    expect(previewWorkflowState(["SUCCEEDED", "BLOCKED"])).toBe("BLOCKED");
    expect(previewWorkflowState(["CANCELLED", "FAILED"])).toBe("BLOCKED");
    expect(previewWorkflowState(["SUCCEEDED", "CANCELLED", "FAILED"])).toBe("BLOCKED");
  });

  it("is CANCELLED when every task was cancelled", () => {
    expect(previewWorkflowState(["CANCELLED"])).toBe("CANCELLED");
    expect(previewWorkflowState(["CANCELLED", "CANCELLED"])).toBe("CANCELLED");
  });

  it("is READY_FOR_APPLY when tasks succeeded and the rest were cancelled", () => {
    expect(previewWorkflowState(["SUCCEEDED", "CANCELLED"])).toBe("READY_FOR_APPLY");
    expect(previewWorkflowState(["CANCELLED", "SUCCEEDED", "CANCELLED"])).toBe("READY_FOR_APPLY");
  });

  it("does not depend on task order", () => {
    const combos: TaskState[][] = [
      ["SUCCEEDED", "FAILED", "CANCELLED"],
      ["PENDING", "SUCCEEDED"],
      ["SUCCEEDED", "CANCELLED"],
      ["RUNNING", "FAILED"],
    ];
    for (const c of combos) {
      expect(previewWorkflowState([...c].reverse())).toBe(previewWorkflowState(c));
    }
  });

  it("never reports READY_FOR_APPLY unless some task succeeded and none failed, was blocked or is live", () => {
    // Exhaustive over all multisets of up to 3 tasks.
    const all: TaskState[][] = [[]];
    for (let n = 1; n <= 3; n++) {
      const prev = all.filter((c) => c.length === n - 1);
      for (const c of prev) for (const s of TASK_STATES) all.push([...c, s]);
    }
    for (const c of all) {
      const ready = previewWorkflowState(c) === "READY_FOR_APPLY";
      const expected =
        c.some((s) => s === "SUCCEEDED") && c.every((s) => s === "SUCCEEDED" || s === "CANCELLED");
      expect(ready, c.join(",")).toBe(expected);
    }
  });
});
