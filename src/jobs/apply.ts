/**
 * The apply step of a deploy: in a fresh sandbox session at the commit being applied, with the
 * stack's deploy credentials, it applies exactly the approved plan (Pulumi: the saved plan,
 * re-hashed; the command engine: the approved preview output handed over read-only) — or, for
 * merge-first, previews the merge commit and applies it only if it plans the same.
 */
import { readStackOutputs, runPulumiUp } from "../connectors/pulumi/cli.js";
import type { DeployRow } from "../connectors/store/gate.js";
import { getTaskLogs } from "../connectors/store/logs.js";
import { getSavedPlan } from "../connectors/store/plans.js";
import type { AppDeps, TaskRun } from "../deps.js";
import { commandPlanHash, pulumiPlanHash } from "../plan/hash.js";
import { runStep } from "./engine-steps.js";
import { withSandboxSession, type SandboxSession } from "./sandbox-session.js";
import { SandboxRefusedError } from "./task-errors.js";

export interface ApplyResult {
  output: string;
  exitCode: number | null;
  durationMs: number | null;
  failure: string | null;
  /** Merge-first: the fresh plan of the merge commit did not hash to the approved plan. */
  mismatch: { planHash: string | null } | null;
  /** A review stack's outputs after a successful apply (secrets as "[secret]", redacted); null if unread. */
  outputs?: Record<string, unknown> | null;
}

/**
 * Runs the deploy in a fresh sandbox at `workflow.head_sha` with the stack's deploy credentials.
 * `fresh`: preview that commit first and apply only if it plans exactly the approved plan
 * (merge-first, or a run's stack after its upstream stacks were applied); otherwise apply the
 * approved saved plan.
 */
export async function apply(run: TaskRun, deploy: DeployRow, stop: AbortSignal | undefined, fresh: boolean): Promise<ApplyResult> {
  try {
    return (await withSandboxSession(run, "deploy", stop, (session) => applyIn(run, session, deploy, fresh))) ?? none("stopped before the apply started");
  } catch (err) {
    // The server would not give this stack a sandbox as configured: nothing ran.
    if (err instanceof SandboxRefusedError) return none(`${err.message}; nothing was applied`);
    throw err;
  }
}

function none(failure: string): ApplyResult {
  return { output: "", exitCode: null, durationMs: null, failure, mismatch: null };
}

/** The apply itself, in the task's sandbox session (checkout, credentials and egress in place). */
async function applyIn(run: TaskRun, session: SandboxSession, deploy: DeployRow, fresh: boolean): Promise<ApplyResult> {
  const { deps, workflow, task, stack } = run;
  const { sandbox, redactor } = session;
  let { env } = session;
  const timeoutMs = deps.config.sandbox.timeoutSeconds * 1000;
  let plan: string | null = null;
  let previewOutput = "";
  /** The command engine's approved preview output, handed to the deploy step read-only. */
  let approvedOutput: string | null = null;
  if (fresh) {
    const spec = stack.steps.find((s) => s.name === "preview");
    if (!spec) return none(`stack ${stack.name} has no preview step`);
    const ran = await runStep(spec, { sandbox, stack, env, timeoutMs, redactor, onProgress: () => {} });
    previewOutput = `$ preview of ${workflow.head_sha}\n${ran.output}\n`;
    if (ran.res.exitCode !== 0 || ran.failure) return { ...none(ran.failure ?? `the fresh preview of ${workflow.head_sha.slice(0, 7)} before the apply failed (exit ${ran.res.exitCode ?? "killed"}); nothing was applied`), output: previewOutput };
    if (ran.planHash !== deploy.plan_hash) return { output: previewOutput, exitCode: ran.res.exitCode, durationMs: ran.res.durationMs, failure: null, mismatch: { planHash: ran.planHash } };
    plan = ran.savedPlan;
    approvedOutput = ran.output;
  }
  const previewTaskId = deploy.preview_task_id ?? task.depends_on[0];
  // Whatever the merge commit's preview (its program) left running goes before the apply.
  await sandbox.stopStrayProcesses();
  if (stack.engine === "pulumi") {
    if (!fresh) plan = previewTaskId ? await getSavedPlan(deps.db, previewTaskId) : null;
    // What is applied is what was approved: the plan must still hash to the approved hash.
    if (!plan || pulumiPlanHash(plan) !== deploy.plan_hash) return none("the approved plan is missing or does not match its hash; nothing was applied");
    // Root-owned and read-only in the container: the program cannot swap it before `up` reads it.
    const planPath = await sandbox.writeTrustedFile("approved-plan.json", plan);
    let output = previewOutput;
    const redacting = redactor.stream();
    const res = await runPulumiUp(sandbox, {
      pulumiStack: stack.pulumiStack ?? stack.name,
      workdir: stack.dir,
      env,
      timeoutMs,
      planPath,
      onOutput: (chunk) => (output += redacting.push(chunk)),
      ...(stack.review ? { template: stack.review.template } : {}),
    });
    output += redacting.end();
    const failure = res.failure ? redactor.redact(res.failure.message) : res.exec.exitCode === 0 ? null : res.exec.timedOut ? "the deploy ran past its time limit and was stopped" : "the deploy was stopped";
    // A review stack's outputs (its URLs) go to the pull request: read them while the sandbox is there.
    const outputs = stack.review && failure === null ? await readStackOutputs(sandbox, { pulumiStack: stack.pulumiStack ?? stack.name, workdir: stack.dir, env, timeoutMs }) : null;
    return { output, exitCode: res.exec.exitCode, durationMs: res.exec.durationMs, failure, mismatch: null, ...(outputs ? { outputs: redactDeep(outputs, redactor) as Record<string, unknown> } : {}) };
  }
  const spec = stack.steps.find((s) => s.name === "deploy");
  if (!spec) return none(`stack ${stack.name} has no deploy command`);
  // The `command` engine's binding: the deploy step is handed exactly the approved preview
  // output (read-only) and its hash; applying what was shown is up to the deploy script.
  if (!fresh) approvedOutput = previewTaskId ? await approvedPreviewOutput(deps, previewTaskId) : null;
  if (approvedOutput === null || commandPlanHash(approvedOutput) !== deploy.plan_hash) {
    return none("the approved preview output is missing or does not match its hash; nothing was applied");
  }
  const approvedPath = await sandbox.writeTrustedFile("approved-preview.txt", approvedOutput);
  env = { ...env, AGENT_APPROVED_PLAN: approvedPath, AGENT_APPROVED_PLAN_HASH: deploy.plan_hash };
  const ran = await runStep(spec, { sandbox, stack, env, timeoutMs, redactor, onProgress: () => {} });
  const failure = ran.res.exitCode === 0 ? null : ran.res.timedOut ? "the deploy ran past its time limit and was stopped" : `the deploy command failed (exit ${ran.res.exitCode ?? "killed"})`;
  return { output: previewOutput + ran.output, exitCode: ran.res.exitCode, durationMs: ran.res.durationMs, failure, mismatch: null };
}

/** Every string of a JSON value through the redactor (keys too: an output may be named after a secret). */
function redactDeep(value: unknown, redactor: SandboxSession["redactor"]): unknown {
  if (typeof value === "string") return redactor.redact(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redactor));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [redactor.redact(k), redactDeep(v, redactor)]));
  return value;
}

/** The full (redacted) output of a command preview, as stored with its task: what its plan hash covers. */
async function approvedPreviewOutput(deps: AppDeps, previewTaskId: string): Promise<string | null> {
  const log = (await getTaskLogs(deps.db, previewTaskId)).find((l) => l.step === "preview");
  return log && !log.truncated ? log.content : null;
}
