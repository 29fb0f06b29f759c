import { describe, expect, it } from "vitest";
import { COMMENT_BODY_LIMIT } from "../../src/connectors/github.js";
import { githubSlug, splitRunbook } from "../../src/diagnose/runbooks.js";
import { mergeHits, MIN_SIMILARITY } from "../../src/diagnose/knowledge.js";
import type { SearchHit } from "../../src/domain/diagnose.js";
import { matchesTemplate, templateIdentity } from "../../src/diagnose/templates.js";
import { REPORT_MARKER, renderDiagnosticReport } from "../../src/render/diagnose.js";
import { fixtureReport } from "../fixtures/diagnose/report.js";

describe("runbooks: one entry per section", () => {
  it("splits at level 1-3 headings outside code fences, with GitHub's anchors", () => {
    const md = [
      "# Database runbook",
      "Who owns it: the data team.",
      "## Connection refused",
      "1. Check the security group.",
      "```sh",
      "# not a heading",
      "psql -h db",
      "```",
      "## Connection refused",
      "Second section with the same heading.",
      "#### Deep heading stays inside",
      "## Empty",
      "### Disk full (prod)!",
      "Grow the volume.",
    ].join("\n");
    const sections = splitRunbook("docs/runbooks/db.md", md);
    expect(sections.map((s) => s.slug)).toEqual(["database-runbook", "connection-refused", "connection-refused-1", "disk-full-prod"]);
    expect(sections[1]!.body).toContain("# not a heading");
    expect(sections[1]!.body).toContain("psql -h db");
    expect(sections[2]!.body).toContain("#### Deep heading stays inside");
    expect(sections[3]!.heading).toBe("Disk full (prod)!");
  });

  it("names text before the first heading after the file and drops heading-only sections", () => {
    expect(splitRunbook("ops/restart.md", "Restart the worker:\n\n    systemctl restart agent\n")).toEqual([
      { slug: "restart", heading: "restart", body: "Restart the worker:\n\n    systemctl restart agent" },
    ]);
    expect(splitRunbook("x.md", "# Title only\n## Also only\n")).toEqual([]);
  });

  it("makes anchors the way GitHub does", () => {
    expect(githubSlug("Vault: token expired?")).toBe("vault-token-expired");
    expect(githubSlug("  Über  große Dateien ")).toBe("über--große-dateien");
  });
});

describe("templates: which new issues are diagnosed", () => {
  const markdown = "---\nname: Incident\nabout: Something broke\ntitle: '[incident] '\nlabels: incident, sev2\n---\n\n## What happened\n";
  const form = "name: Incident\ndescription: Something broke\ntitle: \"[incident]: \"\nlabels: [\"incident\"]\nbody:\n  - type: textarea\n    attributes: { label: What happened }\n";
  const noLabels = "---\nname: Outage\ntitle: 'Outage: '\n---\nbody\n";

  it("reads Markdown front matter and issue forms", () => {
    expect(templateIdentity("incident.md", markdown)).toEqual({ file: "incident.md", title: "[incident]", labels: ["incident", "sev2"] });
    expect(templateIdentity("incident.yml", form)).toEqual({ file: "incident.yml", title: "[incident]:", labels: ["incident"] });
    expect(templateIdentity("plain.md", "no front matter")).toBeNull();
    expect(templateIdentity("broken.yml", "name: [unclosed")).toBeNull();
  });

  it("matches by all of the template's labels, else by its title prefix", () => {
    const md = templateIdentity("incident.md", markdown)!;
    expect(matchesTemplate({ title: "anything", labels: ["Incident", "sev2", "other"] }, md)).toBe(true);
    expect(matchesTemplate({ title: "[incident] db down", labels: ["incident"] }, md)).toBe(false);
    const outage = templateIdentity("outage.md", noLabels)!;
    expect(matchesTemplate({ title: "outage: api 502s", labels: [] }, outage)).toBe(true);
    expect(matchesTemplate({ title: "Feature: outage banner", labels: [] }, outage)).toBe(false);
  });
});

