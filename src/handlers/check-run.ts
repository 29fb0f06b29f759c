import type { Context } from "probot";
import { decideCommandPermission, isBotActor } from "../approval/permissions.js";
import { approveClickedPreview } from "../commands/approve.js";
import { audit, commandContextFor, describeConfigProblem, loadDefaultBranchConfig, reply } from "../commands/context.js";
import { requestDeploy } from "../commands/deploy.js";
import { getPermission } from "../connectors/github.js";
import { getTask } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * `check_run.requested_action`: the Deploy / Approve buttons of a successful preview. The
 * check run's `external_id` is our task id, and the click stands for that task only: its
 * stack, commit and plan, never "whatever is current" — a button of a preview that is no longer
 * the head's current plan approves or deploys nothing and says so. Otherwise the click takes
 * the path of the comment it stands for (permission, the default branch's config, the gate).
 */
export async function onCheckRunAction(context: Context<"check_run.requested_action">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  if (isBotActor(payload.sender)) return;
  const identifier = payload.requested_action?.identifier;
  if (identifier !== "deploy" && identifier !== "approve") return;
  const installationId = payload.installation?.id;
  const taskId = payload.check_run.external_id ?? "";
  if (!installationId || !UUID_RE.test(taskId)) return;
  const found = await getTask(deps.db, taskId);
  // Only our own preview check runs, in the repository the event is about.
  if (!found || found.task.kind !== "preview" || found.workflow.repo !== payload.repository.full_name) return;
  const ctx = commandContextFor(deps, context, payload.repository, {
    installationId,
    issueNumber: found.workflow.pr_number,
    isPullRequest: true,
    commentId: 0,
    actor: payload.sender.login,
  });
  const name = identifier === "deploy" ? "deploy" : "approve";
  const permission = await getPermission(ctx.gh, ctx.repo, ctx.actor);
  const decision = decideCommandPermission(name, permission);
  await audit(ctx, decision.allowed ? "command.received" : "command.refused", { command: name, via: "check_run_button", stack: found.task.stack, permission });
  if (!decision.allowed) {
    await reply(ctx, `sorry, the ${name === "deploy" ? "Deploy" : "Approve"} button needs **${decision.required}** access and you have **${decision.actual}**. Nothing was run.`);
    return;
  }
  const loaded = await loadDefaultBranchConfig(ctx);
  if (!loaded.ok) {
    await reply(ctx, describeConfigProblem(ctx, loaded));
    return;
  }
  const stack = loaded.stacks.find((s) => s.name === found.task.stack);
  if (!stack) {
    await reply(ctx, `the stack of that check run is no longer declared on the default branch.`);
    return;
  }
  const clicked = { taskId: found.task.id, headSha: found.workflow.head_sha, planHash: found.task.plan_hash, state: found.task.state };
  if (name === "deploy") await requestDeploy(ctx, stack.name, loaded, permission, clicked);
  else await approveClickedPreview(ctx, stack, clicked);
}
