import { describe, it, expect } from "vitest";
import { code, fenced, formatDuration, shortSha, tail } from "../../src/render/markdown.js";
import { STATUS_ICON, stepLine, stepOutputs } from "../../src/render/steps.js";
import { completedOutput, previewCheckRunName, progressOutput, queuedOutput } from "../../src/render/check-run.js";
import { STICKY_MARKER, renderStickyComment } from "../../src/render/sticky-comment.js";
import { CHECK_RUN_TEXT_LIMIT, COMMENT_BODY_LIMIT } from "../../src/connectors/github.js";
import type { StackView, TaskRow } from "../../src/connectors/store/workflows.js";
import { step, taskRow } from "../helpers/rows.js";
import type { TaskState } from "../../src/domain/states.js";

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------


/** `size` characters of log output, in lines of `lineLength`, ending with a recognisable marker. */
function bigOutput(size: number, endMarker: string, lineLength = 100): string {
  const line = "y".repeat(lineLength - 1) + "\n";
  const body = line.repeat(Math.ceil(size / lineLength)).slice(0, size - endMarker.length);
  return body + endMarker;
}

const HEAD_SHA = "0123456789abcdef0123456789abcdef01234567";

const task = taskRow;

function view(t: TaskRow, headSha = HEAD_SHA): StackView {
  return { task: t, headSha, requestedBy: "alice" };
}

const WEB = "https://ghe.example.com";

function sticky(stacks: StackView[], notice?: string): string {
  return renderStickyComment({ repo: "o/r", webBaseUrl: WEB, stacks, ...(notice ? { notice } : {}) });
}

/** The lines between the table header separator and the first blank line. */
function tableRows(body: string): string[] {
  const lines = body.split("\n");
  const start = lines.indexOf("| --- | --- | --- | --- | --- | --- |");
  expect(start).toBeGreaterThan(0);
  const rows: string[] = [];
  for (let i = start + 1; i < lines.length && lines[i]!.startsWith("|"); i++) rows.push(lines[i]!);
  return rows;
}

/**
 * Checks that `block` is a well-formed fenced code block whose body cannot close it early:
 * no body line may be a run of at least as many backticks as the fence (CommonMark closing rule).
 */
function expectSealedFence(block: string): { fence: string; body: string } {
  const lines = block.split("\n");
  const open = /^(`{3,})([^`]*)$/.exec(lines[0]!);
  expect(open, `opening fence in ${JSON.stringify(lines[0])}`).not.toBeNull();
  const fence = open![1]!;
  expect(lines.at(-1)).toBe(fence);
  const bodyLines = lines.slice(1, -1);
  const closer = new RegExp(`^ {0,3}\`{${fence.length},}\\s*$`);
  for (const l of bodyLines) expect(closer.test(l), `body line ${JSON.stringify(l)} would close the fence`).toBe(false);
  // Stronger: no backtick run anywhere in the body is as long as the fence.
  const longest = Math.max(0, ...Array.from(bodyLines.join("\n").matchAll(/`+/g), (m) => m[0].length));
  expect(longest).toBeLessThan(fence.length);
  return { fence, body: bodyLines.join("\n") };
}

// ---------------------------------------------------------------------------------------------
// markdown.ts
// ---------------------------------------------------------------------------------------------

describe("fenced", () => {
  it("wraps plain text in a triple-backtick fence with an optional language", () => {
    expect(fenced("hello\nworld")).toBe("```\nhello\nworld\n```");
    expect(fenced("+ add", "diff")).toBe("```diff\n+ add\n```");
  });

  it("drops one trailing newline so the closing fence is not preceded by a blank line", () => {
    expect(fenced("line\n")).toBe("```\nline\n```");
    expect(fenced("line\n\n")).toBe("```\nline\n\n```");
  });

  it("keeps a triple fence when the text has only short backtick runs", () => {
    expect(fenced("use `x` or ``y``")).toBe("```\nuse `x` or ``y``\n```");
  });

  it("uses a longer fence when the text contains ``` so the text cannot close it", () => {
    const text = "before\n```\nnot the end\n```\nafter";
    const out = fenced(text);
    const { fence, body } = expectSealedFence(out);
    expect(fence).toBe("````");
    expect(body).toBe(text);
  });

  it("uses a longer fence when the text contains ````", () => {
    const text = "````\n```js\nx\n```\n````";
    const { fence, body } = expectSealedFence(fenced(text, "text"));
    expect(fence).toBe("`````");
    expect(body).toBe(text);
  });

  it("is sealed against a backtick run anywhere on a line, and keeps runs up to 8 intact", () => {
    for (const text of ["x ``````` y", "a\n   ``````\nb", "```\n````````\n```"]) {
      const { body } = expectSealedFence(fenced(text));
      expect(body).toBe(text);
    }
  });

  it("splits very long backtick runs with zero-width spaces so the fence stays short", () => {
    const out = fenced("`".repeat(40));
    const { body } = expectSealedFence(out);
    expect(body.replace(/\u200b/g, "")).toBe("`".repeat(40));
    expect(out.startsWith("`".repeat(9) + "\n")).toBe(true);
    expect(out.split("\n")[0]!.length).toBeLessThanOrEqual(9);
  });

  it("renders an empty text as an empty fenced block", () => {
    expect(fenced("")).toBe("```\n\n```");
  });
});

