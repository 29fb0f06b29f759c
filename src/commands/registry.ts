/**
 * Command registry: resolves parsed commands against the command table (table.ts) and the
 * repository's declared stacks, and answers what the table says of a command by name. Pure
 * code, no I/O, never throws.
 *
 * Every message is user-facing markdown. User text is only ever echoed through
 * `quoteUserText` (backticks/control characters stripped, at most 40 characters, wrapped in
 * backticks), and at most one piece of user text is echoed per message.
 */
import { decidePermission, type PermissionDecision, type RepoPermission } from "../approval/permissions.js";
import { STACK_NAME_RE } from "../config/fields.js";
import { closest } from "../config/suggest.js";
import { quoteUserText, type ParsedCommand } from "./grammar.js";
import { COMMANDS, type ArgShapes, type Command, type CommandEntry, type RepoStacks } from "./table.js";

export type { Command, RepoStacks } from "./table.js";

export type Resolution = { ok: true; command: Command } | { ok: false; message: string };

/** The name a parsed command is looked up by: `/agent <name>`, or the slash command's own. */
export function nameOf(parsed: ParsedCommand): string {
  return parsed.kind === "agent" ? parsed.name : parsed.kind;
}

/** The table's entry of that name (by exact name, so no Object.prototype or look-alike name matches). */
export function commandNamed(name: string): CommandEntry | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** The entry whose check-run button has this identifier. */
export function commandOfButton(identifier: string): CommandEntry | undefined {
  return COMMANDS.find((c) => c.button?.identifier === identifier);
}

/**
 * The permission a command needs, from the table. A name that is no command needs write like
 * every command that runs something, so that only writers hear "unknown command".
 */
export function requiredPermission(name: string): RepoPermission {
  return commandNamed(name)?.permission ?? "write";
}

export function decideCommandPermission(name: string, actual: RepoPermission): PermissionDecision {
  return decidePermission(requiredPermission(name), actual);
}

/** The command a check-run button stands for, as if typed, with the clicked check run's stack. */
export function buttonCommand(entry: CommandEntry, stack: string): ParsedCommand {
  if (entry.form === "slash") {
    // A slash command's name is its parsed kind (grammar.ts).
    return { kind: entry.name as Exclude<ParsedCommand["kind"], "agent">, reason: "", line: 0, raw: `/${entry.name}` };
  }
  const args = entry.args === "none" || entry.args === "reason" ? [] : [stack];
  return { kind: "agent", name: entry.name, args, flags: {}, line: 0, raw: ["/agent", entry.name, ...args].join(" ") };
}

const AGENT_COMMAND_NAMES: readonly string[] = COMMANDS.filter((c) => c.form === "agent").map((c) => c.name);
const SLASH_COMMAND_NAMES: readonly string[] = COMMANDS.filter((c) => c.form === "slash").map((c) => c.name);

/** Max edit distance for a "did you mean" suggestion. */
const SUGGEST_DISTANCE = 2;
/** How many declared stacks to list in a message before summarising. */
const MAX_LISTED_STACKS = 20;
/** Stack names come from repo config (validated elsewhere); never show more than this of one. */
const MAX_STACK_ECHO = 63;

function usageOf(name: string): string {
  const entry = commandNamed(name);
  return entry ? `\`${entry.usage}\`` : `\`/agent ${name}\``;
}

function listStacks(stacks: readonly string[]): string {
  if (stacks.length === 0) return "This repository declares no stacks.";
  const shown = stacks.slice(0, MAX_LISTED_STACKS).map((s) => quoteUserText(s, MAX_STACK_ECHO));
  const more = stacks.length > MAX_LISTED_STACKS ? ` and ${stacks.length - MAX_LISTED_STACKS} more` : "";
  return `Declared stacks: ${shown.join(", ")}${more}.`;
}

function fail(message: string): { ok: false; message: string } {
  return { ok: false, message };
}

