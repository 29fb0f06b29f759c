import { describe, it, expect } from "vitest";
import {
  TASK_STATES,
  TERMINAL_TASK_STATES,
  previewWorkflowState,
  type TaskState,
} from "../../src/domain/states.js";

const TERMINAL: TaskState[] = ["SUCCEEDED", "FAILED", "CANCELLED", "BLOCKED"];
const LIVE: TaskState[] = ["PENDING", "RUNNING"];

describe("TASK_STATES", () => {
  it("are the task states every code path assigns, each either live or terminal", () => {
    expect([...TASK_STATES].sort()).toEqual([...TERMINAL, ...LIVE].sort());
  });
});

describe("TERMINAL_TASK_STATES", () => {
  it("holds exactly SUCCEEDED, FAILED, CANCELLED and BLOCKED", () => {
    expect([...TERMINAL_TASK_STATES].sort()).toEqual([...TERMINAL].sort());
    for (const s of LIVE) expect(TERMINAL_TASK_STATES.has(s)).toBe(false);
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
    expect(previewWorkflowState(["RUNNING", "SUCCEEDED", "CANCELLED"])).toBe("VALIDATING");
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