describe("code", () => {
  it("wraps text in single backticks", () => {
    expect(code("prod-eu")).toBe("`prod-eu`");
  });

  it("removes backticks so the text cannot break out of the span", () => {
    expect(code("a`b``c")).toBe("`abc`");
    expect(code("`rm -rf /`")).toBe("`rm -rf /`");
  });

  it("removes control characters, including newlines, tabs, NUL and DEL", () => {
    expect(code("a\nb\r\tc\u0000d\u007fe\u001bf")).toBe("`abcdef`");
  });

  it("truncates to 100 characters by default, and to max when given", () => {
    expect(code("x".repeat(150))).toBe("`" + "x".repeat(100) + "`");
    expect(code("abcdefgh", 3)).toBe("`abc`");
  });

  it("counts the limit after cleaning", () => {
    expect(code("``ab``cd", 3)).toBe("`abc`");
  });

  it("never produces an empty span", () => {
    expect(code("")).toBe("` `");
    expect(code("```")).toBe("` `");
    expect(code("\n\n")).toBe("` `");
  });
});

describe("tail", () => {
  it("returns short text unchanged", () => {
    expect(tail("abc\ndef", 7)).toBe("abc\ndef");
    expect(tail("abc", 100)).toBe("abc");
  });

  it("keeps the end of a text without newlines, exactly max characters", () => {
    const text = "0123456789".repeat(10);
    expect(tail(text, 15)).toBe("567890123456789");
  });

  it("starts at the first line boundary inside the kept part", () => {
    const text = ["first line", "second line", "third line", "last line"].join("\n");
    // The last 25 chars are "line\nthird line\nlast line" (mid-line cut); the partial line is dropped.
    const out = tail(text, 25);
    expect(out).toBe("third line\nlast line");
    expect(out.length).toBeLessThanOrEqual(25);
  });

  it("keeps the raw cut when the first newline is too far in (200+ chars)", () => {
    const text = "a".repeat(1000) + "\n" + "b".repeat(10);
    // Cut of 500: 489 a's, newline at index 489 > 200, so no line-boundary adjustment.
    const out = tail(text, 500);
    expect(out).toHaveLength(500);
    expect(out.endsWith("\n" + "b".repeat(10))).toBe(true);
  });

  it("always returns a suffix of the text no longer than max", () => {
    const text = Array.from({ length: 300 }, (_, i) => `line ${i} ${"z".repeat(i % 37)}`).join("\n");
    for (const max of [1, 10, 50, 199, 200, 201, 1000, 5000]) {
      const out = tail(text, max);
      expect(out.length).toBeLessThanOrEqual(max);
      expect(text.endsWith(out)).toBe(true);
    }
  });
});

describe("shortSha and formatDuration", () => {
  it("shortSha keeps the first 7 characters", () => {
    expect(shortSha(HEAD_SHA)).toBe("0123456");
  });

  it("formats milliseconds, seconds and minutes", () => {
    expect(formatDuration(null)).toBe("");
    expect(formatDuration(0)).toBe("0 ms");
    expect(formatDuration(999)).toBe("999 ms");
    expect(formatDuration(1000)).toBe("1.0 s");
    expect(formatDuration(12_345)).toBe("12.3 s");
    expect(formatDuration(65_000)).toBe("1 min 5 s");
    expect(formatDuration(600_000)).toBe("10 min 0 s");
  });

  it("never shows 60 seconds after rounding", () => {
    expect(formatDuration(119_600)).toBe("2 min 0 s");
    expect(formatDuration(59_960)).toBe("1 min 0 s");
  });
});

