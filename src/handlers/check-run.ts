import type { Context } from "probot";
import { isBotActor } from "../approval/permissions.js";
import { commandContextFor } from "../commands/context.js";
import { dispatchCommands } from "../commands/dispatch.js";
import { buttonCommand, commandOfButton } from "../commands/registry.js";
import { getTask } from "../connectors/store/workflows.js";
import type { AppDeps } from "../deps.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * `check_run.requested_action`: the buttons of a successful preview (Deploy, Approve: the
 * command table names them). The check run's `external_id` is our task id, and the click stands
 * for that task only: its stack, commit and plan, never "whatever is current" — a button of a
 * preview that is no longer the head's current plan approves or deploys nothing and says so.
 * Otherwise the click is dispatched as the command it stands for (permission, the default
 * branch's config, the gate), exactly as that comment would be.
 */
export async function onCheckRunAction(context: Context<"check_run.requested_action">, deps: AppDeps): Promise<void> {
  const { payload } = context;
  if (isBotActor(payload.sender)) return;
  const entry = commandOfButton(payload.requested_action?.identifier ?? "");
  if (!entry) return;
  const installationId = payload.installation?.id;
  const taskId = payload.check_run.external_id ?? "";
  if (!installationId || !UUID_RE.test(taskId)) return;
  const found = await getTask(deps.db, taskId);
  // Only our own preview check runs, in the repository the event is about.
  if (!found || found.task.kind !== "preview" || found.workflow.repo !== payload.repository.full_name) return;
  const ctx = commandContextFor(deps, context, payload.repository, {
    installationId,
    threadNumber: found.workflow.pr_number,
    isPullRequest: true,
    commentId: 0,
    actor: payload.sender.login,
  });
  const preview = { taskId: found.task.id, headSha: found.workflow.head_sha, planHash: found.task.plan_hash, state: found.task.state };
  await dispatchCommands(ctx, { commands: [buttonCommand(entry, found.task.stack)], errors: [] }, { kind: "button", stack: found.task.stack, preview });
}
