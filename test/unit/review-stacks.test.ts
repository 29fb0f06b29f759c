/**
 * Review stacks (`pr-<number>-<stack>`), the pure parts: the cost guard and the TTL sweep's
 * policy (src/approval/review.ts), the `review` key of the repository config (schema.ts,
 * resolve.ts), the `--review` flag of the command registry, and which credentials a review
 * stack gets. No I/O.
 */
import { describe, expect, it } from "vitest";
import { decideReviewSlot, durationWords, parseReviewStackName, sweepAction, warnBeforeSeconds, type LiveReviewStack } from "../../src/approval/review.js";
import { parseComment, type ParsedCommand } from "../../src/commands/grammar.js";
import { resolveCommand, type Command, type RepoStacks } from "../../src/commands/registry.js";
import { CredentialsConfigSchema, stackCredentials } from "../../src/config/credentials-config.js";
import type { ConfigIssue } from "../../src/config/issues.js";
import { formatConfigIssues, loadRepoConfig, type LoadResult } from "../../src/config/repo/load.js";
import { reviewStackName, reviewStackOf, withReviewStacks, type ResolvedStack } from "../../src/config/repo/resolve.js";
import { DEFAULT_REVIEW_MAX_LIVE, MAX_REVIEW_BASE_NAME, TTL_RE, ttlSeconds, type RepoConfig } from "../../src/config/repo/schema.js";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function ok(result: LoadResult): { config: RepoConfig; stacks: ResolvedStack[] } {
  if (!result.ok) throw new Error(`expected a valid config, got:\n${formatConfigIssues(result.issues)}`);
  return result;
}

function issuesOf(result: LoadResult): ConfigIssue[] {
  if (result.ok) throw new Error("expected the config to be rejected");
  return result.issues;
}

/** A document with one `engine: pulumi` stack `web` whose `review` mapping is `review` (YAML lines at 6 spaces). */
const webWithReview = (review: string, top = ""): string =>
  `version: 1\n${top}stacks:\n  - name: web\n    engine: pulumi\n    review:\n${review}`;

/** The one stack `web` of a valid document. */
function webOf(yaml: string): ResolvedStack {
  const { stacks } = ok(loadRepoConfig(yaml));
  const web = stacks.find((s) => s.name === "web");
  if (!web) throw new Error("no stack `web`");
  return web;
}

const live = (stack: string, pr: number, expiresAt: string): LiveReviewStack => ({ stack, pr, expiresAt: new Date(expiresAt) });

const HOUR = 3600;
const DAY = 86_400;

// ---------------------------------------------------------------------------------------------
// The cost guard
// ---------------------------------------------------------------------------------------------

describe("decideReviewSlot (the cost guard)", () => {
  const a = live("pr-1-web", 1, "2030-01-03T00:00:00Z");
  const b = live("pr-2-web", 2, "2030-01-01T00:00:00Z");
  const c = live("pr-3-api", 3, "2030-01-02T00:00:00Z");

  it("renews a stack already live, even when the repository is full (or over its limit)", () => {
    expect(decideReviewSlot("pr-1-web", [a, b, c], 3)).toEqual({ ok: true, renewal: true });
    expect(decideReviewSlot("pr-3-api", [a, b, c], 2)).toEqual({ ok: true, renewal: true });
    expect(decideReviewSlot("pr-2-web", [b], 0)).toEqual({ ok: true, renewal: true });
  });

  it("lets a new stack go live while fewer than max are live", () => {
    expect(decideReviewSlot("pr-9-web", [], 1)).toEqual({ ok: true, renewal: false });
    expect(decideReviewSlot("pr-9-web", [a, b], 3)).toEqual({ ok: true, renewal: false });
  });

  it("refuses a new stack at max, listing the live ones soonest expiry first (without reordering its input)", () => {
    const input = [a, b, c];
    const slot = decideReviewSlot("pr-9-web", input, 3);
    expect(slot).toEqual({ ok: false, live: [b, c, a], max: 3 });
    if (slot.ok) throw new Error("expected a refusal");
    expect(slot.live.map((l) => l.stack)).toEqual(["pr-2-web", "pr-3-api", "pr-1-web"]);
    expect(input).toEqual([a, b, c]);
    // Over the limit (the server lowered it) refuses too.
    expect(decideReviewSlot("pr-9-web", input, 2)).toEqual({ ok: false, live: [b, c, a], max: 2 });
  });

  it("a review stack of the same base for another pull request is a new stack, not a renewal", () => {
    expect(decideReviewSlot("pr-4-web", [a], 1)).toEqual({ ok: false, live: [a], max: 1 });
  });

  it("max 0 refuses every new stack, even with nothing live", () => {
    expect(decideReviewSlot("pr-9-web", [], 0)).toEqual({ ok: false, live: [], max: 0 });
  });
});