// ---------------------------------------------------------------------------------------------
// steps.ts
// ---------------------------------------------------------------------------------------------

describe("stepLine", () => {
  it("shows icon, name and duration", () => {
    expect(stepLine(step({ name: "lint", status: "succeeded", exitCode: 0, durationMs: 1500 }))).toBe("✅ lint (1.5 s)");
  });

  it("adds the exit code for failed steps only", () => {
    expect(stepLine(step({ name: "test", status: "failed", exitCode: 2, durationMs: 800 }))).toBe("❌ test (800 ms, exit 2)");
    expect(stepLine(step({ name: "test", status: "failed", exitCode: 2 }))).toBe("❌ test (exit 2)");
    expect(stepLine(step({ name: "test", status: "timed_out", exitCode: 137, durationMs: 2000 }))).toBe("⏱️ test (2.0 s)");
    expect(stepLine(step({ name: "lint", status: "succeeded", exitCode: 0 }))).toBe("✅ lint");
  });

  it("uses a distinct icon for every status", () => {
    expect(new Set(Object.values(STATUS_ICON)).size).toBe(Object.keys(STATUS_ICON).length);
    expect(stepLine(step({ name: "preview", status: "pending" }))).toBe(`${STATUS_ICON.pending} preview`);
    expect(stepLine(step({ name: "preview", status: "skipped" }))).toBe(`${STATUS_ICON.skipped} preview`);
  });
});

describe("stepOutputs", () => {
  it("is empty when no step has run", () => {
    expect(stepOutputs([], 10_000)).toBe("");
    expect(stepOutputs([step({ name: "lint", status: "pending" }), step({ name: "test", status: "skipped" })], 10_000)).toBe("");
  });

  it("shows one section per run step, skipping pending and skipped ones", () => {
    const out = stepOutputs(
      [
        step({ name: "lint", status: "succeeded", exitCode: 0, durationMs: 10, outputTail: "lint ok" }),
        step({ name: "test", status: "failed", exitCode: 1, durationMs: 20, outputTail: "1 test failed" }),
        step({ name: "preview", status: "skipped", outputTail: "SHOULD-NOT-APPEAR" }),
      ],
      10_000,
    );
    expect(out).toBe(
      "### ✅ lint (10 ms)\n\n```\nlint ok\n```\n\n### ❌ test (20 ms, exit 1)\n\n```\n1 test failed\n```",
    );
  });

  it("says (no output) for a step that printed nothing", () => {
    expect(stepOutputs([step({ name: "lint", status: "succeeded", outputTail: "" })], 10_000)).toContain("```\n(no output)\n```");
  });

  it("adds the output-cut marker inside the fence only for truncated steps", () => {
    const cut = stepOutputs([step({ name: "test", status: "failed", outputTail: "end of log", truncated: true })], 10_000);
    expect(cut).toContain("end of log\n[output cut: the step printed more than the sandbox output limit]\n```");
    const whole = stepOutputs([step({ name: "test", status: "failed", outputTail: "end of log" })], 10_000);
    expect(whole).not.toContain("output cut");
  });

  it("stays within the budget and keeps the end of each output", () => {
    const steps = (["lint", "test", "preview"] as const).map((name) =>
      step({ name, status: "succeeded", durationMs: 5, outputTail: bigOutput(50_000, `END-OF-${name}`), truncated: true }),
    );
    const out = stepOutputs(steps, 9_000);
    expect(out.length).toBeLessThanOrEqual(9_000);
    for (const s of steps) expect(out).toContain(`END-OF-${s.name}\n[output cut`);
  });
});

// ---------------------------------------------------------------------------------------------
// check-run.ts
// ---------------------------------------------------------------------------------------------

describe("previewCheckRunName", () => {
  it("names the check run after the stack", () => {
    expect(previewCheckRunName("prod-eu")).toBe("agent/preview (prod-eu)");
    expect(previewCheckRunName("a")).not.toBe(previewCheckRunName("b"));
  });
});