describe("the report comment", () => {
  it("has every section, with failures' logs, probes, locks and the matches above the noise floor", () => {
    const body = renderDiagnosticReport(fixtureReport());
    expect(body.startsWith(REPORT_MARKER)).toBe(true);
    for (const heading of ["### Services", "### Recent runs", "### Latest failures", "### Locks, approvals and queues", "### Similar past incidents", "### Suggested next steps"]) {
      expect(body).toContain(heading);
    }
    expect(body).toContain("| `lambda-labs` | 🔴 DOWN | instance gpu-trainer-1 is unhealthy |");
    expect(body).toContain("1 of the last 3 runs failed");
    expect(body).toContain("timeout while waiting for state to become 'available'");
    expect(body).toContain("`prod` held by #41");
    expect(body).toContain("[deploy of prod failed at step deploy (\\#12)](https://github.com/octo-org/platform/pull/14) — 71% similar");
    expect(body).toContain("**Resolution:** Fixed by \\#14");
    expect(body).toContain("docs/runbooks/rds.md#instance-class-change-times-out");
    // A 5% match is noise, not a lead.
    expect(body).not.toContain("unrelated");
  });

  it("cannot be broken out of by log text, titles or probe reasons", () => {
    const report = fixtureReport();
    report.failures[0]!.log = "````\n</details>\n@here <img src=x onerror=alert(1)>\n````";
    report.probes[0]!.reason = "a | b <script>";
    report.similar[0]!.entry.title = "[click](javascript:alert(1)) @everyone";
    report.similar[0]!.entry.url = "javascript:alert(1)";
    const body = renderDiagnosticReport(report);
    // The log stays inside a fence longer than any backtick run in it.
    expect(body).toMatch(/`````\n````\n<\/details>\n@here <img src=x onerror=alert\(1\)>\n````\n`````/);
    expect(body).toContain("a \\| b &lt;script&gt;");
    // Neither the title nor the URL becomes a link: the bracket is escaped, the URL dropped.
    expect(body).not.toMatch(/[^\\]\]\(javascript:/);
    expect(body).toContain("\\[click\\](javascript:alert(1)) @\u200beveryone");
  });

  it("stays under GitHub's comment limit with huge inputs", () => {
    const report = fixtureReport();
    report.runs = Array.from({ length: 50 }, () => report.runs[0]!);
    report.failures = Array.from({ length: 10 }, () => ({ ...report.failures[0]!, log: "x".repeat(100_000), error: "e".repeat(10_000) }));
    report.notes = Array.from({ length: 100 }, () => "n".repeat(1000));
    const body = renderDiagnosticReport(report);
    expect(body.length).toBeLessThanOrEqual(COMMENT_BODY_LIMIT);
    expect(body.startsWith(REPORT_MARKER)).toBe(true);
  });

  it("says plainly when there is nothing to show", () => {
    const body = renderDiagnosticReport(fixtureReport({ runs: [], failures: [], locks: [], pending: [], probes: [], similar: [], runbooks: [], queues: [], notes: ["Could not gather locks: connection refused"] }));
    expect(body).toContain("_No service probes are configured on the server");
    expect(body).toContain("_No runs recorded for this repository and stack `prod`._");
    expect(body).toContain("**Locks:** none");
    expect(body).toContain("_Nothing similar in the knowledge base yet._");
    expect(body).toContain("> ⚠️ Could not gather locks: connection refused");
    expect(body).not.toContain("### Latest failures");
    expect(body).not.toContain("Open drift");
  });

  it("lists the error budgets of stacks with errors, the exhausted ones marked", () => {
    const report = fixtureReport();
    const body = renderDiagnosticReport({ ...report, budgets: [{ stack: "db", summary: "2 of 8 errors in 7 days; 2 × 'RDS timeout'", exhausted: true }, { stack: "web", summary: "1 of 8 errors in 7 days", exhausted: false }] });
    expect(body).toContain("**Error budgets:** `db` 2 of 8 errors in 7 days; 2 × 'RDS timeout' — **exhausted**; `web` 1 of 8 errors in 7 days");
    expect(renderDiagnosticReport({ ...report, budgets: [] })).not.toContain("Error budgets");
  });

  it("lists open drift with its issue", () => {
    const report = fixtureReport();
    const since = new Date(new Date(report.generatedAt).getTime() - 3 * 3600_000).toISOString();
    const body = renderDiagnosticReport({ ...report, drift: [{ stack: "prod", since, sha: "a".repeat(40), issueNumber: 31 }] });
    expect(body).toMatch(/\*\*Open drift:\*\* `prod` since 3 h ago \(#31\)/);
  });
});

describe("mergeHits: the reporter's words and the failures' logs, in turn", () => {
  const hit = (id: string, score: number): SearchHit => ({
    score,
    entry: { id, kind: "runbook", repo: "o/r", stack: null, title: id, text: id, resolution: null, url: null, occurredAt: "2026-01-01T00:00:00Z" },
  });

  it("takes the lists in turn, best first, each entry once, up to the limit", () => {
    const issue = [hit("npm", 0.6), hit("dns", 0.3), hit("rds", 0.2)];
    const failures = [hit("rds", 0.9), hit("npm", 0.5), hit("oom", 0.4)];
    expect(mergeHits([issue, failures], 3).map((h) => h.entry.id)).toEqual(["npm", "rds", "dns"]);
    expect(mergeHits([issue, failures], 10).map((h) => h.entry.id)).toEqual(["npm", "rds", "dns", "oom"]);
    // Found by both queries: shown with its best score.
    expect(mergeHits([issue, failures], 3).map((h) => h.score)).toEqual([0.6, 0.9, 0.3]);
  });

  it("drops noise before merging, so a list with nothing relevant does not lead", () => {
    const issue = [hit("junk", MIN_SIMILARITY - 0.01)];
    const failures = [hit("rds", 0.8), hit("oom", 0.2)];
    expect(mergeHits([issue, failures], 3).map((h) => h.entry.id)).toEqual(["rds", "oom"]);
    expect(mergeHits([[], []], 3)).toEqual([]);
  });
});