// ---------------------------------------------------------------------------------------------
// The TTL sweep
// ---------------------------------------------------------------------------------------------

describe("warnBeforeSeconds", () => {
  it("is a quarter of the TTL between the bounds (rounded down)", () => {
    expect(warnBeforeSeconds(HOUR)).toBe(900);
    expect(warnBeforeSeconds(72 * HOUR)).toBe(18 * HOUR);
    expect(warnBeforeSeconds(1201)).toBe(300);
    expect(warnBeforeSeconds(1204)).toBe(301);
  });

  it("is never less than 5 minutes", () => {
    expect(warnBeforeSeconds(600)).toBe(300);
    expect(warnBeforeSeconds(1200)).toBe(300);
    expect(warnBeforeSeconds(0)).toBe(300);
  });

  it("is never more than a day", () => {
    expect(warnBeforeSeconds(4 * DAY)).toBe(DAY);
    expect(warnBeforeSeconds(4 * DAY + 4)).toBe(DAY);
    expect(warnBeforeSeconds(30 * DAY)).toBe(DAY);
    expect(warnBeforeSeconds(4 * DAY - 4)).toBe(DAY - 1);
  });
});

describe("sweepAction", () => {
  const now = new Date("2030-06-01T12:00:00Z");
  const at = (secondsFromNow: number): Date => new Date(now.getTime() + secondsFromNow * 1000);
  const ttl = 72 * HOUR; // warning window: 18 h
  const warned = new Date("2030-05-31T00:00:00Z");

  it("destroys at and after expiry, warned or not", () => {
    expect(sweepAction({ expiresAt: at(0), warnedAt: null, ttlSeconds: ttl }, now)).toBe("destroy");
    expect(sweepAction({ expiresAt: at(-0.001), warnedAt: null, ttlSeconds: ttl }, now)).toBe("destroy");
    expect(sweepAction({ expiresAt: at(-DAY), warnedAt: warned, ttlSeconds: ttl }, now)).toBe("destroy");
    expect(sweepAction({ expiresAt: at(0), warnedAt: warned, ttlSeconds: ttl }, now)).toBe("destroy");
  });

  it("warns inside the window (its edge included) when not yet warned", () => {
    expect(sweepAction({ expiresAt: at(18 * HOUR), warnedAt: null, ttlSeconds: ttl }, now)).toBe("warn");
    expect(sweepAction({ expiresAt: at(HOUR), warnedAt: null, ttlSeconds: ttl }, now)).toBe("warn");
    expect(sweepAction({ expiresAt: at(1), warnedAt: null, ttlSeconds: ttl }, now)).toBe("warn");
  });

  it("does nothing before the window", () => {
    expect(sweepAction({ expiresAt: at(18 * HOUR + 1), warnedAt: null, ttlSeconds: ttl }, now)).toBe("none");
    expect(sweepAction({ expiresAt: at(ttl), warnedAt: null, ttlSeconds: ttl }, now)).toBe("none");
  });

  it("the window follows the TTL: 5 minutes for a 10-minute TTL", () => {
    expect(sweepAction({ expiresAt: at(301), warnedAt: null, ttlSeconds: 600 }, now)).toBe("none");
    expect(sweepAction({ expiresAt: at(300), warnedAt: null, ttlSeconds: 600 }, now)).toBe("warn");
  });

  it("does not warn twice", () => {
    expect(sweepAction({ expiresAt: at(HOUR), warnedAt: warned, ttlSeconds: ttl }, now)).toBe("none");
    expect(sweepAction({ expiresAt: at(1), warnedAt: warned, ttlSeconds: ttl }, now)).toBe("none");
  });
});

