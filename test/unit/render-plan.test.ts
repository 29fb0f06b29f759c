import { describe, it, expect } from "vitest";
import {
  changesLabel,
  commandOutputBlock,
  destructiveLine,
  diagnosticLine,
  planRows,
  resourceRow,
  shortPlanHash,
  summaryLine,
} from "../../src/render/plan.js";
import { continuationMarker, renderStickyComment, renderStickyParts, STICKY_MARKER, type StickyParts } from "../../src/render/sticky-comment.js";
import { completedOutput } from "../../src/render/check-run.js";
import { CHECK_RUN_TEXT_LIMIT, COMMENT_BODY_LIMIT, type CheckRunAnnotation } from "../../src/connectors/github.js";
import { countChanges, emptyCounts, type PlanDiagnostic, type PulumiPreview, type ResourceChange, type ResourceOp } from "../../src/plan/types.js";
import type { StackView, TaskRow } from "../../src/connectors/store/workflows.js";
import { step, taskRow } from "../helpers/rows.js";

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

const WEB = "https://ghe.example.com";
const HEAD_SHA = "0123456789abcdef0123456789abcdef01234567";
const HASH = "sha256:" + "ab12".repeat(16);
const logUrlFor = (id: string) => `https://agent.example.com/tasks/${id}/log`;

function res(op: ResourceOp, name: string, over: Partial<ResourceChange> = {}): ResourceChange {
  const type = over.type ?? "aws:s3/bucket:Bucket";
  return {
    op,
    urn: `urn:pulumi:prod::app::${type}::${name}`,
    type,
    name,
    changedProperties: op === "update" || op === "replace" ? ["tags.Owner", "versioning.enabled"] : [],
    replaceReasons: op === "replace" ? ["bucket"] : [],
    ...over,
  };
}

function preview(resources: ResourceChange[], diagnostics: PlanDiagnostic[] = []): PulumiPreview {
  return { engine: "pulumi", stack: "prod", resources, diagnostics, summary: countChanges(resources) };
}

/** `n` resources named `<prefix>-00001`…: 2% deletes, 1% replaces, 3% same, 1% read, the rest creates and updates. */
function bigPlan(n: number, prefix = "res"): PulumiPreview {
  const types = ["aws:s3/bucket:Bucket", "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:lambda/function:Function", "kubernetes:apps/v1:Deployment"];
  const resources = Array.from({ length: n }, (_, i) => {
    const op: ResourceOp = i % 50 === 7 ? "delete" : i % 100 === 13 ? "replace" : i % 33 === 5 ? "same" : i % 100 === 21 ? "read" : i % 2 ? "update" : "create";
    return res(op, `${prefix}-${String(i).padStart(5, "0")}`, { type: types[i % types.length]! });
  });
  return preview(resources, [{ severity: "warning", message: "deprecated resource type", urn: resources[0]!.urn }]);
}


function task(over: Partial<TaskRow> & Pick<TaskRow, "stack" | "state">): TaskRow {
  return taskRow({ steps: [step({ name: "preview", status: "succeeded", durationMs: 1000 })], ...over });
}

function view(t: TaskRow): StackView {
  return { task: t, headSha: HEAD_SHA, requestedBy: "alice" };
}

function planned(stack: string, plan: PulumiPreview | TaskRow["plan"], over: Partial<TaskRow> = {}): StackView {
  return view(task({ stack, state: "SUCCEEDED", plan, plan_hash: HASH, check_run_id: `${stack.length}42`, ...over }));
}

function parts(stacks: StackView[], maxContinuations: number, withLog = true): StickyParts {
  return renderStickyParts({ repo: "o/r", webBaseUrl: WEB, stacks, maxContinuations, ...(withLog ? { logUrlFor } : {}) });
}

function all(p: StickyParts): string[] {
  return [p.main, ...p.continuations];
}

