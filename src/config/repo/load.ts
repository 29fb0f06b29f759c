/**
 * Loading the repository configuration file, `.github/agent.yml` (schema.ts, resolve.ts).
 *
 * {@link loadRepoConfig} never throws: YAML syntax errors, schema violations and resource
 * limits all come back as {@link ConfigIssue}s carrying a path (`stacks[1].dir`), a 1-based
 * line number when one can be found, and a human-readable message (src/config/issues.ts), so
 * they can be posted verbatim in a PR comment via {@link formatConfigIssues}.
 */
import { code, describeZodIssues, readYaml, type ConfigIssue } from "../issues.js";
import { resolveStacks, type ResolvedStack } from "./resolve.js";
import { RepoConfigSchema, type RepoConfig } from "./schema.js";

/** Largest accepted config file, in UTF-8 bytes. */
export const MAX_CONFIG_BYTES = 256 * 1024;
export const DEFAULT_CONFIG_PATH = ".github/agent.yml";

export type LoadResult = { ok: true; config: RepoConfig; stacks: ResolvedStack[] } | { ok: false; issues: ConfigIssue[] };

/** Parses and validates `.github/agent.yml`. Never throws. */
export function loadRepoConfig(yamlText: string): LoadResult {
  try {
    return loadUnsafe(yamlText);
  } catch (err) {
    // Last resort: the yaml library or zod threw on pathological input (e.g. stack exhaustion).
    const detail = err instanceof RangeError ? "the document is too deeply nested" : "the document could not be processed";
    return fail(`could not read the config: ${detail}`);
  }
}

function loadUnsafe(yamlText: string): LoadResult {
  if (typeof yamlText !== "string") return fail("the config must be text");
  const read = readYaml(yamlText, { maxBytes: MAX_CONFIG_BYTES });
  if (!read.ok) return { ok: false, issues: read.issues };
  if (read.data === null) return fail("the file is empty: it needs at least `version: 1` and a `stacks` list");
  const result = RepoConfigSchema.safeParse(read.data);
  if (!result.success) {
    const issues = describeZodIssues(result.error.issues, {
      data: read.data,
      schema: RepoConfigSchema,
      source: read.source,
      rootHint: "the file must be a YAML mapping with `version` and `stacks`",
    });
    return { ok: false, issues };
  }
  return { ok: true, config: result.data, stacks: resolveStacks(result.data) };
}

function fail(message: string): LoadResult {
  return { ok: false, issues: [{ path: "", line: null, message }] };
}

const MAX_FORMATTED_ISSUES = 50;

/**
 * Markdown bullet list for a PR comment, e.g.
 * "- `.github/agent.yml` line 7, `stacks[1].dir`: must be a relative path without `..`".
 */
export function formatConfigIssues(issues: ConfigIssue[], file: string = DEFAULT_CONFIG_PATH): string {
  const shown = issues.slice(0, MAX_FORMATTED_ISSUES);
  const lines = shown.map((issue) => {
    let where = code(file);
    if (issue.line !== null) where += ` line ${issue.line}`;
    if (issue.path !== "") where += `, ${code(issue.path)}`;
    return `- ${where}: ${issue.message.replace(/\s*\n\s*/g, " ")}`;
  });
  if (issues.length > shown.length) lines.push(`- … and ${issues.length - shown.length} more`);
  return lines.join("\n");
}