function unknownCommand(name: string): Resolution {
  const valid = AGENT_COMMAND_NAMES.map((n) => `\`${n}\``).join(", ");
  const slash = SLASH_COMMAND_NAMES.map((n) => `\`/${n}\``).join(" and ");
  const tail = `Valid commands: ${valid} (as \`/agent <command>\`), plus ${slash}. See \`/agent help\`.`;
  const other = commandNamed(name);
  if (other?.form === "slash") {
    return fail(`\`${name}\` is not an \`/agent\` command: write \`${other.usage}\` at the start of a line instead.`);
  }
  const suggestion = closest(name, AGENT_COMMAND_NAMES, { maxDistance: SUGGEST_DISTANCE });
  const hint = suggestion ? ` — did you mean \`${suggestion}\`?` : ".";
  return fail(`Unknown command ${quoteUserText(name)}${hint} ${tail}`);
}

type StackCheck = { ok: true; stack: string } | { ok: false; message: string };

function checkStack(candidate: string, repo: RepoStacks): StackCheck {
  if (!STACK_NAME_RE.test(candidate)) {
    return {
      ok: false,
      message:
        `Invalid stack name ${quoteUserText(candidate)}: stack names contain only ASCII letters, digits, ` +
        `\`.\`, \`_\` and \`-\`, start with a letter or digit, and are at most 63 characters. ${listStacks(repo.stacks)}`,
    };
  }
  if (!repo.stacks.includes(candidate) && !repo.review?.includes(candidate)) {
    const suggestion = closest(candidate, repo.stacks, { maxDistance: SUGGEST_DISTANCE });
    const hint = suggestion ? ` — did you mean ${quoteUserText(suggestion, MAX_STACK_ECHO)}?` : ".";
    return { ok: false, message: `Unknown stack ${quoteUserText(candidate)}${hint} ${listStacks(repo.stacks)}` };
  }
  return { ok: true, stack: candidate };
}

type StackList = { ok: true; stacks: string[] } | { ok: false; message: string };

/** Positional stacks plus `--stack`, validated, duplicates collapsed (first occurrence order). */
function collectStacks(command: string, args: readonly string[], flags: Record<string, string | true>, repo: RepoStacks): StackList {
  const requested = [...args];
  if (Object.hasOwn(flags, "stack")) {
    const value = flags["stack"];
    if (value === true || value === undefined) {
      return { ok: false, message: `\`--stack\` needs a value, for example \`--stack <stack>\`. Usage: ${usageOf(command)}` };
    }
    requested.push(value);
  }
  const stacks: string[] = [];
  for (const candidate of requested) {
    const checked = checkStack(candidate, repo);
    if (!checked.ok) return checked;
    if (!stacks.includes(checked.stack)) stacks.push(checked.stack);
  }
  return { ok: true, stacks };
}

type DefaultStack = { ok: true; stack: string } | { ok: false; message: string } | { ok: null };

function defaultStackOf(repo: RepoStacks): DefaultStack {
  const d = repo.defaultStack;
  if (d === undefined || d === "") return { ok: null };
  if (!repo.stacks.includes(d)) {
    return {
      ok: false,
      message: `The repository's \`default_stack\` ${quoteUserText(d, MAX_STACK_ECHO)} is not one of its declared stacks. ${listStacks(repo.stacks)}`,
    };
  }
  return { ok: true, stack: d };
}

/**
 * Validate a parsed command against the command table and the repository's stacks.
 */
