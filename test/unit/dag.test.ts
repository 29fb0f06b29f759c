import { describe, expect, it } from "vitest";
import { loadRepoConfig } from "../../src/config/repo/load.js";
import type { ResolvedStack } from "../../src/config/repo/resolve.js";
import { checksAsStack, planChecks } from "../../src/config/checks.js";

function stacks(yaml: string): ResolvedStack[] {
  const res = loadRepoConfig(yaml);
  if (!res.ok) throw new Error(JSON.stringify(res.issues));
  return res.stacks;
}

describe("the preview DAG's shared checks", () => {
  it("stacks with the same lint/test in the same directory share one checks task", () => {
    const groups = planChecks(
      stacks("version: 1\nsteps: { lint: make lint, test: [make, test] }\nstacks:\n  - { name: dev, dir: infra, engine: pulumi }\n  - { name: prod, dir: infra, engine: pulumi }\n  - { name: web, dir: web, steps: { preview: echo hi } }\n"),
    );
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ label: "checks (dev, prod)", dir: "infra", stacks: ["dev", "prod"] });
    expect(groups[0]!.steps.map((s) => s.name)).toEqual(["lint", "test"]);
    expect(groups[0]!.key).toMatch(/^[0-9a-f]{16}$/);
  });

  it("a stack alone, or one with checks of its own, keeps them in its preview task", () => {
    expect(planChecks(stacks("version: 1\nsteps: { lint: make lint }\nstacks:\n  - { name: dev, dir: a }\n  - { name: prod, dir: b }\n"))).toEqual([]);
    const groups = planChecks(
      stacks("version: 1\nsteps: { lint: make lint }\nstacks:\n  - { name: dev, dir: a }\n  - { name: prod, dir: a, steps: { lint: make strict-lint } }\n  - { name: qa, dir: a }\n"),
    );
    expect(groups.map((g) => g.stacks)).toEqual([["dev", "qa"]]);
  });

  it("stacks without lint or test have no checks at all", () => {
    expect(planChecks(stacks("version: 1\nsteps: { preview: echo }\nstacks:\n  - { name: dev }\n  - { name: prod }\n"))).toEqual([]);
  });

  it("the same checks get the same key (identical commands collapse), different ones a different key", () => {
    const a = planChecks(stacks("version: 1\nsteps: { lint: x }\nstacks:\n  - { name: dev }\n  - { name: prod }\n"))[0]!;
    const b = planChecks(stacks("version: 1\nsteps: { lint: x }\nstacks:\n  - { name: qa }\n  - { name: stg }\n"))[0]!;
    const c = planChecks(stacks("version: 1\nsteps: { lint: y }\nstacks:\n  - { name: dev }\n  - { name: prod }\n"))[0]!;
    expect(a.key).toBe(b.key);
    expect(a.key).not.toBe(c.key);
  });

  it("runs as a command stack named after the group, which no credential mapping matches", () => {
    const g = planChecks(stacks("version: 1\nsteps: { lint: x }\nstacks:\n  - { name: dev, engine: pulumi }\n  - { name: prod, engine: pulumi }\n"))[0]!;
    expect(checksAsStack(g)).toMatchObject({ name: "checks (dev, prod)", engine: "command", pulumiStack: null, dir: "." });
    expect(checksAsStack(g).steps.map((s) => s.name)).toEqual(["lint"]);
  });
});

describe("/agent status shows the DAG's state", () => {
  it("a preview waiting for its shared checks says so; one that runs shows its state", async () => {
    const { renderStatus } = await import("../../src/render/status.js");
    const base = { id: "t", workflow_id: "w", kind: "preview", job_id: "j", check_run_id: null, attempts: 0, steps: [], error: null, plan_hash: null, plan: null, policy: null, created_at: new Date(), started_at: null, finished_at: null };
    const text = renderStatus({
      prNumber: 1,
      stacks: ["dev", "prod"],
      previews: [
        { task: { ...base, stack: "dev", state: "PENDING", depends_on: ["c"] }, headSha: "a".repeat(40), requestedBy: "alice" },
        { task: { ...base, stack: "prod", state: "RUNNING", depends_on: ["c"] }, headSha: "a".repeat(40), requestedBy: "alice" },
      ],
      locks: new Map(),
      webBaseUrl: "https://github.com",
      repo: "o/r",
    });
    expect(text).toMatch(/\| `dev` \| waiting for its shared checks on `aaaaaaa` \|/);
    expect(text).toMatch(/\| `prod` \| running on `aaaaaaa` \|/);
  });
});