/** Removes backslash escapes and inline code spans: what is left is what markdown interprets. */
function outsideCode(line: string): string {
  return line.replace(/\\./g, "").replace(/`[^`\n]*`/g, "");
}

/**
 * Checks a part's structure: fences closed, every `<details>` opened on its own line and closed by a
 * `</details>` line, no stray HTML or links from untrusted text outside code spans.
 */
function expectWellFormed(part: string): void {
  expect(part.length).toBeLessThanOrEqual(COMMENT_BODY_LIMIT);
  const lines = part.split("\n");
  let fence: string | null = null;
  let depth = 0;
  for (const l of lines) {
    if (fence !== null) {
      if (new RegExp(`^ {0,3}\`{${fence.length},}\\s*$`).test(l)) fence = null;
      continue;
    }
    const open = /^ {0,3}(`{3,})[^`]*$/.exec(l);
    if (open) {
      fence = open[1]!;
      continue;
    }
    const o = outsideCode(l);
    const opens = o.match(/<details/g)?.length ?? 0;
    const closes = o.match(/<\/details>/g)?.length ?? 0;
    if (opens) {
      expect(opens, l).toBe(1);
      expect(l.startsWith("<details><summary>"), l).toBe(true);
      expect(l.endsWith("</summary>"), l).toBe(true);
      depth++;
    }
    if (closes) {
      expect(l, "a </details> on its own line").toBe("</details>");
      depth--;
      expect(depth).toBeGreaterThanOrEqual(0);
    }
    expect((o.match(/<summary>/g) ?? []).length).toBe((o.match(/<\/summary>/g) ?? []).length);
    // Only our own tags: details, summary, code, sub, comments.
    for (const tag of o.matchAll(/<\/?([a-zA-Z][\w-]*)/g)) expect(["details", "summary", "code", "sub"], l).toContain(tag[1]);
    // Links only to the check run or the log.
    for (const link of o.matchAll(/\]\(([^)]*)\)/g)) expect(link[1]!.startsWith(WEB) || link[1]!.startsWith("https://agent.example.com/"), l).toBe(true);
    if (l.startsWith("| ") && !l.startsWith("| Stack") && !l.startsWith("| Op") && !l.startsWith("| ---")) {
      // A table row keeps its column count whatever its cells hold.
      const cells = l.split(/(?<!\\)\|/).length - 2;
      expect([4, 6], l).toContain(cells);
    }
  }
  expect(fence, "every fence closed").toBeNull();
  expect(depth, "every <details> closed").toBe(0);
}

