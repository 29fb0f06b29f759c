import type { Logger } from "pino";
import type { AuditAction } from "../domain/audit-actions.js";
import { formatConfigIssues, type LoadResult } from "../config/repo/load.js";
import { defaultBranchConfig, REPO_CONFIG_PATH, type GitHub, type RepoRef } from "../connectors/github.js";
import type { WriteTarget } from "../connectors/outbox/writes.js";
import { appendAudit, type AuditEntry } from "../connectors/store/audit.js";
import type { ApplyRequester } from "../deploys/request-apply.js";
import type { AppDeps } from "../deps.js";

/** Everything a command needs about where it was typed and by whom. */
export interface CommandContext {
  deps: AppDeps;
  gh: GitHub;
  log: Logger;
  repo: RepoRef;
  repoFullName: string;
  installationId: number;
  threadNumber: number;
  isPullRequest: boolean;
  commentId: number;
  actor: string;
  deliveryId: string;
  /** Writes made so far for this delivery, per step (deliveryWriteKey). */
  writeSeq: Record<string, number>;
  cloneUrl: string;
  defaultBranch: string;
  /** The issue or pull request's title and body, when the event carried them (diagnosis searches with them). */
  issue?: { title: string; body: string | null };
  /**
   * When the command was written: the comment's `created_at` (GitHub's time). `/approve` binds
   * to the head and plan current then, `/agent ok-to-test` vouches for the head then. Absent for
   * a button click or an autoplan (they are bound otherwise, or to now).
   */
  createdAt?: Date;
}

/**
 * The context for commands started by a webhook (a comment, a button, a push): one place that
 * reads the repository fields of the payload.
 */
export function commandContextFor(
  deps: AppDeps,
  event: { id: string; octokit: GitHub },
  repository: { full_name: string; clone_url: string; default_branch: string },
  who: { installationId: number; threadNumber: number; isPullRequest: boolean; commentId: number; actor: string; issue?: { title: string; body: string | null }; createdAt?: Date },
): CommandContext {
  const [owner, repo] = repository.full_name.split("/") as [string, string];
  return {
    deps,
    gh: event.octokit,
    log: deps.log.child({ delivery_id: event.id, repo: repository.full_name, issue: who.threadNumber }),
    repo: { owner, repo },
    repoFullName: repository.full_name,
    deliveryId: event.id,
    writeSeq: {},
    cloneUrl: repository.clone_url,
    defaultBranch: repository.default_branch,
    ...who,
  };
}

export type RepoConfigResult = LoadResult | { ok: false; missing: true };

/**
 * The repository's configuration, always from the default branch (by its full ref, which a tag
 * cannot shadow): a pull request cannot change its own gate, steps or image (invariant 2).
 */
export async function loadDefaultBranchConfig(ctx: CommandContext): Promise<RepoConfigResult> {
  return (await defaultBranchConfig(ctx.gh, ctx.repo, ctx.defaultBranch)) ?? { ok: false, missing: true };
}

export function describeConfigProblem(ctx: CommandContext, result: Exclude<RepoConfigResult, { ok: true }>): string {
  if ("missing" in result) {
    return [
      `There is no \`${REPO_CONFIG_PATH}\` on the default branch \`${ctx.defaultBranch}\`, so there is nothing to run.`,
      "Add one (it takes effect once merged), for example:",
      "```yaml",
      "version: 1",
      "stacks:",
      "  - name: dev",
      "    dir: infra",
      "steps:",
      '  lint: ["npm", "run", "lint"]',
      '  test: ["npm", "test"]',
      '  preview: ["pulumi", "preview", "--stack", "dev"]',
      "```",
    ].join("\n");
  }
  return [
    `The configuration on the default branch \`${ctx.defaultBranch}\` is not valid:`,
    "",
    formatConfigIssues(result.issues, REPO_CONFIG_PATH),
  ].join("\n");
}

/** The command's author and thread, as the deploys layer takes them. */
export function applyRequester(ctx: CommandContext): ApplyRequester {
  const { deps, gh, repo, repoFullName, installationId, threadNumber, actor, deliveryId } = ctx;
  return { deps, gh, repo, repoFullName, installationId, threadNumber, actor, deliveryId };
}

/** Where the command's GitHub writes go. */
export function writeTarget(ctx: Pick<CommandContext, "installationId" | "repo">): WriteTarget {
  return { installationId: ctx.installationId, repo: ctx.repo };
}

/**
 * The idempotency key of the n-th write of a kind this delivery makes: a handler re-run after
 * a crash (the same delivery) makes the same writes in the same order, and each is sent once.
 */
export function deliveryWriteKey(ctx: Pick<CommandContext, "deliveryId" | "writeSeq">, step: string): string {
  const n = (ctx.writeSeq[step] = (ctx.writeSeq[step] ?? 0) + 1);
  return `delivery:${ctx.deliveryId}:${step}:${n}`;
}

/** A reply to the command's author: an acknowledgement, first in the outbox. */
export async function reply(ctx: CommandContext, body: string): Promise<void> {
  await ctx.deps.writes.comment(writeTarget(ctx), ctx.threadNumber, `@${ctx.actor} ${body}`, { cls: "ack", idempotencyKey: deliveryWriteKey(ctx, "reply") });
}

/**
 * An audit row of the command, once per delivery and step: a handler re-run for the same
 * delivery (killed mid-way, retried) adds no second row. `step` names the decision when its
 * action may differ on a re-run (a preview recorded first, then seen as a duplicate).
 */
export async function audit(ctx: CommandContext, action: AuditAction, detail: Record<string, unknown>, extra: Partial<AuditEntry> = {}, step: string = action): Promise<void> {
  await appendAudit(ctx.deps.db, {
    idempotencyKey: deliveryWriteKey(ctx, `audit:${step}`),
    actor: ctx.actor,
    action,
    repo: ctx.repoFullName,
    prNumber: ctx.threadNumber,
    deliveryId: ctx.deliveryId,
    detail,
    ...extra,
  });
}
