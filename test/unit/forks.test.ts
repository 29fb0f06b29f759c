import { describe, expect, it } from "vitest";
import { mayPreviewFork } from "../../src/approval/forks.js";

describe("fork pull requests run only when a maintainer asks", () => {
  it("a branch of the repository itself needs nothing more", () => {
    expect(mayPreviewFork({ fromFork: false, permission: "write" }).allowed).toBe(true);
  });
  it.each(["maintain", "admin"] as const)("%s may run a fork's code", (permission) => {
    expect(mayPreviewFork({ fromFork: true, permission }).allowed).toBe(true);
  });
  it.each(["write", "triage", "read", "none"] as const)("%s may not", (permission) => {
    const d = mayPreviewFork({ fromFork: true, permission });
    expect(d.allowed).toBe(false);
    expect(d.allowed ? "" : d.why).toContain("maintainer");
  });
  it("autoplan (no requester) never runs a fork's code", () => {
    expect(mayPreviewFork({ fromFork: true, permission: null }).allowed).toBe(false);
  });
});
