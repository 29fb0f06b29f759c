/**
 * The command table: one entry per command — what is typed, its arguments and flags, where it
 * is allowed, the permission it needs, whether it reads the repository config, and what runs
 * it (Atlantis's command-runner map). Parsing and resolution (registry.ts), the help
 * (help.ts), the permission check and dispatch (dispatch.ts) and the preview check run's
 * buttons (src/handlers/check-run.ts) all read this table; nothing else lists the commands.
 */
import type { RepoPermission } from "../approval/permissions.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import { approveClickedPreview, approvePlans, denyDeploys } from "./approve.js";
import { cancelPr } from "./cancel.js";
import { reply, type CommandContext, type RepoConfigResult } from "./context.js";
import { requestDeploy, requestDeployRun, type ClickedPreview } from "./deploy.js";
import { diagnoseFromComment } from "./diagnose.js";
import { renderHelp, type Where } from "./help.js";
import { previewChangedStacks, startPreview } from "./preview.js";
import { requestRollbackStacks } from "./rollback.js";
import { replyStatus } from "./status.js";
import { unlockStacks } from "./unlock.js";
import { requestDriftCheck, requestDriftFix } from "./drift.js";
import { deployReviewStacks, destroyReviewStacks, previewReviewStacks } from "./review.js";

/** The stacks a command's arguments are checked against (the default branch's config). */
export interface RepoStacks {
  stacks: string[];
  defaultStack?: string | undefined;
  /** This pull request's review stacks (`pr-<n>-<stack>`): taken when named, never implied by a default. */
  review?: string[];
}

/**
 * The shapes of arguments (registry.ts resolves them) and what each resolves to:
 * - `stacks`: declared stacks, positional or `--stack`; none given: the default stack, else all;
 *   `all` with `--all` (where the command takes it): the stacks the PR's changes match;
 * - `stack`: exactly one declared stack, positional or `--stack`; none given: the default stack;
 * - `stack?`: at most one declared stack, no default (null);
 * - `none`: nothing;
 * - `reason`: the free text after `/approve` or `/deny`.
 */
export interface ArgShapes {
  stacks: { stacks: string[]; all?: true; review?: true };
  /** Like `stacks`, but without a stack named (and no `default_stack`) it asks for one instead of taking them all. */
  "named-stacks": { stacks: string[]; all?: true; review?: true };
  "stack?": { stack: string | null; review?: true };
  none: Record<never, never>;
  reason: { reason: string };
}
export type ArgShape = keyof ArgShapes;

/**
 * The repository config (`.github/agent.yml` on the default branch) a command reads:
 * `required`, a missing or invalid one is audited and explained instead of running the command;
 * `if-valid`, used when valid, and the command answers anyway when it is not (help, and a
 * diagnosis, since a broken config may be the incident); `none`, not read.
 */
export type ConfigNeed = "required" | "if-valid" | "none";

export type LoadedConfig = Extract<RepoConfigResult, { ok: true }>;

/** What dispatch hands a command once it is allowed, configured and resolved. */
export interface RunEnv<Need extends ConfigNeed = ConfigNeed> {
  config: Need extends "required" ? LoadedConfig : LoadedConfig | null;
  /** The stacks the arguments were resolved against. */
  repo: RepoStacks;
  permission: RepoPermission;
}

/** A click on a preview check run's button: that preview, of a stack still declared. */
export interface Click {
  stack: ResolvedStack;
  preview: ClickedPreview;
}

type Resolved<C extends string, S extends ArgShape> = { name: C } & ArgShapes[S];

export interface CommandSpec<N extends string, S extends ArgShape, Need extends ConfigNeed, C extends string> {
  name: N;
  /** `agent`: typed as `/agent <name>`; `slash`: its own `/<name>` line (grammar.ts parses it). */
  form: "agent" | "slash";
  usage: string;
  description: string;
  where: Where;
  /** The least repository permission to run it (the pure check: approval/permissions.ts). */
  permission: RepoPermission;
  args: S;
  /** Most positional arguments; by default unlimited for `stacks`, 1 for `stack` and `stack?`, else 0. */
  maxArgs?: number;
  flags?: readonly string[];
  config: Need;
  /** The command it resolves to, when another's (`ok-to-test` is a preview). */
  resolvesTo?: C;
  run: (ctx: CommandContext, command: Resolved<C, S>, env: RunEnv<Need>) => Promise<void>;
  /** The check-run button that stands for this command, on a successful preview. */
  button?: {
    identifier: string;
    label: string;
    run: (ctx: CommandContext, command: Resolved<C, S>, env: RunEnv<Need>, click: Click) => Promise<void>;
  };
}