describe("durationWords", () => {
  it("says minutes, hours (and minutes) or days", () => {
    expect(durationWords(600)).toBe("10 min");
    expect(durationWords(HOUR)).toBe("1 h");
    expect(durationWords(3 * HOUR + 20 * 60)).toBe("3 h 20 min");
    expect(durationWords(36 * HOUR)).toBe("36 h");
    expect(durationWords(2 * DAY)).toBe("2 days");
    expect(durationWords(7 * DAY)).toBe("7 days");
    expect(durationWords(-5)).toBe("1 min");
    // Rounded to the minute before splitting: never "1 h 60 min".
    expect(durationWords(7170)).toBe("2 h");
    expect(durationWords(3599)).toBe("1 h");
    expect(durationWords(3 * HOUR + 29)).toBe("3 h");
  });
});

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

describe("parseReviewStackName / reviewStackName", () => {
  it("reads the pull request and base of a review stack's name", () => {
    expect(parseReviewStackName("pr-12-web")).toEqual({ pr: 12, base: "web" });
    expect(parseReviewStackName("pr-7-prod.eu_1")).toEqual({ pr: 7, base: "prod.eu_1" });
    expect(parseReviewStackName("pr-999999999-x")).toEqual({ pr: 999_999_999, base: "x" });
  });

  it("keeps dashes of the base", () => {
    expect(parseReviewStackName("pr-12-web-api")).toEqual({ pr: 12, base: "web-api" });
  });

  it("round-trips reviewStackName", () => {
    expect(reviewStackName("web-api", 12)).toBe("pr-12-web-api");
    expect(parseReviewStackName(reviewStackName("web-api", 12))).toEqual({ pr: 12, base: "web-api" });
  });

  it.each(["pr-0-x", "pr-01-x", "pr--x", "prx-1-a", "pr-1-", "pr-1", "web", "PR-1-web", "pr-1234567890-x", "xpr-1-web"])("rejects %s", (name) => {
    expect(parseReviewStackName(name)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// The `review` key of the repository config
// ---------------------------------------------------------------------------------------------

describe("ttlSeconds / TTL_RE", () => {
  it("converts minutes, hours and days", () => {
    expect(ttlSeconds("30m")).toBe(1800);
    expect(ttlSeconds("72h")).toBe(259_200);
    expect(ttlSeconds("7d")).toBe(604_800);
  });

  it("is 0 for what is no TTL", () => {
    for (const bad of ["", "0m", "10", "1w", "1.5h", " 1h", "1h ", "1H"]) {
      expect(TTL_RE.test(bad)).toBe(false);
      expect(ttlSeconds(bad)).toBe(0);
    }
  });
});

describe("review settings through the loader", () => {
  it.each([
    ["30m", 1800],
    ["72h", 72 * HOUR],
    ["7d", 7 * DAY],
    ["10m", 600],
    ["30d", 30 * DAY],
  ])("accepts ttl %s as %i seconds", (ttl, seconds) => {
    const web = webOf(webWithReview(`      template: staging\n      ttl: ${ttl}\n`));
    expect(web.reviewSettings?.ttlSeconds).toBe(seconds);
  });

  it.each(["5m", "9m", "31d", "721h"])("rejects ttl %s as out of range, at stacks[0].review.ttl", (ttl) => {
    const issues = issuesOf(loadRepoConfig(webWithReview(`      template: staging\n      ttl: ${ttl}\n`)));
    expect(issues).toEqual([expect.objectContaining({ path: "stacks[0].review.ttl", message: expect.stringContaining("between 10 minutes and 30 days") })]);
  });

  it.each(["1w", "0h", "72", "2.5h"])("rejects ttl %s as no duration", (ttl) => {
    const issues = issuesOf(loadRepoConfig(webWithReview(`      template: staging\n      ttl: "${ttl}"\n`)));
    // One message: a malformed TTL is not also called out of range.
    expect(issues).toEqual([expect.objectContaining({ path: "stacks[0].review.ttl", message: "must be a duration such as `30m`, `72h` or `7d`" })]);
  });

  it("defaults: ttl 72h, approvals 0, auto false, max live 5", () => {
    const { config, stacks } = ok(loadRepoConfig(webWithReview("      template: staging\n")));
    expect(config.stacks[0]!.review).toEqual({ template: "staging", ttl: "72h" });
    expect(config.review_max_live).toBe(DEFAULT_REVIEW_MAX_LIVE);
    expect(DEFAULT_REVIEW_MAX_LIVE).toBe(5);
    expect(stacks[0]!.reviewSettings).toEqual({ template: "staging", ttlSeconds: 259_200, auto: false, approvals: 0, maxLive: 5 });
    // A declared stack is no review stack.
    expect(stacks[0]).not.toHaveProperty("review");
  });

  it("takes template, auto, approvals and review_max_live as given", () => {
    const web = webOf(webWithReview("      template: acme/shop/staging\n      ttl: 2d\n      auto: true\n      approvals: 2\n", "review_max_live: 2\n"));
    expect(web.reviewSettings).toEqual({ template: "acme/shop/staging", ttlSeconds: 2 * DAY, auto: true, approvals: 2, maxLive: 2 });
  });

  it("accepts review_max_live 0 (review stacks switched off by the cost guard)", () => {
    expect(webOf(webWithReview("      template: staging\n", "review_max_live: 0\n")).reviewSettings?.maxLive).toBe(0);
  });

  it("rejects review_max_live out of 0-100", () => {
    for (const n of ["-1", "101", "2.5"]) {
      const issues = issuesOf(loadRepoConfig(webWithReview("      template: staging\n", `review_max_live: ${n}\n`)));
      expect(issues).toEqual([expect.objectContaining({ path: "review_max_live", message: expect.stringContaining("must be a whole number (0-100)") })]);
    }
  });

  it("rejects approvals out of 0-10 and a template that is no Pulumi stack name", () => {
    expect(issuesOf(loadRepoConfig(webWithReview("      template: staging\n      approvals: 11\n")))).toEqual([expect.objectContaining({ path: "stacks[0].review.approvals" })]);
    expect(issuesOf(loadRepoConfig(webWithReview("      template: a/b/c/d\n")))).toEqual([expect.objectContaining({ path: "stacks[0].review.template", message: expect.stringContaining("must be a Pulumi stack name") })]);
  });

  it("requires a template and knows no other keys", () => {
    expect(issuesOf(loadRepoConfig(webWithReview("      ttl: 1h\n")))).toEqual([expect.objectContaining({ path: "stacks[0].review.template" })]);
    const unknown = issuesOf(loadRepoConfig(webWithReview("      template: staging\n      max_live: 3\n")));
    expect(unknown).toHaveLength(1);
    expect(unknown[0]!.message).toContain("max_live");
  });

  it("gives a stack without `review` no review settings", () => {
    const { stacks } = ok(loadRepoConfig("version: 1\nstacks:\n  - name: web\n    engine: pulumi\n"));
    expect(stacks[0]).not.toHaveProperty("reviewSettings");
  });
});

describe("review: cross-checks of the schema", () => {
  it("`review` on an `engine: command` stack is an error at stacks[i].review", () => {
    const yaml = "version: 1\nsteps:\n  lint: make lint\nstacks:\n  - name: net\n    engine: pulumi\n  - name: web\n    review:\n      template: staging\n";
    const issues = issuesOf(loadRepoConfig(yaml));
    expect(issues).toEqual([expect.objectContaining({ path: "stacks[1].review", message: expect.stringContaining("`review` needs `engine: pulumi`") })]);
    expect(issues[0]!.message).toContain("`web`");
  });

  it(`a stack with \`review\` may have at most ${MAX_REVIEW_BASE_NAME} characters`, () => {
    expect(MAX_REVIEW_BASE_NAME).toBe(50);
    const long = "a".repeat(51);
    const issues = issuesOf(loadRepoConfig(`version: 1\nstacks:\n  - name: ${long}\n    engine: pulumi\n    review:\n      template: staging\n`));
    expect(issues).toEqual([expect.objectContaining({ path: "stacks[0].name", message: expect.stringContaining("at most 50 characters") })]);
    // Exactly 50: its longest review stack name (9-digit PR) is still a stack name (63).
    const fifty = "b".repeat(50);
    const { stacks } = ok(loadRepoConfig(`version: 1\nstacks:\n  - name: ${fifty}\n    engine: pulumi\n    review:\n      template: staging\n`));
    expect(reviewStackName(fifty, 999_999_999)).toHaveLength(63);
    expect(withReviewStacks(stacks, 999_999_999)[1]!.name).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/);
    // Without `review`, a long name is fine.
    ok(loadRepoConfig(`version: 1\nstacks:\n  - name: ${long}\n    engine: pulumi\n`));
  });

  it("a declared stack named like another's review stack is an error", () => {
    const yaml = "version: 1\nstacks:\n  - name: web\n    engine: pulumi\n    review:\n      template: staging\n  - name: pr-3-web\n    engine: pulumi\n";
    const issues = issuesOf(loadRepoConfig(yaml));
    expect(issues).toEqual([expect.objectContaining({ path: "stacks[1].name", message: expect.stringContaining("is the name of a review stack of `web`") })]);
    expect(issues[0]!.message).toContain("`pr-3-web`");
  });

  it("is reported whichever of the two comes first", () => {
    const yaml = "version: 1\nstacks:\n  - name: pr-3-web\n    engine: pulumi\n  - name: web\n    engine: pulumi\n    review:\n      template: staging\n";
    expect(issuesOf(loadRepoConfig(yaml))).toEqual([expect.objectContaining({ path: "stacks[0].name" })]);
  });

  it("is fine when that stack has no `review`, or the name is another stack's", () => {
    ok(loadRepoConfig("version: 1\nstacks:\n  - name: web\n    engine: pulumi\n  - name: pr-3-web\n    engine: pulumi\n"));
    ok(loadRepoConfig("version: 1\nstacks:\n  - name: web\n    engine: pulumi\n    review:\n      template: staging\n  - name: pr-3-api\n    engine: pulumi\n"));
  });
});

// ---------------------------------------------------------------------------------------------
// Review stacks of resolved stacks
// ---------------------------------------------------------------------------------------------

describe("reviewStackOf", () => {
  const yaml = [
    "version: 1",
    "policy:",
    "  max_deletes: 0",
    "stacks:",
    "  - name: net",
    "    engine: pulumi",
    "  - name: web",
    "    dir: infra/web",
    "    engine: pulumi",
    "    depends_on: [net]",
    "    pulumi:",
    "      stack: acme/shop/dev",
    "    environment:",
    "      name: production",
    "      protection_rule: true",
    "    drift:",
    "      schedule: \"0 6 * * *\"",
    "    sandbox:",
    "      runtime: runsc",
    "    gate:",
    "      approvals: 2",
    "      rollback_approvals: 3",
    "      approvers:",
    "        users: [alice]",
    "      merge_method: squash",
    "      mode: merge-then-deploy",
    "    paths: [\"infra/web/**\", \"shared/**\"]",
    "    review:",
    "      template: acme/shop/staging",
    "      ttl: 12h",
    "      approvals: 1",
    "",
  ].join("\n");

  it("derives the review stack of pull request 7", () => {
    const web = webOf(yaml);
    const before = structuredClone(web);
    const r = reviewStackOf(web, 7);
    expect(r.name).toBe("pr-7-web");
    expect(r.pulumiStack).toBe("acme/shop/pr-7-web");
    expect(r.engine).toBe("pulumi");
    expect(r.dir).toBe("infra/web");
    expect(r.steps).toEqual(web.steps);
    expect(r.paths).toEqual(["infra/web/**", "shared/**"]);
    expect(r.policy).toEqual(web.policy);
    expect(r.policy).not.toBeNull();
    expect(r.runtime).toBe("runsc");
    expect(r.review).toEqual({ base: "web", pr: 7, template: "acme/shop/staging", ttlSeconds: 12 * HOUR, maxLive: 5 });
    // Its own GitHub environment, never the base's protected one.
    expect(r.environment).toEqual({ name: "pr-7-web", protectionRule: false });
    // No drift checks, no dependencies, no review stacks of its own.
    expect(r).not.toHaveProperty("drift");
    expect(r).not.toHaveProperty("dependsOn");
    expect(r).not.toHaveProperty("reviewSettings");
    // The base is left as it was.
    expect(web).toEqual(before);
  });

  it("takes its approvals from review.approvals and turns the branch requirements off", () => {
    const web = webOf(yaml);
    const r = reviewStackOf(web, 7);
    expect(web.gate.approvals).toBe(2);
    expect(r.gate.approvals).toBe(1);
    expect(r.gate.rollbackApprovals).toBe(1);
    expect(r.gate.mode).toBe("deploy-then-merge");
    expect(r.gate.require).toEqual({ preview: true, statusChecks: false, mergeable: false, undiverged: false, notDraft: false, lock: true });
    // The rest of the gate is the base's.
    expect(r.gate.approvers).toEqual({ users: ["alice"], teams: [] });
    expect(r.gate.mergeMethod).toBe("squash");
    expect(r.gate.count).toBe(web.gate.count);
    expect(r.gate.deployPermission).toBe(web.gate.deployPermission);
    // The base's gate is untouched.
    expect(web.gate.require.statusChecks).toBe(true);
    expect(web.gate.mode).toBe("merge-then-deploy");
  });

  it("approvals default to 0", () => {
    const r = reviewStackOf(webOf(webWithReview("      template: staging\n")), 12);
    expect(r.gate.approvals).toBe(0);
    expect(r.gate.rollbackApprovals).toBe(0);
  });

  it.each([
    ["acme/shop/dev", "acme/shop/pr-7-web"],
    ["acme/dev", "acme/pr-7-web"],
    ["dev", "pr-7-web"],
  ])("keeps the organisation and project of the base's Pulumi stack %s", (stack, expected) => {
    const web = webOf(`version: 1\nstacks:\n  - name: web\n    engine: pulumi\n    pulumi:\n      stack: ${stack}\n    review:\n      template: staging\n`);
    expect(reviewStackOf(web, 7).pulumiStack).toBe(expected);
  });

  it("uses the name when the base selects no Pulumi stack", () => {
    expect(reviewStackOf(webOf(webWithReview("      template: staging\n")), 7).pulumiStack).toBe("pr-7-web");
  });
});

describe("withReviewStacks", () => {
  const yaml = [
    "version: 1",
    "stacks:",
    "  - name: net",
    "    engine: pulumi",
    "  - name: web",
    "    engine: pulumi",
    "    review:",
    "      template: staging",
    "  - name: api",
    "    engine: pulumi",
    "    review:",
    "      template: staging",
    "      auto: true",
    "",
  ].join("\n");

  it("appends one review stack per stack with `review`, after the declared ones", () => {
    const { stacks } = ok(loadRepoConfig(yaml));
    const all = withReviewStacks(stacks, 7);
    expect(all.map((s) => s.name)).toEqual(["net", "web", "api", "pr-7-web", "pr-7-api"]);
    expect(all.slice(0, 3)).toEqual(stacks);
    expect(all[3]).toEqual(reviewStackOf(stacks[1]!, 7));
    expect(all[4]).toEqual(reviewStackOf(stacks[2]!, 7));
    expect(stacks).toHaveLength(3);
  });

  it("appends none when no stack has `review`", () => {
    const { stacks } = ok(loadRepoConfig("version: 1\nstacks:\n  - name: net\n    engine: pulumi\n"));
    expect(withReviewStacks(stacks, 7)).toEqual(stacks);
  });

  it("derives no review stack of a review stack", () => {
    const { stacks } = ok(loadRepoConfig(yaml));
    const web = stacks[1]!;
    const pr7 = reviewStackOf(web, 7);
    // Even one that carried its base's review settings along.
    const carrying: ResolvedStack = { ...pr7, reviewSettings: web.reviewSettings! };
    for (const review of [pr7, carrying]) {
      const names = withReviewStacks([web, review], 9).map((s) => s.name);
      expect(names).toEqual(["web", "pr-7-web", "pr-9-web"]);
      expect(names.some((n) => n.startsWith("pr-9-pr-"))).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// `--review` in the command registry
// ---------------------------------------------------------------------------------------------

describe("resolveCommand: --review", () => {
  const REPO: RepoStacks = { stacks: ["web", "api"], review: ["pr-7-web", "pr-7-api"] };

  function parseOne(body: string): ParsedCommand {
    const result = parseComment(body);
    expect(result.errors).toEqual([]);
    expect(result.commands).toHaveLength(1);
    return result.commands[0]!;
  }
  function resolved(body: string, repo: RepoStacks = REPO): Command {
    const r = resolveCommand(parseOne(body), repo);
    if (!r.ok) throw new Error(`expected ok, got: ${r.message}`);
    return r.command;
  }
  function refused(body: string, repo: RepoStacks = REPO): string {
    const r = resolveCommand(parseOne(body), repo);
    if (r.ok) throw new Error(`expected an error, got: ${JSON.stringify(r.command)}`);
    return r.message;
  }

  it("`--review <stack>` names the stack (the grammar reads it as the flag's value)", () => {
    expect(parseOne("/agent preview --review web")).toMatchObject({ args: [], flags: { review: "web" } });
    expect(resolved("/agent preview --review web")).toEqual({ name: "preview", stacks: ["web"], review: true });
    expect(resolved("/agent preview --review=web")).toEqual({ name: "preview", stacks: ["web"], review: true });
    expect(resolved("/agent deploy --review api")).toEqual({ name: "deploy", stacks: ["api"], review: true });
  });

  it("takes several stacks, positional or `--stack`, duplicates collapsed", () => {
    const c = resolved("/agent preview web --review api") as { stacks: string[] };
    expect(c).toEqual({ name: "preview", stacks: ["web", "api"], review: true });
    const d = resolved("/agent preview --review web api") as { stacks: string[] };
    expect([...d.stacks].sort()).toEqual(["api", "web"]);
    expect(resolved("/agent deploy --review --stack web")).toEqual({ name: "deploy", stacks: ["web"], review: true });
    expect(resolved("/agent preview web --review web")).toEqual({ name: "preview", stacks: ["web"], review: true });
  });

  it("`--review` alone names no stack: never the default stack, and never every declared stack", () => {
    const withDefault: RepoStacks = { ...REPO, defaultStack: "api" };
    expect(resolved("/agent preview --review")).toEqual({ name: "preview", stacks: [], review: true });
    expect(resolved("/agent preview --review", withDefault)).toEqual({ name: "preview", stacks: [], review: true });
    // deploy (named-stacks) does not ask for a stack with --review.
    expect(resolved("/agent deploy --review")).toEqual({ name: "deploy", stacks: [], review: true });
  });

  it("`/agent destroy --review` is every review stack of the pull request", () => {
    expect(resolved("/agent destroy --review")).toEqual({ name: "destroy", stack: null, review: true });
  });

  it("`/agent destroy --review <stack>` takes a declared name or this pull request's review stack", () => {
    expect(resolved("/agent destroy --review pr-7-web")).toEqual({ name: "destroy", stack: "pr-7-web", review: true });
    expect(resolved("/agent destroy --review web")).toEqual({ name: "destroy", stack: "web", review: true });
    expect(resolved("/agent destroy pr-7-web --review")).toEqual({ name: "destroy", stack: "pr-7-web", review: true });
  });

  it("`/agent destroy` takes one stack at most", () => {
    expect(refused("/agent destroy --review web api")).toContain("takes at most 1 argument (got 2)");
  });

  it("refuses another pull request's review stack as unknown", () => {
    const message = refused("/agent destroy --review pr-8-web");
    expect(message).toContain("Unknown stack `pr-8-web`");
    expect(refused("/agent preview --review pr-8-web")).toContain("Unknown stack `pr-8-web`");
    expect(refused("/agent preview pr-8-web")).toContain("Unknown stack `pr-8-web`");
    // Without the review list (an issue, or no stack with `review`), no review name is known.
    expect(refused("/agent destroy --review pr-7-web", { stacks: ["web", "api"] })).toContain("Unknown stack `pr-7-web`");
  });

  it("an unknown stack lists the declared stacks only", () => {
    const message = refused("/agent preview --review nope");
    expect(message).toContain("Declared stacks: `web`, `api`.");
    expect(message).not.toContain("pr-7-web");
  });

  it("accepts a listed review stack named without --review", () => {
    expect(resolved("/agent preview pr-7-web")).toEqual({ name: "preview", stacks: ["pr-7-web"] });
    expect(resolved("/agent deploy pr-7-api")).toEqual({ name: "deploy", stacks: ["pr-7-api"] });
  });

  it("without stacks or default_stack, `/agent preview` is every declared stack, never a review stack", () => {
    expect(resolved("/agent preview")).toEqual({ name: "preview", stacks: ["web", "api"] });
  });

  it("a default_stack is never a review stack's name", () => {
    expect(refused("/agent preview", { ...REPO, defaultStack: "pr-7-web" })).toContain("is not one of its declared stacks");
  });

  it("refuses `--review` with `--all`, whichever comes first", () => {
    for (const body of ["/agent preview --review --all", "/agent preview --all --review", "/agent deploy --review --all", "/agent preview --review web --all"]) {
      expect(refused(body)).toContain("`--review` and `--all` do not go together");
    }
  });

  it("`--all` alone still works, and `destroy` knows no `--all`", () => {
    expect(resolved("/agent preview --all")).toEqual({ name: "preview", stacks: [], all: true });
    expect(refused("/agent destroy --all")).toContain("Unknown flag `--all` for `/agent destroy`");
  });
});

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

describe("stackCredentials of a review stack", () => {
  const entry = (marker: string) => ({ preview: { TOKEN: { kv: `secret/data/${marker}`, key: "token" } }, env: { WHO: `${marker.toUpperCase().replace(/[^A-Z]/g, "_")}_VAR` } });
  const full = CredentialsConfigSchema.parse({
    stacks: { "*": entry("star"), web: entry("web"), "review:web": entry("review-web"), "review:*": entry("review-star") },
  });
  const plain = CredentialsConfigSchema.parse({ stacks: { "*": entry("star"), web: entry("web") } });
  const who = (c: ReturnType<typeof stackCredentials>) => c?.env["WHO"] ?? null;

  it("gives a review stack of `web` the `review:web` entry", () => {
    const got = stackCredentials(full, "pr-7-web", "web");
    expect(got).toBe(full.stacks["review:web"]);
    expect(who(got)).toBe("REVIEW_WEB_VAR");
  });

  it("gives a review stack of a stack without its own review entry `review:*`", () => {
    const got = stackCredentials(full, "pr-7-api", "api");
    expect(got).toBe(full.stacks["review:*"]);
    expect(who(got)).toBe("REVIEW_STAR_VAR");
  });

  it("declared stacks still get their own entry, else `*`", () => {
    expect(stackCredentials(full, "web")).toBe(full.stacks["web"]);
    expect(stackCredentials(full, "api")).toBe(full.stacks["*"]);
  });

  it("never gives a review stack its base's entry nor `*`", () => {
    expect(stackCredentials(plain, "pr-7-web", "web")).toBeNull();
    expect(stackCredentials(plain, "pr-7-api", "api")).toBeNull();
    const onlyWebReview = CredentialsConfigSchema.parse({ stacks: { "*": entry("star"), "review:web": entry("review-web") } });
    expect(stackCredentials(onlyWebReview, "pr-7-api", "api")).toBeNull();
    expect(stackCredentials(onlyWebReview, "pr-7-web", "web")).toBe(onlyWebReview.stacks["review:web"]);
  });
});