/** Table rows (resource names) in a part, by the name cell. */
function rowNames(part: string): string[] {
  const names: string[] = [];
  for (const l of part.split("\n")) {
    const m = /^\| \S+ \w+ \| `[^`]*` \| `([^`]*)` \|/.exec(l);
    if (m) names.push(m[1]!);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// plan.ts
// ---------------------------------------------------------------------------------------------

describe("summaryLine", () => {
  it("lists create, update, delete and replace in that order, zeros left out", () => {
    expect(summaryLine({ ...emptyCounts(), create: 3, update: 1, delete: 2, replace: 1 })).toBe("+3 ~1 -2 ±1");
    expect(summaryLine({ ...emptyCounts(), delete: 4 })).toBe("-4");
    expect(summaryLine({ ...emptyCounts(), replace: 1, create: 10 })).toBe("+10 ±1");
  });

  it("leaves reads and unchanged resources out, and says no changes when nothing changes", () => {
    expect(summaryLine({ ...emptyCounts(), same: 40, read: 2 })).toBe("no changes");
    expect(summaryLine(emptyCounts())).toBe("no changes");
    expect(summaryLine({ ...emptyCounts(), update: 1, read: 9, same: 9 })).toBe("~1");
  });

  it("labels the Changes column by engine", () => {
    expect(changesLabel(null)).toBe("—");
    expect(changesLabel(preview([res("create", "a")]))).toBe("+1");
    expect(changesLabel({ engine: "command", output: "x", truncated: false })).toBe("see output");
  });

  it("shortens the plan hash to 12 hex digits", () => {
    expect(shortPlanHash("sha256:0123456789abcdef0123")).toBe("0123456789ab");
    expect(shortPlanHash(null)).toBeNull();
  });
});

describe("resource rows and lines", () => {
  it("orders rows destructive first and skips unchanged resources", () => {
    const p = preview([res("create", "c1"), res("same", "s1"), res("update", "u1"), res("replace", "r1"), res("delete", "d1"), res("read", "rd1")]);
    const { rows, destructive, unchanged } = planRows(p);
    expect(rows.map((r) => rowNames(r)[0])).toEqual(["d1", "r1", "c1", "u1", "rd1"]);
    expect(destructive.map((r) => r.name)).toEqual(["d1", "r1"]);
    expect(unchanged).toBe(1);
  });

  it("shows changed properties and marks those that force the replacement", () => {
    const row = resourceRow(res("replace", "web", { changedProperties: ["ami", "tags"], replaceReasons: ["ami"] }));
    expect(row).toBe("| 🔁 replace | `aws:s3/bucket:Bucket` | `web` | `ami` (forces replacement), `tags` |");
    const many = resourceRow(res("update", "x", { changedProperties: Array.from({ length: 40 }, (_, i) => `p${i}`) }));
    expect(many).toContain("+30 more");
  });

  it("flags destructive lines with their replace reasons", () => {
    expect(destructiveLine(res("delete", "logs"))).toBe("- 🗑️ **delete** `aws:s3/bucket:Bucket` `logs`");
    expect(destructiveLine(res("replace", "web", { replaceReasons: ["ami", "subnetId"] }))).toBe(
      "- 🔁 **replace** `aws:s3/bucket:Bucket` `web` — replaced because of `ami`, `subnetId`",
    );
  });

  it("escapes diagnostic messages so they cannot open HTML, links or mentions", () => {
    const line = diagnosticLine({ severity: "warning", message: "<details>[click](https://evil.example)\n# @admin `x` |", urn: "urn:a::b::c::web" });
    expect(line).toContain("&lt;details&gt;");
    expect(line).not.toContain("<details>");
    expect(line).toContain("\\[click\\](https://evil.example)");
    expect(outsideCode(line)).not.toContain("](");
    expect(line).not.toContain("\n");
    expect(line).not.toMatch(/@admin/);
    expect(line.startsWith("- ⚠️ warning `web`: ")).toBe(true);
    expect(diagnosticLine({ severity: "error", message: "x".repeat(5000), urn: null }).length).toBeLessThan(500);
  });

  it("fences command output so it cannot close its block, and notes truncation", () => {
    const block = commandOutputBlock("Preview output", { engine: "command", output: "Plan:\n```\n</details>\n```", truncated: true }, 10_000, "https://agent.example.com/l");
    expectWellFormed(block);
    expect(block).toContain("```\n</details>\n```\n````");
    expect(block).toContain("shortened");
    expect(block).toContain("[log](https://agent.example.com/l)");
    expect(commandOutputBlock("P", { engine: "command", output: "y".repeat(500_000), truncated: false }, 5_000, null).length).toBeLessThanOrEqual(5_000);
  });
});

// ---------------------------------------------------------------------------------------------
// Sticky comment with plans
// ---------------------------------------------------------------------------------------------

describe("renderStickyParts: a mixed plan", () => {
  const mixed = preview(
    [res("create", "assets"), res("update", "api"), res("same", "role"), res("delete", "old-queue"), res("replace", "web"), res("create", "cdn")],
    [
      { severity: "warning", message: "aws:s3/bucket:Bucket is deprecated", urn: "urn:pulumi:prod::app::aws:s3/bucket:Bucket::assets" },
      { severity: "info", message: "INFO-NOT-SHOWN", urn: null },
      { severity: "error", message: "quota exceeded", urn: null },
    ],
  );
  const p = parts([planned("prod", mixed)], 4);

  it("fits in the main part with the Changes column, summary line, hash and check-run link", () => {
    expect(p.continuations).toEqual([]);
    expect(p.main.startsWith(STICKY_MARKER + "\n")).toBe(true);
    expect(p.main).toContain("| Stack | Commit | Status | Changes | Steps | Details |");
    expect(p.main).toContain("| `prod` | `0123456` | ✅ succeeded | +2 ~1 -1 ±1 |");
    expect(p.main).toContain("### `prod`: +2 ~1 -1 ±1");
    expect(p.main).toContain("Plan `ab12ab12ab12`");
    expect(p.main).toContain("[check run](https://ghe.example.com/o/r/runs/442)");
    expect(p.main).toContain("1 unchanged");
    expectWellFormed(p.main);
  });

  it("lists destructive operations first, flagged, before the table", () => {
    const flag = p.main.indexOf("⚠️ **2 destructive operations**");
    expect(flag).toBeGreaterThan(0);
    const del = p.main.indexOf("- 🗑️ **delete** `aws:s3/bucket:Bucket` `old-queue`");
    const rep = p.main.indexOf("- 🔁 **replace** `aws:s3/bucket:Bucket` `web` — replaced because of `bucket`");
    expect(del).toBeGreaterThan(flag);
    expect(rep).toBeGreaterThan(del);
    expect(p.main.indexOf("<details>")).toBeGreaterThan(rep);
  });

  it("shows errors and warnings, not info", () => {
    expect(p.main).toContain("**Diagnostics:** 1 error, 1 warning");
    expect(p.main).toContain("- ❌ error: quota exceeded");
    expect(p.main).toContain("- ⚠️ warning `assets`: aws:s3/bucket:Bucket is deprecated");
    expect(p.main).not.toContain("INFO-NOT-SHOWN");
    expect(p.main.indexOf("❌ error")).toBeLessThan(p.main.indexOf("⚠️ warning"));
  });

  it("puts the resource table, without unchanged resources, in a collapsed <details>", () => {
    const open = p.main.indexOf("<details><summary>Resource changes of <code>prod</code> (5)</summary>");
    expect(open).toBeGreaterThan(0);
    const table = p.main.slice(open, p.main.indexOf("</details>", open));
    expect(table).toContain("| Op | Type | Name | Changed properties |");
    expect(rowNames(table)).toEqual(["old-queue", "web", "assets", "cdn", "api"]);
    expect(table).not.toContain("`role`");
  });

  it("says no changes for a plan without changes and has no table", () => {
    const none = parts([planned("prod", preview([res("same", "a"), res("same", "b")]))], 4);
    expect(none.main).toContain("### `prod`: no changes");
    expect(none.main).toContain("2 unchanged");
    expect(none.main).not.toContain("<details>");
  });

  it("keeps renderStickyComment returning the main part", () => {
    expect(renderStickyComment({ repo: "o/r", webBaseUrl: WEB, stacks: [planned("prod", mixed)] })).toBe(
      parts([planned("prod", mixed)], 0, false).main,
    );
  });
});

describe("renderStickyParts: untrusted names", () => {
  const hostile = [
    "a`b``c```d",
    "x | y | z",
    "<details>",
    "</details>",
    "</summary></details><img src=x onerror=alert(1)>",
    "[click me](https://evil.example)",
    "line\nbreak\r\n| --- |",
    "N".repeat(10_000),
    "@admin #1",
    "```",
  ];
  const resources = hostile.flatMap((name, i) => [
    res("create", name, { type: `${name}:t${i}`, changedProperties: [name, `p|${i}`] }),
    res("replace", name, { type: `aws:x${i}`, changedProperties: [name], replaceReasons: [name] }),
  ]);
  const plan = preview(resources, [{ severity: "warning", message: hostile.join(" "), urn: `urn::x::${hostile[4]}` }]);

  it("cannot break out of code spans, table cells, <details> or the page", () => {
    const p = parts([planned("prod", plan)], 2);
    for (const part of all(p)) expectWellFormed(part);
    expect(p.main.split("\n").every((l) => l.length < 2_000)).toBe(true);
    // Every resource still has its row.
    expect(p.main.split("\n").filter((l) => /^\| (➕|🔁) /.test(l))).toHaveLength(resources.length);
  });

  it("keeps a command output full of fences and tags inside its fence", () => {
    const output = "```\n</details>\n<details><summary>x</summary>\n" + "`".repeat(50) + "\n[x](https://evil.example)";
    const p = parts([planned("dev", { engine: "command", output, truncated: false })], 2);
    expectWellFormed(p.main);
    expect(p.main).toContain("<details><summary>Preview output of <code>dev</code></summary>");
    expect(p.main).toContain("| `dev` | `0123456` | ✅ succeeded | see output |");
  });
});

describe("renderStickyParts: splitting a 10,000-resource preview", () => {
  const plan = bigPlan(10_000);
  const changed = plan.resources.filter((r) => r.op !== "same").map((r) => r.name);
  const destructive = plan.resources.filter((r) => r.op === "delete" || r.op === "replace").length;

  it("keeps every part within the limit, the essentials in main, and each row in exactly one part", () => {
    const p = parts([planned("prod", plan)], 100);
    expect(p.continuations.length).toBeGreaterThan(1);
    for (const part of all(p)) expectWellFormed(part);
    expect(p.main).toContain(`### \`prod\`: ${summaryLine(plan.summary)}`);
    expect(p.main).toContain(`⚠️ **${destructive} destructive operations**`);
    expect(p.main).toContain("- 🗑️ **delete**");
    expect(p.main).toContain("Detail continues in");
    const m = p.continuations.length + 1;
    p.continuations.forEach((c, i) => {
      expect(c.startsWith(continuationMarker(i + 2) + "\n")).toBe(true);
      expect(c).toContain(`Preview detail, part ${i + 2} of ${m}`);
    });
    // Each non-same resource has exactly one table row across the parts, in display order.
    const seen = all(p).flatMap(rowNames);
    expect(seen).toHaveLength(changed.length);
    expect(new Set(seen)).toEqual(new Set(changed));
    expect(all(p).join("\n")).not.toContain("Not shown for lack of room");
    // Tables split at row boundaries with the header repeated.
    for (const c of p.continuations) expect(c).toContain("| Op | Type | Name | Changed properties |\n| --- | --- | --- | --- |");
  });

  it("with few continuations, says exactly how many rows were left out and where the full detail is", () => {
    const p = parts([planned("prod", plan)], 2);
    expect(p.continuations).toHaveLength(2);
    for (const part of all(p)) expectWellFormed(part);
    const shown = all(p).flatMap(rowNames).length;
    const left = changed.length - shown;
    expect(left).toBeGreaterThan(0);
    const last = p.continuations[1]!;
    expect(last).toContain("Not shown for lack of room");
    expect(last).toContain(
      `- ${left.toLocaleString("en-US")} resource rows of stack \`prod\` not shown (rows ${(shown + 1).toLocaleString("en-US")}–${changed.length.toLocaleString("en-US")} of ${changed.length.toLocaleString("en-US")}); full detail: [check run](${WEB}/o/r/runs/442) · [full log](${logUrlFor("task-prod")})`,
    );
    expect(p.main).toContain("Detail continues in 2 more comments below (parts 2–3).");
  });

  it("with no continuations, keeps the essentials and the note in main", () => {
    const p = parts([planned("prod", plan)], 0);
    expect(p.continuations).toEqual([]);
    expectWellFormed(p.main);
    expect(p.main).toContain("⚠️ **");
    const left = changed.length - rowNames(p.main).length;
    expect(p.main).toContain(`- ${left.toLocaleString("en-US")} resource rows of stack \`prod\` not shown`);
    expect(p.main.trimEnd().split("\n").at(-1)).toContain("/agent help");
  });

  it("bounds thousands of destructive operations and points to where the rest are", () => {
    const many = preview(Array.from({ length: 3_000 }, (_, i) => res(i % 3 ? "delete" : "replace", `gone-${String(i).padStart(5, "0")}`)));
    const p = parts([planned("prod", many)], 100);
    for (const part of all(p)) expectWellFormed(part);
    expect(p.main).toContain("⚠️ **3,000 destructive operations**");
    const listed = p.main.split("\n").filter((l) => l.startsWith("- 🗑️ **delete**") || l.startsWith("- 🔁 **replace**")).length;
    expect(listed).toBeGreaterThan(10);
    expect(listed).toBeLessThan(3_000);
    const more = new RegExp(`- … and ${(3_000 - listed).toLocaleString("en-US")} more destructive operations: see (part (\\d+)|the resource table below)`).exec(p.main);
    expect(more).not.toBeNull();
    // The first destructive operation not listed in main is in the table of the part named.
    const firstHidden = planRows(many).destructive[listed]!.name;
    const k = more![2] ? Number(more![2]) : 1;
    expect(rowNames(all(p)[k - 1]!)).toContain(firstHidden);
    // With the table crowded out of main by other stacks, the pointer names a continuation part.
    const crowded = parts([planned("dev", { engine: "command", output: "out\n".repeat(50_000), truncated: false }), planned("prod", many)], 100);
    for (const part of all(crowded)) expectWellFormed(part);
    const k2 = Number(/- … and [\d,]+ more destructive operations: see part (\d+)/.exec(crowded.main)?.[1]);
    expect(k2).toBeGreaterThanOrEqual(2);
    const listed2 = crowded.main.split("\n").filter((l) => /^- (🗑️|🔁) \*\*/.test(l)).length;
    expect(rowNames(all(crowded)[k2 - 1]!)).toContain(planRows(many).destructive[listed2]!.name);
  });

  it("shares the room fairly between two large stacks", () => {
    const p = parts([planned("prod", bigPlan(6_000, "prod")), planned("stage", bigPlan(6_000, "stage"))], 3);
    for (const part of all(p)) expectWellFormed(part);
    const names = all(p).flatMap(rowNames);
    const prod = names.filter((n) => n.startsWith("prod-")).length;
    const stage = names.filter((n) => n.startsWith("stage-")).length;
    expect(prod).toBeGreaterThan(500);
    expect(stage).toBeGreaterThan(500);
    expect(Math.abs(prod - stage)).toBeLessThan(0.2 * (prod + stage));
    expect(p.main).toContain("### `prod`");
    expect(p.main).toContain("### `stage`");
    const note = p.continuations.at(-1)!;
    expect(note).toContain("resource rows of stack `prod` not shown");
    expect(note).toContain("resource rows of stack `stage` not shown");
  });

  it("still shows a failed stack's output next to a huge plan", () => {
    const failed = view(
      task({
        stack: "staging",
        state: "FAILED",
        check_run_id: "9",
        steps: [step({ name: "test", status: "failed", exitCode: 1, durationMs: 10, outputTail: "y".repeat(50_000) + "FAILURE-END" })],
      }),
    );
    for (const max of [0, 1, 4]) {
      const p = parts([planned("prod", plan), failed], max);
      for (const part of all(p)) expectWellFormed(part);
      const text = all(p).join("\n");
      expect(text).toContain("<details><summary>❌ `staging`: ❌ test (10 ms, exit 1)</summary>");
      expect(text).toContain("FAILURE-END");
      expect(p.main).toContain("| `staging` | `0123456` | ❌ failed | — |");
    }
  });

  it("splits a long command output into its own part rather than cutting its fence", () => {
    const output = Array.from({ length: 20_000 }, (_, i) => `line ${i} \`\`\`\``).join("\n");
    const p = parts([planned("dev", { engine: "command", output, truncated: true }), planned("prod", plan)], 3);
    for (const part of all(p)) expectWellFormed(part);
    expect(all(p).join("\n")).toContain("line 19999");
  });
});

// ---------------------------------------------------------------------------------------------
// Check run with a plan
// ---------------------------------------------------------------------------------------------

describe("completedOutput with a plan", () => {
  const steps = [step({ name: "preview", status: "succeeded", durationMs: 2000, outputTail: "{\"steps\": []}" })];

  it("titles a pulumi preview with its summary line and shows essentials in the summary", () => {
    const plan = preview([res("create", "a"), res("delete", "b"), res("replace", "c"), res("update", "d")], [{ severity: "warning", message: "careful", urn: null }]);
    const u = completedOutput("prod", { succeeded: true, steps, error: null, logUrl: "https://agent.example.com/l", plan, planHash: HASH });
    expect(u.output!.title).toBe("Preview of prod: +1 ~1 -1 ±1");
    const s = u.output!.summary;
    expect(s).toContain("### +1 ~1 -1 ±1");
    expect(s).toContain("Plan `ab12ab12ab12`");
    expect(s).toContain("⚠️ **2 destructive operations**");
    expect(s.indexOf("**delete**")).toBeLessThan(s.indexOf("**replace**"));
    expect(s).toContain("- ⚠️ warning: careful");
    expect(s).toContain("- ✅ preview (2.0 s)");
    expect(s).toContain("[Full log](https://agent.example.com/l)");
    const t = u.output!.text!;
    expect(t).toContain("| Op | Type | Name | Changed properties |");
    expect(t.indexOf("`b`")).toBeLessThan(t.indexOf("`a`"));
    expect(t).toContain("{\"steps\": []}");
  });

  it("keeps summary and text within the limit for 10,000 resources and says what was cut", () => {
    const plan = bigPlan(10_000);
    const many = preview(plan.resources, Array.from({ length: 2_000 }, (_, i) => ({ severity: "warning" as const, message: `w${i} ${"z".repeat(300)}`, urn: null })));
    const big = [step({ name: "preview", status: "succeeded", durationMs: 2000, outputTail: "q".repeat(300_000) })];
    const gone = Array.from({ length: 3_000 }, (_, i) => res("delete", `gone-${i}`));
    const u = completedOutput("prod", { succeeded: true, steps: big, error: null, logUrl: "https://agent.example.com/l", plan: { ...many, resources: [...many.resources, ...gone] }, planHash: HASH });
    expect(u.output!.summary.length).toBeLessThanOrEqual(CHECK_RUN_TEXT_LIMIT);
    expect(u.output!.text!.length).toBeLessThanOrEqual(CHECK_RUN_TEXT_LIMIT);
    expect(u.output!.summary).toMatch(/- … and [\d,]+ more destructive operations: see the \[full log\]/);
    expect(u.output!.summary).toMatch(/- … and [\d,]+ more: see the \[full log\]/);
    expect(u.output!.text).toMatch(/… [\d,]+ more rows not shown/);
    expect(u.output!.text).toContain("### ✅ preview");
  });

  it("shows a command preview's output in the text", () => {
    const u = completedOutput("dev", { succeeded: true, steps, error: null, plan: { engine: "command", output: "Plan: 2 to add", truncated: false } });
    expect(u.output!.title).toBe("Preview of dev succeeded");
    expect(u.output!.text).toContain("Plan: 2 to add");
  });

  it("passes at most 50 annotations through and says how many were not annotated", () => {
    const annotations: CheckRunAnnotation[] = Array.from({ length: 50 }, (_, i) => ({ path: "a.ts", startLine: i + 1, endLine: i + 1, level: "warning", message: `m${i}` }));
    const u = completedOutput("prod", { succeeded: false, steps, error: null, annotations, annotationsTotal: 73 });
    expect(u.output!.annotations).toHaveLength(50);
    expect(u.output!.summary).toContain("**23 of 73 findings were not annotated**");
    const few = completedOutput("prod", { succeeded: true, steps, error: null, annotations: annotations.slice(0, 3) });
    expect(few.output!.annotations).toHaveLength(3);
    expect(few.output!.summary).not.toContain("not annotated");
    expect(completedOutput("prod", { succeeded: true, steps, error: null }).output!.annotations).toBeUndefined();
  });

  it("keeps the title of a failed preview", () => {
    const failed = [step({ name: "preview", status: "failed", exitCode: 1 })];
    expect(completedOutput("prod", { succeeded: false, steps: failed, error: null, plan: bigPlan(10) }).output!.title).toBe("Preview of prod failed at preview");
  });
});