function command<N extends string, S extends ArgShape, Need extends ConfigNeed, C extends string = N>(
  spec: CommandSpec<N, S, Need, C>,
): CommandSpec<N, S, Need, C> & { resolvesTo: C } {
  return { ...spec, resolvesTo: spec.resolvesTo ?? (spec.name as string as C) };
}

/** In this order in the help and in the list of valid commands. */
export const COMMANDS = [
  command({
    name: "preview",
    form: "agent",
    usage: "/agent preview [stack...] [--stack <stack>] [--all] [--review]",
    description:
      "Plan the changes in this pull request for the given stacks (default stack, or all stacks if none is set) and post the diff. `--all`: every stack whose paths the changes match, also past autoplan's limit. `--review`: the stacks' review stacks (`pr-<number>-<stack>`, made from their `review.template`), deployed through their gate once previewed.",
    where: "pull_request",
    permission: "write",
    args: "stacks",
    flags: ["stack", "all", "review"],
    config: "required",
    run: (ctx, c, env) => (c.review ? previewReviewStacks(ctx, c.stacks, env.config, env.permission) : c.all ? previewChangedStacks(ctx, env.config, env.permission) : startPreview(ctx, c.stacks, env.config, env.permission, { vouch: false })),
  }),
  command({
    name: "ok-to-test",
    form: "agent",
    usage: "/agent ok-to-test",
    description: "Maintainers: trust this commit of a fork's (or an outside contributor's) pull request and preview it (default stack, or all stacks). Needed again for each new commit.",
    where: "pull_request",
    // Vouching for untrusted code is a maintainer's call (Prow's /ok-to-test).
    permission: "maintain",
    args: "stacks",
    maxArgs: 0,
    config: "required",
    resolvesTo: "preview",
    run: (ctx, c, env) => startPreview(ctx, c.stacks, env.config, env.permission, { vouch: true }),
  }),
  command({
    name: "deploy",
    form: "agent",
    usage: "/agent deploy [stack...] [--stack <stack>] [--all] [--review]",
    description:
      "Apply this pull request to a stack (the default stack if omitted), once approved. Several stacks (or `--all`: every stack previewed on the head) apply in dependency order, each through its own gate; a failure stops what depends on it. On a stack's drift issue: apply the default branch to fix the drift, through the same gate. `--review`: deploy the stack's review stack (nothing is merged).",
    where: "both",
    permission: "write",
    args: "named-stacks",
    flags: ["stack", "all", "review"],
    config: "required",
    // In an issue: the stack's drift issue, where it applies the default branch (src/commands/drift.ts).
    run: (ctx, c, env) =>
      c.review
        ? deployReviewStacks(ctx, c.stacks, env.config, env.permission)
        : !ctx.isPullRequest
        ? c.all || c.stacks.length > 1
          ? reply(ctx, "on a drift issue, `/agent deploy` names the issue's one stack. Nothing was run.")
          : requestDriftFix(ctx, c.stacks[0]!, env.config, env.permission)
        : c.all || c.stacks.length > 1
          ? requestDeployRun(ctx, c.all ? null : c.stacks, env.config, env.permission)
          : requestDeploy(ctx, c.stacks[0]!, env.config, env.permission),
    // Deploys the clicked preview's plan, or nothing.
    button: { identifier: "deploy", label: "Deploy", run: (ctx, c, env, click) => requestDeploy(ctx, c.stacks[0]!, env.config, env.permission, click.preview) },
  }),
  command({
    name: "destroy",
    form: "agent",
    usage: "/agent destroy --review [stack]",
    description: "Destroy this pull request's review stack of a stack (or all of them): its resources, then the stack. Only review stacks can be destroyed by command.",
    where: "pull_request",
    permission: "write",
    args: "stack?",
    flags: ["review"],
    config: "required",
    run: (ctx, c, env) => destroyReviewStacks(ctx, c.stack, c.review === true, env.config),
  }),
  command({
    name: "unlock",
    form: "agent",
    usage: "/agent unlock [stack]",
    description: "Release the lock on a stack, or every lock held by this pull request if no stack is given.",
    where: "both",
    permission: "write",
    args: "stack?",
    config: "required",
    run: (ctx, c, env) => unlockStacks(ctx, c.stack, env.permission),
  }),
  command({
    name: "rollback",
    form: "agent",
    usage: "/agent rollback [stack...]",
    description: "Roll a stack back to the default branch's last successfully deployed commit (the default stack if omitted): previews it, then applies that plan once approved. Several stacks go back together, in reverse dependency order.",
    where: "both",
    permission: "write",
    args: "named-stacks",
    config: "required",
    run: (ctx, c, env) => requestRollbackStacks(ctx, c.stacks, env.config, env.permission),
  }),
  command({
    name: "drift",
    form: "agent",
    usage: "/agent drift [stack]",
    description: "Check a stack (or every stack with a `drift` schedule) for drift now: preview the default branch with `--refresh`; drift opens or updates the stack's `agent:drift` issue.",
    where: "both",
    permission: "write",
    args: "stack?",
    config: "required",
    run: (ctx, c, env) => requestDriftCheck(ctx, c.stack, env.config),
  }),
  command({
    name: "cancel",
    form: "agent",
    usage: "/agent cancel",
    description: "Cancel the queued or running job for this pull request.",
    where: "pull_request",
    permission: "write",
    args: "none",
    config: "none",
    run: (ctx) => cancelPr(ctx),
  }),
  command({
    name: "status",
    form: "agent",
    usage: "/agent status",
    description: "Show locks, pending approvals and recent runs.",
    where: "both",
    permission: "write",
    args: "none",
    config: "required",
    run: (ctx, _c, env) => replyStatus(ctx, env.config.stacks),
  }),
  command({
    name: "help",
    form: "agent",
    usage: "/agent help",
    description: "Show this help.",
    where: "both",
    // Help is public.
    permission: "read",
    args: "none",
    config: "if-valid",
    run: (ctx, _c, env) => replyHelp(ctx, env.repo),
  }),
  command({
    name: "diagnose",
    form: "agent",
    usage: "/agent diagnose [stack]",
    description: "Post an incident report on this issue or pull request: recent runs and failures with their logs, locks, approvals and queues, service probes, similar past incidents and matching runbook steps (updated in place when asked again).",
    where: "both",
    permission: "write",
    args: "stack?",
    config: "if-valid",
    run: (ctx, c) => diagnoseFromComment(ctx, c.stack, ctx.issue ?? { title: "", body: null }),
  }),
  command({
    name: "approve",
    form: "slash",
    usage: "/approve [reason]",
    description: "Approve the current plan (or a pending rollback) in this pull request or issue, with an optional reason.",
    where: "both",
    permission: "write",
    args: "reason",
    config: "required",
    run: (ctx, c, env) => approvePlans(ctx, c.reason, env.config.stacks),
    // Approves the clicked check run's own preview (its commit and plan), and only while it is current.
    button: { identifier: "approve", label: "Approve", run: (ctx, _c, _env, click) => approveClickedPreview(ctx, click.stack, click.preview) },
  }),
  command({
    name: "deny",
    form: "slash",
    usage: "/deny [reason]",
    description: "Deny the pending deploy (or rollback) in this pull request or issue, with an optional reason.",
    where: "both",
    permission: "write",
    args: "reason",
    config: "none",
    run: (ctx, c) => denyDeploys(ctx, c.reason),
  }),
] as const;

export type CommandEntry = (typeof COMMANDS)[number];

type Flat<T> = { [K in keyof T]: T[K] };
type CommandOf<E> = E extends { resolvesTo: infer C extends string; args: infer S extends ArgShape } ? Flat<Resolved<C, S>> : never;

/** A resolved command, as the table's entries resolve them. */
export type Command = CommandOf<CommandEntry>;

async function replyHelp(ctx: CommandContext, repo: RepoStacks): Promise<void> {
  await reply(ctx, renderHelp(COMMANDS, repo.stacks, repo.defaultStack));
}
