/**
 * Command registry: validates parsed commands against the known command set and the
 * repository's declared stacks. Pure code, no I/O, never throws.
 *
 * Every message is user-facing markdown. User text is only ever echoed through
 * `quoteUserText` (backticks/control characters stripped, at most 40 characters, wrapped in
 * backticks), and at most one piece of user text is echoed per message.
 */
import { quoteUserText, type ParsedCommand } from "./grammar.js";

export type Command =
  | { name: "preview"; stacks: string[] }
  | { name: "deploy"; stack: string }
  | { name: "unlock"; stack: string | null }
  | { name: "rollback"; stack: string }
  | { name: "cancel" }
  | { name: "status" }
  | { name: "help" }
  | { name: "diagnose"; stack: string | null }
  | { name: "approve"; reason: string }
  | { name: "deny"; reason: string };

export interface RepoStacks {
  stacks: string[];
  defaultStack?: string | undefined;
}

export type Resolution = { ok: true; command: Command } | { ok: false; message: string };

export const STACK_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export const COMMANDS: ReadonlyArray<{
  name: string;
  usage: string;
  description: string;
  context: "pull_request" | "issue" | "both";
}> = [
  {
    name: "preview",
    usage: "/agent preview [stack...] [--stack <stack>]",
    description: "Plan the changes in this pull request for the given stacks (default stack, or all stacks if none is set) and post the diff.",
    context: "pull_request",
  },
  {
    name: "ok-to-test",
    usage: "/agent ok-to-test",
    description: "Maintainers: trust this commit of a fork's (or an outside contributor's) pull request and preview it (default stack, or all stacks). Needed again for each new commit.",
    context: "pull_request",
  },
  {
    name: "deploy",
    usage: "/agent deploy [stack] [--stack <stack>]",
    description: "Apply this pull request to exactly one stack (the default stack if omitted), once approved.",
    context: "pull_request",
  },
  {
    name: "unlock",
    usage: "/agent unlock [stack]",
    description: "Release the lock on a stack, or every lock held by this pull request if no stack is given.",
    context: "both",
  },
  {
    name: "rollback",
    usage: "/agent rollback [stack]",
    description: "Roll a stack back to the default branch's last successfully deployed commit (the default stack if omitted): previews it, then applies that plan once approved.",
    context: "both",
  },
  {
    name: "cancel",
    usage: "/agent cancel",
    description: "Cancel the queued or running job for this pull request.",
    context: "pull_request",
  },
  {
    name: "status",
    usage: "/agent status",
    description: "Show locks, pending approvals and recent runs.",
    context: "both",
  },
  {
    name: "help",
    usage: "/agent help",
    description: "Show this help.",
    context: "both",
  },
  {
    name: "diagnose",
    usage: "/agent diagnose [stack]",
    description: "Post an incident report on this issue or pull request: recent runs and failures with their logs, locks, approvals and queues, service probes, similar past incidents and matching runbook steps (updated in place when asked again).",
    context: "both",
  },
  {
    name: "approve",
    usage: "/approve [reason]",
    description: "Approve the current plan (or a pending rollback) in this pull request or issue, with an optional reason.",
    context: "both",
  },
  {
    name: "deny",
    usage: "/deny [reason]",
    description: "Deny the pending deploy (or rollback) in this pull request or issue, with an optional reason.",
    context: "both",
  },
];

type AgentCommandName = "preview" | "ok-to-test" | "deploy" | "unlock" | "rollback" | "cancel" | "status" | "help" | "diagnose";

interface AgentRule {
  maxArgs: number;
  flags: readonly string[];
}

const AGENT_RULES: ReadonlyMap<AgentCommandName, AgentRule> = new Map<AgentCommandName, AgentRule>([
  ["preview", { maxArgs: Number.POSITIVE_INFINITY, flags: ["stack"] }],
  ["ok-to-test", { maxArgs: 0, flags: [] }],
  ["deploy", { maxArgs: 1, flags: ["stack"] }],
  ["unlock", { maxArgs: 1, flags: [] }],
  ["rollback", { maxArgs: 1, flags: [] }],
  ["cancel", { maxArgs: 0, flags: [] }],
  ["status", { maxArgs: 0, flags: [] }],
  ["help", { maxArgs: 0, flags: [] }],
  ["diagnose", { maxArgs: 1, flags: [] }],
]);

const AGENT_COMMAND_NAMES: readonly AgentCommandName[] = [...AGENT_RULES.keys()];

/** Max edit distance for a "did you mean" suggestion. */
const SUGGEST_DISTANCE = 2;
/** How many declared stacks to list in a message before summarising. */
const MAX_LISTED_STACKS = 20;
/** Stack names come from repo config (validated elsewhere); never show more than this of one. */
const MAX_STACK_ECHO = 63;

function usageOf(name: string): string {
  const entry = COMMANDS.find((c) => c.name === name);
  return entry ? `\`${entry.usage}\`` : `\`/agent ${name}\``;
}

function isAgentCommandName(name: string): name is AgentCommandName {
  return (AGENT_COMMAND_NAMES as readonly string[]).includes(name);
}

/** Levenshtein distance, giving up early (returns limit + 1) once it must exceed `limit`. */
export function editDistance(a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > limit) return limit + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

