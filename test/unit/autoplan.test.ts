import { describe, expect, it } from "vitest";
import { autoplanWithinBlastRadius, stacksToAutoplan } from "../../src/approval/autoplan.js";
import { autoplanHeldMessage } from "../../src/render/autoplan.js";

const stacks = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `s${i}`, paths: [`infra/s${i}/**`, "modules/**"] }));

describe("autoplan's blast radius", () => {
  it("runs up to the limit and holds past it, saying how many and which limit", () => {
    const matched = stacksToAutoplan(stacks(200), ["modules/vpc/main.ts"]);
    expect(matched).toHaveLength(200);
    expect(autoplanWithinBlastRadius(matched, 200)).toEqual({ run: true });
    expect(autoplanWithinBlastRadius(matched.slice(0, 50), 50)).toEqual({ run: true });
    expect(autoplanWithinBlastRadius(matched, 50)).toEqual({ run: false, why: "200 stacks match this push, more than autoplan's limit of 50 (`autoplan_max_stacks`)" });
    // Only the matched stacks count, not the declared ones.
    expect(autoplanWithinBlastRadius(stacksToAutoplan(stacks(200), ["infra/s7/x.ts", "infra/s9/y.ts"]), 1)).toMatchObject({ run: false, why: expect.stringMatching(/^2 stacks/) });
  });

  it("the held notice names ten stacks, counts the rest, and gives both ways on", () => {
    const text = autoplanHeldMessage(stacks(57).map((s) => s.name), 50, "0123456789abcdef0123456789abcdef01234567");
    expect(text).toContain("57 stacks match the changes at `0123456`");
    expect(text).toContain("limit of 50 (`autoplan_max_stacks` in `.github/agent.yml`)");
    expect(text).toContain("`s0`, `s1`, `s2`, `s3`, `s4`, `s5`, `s6`, `s7`, `s8`, `s9` and 47 more.");
    expect(text).toContain("comment `/agent preview --all`");
    expect(text).not.toContain("`s10`");
  });
});
