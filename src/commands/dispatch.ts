import { decideCommandPermission, type RepoPermission } from "../approval/permissions.js";
import { addReaction, getPermission } from "../connectors/github.js";
import { audit, describeConfigProblem, loadDefaultBranchConfig, reply, type CommandContext, type RepoConfigResult } from "./context.js";
import type { ParsedCommand, ParseResult } from "./grammar.js";
import { renderHelp } from "./help.js";
import { startPreview } from "./preview.js";
import { requestDeploy } from "./deploy.js";
import { approvePlans, denyDeploys } from "./approve.js";
import { cancelPr } from "./cancel.js";
import { requestRollback } from "./rollback.js";
import { replyStatus } from "./status.js";
import { unlockStacks } from "./unlock.js";
import { COMMANDS, resolveCommand, type Command } from "./registry.js";
import { diagnoseFromComment } from "./diagnose.js";

/** Commands whose arguments are checked against the stacks the repository declares. */
const NEEDS_STACKS = new Set(["preview", "ok-to-test", "deploy", "unlock", "rollback", "status"]);

function commandName(p: ParsedCommand): string {
  return p.kind === "agent" ? p.name : p.kind;
}

/**
 * Runs the commands of one comment: permission first (one API call), then validation
 * against the default branch's configuration, then each command. Every step is audited.
 */
export async function dispatchCommands(ctx: CommandContext, parsed: ParseResult): Promise<void> {
  for (const e of parsed.errors) {
    await audit(ctx, "command.invalid", { line: e.line, raw: e.raw, message: e.message });
  }
  if (parsed.errors.length) {
    await reply(ctx, ["I could not read that command:", ...parsed.errors.map((e) => `- line ${e.line}: ${e.message}`), "", "Comment `/agent help` for the command list."].join("\n"));
  }
  if (parsed.commands.length === 0) return;

  const permission = await getPermission(ctx.gh, ctx.repo, ctx.actor);
  const allowed: ParsedCommand[] = [];
  for (const p of parsed.commands) {
    const name = commandName(p);
    const decision = decideCommandPermission(name, permission);
    await audit(ctx, decision.allowed ? "command.received" : "command.refused", { command: name, raw: p.raw, permission });
    if (decision.allowed) {
      allowed.push(p);
    } else {
      await reply(
        ctx,
        `sorry, \`${name}\` needs **${decision.required}** access to this repository and you have **${decision.actual}**. Nothing was run; a maintainer can run it for you.`,
      );
    }
  }
  if (allowed.length === 0) return;
  await addReaction(ctx.gh, ctx.repo, ctx.commentId, "eyes");

  let config: RepoConfigResult | null = null;
  const repoConfig = async () => (config ??= await loadDefaultBranchConfig(ctx));

  for (const p of allowed) {
    const name = commandName(p);
    try {
      await runOne(ctx, p, name, repoConfig, permission);
    } catch (err) {
      ctx.log.error({ err, command: name }, "command failed");
      await audit(ctx, "command.error", { command: name, error: (err as Error).message });
      throw err;
    }
  }
}

async function runOne(
  ctx: CommandContext,
  p: ParsedCommand,
  name: string,
  repoConfig: () => Promise<RepoConfigResult>,
  permission: RepoPermission,
): Promise<void> {
  const spec = COMMANDS.find((c) => c.name === name);
  if (spec?.context === "pull_request" && !ctx.isPullRequest) {
    await reply(ctx, `\`/agent ${name}\` works in pull requests only.`);
    return;
  }
  let stacks: { stacks: string[]; defaultStack?: string | undefined } = { stacks: [] };
  let loaded: RepoConfigResult | null = null;
  if (name === "diagnose") {
    // A broken or missing config may be the incident: diagnose anyway, checking the stack
    // against the declared ones only when there are some.
    loaded = await repoConfig();
    stacks = loaded.ok ? { stacks: loaded.stacks.map((s) => s.name) } : { stacks: p.kind === "agent" ? p.args : [] };
  } else if (NEEDS_STACKS.has(name) || name === "help" || name === "approve") {
    loaded = await repoConfig();
    if (loaded.ok) {
      stacks = { stacks: loaded.stacks.map((s) => s.name), defaultStack: loaded.config.default_stack };
    } else if (name !== "help") {
      await audit(ctx, "config.invalid", { command: name, problem: "missing" in loaded ? "missing" : loaded.issues });
      await reply(ctx, describeConfigProblem(ctx, loaded));
      return;
    }
  }
  const resolution = resolveCommand(p, stacks);
  if (!resolution.ok) {
    await audit(ctx, "command.rejected", { command: name, message: resolution.message });
    await reply(ctx, resolution.message);
    return;
  }
  const command: Command = resolution.command;
  if (command.name === "help") {
    await reply(ctx, renderHelp(stacks.stacks, stacks.defaultStack));
    return;
  }
  if (command.name === "preview" && loaded?.ok) {
    await startPreview(ctx, command.stacks, loaded, permission, { vouch: name === "ok-to-test" });
    return;
  }
  if (command.name === "status" && loaded?.ok) {
    await replyStatus(ctx, loaded.stacks);
    return;
  }
  if (command.name === "deploy" && loaded?.ok) {
    await requestDeploy(ctx, command.stack, loaded, permission);
    return;
  }
  if (command.name === "rollback" && loaded?.ok) {
    await requestRollback(ctx, command.stack, loaded, permission);
    return;
  }
  if (command.name === "approve" && loaded?.ok) {
    await approvePlans(ctx, command.reason, loaded.stacks);
    return;
  }
  if (command.name === "cancel") {
    await cancelPr(ctx);
    return;
  }
  if (command.name === "deny") {
    await denyDeploys(ctx, command.reason);
    return;
  }
  if (command.name === "unlock") {
    await unlockStacks(ctx, command.stack, permission);
    return;
  }
  if (command.name === "diagnose") {
    await diagnoseFromComment(ctx, command.stack, ctx.issue ?? { title: "", body: null });
  }
}
