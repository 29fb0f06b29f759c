/**
 * Writes the JSON schema of `.github/agent.yml` to schema/agent-config.schema.json.
 *
 *   npx tsx scripts/write-config-schema.ts           # (re)write the file
 *   npx tsx scripts/write-config-schema.ts --check   # exit 1 if the committed file is stale
 *
 * The schema is generated from the zod schema in src/config/repo/schema.ts, so the runtime
 * check, the TypeScript type and the published schema cannot drift apart.
 */
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { jsonSchema } from "../src/config/repo/schema.js";

/** Absolute path of the committed schema file. */
export const SCHEMA_FILE = fileURLToPath(new URL("../schema/agent-config.schema.json", import.meta.url));

/** The exact file contents: 2-space indented JSON with a trailing newline. */
export function renderConfigSchema(): string {
  return `${JSON.stringify(jsonSchema(), null, 2)}\n`;
}

/** Returns true when the file on disk equals {@link renderConfigSchema}. */
export function isSchemaFileCurrent(file: string = SCHEMA_FILE): boolean {
  let current: string;
  try {
    current = readFileSync(file, "utf8");
  } catch {
    return false;
  }
  return current === renderConfigSchema();
}

function main(argv: string[]): number {
  const check = argv.includes("--check");
  const relative = "schema/agent-config.schema.json";
  if (check) {
    if (isSchemaFileCurrent()) {
      console.log(`${relative} is up to date`);
      return 0;
    }
    console.error(`${relative} is out of date: run \`npx tsx scripts/write-config-schema.ts\` and commit the result`);
    return 1;
  }
  mkdirSync(dirname(SCHEMA_FILE), { recursive: true });
  writeFileSync(SCHEMA_FILE, renderConfigSchema());
  console.log(`wrote ${relative}`);
  return 0;
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) process.exitCode = main(process.argv.slice(2));
