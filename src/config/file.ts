/**
 * The server's YAML (or JSON) config files (CREDENTIALS_CONFIG, DIAGNOSE_CONFIG,
 * PLAN_POLICY_CONFIG): read, parsed and checked the same way, every problem thrown at start-up
 * with the file's name and the problem's line (src/config/issues.ts).
 */
import { readFileSync } from "node:fs";
import type { z } from "zod";
import { describeZodIssues, issueLines, readYaml, type YamlSource } from "./issues.js";

/** The error a config module throws (CredentialsConfigError, …). */
type ConfigErrorClass = new (message: string) => Error;

/** Reads a config file into its document and YAML tree; `what` (e.g. "credentials config") names it in errors. */
export function readConfigFile(file: string, what: string, Err: ConfigErrorClass): { data: unknown; source: YamlSource } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Err(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  const read = readYaml(text);
  if (!read.ok) throw new Err(`${what} ${file} is not valid YAML/JSON:\n${issueLines(read.issues)}`);
  return read;
}

/**
 * Checks a parsed document (an empty one as `{}`) against `schema`; throws `Err` naming `what`
 * and `name` with every problem, each with its line when the YAML `source` is given.
 */
export function checkConfig<S extends z.ZodType>(
  schema: S,
  doc: unknown,
  where: { what: string; name: string; source?: YamlSource | undefined },
  Err: ConfigErrorClass,
): z.output<S> {
  const parsed = schema.safeParse(doc ?? {});
  if (parsed.success) return parsed.data;
  const issues = describeZodIssues(parsed.error.issues, { data: doc ?? {}, schema, source: where.source });
  throw new Err(`invalid ${where.what} ${where.name}:\n${issueLines(issues)}`);
}
