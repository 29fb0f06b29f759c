import { parseArgs, type ParseArgsConfig } from "node:util";
import { OPERATOR_NAME_PATTERN } from "./break-glass.js";

/**
 * What the operator commands (`budget`, `phase`, `tier`, `revoke`) read alike: their flags, who
 * is acting (for the audit log) and the reason an audited change needs.
 */

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Strict flags and positionals; the parse error's message otherwise. */
export function parseFlags<O extends Options>(argv: readonly string[], options: O): { ok: true; values: { [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean : string }; positionals: string[] } | { ok: false; message: string } {
  try {
    const parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options });
    return { ok: true, values: parsed.values as { [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean : string }, positionals: parsed.positionals };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/** `--as`, else the shell's login ($SUDO_USER, $USER, $LOGNAME), else "cli-operator"; null when `--as` is not a name. */
export function operatorName(env: NodeJS.ProcessEnv, as: string | undefined): string | null {
  if (as !== undefined) return OPERATOR_NAME_PATTERN.test(as) ? as : null;
  return [env.SUDO_USER, env.USER, env.LOGNAME].find((u) => u && OPERATOR_NAME_PATTERN.test(u)) ?? "cli-operator";
}

export const OPERATOR_NAME_HINT = "--as: must be a name ([A-Za-z0-9][A-Za-z0-9 ._@-], at most 100 characters)";

/** An audited change's reason: 1–500 characters after trimming; null otherwise. */
export function reasonOf(reason: string | undefined): string | null {
  const r = reason?.trim();
  return r && r.length <= 500 ? r : null;
}
