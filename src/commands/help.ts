/**
 * Markdown help for the slash commands of a command table (table.ts). Pure code, no I/O.
 */
import { MAX_COMMANDS_PER_COMMENT, quoteUserText } from "./grammar.js";

/** Where a command is allowed: in pull requests, in issues, or in both. */
export type Where = "pull_request" | "issue" | "both";

/** What the help says of one command. */
export interface HelpEntry {
  usage: string;
  description: string;
  where: Where;
}

const MAX_LISTED_STACKS = 50;
const MAX_STACK_ECHO = 63;

function whereNote(where: Where): string {
  switch (where) {
    case "pull_request":
      return " _(pull requests only)_";
    case "issue":
      return " _(issues only)_";
    case "both":
      return "";
  }
}

/**
 * Render the help comment: every command of the table with its usage and a one-line
 * description, followed by the repository's declared stacks and the default stack (if any).
 */
export function renderHelp(commands: readonly HelpEntry[], stacks: string[], defaultStack?: string): string {
  const unique = [...new Set(stacks)];
  const lines: string[] = [];
  lines.push("### Infrastructure agent commands", "");
  lines.push("Write a command at the start of its own line in a pull request comment.", "");
  for (const command of commands) {
    lines.push(`- \`${command.usage}\` — ${command.description}${whereNote(command.where)}`);
  }
  lines.push("");

  if (unique.length === 0) {
    lines.push("**Stacks:** this repository declares no stacks.");
  } else {
    const shown = unique.slice(0, MAX_LISTED_STACKS).map((s) => quoteUserText(s, MAX_STACK_ECHO));
    const more = unique.length > MAX_LISTED_STACKS ? ` and ${unique.length - MAX_LISTED_STACKS} more` : "";
    lines.push(`**Stacks:** ${shown.join(", ")}${more}`);
  }
  const hasDefault = defaultStack !== undefined && defaultStack !== "" && unique.includes(defaultStack);
  if (hasDefault) {
    const d = quoteUserText(defaultStack, MAX_STACK_ECHO);
    lines.push(
      "",
      `**Default stack:** ${d} — used by \`preview\`, \`deploy\` and \`rollback\` when no stack is given.`,
    );
  } else if (defaultStack !== undefined && defaultStack !== "") {
    lines.push(
      "",
      `**Default stack:** ${quoteUserText(defaultStack, MAX_STACK_ECHO)} is configured but not declared as a stack; fix the configuration.`,
    );
  } else if (unique.length > 0) {
    lines.push(
      "",
      "**Default stack:** none — `preview` without a stack previews every stack; `deploy` and `rollback` need a stack.",
    );
  }
  lines.push(
    "",
    `Commands inside code blocks, quotes or HTML comments are ignored. At most ${MAX_COMMANDS_PER_COMMENT} commands per comment.`,
  );
  return lines.join("\n") + "\n";
}
