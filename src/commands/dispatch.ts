import type { PermissionDecision, RepoPermission } from "../approval/permissions.js";
import { getPermission, membershipIn } from "../connectors/github.js";
import { withReviewStacks } from "../config/repo/resolve.js";
import { mayRunCommand } from "../approval/tiers.js";
import { tierOf } from "../connectors/store/tiers.js";
import { audit, deliveryWriteKey, describeConfigProblem, loadDefaultBranchConfig, reply, writeTarget, type CommandContext, type RepoConfigResult } from "./context.js";
import type { ClickedPreview } from "./deploy.js";
import type { ParsedCommand, ParseResult } from "./grammar.js";
import { commandNamed, decideCommandPermission, nameOf, resolveCommand } from "./registry.js";
import type { Click, Command, CommandEntry, LoadedConfig, RepoStacks, RunEnv } from "./table.js";

/**
 * What the commands came from: a comment, or a click on a preview check run's button (which
 * stands for the command of that button, bound to the clicked preview of `stack`).
 */
export type Trigger = { kind: "comment" } | { kind: "button"; stack: string; preview: ClickedPreview };

const COMMENT: Trigger = { kind: "comment" };

/**
 * Runs the commands of one comment or button click: permission first (one API call), then the
 * default branch's configuration as the command table says, validation, then each command's
 * runner from the table. Every step is audited.
 */
export async function dispatchCommands(ctx: CommandContext, parsed: ParseResult, trigger: Trigger = COMMENT): Promise<void> {
  for (const e of parsed.errors) {
    await audit(ctx, "command.invalid", { line: e.line, raw: e.raw, message: e.message });
  }
  if (parsed.errors.length) {
    await reply(ctx, ["I could not read that command:", ...parsed.errors.map((e) => `- line ${e.line}: ${e.message}`), "", "Comment `/agent help` for the command list."].join("\n"));
  }
  if (parsed.commands.length === 0) return;

  const permission = await getPermission(ctx.gh, ctx.repo, ctx.actor);
  // The actor's and the repository's trust tier (a stack's own is asked where the stack is known).
  const tier = await tierOf(ctx.deps.db, { actor: ctx.actor, repo: ctx.repoFullName, stack: null, teams: membershipIn(ctx.gh, ctx.repoFullName, ctx.actor) }, ctx.deps.config.defaultTier);
  const allowed: ParsedCommand[] = [];
  for (const p of parsed.commands) {
    const name = nameOf(p);
    const decision = decideCommandPermission(name, permission);
    const byTier = commandNamed(name) ? mayRunCommand(tier, commandNamed(name)!.resolvesTo) : ({ allowed: true } as const);
    await audit(ctx, !decision.allowed ? "command.refused" : !byTier.allowed ? "tier.refused" : "command.received", { command: name, ...origin(trigger, p), permission, tier: tier.tier.name, ...(byTier.allowed ? {} : { why: byTier.why }) });
    if (!decision.allowed) await reply(ctx, refusal(trigger, name, decision));
    else if (!byTier.allowed) await reply(ctx, `sorry, ${byTier.why}. Nothing was run; an operator assigns tiers with \`npm run agent -- tier set\`.`);
    else allowed.push(p);
  }
  if (allowed.length === 0) return;
  // A click has no comment to react to.
  if (trigger.kind === "comment") await ctx.deps.writes.reactToComment(writeTarget(ctx), ctx.commentId, "eyes", { idempotencyKey: deliveryWriteKey(ctx, "eyes") });

  let config: RepoConfigResult | null = null;
  const repoConfig = async () => (config ??= await loadDefaultBranchConfig(ctx));

  for (const p of allowed) {
    const name = nameOf(p);
    try {
      await runOne(ctx, p, name, repoConfig, permission, trigger);
    } catch (err) {
      ctx.log.error({ err, command: name }, "command failed");
      await audit(ctx, "command.error", { command: name, error: (err as Error).message });
      throw err;
    }
  }
}

function origin(trigger: Trigger, p: ParsedCommand): Record<string, unknown> {
  return trigger.kind === "comment" ? { raw: p.raw } : { via: "check_run_button", stack: trigger.stack };
}

function refusal(trigger: Trigger, name: string, decision: Exclude<PermissionDecision, { allowed: true }>): string {
  if (trigger.kind === "button") {
    return `sorry, the ${commandNamed(name)?.button?.label ?? name} button needs **${decision.required}** access and you have **${decision.actual}**. Nothing was run.`;
  }
  return `sorry, \`${name}\` needs **${decision.required}** access to this repository and you have **${decision.actual}**. Nothing was run; a maintainer can run it for you.`;
}

async function runOne(
  ctx: CommandContext,
  p: ParsedCommand,
  name: string,
  repoConfig: () => Promise<RepoConfigResult>,
  permission: RepoPermission,
  trigger: Trigger,
): Promise<void> {
  const entry = commandNamed(name);
  if (entry && !allowedHere(entry, ctx)) {
    await reply(ctx, `\`/agent ${name}\` works in ${entry.where === "pull_request" ? "pull requests" : "issues"} only.`);
    return;
  }
  // A name that is no command reads no config: resolving it says so.
  const need = entry?.config ?? "none";
  let loaded: LoadedConfig | null = null;
  let repo: RepoStacks = { stacks: [] };
  if (need !== "none") {
    const result = await repoConfig();
    if (result.ok) {
      // On a pull request, its review stacks (`pr-<n>-<stack>`) can be named too, and only its own.
      const stacks = ctx.isPullRequest ? withReviewStacks(result.stacks, ctx.threadNumber) : result.stacks;
      loaded = { ...result, stacks };
      repo = { stacks: result.stacks.map((s) => s.name), defaultStack: result.config.default_stack, review: stacks.filter((s) => s.review).map((s) => s.name) };
    } else if (need === "required") {
      await audit(ctx, "config.invalid", { command: name, problem: "missing" in result ? "missing" : result.issues });
      await reply(ctx, describeConfigProblem(ctx, result));
      return;
    } else {
      // Answering without a valid config: its stacks are unknown, so any well-formed stack named is taken.
      repo = { stacks: p.kind === "agent" ? p.args : [] };
    }
  }
  // A button stands for its check run's preview: that stack must still be declared.
  const clicked = trigger.kind === "button" ? loaded?.stacks.find((s) => s.name === trigger.stack) : undefined;
  if (trigger.kind === "button" && !clicked) {
    await reply(ctx, `the stack of that check run is no longer declared on the default branch.`);
    return;
  }
  const resolution = resolveCommand(p, repo);
  if (!resolution.ok) {
    await audit(ctx, "command.rejected", { command: name, message: resolution.message });
    await reply(ctx, resolution.message);
    return;
  }
  // The entry that resolved the command runs it (typed per entry, hence the view as a Runner).
  const runner = entry as unknown as Runner;
  const env: RunEnv = { config: loaded, repo, permission };
  if (trigger.kind === "button" && clicked && runner.button) await runner.button.run(ctx, resolution.command, env, { stack: clicked, preview: trigger.preview });
  else await runner.run(ctx, resolution.command, env);
}

/** An entry of the table, seen through the union of the commands its entries resolve. */
interface Runner {
  run: (ctx: CommandContext, command: Command, env: RunEnv) => Promise<void>;
  button?: { run: (ctx: CommandContext, command: Command, env: RunEnv, click: Click) => Promise<void> };
}

function allowedHere(entry: CommandEntry, ctx: CommandContext): boolean {
  return entry.where === "both" || (entry.where === "pull_request") === ctx.isPullRequest;
}