function closest(input: string, candidates: readonly string[]): string | null {
  if (input.length === 0 || input.length > 64) return null;
  let best: string | null = null;
  let bestDistance = SUGGEST_DISTANCE + 1;
  for (const candidate of candidates) {
    const d = editDistance(input, candidate, SUGGEST_DISTANCE);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function listStacks(stacks: readonly string[]): string {
  if (stacks.length === 0) return "This repository declares no stacks.";
  const shown = stacks.slice(0, MAX_LISTED_STACKS).map((s) => quoteUserText(s, MAX_STACK_ECHO));
  const more = stacks.length > MAX_LISTED_STACKS ? ` and ${stacks.length - MAX_LISTED_STACKS} more` : "";
  return `Declared stacks: ${shown.join(", ")}${more}.`;
}

function fail(message: string): Resolution {
  return { ok: false, message };
}

function unknownCommand(name: string): Resolution {
  const valid = AGENT_COMMAND_NAMES.map((n) => `\`${n}\``).join(", ");
  const tail = `Valid commands: ${valid} (as \`/agent <command>\`), plus \`/approve\` and \`/deny\`. See \`/agent help\`.`;
  if (name === "approve" || name === "deny") {
    return fail(`\`${name}\` is not an \`/agent\` command: write \`/${name} [reason]\` at the start of a line instead.`);
  }
  const suggestion = closest(name, AGENT_COMMAND_NAMES);
  const hint = suggestion ? ` — did you mean \`${suggestion}\`?` : ".";
  return fail(`Unknown command ${quoteUserText(name)}${hint} ${tail}`);
}

type StackCheck = { ok: true; stack: string } | { ok: false; message: string };

function checkStack(candidate: string, repo: RepoStacks): StackCheck {
  if (!STACK_NAME_PATTERN.test(candidate)) {
    return {
      ok: false,
      message:
        `Invalid stack name ${quoteUserText(candidate)}: stack names contain only ASCII letters, digits, ` +
        `\`.\`, \`_\` and \`-\`, start with a letter or digit, and are at most 63 characters. ${listStacks(repo.stacks)}`,
    };
  }
  if (!repo.stacks.includes(candidate)) {
    const suggestion = closest(candidate, repo.stacks);
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

function singleStack(command: "deploy" | "rollback", stacks: string[], repo: RepoStacks): StackCheck {
  if (stacks.length > 1) {
    return {
      ok: false,
      message: `\`/agent ${command}\` works on exactly one stack at a time (got ${stacks.length}). Usage: ${usageOf(command)}`,
    };
  }
  if (stacks.length === 1) return { ok: true, stack: stacks[0]! };
  const d = defaultStackOf(repo);
  if (d.ok === true || d.ok === false) return d;
  return {
    ok: false,
    message: `\`/agent ${command}\` needs a stack because this repository has no \`default_stack\`. Usage: ${usageOf(command)}. ${listStacks(repo.stacks)}`,
  };
}

/**
 * Validate a parsed command against the command set and the repository's stacks.
 */
export function resolveCommand(parsed: ParsedCommand, repo: RepoStacks): Resolution {
  if (parsed.kind === "approve") return { ok: true, command: { name: "approve", reason: parsed.reason } };
  if (parsed.kind === "deny") return { ok: true, command: { name: "deny", reason: parsed.reason } };

  const name = parsed.name;
  if (!isAgentCommandName(name)) return unknownCommand(name);
  const rule = AGENT_RULES.get(name)!;

  for (const flag of Object.keys(parsed.flags)) {
    if (!rule.flags.includes(flag)) {
      const valid =
        rule.flags.length === 0
          ? `\`/agent ${name}\` takes no flags.`
          : `Valid flags: ${rule.flags.map((f) => `\`--${f}\``).join(", ")}.`;
      return fail(`Unknown flag ${quoteUserText(`--${flag}`)} for \`/agent ${name}\`. ${valid} Usage: ${usageOf(name)}`);
    }
  }

  if (parsed.args.length > rule.maxArgs) {
    const what = rule.maxArgs === 0 ? "takes no arguments" : `takes at most ${rule.maxArgs} argument${rule.maxArgs === 1 ? "" : "s"}`;
    return fail(`\`/agent ${name}\` ${what} (got ${parsed.args.length}). Usage: ${usageOf(name)}`);
  }

  switch (name) {
    case "ok-to-test":
    case "preview": {
      // `ok-to-test` is a maintainer's preview of the default stack (or all), under Prow's name.
      const collected = collectStacks(name, parsed.args, parsed.flags, repo);
      if (!collected.ok) return collected;
      if (collected.stacks.length > 0) return { ok: true, command: { name: "preview", stacks: collected.stacks } };
      const d = defaultStackOf(repo);
      if (d.ok === false) return d;
      if (d.ok === true) return { ok: true, command: { name: "preview", stacks: [d.stack] } };
      if (repo.stacks.length === 0) {
        return fail("There is nothing to preview: this repository declares no stacks.");
      }
      return { ok: true, command: { name: "preview", stacks: [...new Set(repo.stacks)] } };
    }
    case "deploy":
    case "rollback": {
      const collected = collectStacks(name, parsed.args, parsed.flags, repo);
      if (!collected.ok) return collected;
      const one = singleStack(name, collected.stacks, repo);
      if (!one.ok) return one;
      return { ok: true, command: { name, stack: one.stack } };
    }
    case "diagnose":
    case "unlock": {
      const arg = parsed.args[0];
      if (arg === undefined) return { ok: true, command: { name, stack: null } };
      const checked = checkStack(arg, repo);
      if (!checked.ok) return checked;
      return { ok: true, command: { name, stack: checked.stack } };
    }
    case "cancel":
    case "status":
    case "help":
      return { ok: true, command: { name } };
  }
}
