/** The one "did you mean" (src/config/suggest.ts): for config keys and stack names, and for typed commands. */
import { describe, expect, it } from "vitest";
import { closest, editDistance } from "../../src/config/suggest.js";

describe("editDistance", () => {
  it.each([
    ["previw", "preview", 1],
    ["kitten", "sitting", 3],
    ["", "abc", 3],
    ["same", "same", 0],
    // The swap of two neighbours is one edit (Levenshtein would say 2).
    ["perview", "preview", 1],
    ["enigne", "engine", 1],
    ["ab", "ba", 1],
    ["ca", "abc", 3],
  ] as const)("%j → %j is %i", (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
  });

  it("stops early beyond the limit", () => {
    expect(editDistance("a".repeat(1000), "b", 2)).toBe(3);
    expect(editDistance("abcdef", "uvwxyz", 2)).toBe(3);
  });

  it("gives the same answer with and without a limit while within it", () => {
    const words = ["preview", "perview", "previw", "deploy", "depoly", "status", "stauts", "unlock", "", "a", "ba"];
    for (const a of words) for (const b of words) {
      const d = editDistance(a, b);
      for (const limit of [0, 1, 2, 3]) expect(editDistance(a, b, limit), `${a} ${b} ${limit}`).toBe(d <= limit ? d : limit + 1);
    }
  });
});

describe("closest", () => {
  it("with a fixed distance (commands): the closest candidate within it, the first on a tie", () => {
    expect(closest("previw", ["preview", "deploy"], { maxDistance: 2 })).toBe("preview");
    expect(closest("prvw", ["preview", "deploy"], { maxDistance: 2 })).toBeNull();
    expect(closest("prd", ["dev", "prod"], { maxDistance: 2 })).toBe("prod");
    expect(closest("", ["a"], { maxDistance: 2 })).toBeNull();
    expect(closest("x".repeat(65), ["x".repeat(64)], { maxDistance: 2 })).toBeNull();
  });

  it("loose (config keys): case, `-`/`_` and prefixes; the distance allowed grows with the word", () => {
    expect(closest("Stacks", ["version", "stacks"], { loose: true })).toBe("stacks");
    expect(closest("timeout-seconds", ["run", "timeout_seconds"], { loose: true })).toBe("timeout_seconds");
    expect(closest("timeout", ["run", "timeout_seconds"], { loose: true })).toBe("timeout_seconds");
    expect(closest("enigne", ["engine", "name"], { loose: true })).toBe("engine");
    // Short words get one edit at most: `ab` is not a typo of `xy`.
    expect(closest("ab", ["xy", "abc"], { loose: true })).toBe("abc");
    expect(closest("colour", ["version", "stacks"], { loose: true })).toBeNull();
  });
});
