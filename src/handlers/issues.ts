/**
 * Issue events that start or feed diagnostics: the diagnose label added (`issues.labeled`), an
 * issue opened from a configured template (`issues.opened`), and a diagnosed issue closed
 * (`issues.closed`: its closing comment becomes a resolution in the knowledge base).
 */
import type { Context } from "probot";
import { isBotActor } from "../approval/permissions.js";
import { diagnoseQuery, enqueueDiagnosis } from "../commands/diagnose.js";
import { decideCommandPermission } from "../commands/registry.js";
import { branchRef } from "../connectors/branch-ref.js";
import { getFileText, getPermission, latestIssueComments, type RepoRef } from "../connectors/github.js";
import { loadDiagnoseSettings } from "../diagnose/repo-settings.js";
import { appendAudit } from "../connectors/store/audit.js";
import { hasReport } from "../connectors/store/diagnostics.js";
import type { AppDeps } from "../deps.js";
import { matchesTemplate, templateIdentity } from "../diagnose/templates.js";
import { REPORT_MARKER } from "../render/diagnose.js";

export const ISSUE_TEMPLATE_DIR = ".github/ISSUE_TEMPLATE";

function repoRef(fullName: string): RepoRef {
  const [owner, repo] = fullName.split("/") as [string, string];
  return { owner, repo };
}

type IssuesContext = Context<"issues.labeled" | "issues.opened">;

/** Permission first (same rule as the command), then 👀 on the issue and the job. */
async function startFromIssue(context: IssuesContext, deps: AppDeps, trigger: "label" | "template", actor: string): Promise<void> {
  const { payload } = context;
  const repo = repoRef(payload.repository.full_name);
  const installationId = payload.installation?.id;
  if (!installationId || !deps.diagnose) return;
  const permission = await getPermission(context.octokit, repo, actor);
  const decision = decideCommandPermission("diagnose", permission);
  const base = { actor, repo: payload.repository.full_name, prNumber: payload.issue.number, deliveryId: context.id };
  if (!decision.allowed) {
    await appendAudit(deps.db, { ...base, action: "command.refused", detail: { command: "diagnose", trigger, permission } });
    await deps.writes.comment(
      { installationId, repo },
      payload.issue.number,
      `@${actor} a diagnosis needs **${decision.required}** access to this repository and you have **${decision.actual}**. Nothing was run; a maintainer can comment \`/agent diagnose\`.`,
      { cls: "ack", idempotencyKey: `delivery:${context.id}:reply:1` },
    );
    return;
  }
  await deps.writes.reactToIssue({ installationId, repo }, payload.issue.number, "eyes", { idempotencyKey: `delivery:${context.id}:eyes:1` });
  await enqueueDiagnosis(deps, {
    repo: payload.repository.full_name,
    installationId,
    issueNumber: payload.issue.number,
    stack: null,
    requestedBy: actor,
    trigger,
    deliveryId: context.id,
    defaultBranch: payload.repository.default_branch,
    query: diagnoseQuery(payload.issue.title, payload.issue.body),
  });
}

export async function onIssueLabeled(context: Context<"issues.labeled">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  if (!payload.label || isBotActor(payload.sender) || payload.issue.state !== "open") return;
  const { settings } = await loadDiagnoseSettings(context.octokit, repoRef(payload.repository.full_name), branchRef(payload.repository.default_branch));
  if (payload.label.name.toLowerCase() !== settings.label.toLowerCase()) return;
  await startFromIssue(context, deps, "label", payload.sender.login);
}

export async function onIssueOpened(context: Context<"issues.opened">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  if (isBotActor(payload.sender) || payload.issue.pull_request) return;
  const repo = repoRef(payload.repository.full_name);
  const { settings } = await loadDiagnoseSettings(context.octokit, repo, branchRef(payload.repository.default_branch));
  if (settings.templates.length === 0) return;
  const labels = (payload.issue.labels ?? []).map((l) => (typeof l === "string" ? l : (l.name ?? "")));
  // Opened with the diagnose label already on: the `labeled` event that follows starts it.
  if (labels.some((l) => l.toLowerCase() === settings.label.toLowerCase())) return;
  for (const file of settings.templates) {
    const text = await getFileText(context.octokit, repo, `${ISSUE_TEMPLATE_DIR}/${file}`, branchRef(payload.repository.default_branch));
    const identity = text === null ? null : templateIdentity(file, text);
    if (identity && matchesTemplate({ title: payload.issue.title, labels }, identity)) {
      await startFromIssue(context, deps, "template", payload.sender.login);
      return;
    }
  }
}

/**
 * A diagnosed issue closed as completed: its symptoms and the last human comment (how it was
 * resolved) go into the knowledge base, so the next similar incident finds them.
 */
export async function onIssueClosed(context: Context<"issues.closed">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  const rt = deps.diagnose;
  if (!rt || payload.issue.pull_request || payload.issue.state_reason === "not_planned") return;
  const repoFullName = payload.repository.full_name;
  if (!(await hasReport(deps.db, repoFullName, payload.issue.number))) return;
  const comments = await latestIssueComments(context.octokit, repoRef(repoFullName), payload.issue.number, 20);
  const closing = comments.filter((c) => !isBotActor({ login: c.login, type: c.type }) && !c.body.includes(REPORT_MARKER)).pop();
  const indexed = await rt.kb.indexResolvedIssue({
    repo: repoFullName,
    number: payload.issue.number,
    title: payload.issue.title,
    body: payload.issue.body ?? "",
    resolution: closing?.body ?? null,
    url: payload.issue.html_url,
    closedAt: payload.issue.closed_at ?? new Date().toISOString(),
  });
  await appendAudit(deps.db, {
    actor: payload.sender.login,
    action: "diagnose.resolution_indexed",
    repo: repoFullName,
    prNumber: payload.issue.number,
    deliveryId: context.id,
    detail: { indexed, has_resolution: Boolean(closing) },
  });
}