describe("queuedOutput and progressOutput", () => {
  it("queuedOutput is queued and names the requester and short SHA", () => {
    const u = queuedOutput("prod", HEAD_SHA, "alice");
    expect(u.status).toBe("queued");
    expect(u.conclusion).toBeUndefined();
    expect(u.output!.title).toBe("Preview of prod queued");
    expect(u.output!.summary).toContain("@alice");
    expect(u.output!.summary).toContain("`0123456`");
    expect(u.output!.summary).not.toContain(HEAD_SHA);
  });

  it("progressOutput is in_progress and lists every step", () => {
    const u = progressOutput("prod", [
      step({ name: "lint", status: "succeeded", durationMs: 100, outputTail: "ok" }),
      step({ name: "test", status: "running", outputTail: "running tests" }),
      step({ name: "preview", status: "pending" }),
    ]);
    expect(u.status).toBe("in_progress");
    expect(u.conclusion).toBeUndefined();
    expect(u.output!.title).toBe("Preview of prod running");
    expect(u.output!.summary).toBe("- ✅ lint (100 ms)\n- 🔄 test\n- ⏳ preview");
    expect(u.output!.text).toContain("running tests");
  });
});

describe("completedOutput", () => {
  const ok = [
    step({ name: "lint", status: "succeeded", exitCode: 0, durationMs: 1200, outputTail: "lint clean" }),
    step({ name: "test", status: "succeeded", exitCode: 0, durationMs: 3400, outputTail: "12 passed" }),
    step({ name: "preview", status: "succeeded", exitCode: 0, durationMs: 65_000, outputTail: "Plan: 1 to add" }),
  ];

  it("reports success with a summary line per step", () => {
    const u = completedOutput("prod", { succeeded: true, steps: ok, error: null });
    expect(u.status).toBe("completed");
    expect(u.conclusion).toBe("success");
    expect(u.output!.title).toBe("Preview of prod succeeded");
    expect(u.output!.summary).toBe("- ✅ lint (1.2 s)\n- ✅ test (3.4 s)\n- ✅ preview (1 min 5 s)");
    expect(u.output!.text).toContain("Plan: 1 to add");
    expect(Number.isNaN(Date.parse(u.completedAt!))).toBe(false);
  });

  it("reports failure naming the failing step, with each step's status", () => {
    const steps = [
      ok[0]!,
      step({ name: "test", status: "failed", exitCode: 1, durationMs: 500, outputTail: "AssertionError: boom" }),
      step({ name: "preview", status: "skipped" }),
    ];
    const u = completedOutput("prod", { succeeded: false, steps, error: null });
    expect(u.conclusion).toBe("failure");
    expect(u.output!.title).toBe("Preview of prod failed at test");
    expect(u.output!.summary).toBe("- ✅ lint (1.2 s)\n- ❌ test (500 ms, exit 1)\n- ⏭️ preview");
    expect(u.output!.text).toContain("AssertionError: boom");
  });

  it("reports timed_out when the failing step timed out", () => {
    const steps = [ok[0]!, ok[1]!, step({ name: "preview", status: "timed_out", durationMs: 900_000, outputTail: "still planning" })];
    const u = completedOutput("prod", { succeeded: false, steps, error: "step preview timed out after 900 s" });
    expect(u.conclusion).toBe("timed_out");
    expect(u.output!.title).toBe("Preview of prod failed at preview");
    expect(u.output!.summary).toMatch(/^\*\*step preview timed out after 900 s\*\*\n/);
    expect(u.output!.summary).toContain("- ⏱️ preview (15 min 0 s)");
  });

  it("uses the first failing step for the title and conclusion", () => {
    const steps = [
      step({ name: "lint", status: "failed", exitCode: 1 }),
      step({ name: "test", status: "timed_out" }),
    ];
    const u = completedOutput("prod", { succeeded: false, steps, error: null });
    expect(u.conclusion).toBe("failure");
    expect(u.output!.title).toBe("Preview of prod failed at lint");
  });

  it("reports a failure with no failing step (e.g. checkout error), showing the error first", () => {
    const u = completedOutput("prod", { succeeded: false, steps: [], error: "could not fetch the head commit" });
    expect(u.conclusion).toBe("failure");
    expect(u.output!.title).toBe("Preview of prod failed");
    expect(u.output!.summary).toBe("**could not fetch the head commit**\n");
    expect(u.output!.text).toBe("");
  });

  it("shows the output-cut marker for truncated output and not otherwise", () => {
    const cut = completedOutput("prod", {
      succeeded: false,
      steps: [step({ name: "test", status: "failed", exitCode: 1, outputTail: "last words", truncated: true })],
      error: null,
    });
    expect(cut.output!.text).toContain("last words\n[output cut: the step printed more than the sandbox output limit]");
    const whole = completedOutput("prod", { succeeded: true, steps: ok, error: null });
    expect(whole.output!.text).not.toContain("[output cut");
  });

  it("keeps text within the check-run limit with 3 steps of 200 KB each, and keeps the end of each output", () => {
    const steps = (["lint", "test", "preview"] as const).map((name, i) =>
      step({
        name,
        status: i === 2 ? "failed" : "succeeded",
        exitCode: i === 2 ? 1 : 0,
        durationMs: 1000,
        outputTail: bigOutput(200_000, `<<END OF ${name} OUTPUT>>`),
        truncated: true,
      }),
    );
    const text = completedOutput("prod", { succeeded: false, steps, error: null }).output!.text!;
    expect(CHECK_RUN_TEXT_LIMIT).toBe(65_535);
    expect(text.length).toBeLessThanOrEqual(CHECK_RUN_TEXT_LIMIT);
    for (const s of steps) {
      expect(text).toContain(`### ${stepLine(s)}`);
      expect(text).toContain(`<<END OF ${s.name} OUTPUT>>\n[output cut`);
    }
    // Each step gets a substantial share of the budget, not just a few lines.
    const sections = text.split(/^### /m).filter(Boolean);
    expect(sections).toHaveLength(3);
    for (const sec of sections) expect(sec.length).toBeGreaterThan(15_000);
  });

  it("keeps the same budget with one-line (minified) outputs of 200 KB", () => {
    const steps = (["lint", "test", "preview"] as const).map((name) =>
      step({ name, status: "succeeded", outputTail: "q".repeat(200_000) + `#${name}#`, truncated: false }),
    );
    const text = completedOutput("prod", { succeeded: true, steps, error: null }).output!.text!;
    expect(text.length).toBeLessThanOrEqual(CHECK_RUN_TEXT_LIMIT);
    for (const s of steps) expect(text).toContain(`#${s.name}#\n`);
  });

  it("keeps text within the check-run limit when step output is full of backticks", () => {
    // The output comes from code in the pull request, so it can contain anything, including
    // long backtick runs that force fenced() to grow its fence.
    const steps = (["lint", "test", "preview"] as const).map((name) =>
      step({ name, status: "succeeded", outputTail: "`".repeat(200_000) + `\nend of ${name}`, truncated: false }),
    );
    const text = completedOutput("prod", { succeeded: true, steps, error: null }).output!.text!;
    expect(text.length).toBeLessThanOrEqual(CHECK_RUN_TEXT_LIMIT);
    for (const s of steps) expect(text).toContain(`end of ${s.name}`);
  });
});

// ---------------------------------------------------------------------------------------------
// sticky-comment.ts
// ---------------------------------------------------------------------------------------------

describe("renderStickyComment", () => {
  const succeededSteps = [
    step({ name: "lint", status: "succeeded", durationMs: 100, outputTail: "LINT-OUTPUT-OK" }),
    step({ name: "preview", status: "succeeded", durationMs: 100, outputTail: "PLAN-OUTPUT-OK" }),
  ];

  it("starts with the sticky marker", () => {
    const body = sticky([view(task({ stack: "prod", state: "SUCCEEDED", steps: succeededSteps }))]);
    expect(body.startsWith(STICKY_MARKER + "\n")).toBe(true);
    expect(STICKY_MARKER).toMatch(/^<!--.*-->$/);
  });

  it("starts with the marker and invites a preview when there are no stacks", () => {
    const body = sticky([]);
    expect(body.startsWith(STICKY_MARKER)).toBe(true);
    expect(body).toContain("No preview yet");
    expect(body).toContain("`/agent preview`");
    expect(body).not.toContain("| Stack |");
  });

  it("shows one table row per stack with its short SHA, state, changes, steps and check-run link", () => {
    const body = sticky([
      view(task({ stack: "prod", state: "SUCCEEDED", check_run_id: "123", steps: succeededSteps })),
      view(task({ stack: "staging", state: "RUNNING", check_run_id: "456", steps: [step({ name: "lint", status: "running" })] })),
      view(task({ stack: "dev", state: "PENDING" })),
    ]);
    const rows = tableRows(body);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toBe("| `prod` | `0123456` | ✅ succeeded | — | ✅ lint · ✅ preview | [check run](https://ghe.example.com/o/r/runs/123) |");
    expect(rows[1]).toBe("| `staging` | `0123456` | 🔄 running | — | 🔄 lint | [check run](https://ghe.example.com/o/r/runs/456) |");
    expect(rows[2]).toBe("| `dev` | `0123456` | ⏳ queued | — | — | — |");
    expect(body).not.toContain(HEAD_SHA);
  });

  it("builds the check-run link from webBaseUrl (github.com too)", () => {
    const t = task({ stack: "prod", state: "SUCCEEDED", check_run_id: "123" });
    expect(sticky([view(t)])).toContain("(https://ghe.example.com/o/r/runs/123)");
    const gh = renderStickyComment({ repo: "acme/infra", webBaseUrl: "https://github.com", stacks: [view(t)] });
    expect(gh).toContain("[check run](https://github.com/acme/infra/runs/123)");
  });

  it("puts the short SHA in the heading when all stacks share one, and leaves it out otherwise", () => {
    const same = sticky([view(task({ stack: "a", state: "SUCCEEDED" })), view(task({ stack: "b", state: "SUCCEEDED" }))]);
    expect(same.split("\n")[1]).toBe("## 🛠️ Infrastructure preview on `0123456`: ✅ all previews succeeded");
    const mixed = sticky([
      view(task({ stack: "a", state: "SUCCEEDED" })),
      view(task({ stack: "b", state: "SUCCEEDED" }), "fedcba9876543210fedcba9876543210fedcba98"),
    ]);
    expect(mixed.split("\n")[1]).toBe("## 🛠️ Infrastructure preview: ✅ all previews succeeded");
    const rows = tableRows(mixed);
    expect(rows[0]).toContain("`0123456`");
    expect(rows[1]).toContain("`fedcba9`");
  });

  describe("overall status", () => {
    const heading = (...states: TaskState[]) =>
      sticky(states.map((state, i) => view(task({ stack: `s${i}`, state })))).split("\n")[1]!;

    it("is in progress while any stack is queued or running, even if another failed", () => {
      expect(heading("RUNNING", "SUCCEEDED")).toMatch(/: 🔄 in progress$/);
      expect(heading("PENDING")).toMatch(/: 🔄 in progress$/);
      expect(heading("FAILED", "RUNNING")).toMatch(/: 🔄 in progress$/);
    });

    it("is failed when nothing is live and any stack failed or was blocked", () => {
      expect(heading("SUCCEEDED", "FAILED")).toMatch(/: ❌ failed$/);
      expect(heading("BLOCKED", "SUCCEEDED")).toMatch(/: ❌ failed$/);
    });

    it("is all succeeded only when every stack succeeded", () => {
      expect(heading("SUCCEEDED", "SUCCEEDED")).toMatch(/: ✅ all previews succeeded$/);
      expect(heading("SUCCEEDED", "CANCELLED")).not.toContain("all previews succeeded");
    });
  });

  it("shows a notice above the table", () => {
    const body = sticky([view(task({ stack: "prod", state: "SUCCEEDED" }))], "⚠️ `.github/agent.yml` is invalid");
    const lines = body.split("\n");
    expect(lines.indexOf("⚠️ `.github/agent.yml` is invalid")).toBe(3);
    expect(body.indexOf("⚠️")).toBeLessThan(body.indexOf("| Stack |"));
  });

  it("gives each failing stack a collapsed <details> with the failing step's output only", () => {
    const body = sticky([
      view(task({ stack: "prod", state: "SUCCEEDED", steps: succeededSteps })),
      view(
        task({
          stack: "staging",
          state: "FAILED",
          steps: [
            step({ name: "lint", status: "succeeded", outputTail: "STAGING-LINT-OK" }),
            step({ name: "test", status: "failed", exitCode: 3, durationMs: 1500, outputTail: "Error: bucket already exists" }),
          ],
        }),
      ),
    ]);
    expect(body.match(/<details>/g)).toHaveLength(1);
    expect(body.match(/<\/details>/g)).toHaveLength(1);
    expect(body).not.toContain("<details open");
    const details = body.slice(body.indexOf("<details>"), body.indexOf("</details>"));
    expect(details).toContain("<summary>❌ `staging`: ❌ test (1.5 s, exit 3)</summary>");
    expect(details).toContain("Error: bucket already exists");
    expect(details).not.toContain("STAGING-LINT-OK");
    expect(body).not.toContain("LINT-OUTPUT-OK");
    expect(body).not.toContain("PLAN-OUTPUT-OK");
    // The footer comes after the details.
    expect(body.trimEnd().split("\n").at(-1)).toContain("/agent help");
  });

  it("does not add <details> for blocked or cancelled stacks", () => {
    const body = sticky([view(task({ stack: "a", state: "BLOCKED" })), view(task({ stack: "b", state: "CANCELLED" }))]);
    expect(body).not.toContain("<details>");
  });

  it("escapes HTML in a task error shown in the summary", () => {
    const body = sticky([
      view(task({ stack: "prod", state: "FAILED", error: 'clone failed: <script>alert("x")</script> & more' })),
    ]);
    expect(body).not.toContain("<script>");
    expect(body).not.toContain("</script>");
    expect(body).toContain("&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; more");
    // The summary element itself stays intact.
    expect(body).toMatch(/<summary>❌ `prod`: clone failed: &lt;script&gt;.*<\/summary>/);
  });

  it("bounds a long task error", () => {
    const body = sticky([view(task({ stack: "prod", state: "FAILED", error: "E".repeat(5000) }))]);
    const summary = /<summary>(.*)<\/summary>/.exec(body)![1]!;
    expect(summary.length).toBeLessThan(400);
  });

  it("with 10 stacks failing with 100 KB each, fits the limit and keeps the end of each failing output", () => {
    const stacks = Array.from({ length: 10 }, (_, i) =>
      view(
        task({
          stack: `stack-${i}`,
          state: "FAILED",
          check_run_id: String(1000 + i),
          steps: [
            step({ name: "lint", status: "succeeded", durationMs: 100, outputTail: bigOutput(100_000, `LINT-${i}-END`) }),
            step({ name: "test", status: "failed", exitCode: 1, durationMs: 100, outputTail: bigOutput(100_000, `FAIL-${i}-END`), truncated: true }),
          ],
        }),
      ),
    );
    const body = sticky(stacks);
    expect(body.length).toBeLessThanOrEqual(COMMENT_BODY_LIMIT);
    expect(tableRows(body)).toHaveLength(10);
    expect(body.match(/<details>/g)).toHaveLength(10);
    for (let i = 0; i < 10; i++) {
      expect(body).toContain(`FAIL-${i}-END\n[output cut`);
      expect(body).not.toContain(`LINT-${i}-END`);
      expect(body).toContain(`(https://ghe.example.com/o/r/runs/${1000 + i})`);
    }
    expect(body.trimEnd().split("\n").at(-1)).toContain("/agent help");
  });

  it("with 50 stacks each failing with 100 KB of output, stays within the comment limit", () => {
    // One long line per output (a minified JSON plan, a stack trace without breaks): tail()
    // finds no line boundary to trim at, so each failure uses its whole share of the budget.
    const stacks = Array.from({ length: 50 }, (_, i) =>
      view(
        task({
          stack: `service-${String(i).padStart(2, "0")}-eu-west-1`,
          state: "FAILED",
          check_run_id: String(9_000_000_000 + i),
          steps: [
            step({ name: "lint", status: "succeeded", durationMs: 1_200 }),
            step({ name: "test", status: "succeeded", durationMs: 4_500 }),
            step({
              name: "preview",
              status: "failed",
              exitCode: 1,
              durationMs: 95_000,
              outputTail: "p".repeat(100_000) + `END-${i}`,
              truncated: true,
            }),
          ],
        }),
      ),
    );
    const body = sticky(stacks);
    expect(tableRows(body)).toHaveLength(50);
    expect(body.length).toBeLessThanOrEqual(COMMENT_BODY_LIMIT);
    // Everything must survive, including the closing tags and the footer.
    expect(body.match(/<details>/g)).toHaveLength(50);
    expect(body.match(/<\/details>/g)).toHaveLength(50);
    for (let i = 0; i < 50; i++) expect(body).toContain(`END-${i}\n[output cut`);
  });
});