export function resolveCommand(parsed: ParsedCommand, repo: RepoStacks): Resolution {
  const name = nameOf(parsed);
  const entry = commandNamed(name);
  if (!entry || (entry.form === "slash") !== (parsed.kind !== "agent")) return unknownCommand(name);
  if (parsed.kind !== "agent") {
    return { ok: true, command: { name: entry.resolvesTo, reason: parsed.reason } as Command };
  }

  const flags = entry.flags ?? [];
  for (const flag of Object.keys(parsed.flags)) {
    if (!flags.includes(flag)) {
      const valid =
        flags.length === 0 ? `\`/agent ${name}\` takes no flags.` : `Valid flags: ${flags.map((f) => `\`--${f}\``).join(", ")}.`;
      return fail(`Unknown flag ${quoteUserText(`--${flag}`)} for \`/agent ${name}\`. ${valid} Usage: ${usageOf(name)}`);
    }
  }

  // `--review <stack>`: the grammar reads the next word as the flag's value; it is a stack named.
  let args: readonly string[] = parsed.args;
  let given = parsed.flags;
  const review = Object.hasOwn(given, "review");
  if (review) {
    const { review: value, ...rest } = given;
    if (typeof value === "string") args = [...args, value];
    given = rest;
  }
  const maxArgs = entry.maxArgs ?? DEFAULT_MAX_ARGS[entry.args];
  if (args.length > maxArgs) {
    const what = maxArgs === 0 ? "takes no arguments" : `takes at most ${maxArgs} argument${maxArgs === 1 ? "" : "s"}`;
    return fail(`\`/agent ${name}\` ${what} (got ${args.length}). Usage: ${usageOf(name)}`);
  }
  if (review) {
    // Review stacks are never implied by a default: the stacks named, or (none named) every stack with `review`.
    if (Object.hasOwn(given, "all")) return fail(`\`--review\` and \`--all\` do not go together: name the stacks whose review stacks you mean, or none for all of them. Usage: ${usageOf(name)}`);
    const collected = collectStacks(name, args, given, repo);
    if (!collected.ok) return collected;
    const shapedArgs = entry.args === "stack?" ? { stack: collected.stacks[0] ?? null, review: true as const } : { stacks: collected.stacks, review: true as const };
    return { ok: true, command: { name: entry.resolvesTo, ...shapedArgs } as Command };
  }

  const shaped = resolveArgs(entry, args, given, repo);
  if (!shaped.ok) return shaped;
  return { ok: true, command: { name: entry.resolvesTo, ...shaped.args } as Command };
}

const DEFAULT_MAX_ARGS: Readonly<Record<keyof ArgShapes, number>> = { stacks: Number.POSITIVE_INFINITY, "named-stacks": Number.POSITIVE_INFINITY, "stack?": 1, none: 0, reason: 0 };

type Shaped = { ok: true; args: ArgShapes[keyof ArgShapes] } | { ok: false; message: string };

function resolveArgs(entry: CommandEntry, args: readonly string[], flags: Record<string, string | true>, repo: RepoStacks): Shaped {
  const name = entry.name;
  switch (entry.args) {
    case "stacks":
    case "named-stacks": {
      if (Object.hasOwn(flags, "all")) {
        if (flags["all"] !== true) return fail(`\`--all\` takes no value. Usage: ${usageOf(name)}`);
        const what = entry.args === "stacks" ? "previews every stack this pull request's changes match" : "deploys every stack previewed on this pull request's head";
        if (args.length > 0 || Object.hasOwn(flags, "stack")) return fail(`\`--all\` ${what}: name stacks or use \`--all\`, not both. Usage: ${usageOf(name)}`);
        return { ok: true, args: { stacks: [], all: true } };
      }
      const collected = collectStacks(name, args, flags, repo);
      if (!collected.ok) return collected;
      if (collected.stacks.length > 0) return { ok: true, args: { stacks: collected.stacks } };
      const d = defaultStackOf(repo);
      if (d.ok === false) return d;
      if (d.ok === true) return { ok: true, args: { stacks: [d.stack] } };
      // Deploying every declared stack is never implied: it has to be named, or `--all`.
      if (entry.args === "named-stacks") return fail(`\`/agent ${name}\` needs a stack${entry.flags?.includes("all") ? " (or \`--all\`)" : ""} because this repository has no \`default_stack\`. Usage: ${usageOf(name)}. ${listStacks(repo.stacks)}`);
      if (repo.stacks.length === 0) return fail(`There is nothing to ${entry.resolvesTo}: this repository declares no stacks.`);
      return { ok: true, args: { stacks: [...new Set(repo.stacks)] } };
    }
    case "stack?": {
      const arg = args[0];
      if (arg === undefined) return { ok: true, args: { stack: null } };
      const checked = checkStack(arg, repo);
      if (!checked.ok) return checked;
      return { ok: true, args: { stack: checked.stack } };
    }
    case "none":
    case "reason":
      return { ok: true, args: {} };
  }
}
