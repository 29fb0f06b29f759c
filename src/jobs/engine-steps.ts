/**
 * Runs one step of a preview in the task's sandbox, by engine: a configured command (argv or
 * script), or the `pulumi` engine's own preview. Returns the redacted output and, for the
 * preview step, the typed plan and its hash. Everything returned is already redacted.
 */
import type { ResolvedStack, StepSpec } from "../config/repo/resolve.js";
import { runPulumiPreview } from "../connectors/pulumi/cli.js";
import type { Redactor } from "../connectors/redact.js";
import type { ExecResult, Sandbox } from "../connectors/sandbox.js";
import { assertPlanIntegrity, PlanIntegrityError } from "../connectors/pulumi/integrity.js";
import { commandPlanHash, pulumiPlanHash } from "../plan/hash.js";
import type { PreviewOutcome, PulumiPreview } from "../plan/types.js";
import { headTail } from "../render/markdown.js";
import { withSpan } from "../ops/tracing.js";

/** A command engine's plan text kept with the task (the full output is in the task log). */
const COMMAND_PLAN_CHARS = 50_000;
/** Largest preview JSON or saved plan read back from the sandbox. */
export const PLAN_READ_LIMIT_BYTES = 64 * 1024 * 1024;

export interface StepRun {
  res: ExecResult;
  /** The step's whole visible output, redacted. */
  output: string;
  /** Why the engine failed, in words the author can act on; null when it did not or cannot tell. */
  failure: string | null;
  /** The preview's typed result (also for a failed Pulumi program, for its diagnostics). */
  plan: PreviewOutcome | null;
  /** Digest approvals bind to: only for a successful preview. */
  planHash: string | null;
  /** Pulumi's saved plan file, for `pulumi up --plan`. */
  savedPlan: string | null;
  /** The preview's digest and saved plan disagreed (the failure says how): a possible attack. */
  integrity?: boolean;
}

export interface StepContext {
  sandbox: Sandbox;
  stack: ResolvedStack;
  env: Record<string, string>;
  timeoutMs: number;
  redactor: Redactor;
  /** Called with the redacted output so far, for live progress. */
  onProgress: (outputSoFar: string) => void;
  /** The pulumi engine's preview reads the resources' real state first (a drift check). */
  refresh?: boolean;
}

function stepArgv(step: StepSpec): string[] {
  // A script comes from the default branch's config; user text never reaches it (invariant 5).
  return step.argv ?? ["sh", "-c", step.script ?? "true"];
}

/**
 * One step, in a `sandbox.exec` span (a child of the task's `task.run`): the step's name and
 * stack, exit code, duration, and whether it timed out or hit the output limit. No output.
 */
export async function runStep(spec: StepSpec, ctx: StepContext): Promise<StepRun> {
  return withSpan("sandbox.exec", { "step.name": spec.name, "step.engine": spec.engine ?? "command", "task.stack": ctx.stack.name }, async (span) => {
    const run = await runStepInSandbox(spec, ctx);
    span.setAttributes({
      "process.exit.code": run.res.exitCode ?? -1,
      "sandbox.duration_ms": run.res.durationMs,
      "sandbox.timed_out": run.res.timedOut,
      "sandbox.output_limit_exceeded": run.res.outputLimitExceeded,
    });
    return run;
  });
}

async function runStepInSandbox(spec: StepSpec, ctx: StepContext): Promise<StepRun> {
  let output = "";
  const redacting = ctx.redactor.stream();
  const onOutput = (chunk: string) => {
    output += redacting.push(chunk);
    ctx.onProgress(output);
  };
  const finish = () => {
    output += redacting.end();
    return output;
  };

  if (spec.engine === "pulumi") {
    if (spec.name !== "preview") throw new Error(`the pulumi engine runs ${spec.name} only through /agent deploy`);
    const run = await runPulumiPreview(ctx.sandbox, {
      pulumiStack: ctx.stack.pulumiStack ?? ctx.stack.name,
      workdir: ctx.stack.dir,
      env: ctx.env,
      timeoutMs: ctx.timeoutMs,
      onOutput,
      readLimitBytes: PLAN_READ_LIMIT_BYTES,
      ...(ctx.refresh ? { refresh: true } : {}),
      ...(ctx.stack.review ? { template: ctx.stack.review.template } : {}),
    });
    finish();
    const plan = run.preview ? redactPreview(run.preview, ctx.redactor) : null;
    let planHash: string | null = null;
    let failure = run.failure ? ctx.redactor.redact(run.failure.message) : null;
    let res = run.exec;
    if (run.savedPlan !== null && failure === null) {
      try {
        planHash = pulumiPlanHash(run.savedPlan);
        // What is shown and checked by policy must be what is hashed and applied.
        if (run.preview) assertPlanIntegrity(run.preview, run.savedPlan);
      } catch (err) {
        const integrity = err instanceof PlanIntegrityError;
        failure = integrity ? `integrity check failed: ${ctx.redactor.redact(err.message)}; nothing from this preview is shown or can be approved` : "pulumi preview wrote a saved plan that is not JSON";
        res = { ...res, exitCode: 1 };
        planHash = null;
        // Neither half of a preview that contradicts itself is shown.
        if (integrity) return { res, output, failure, plan: null, planHash: null, savedPlan: null, integrity: true };
      }
    }
    return { res, output, failure, plan, planHash, savedPlan: planHash ? run.savedPlan : null };
  }

  // The command engine's plan is its output: nothing an earlier step started may trace or feed it.
  if (spec.name === "preview") await ctx.sandbox.stopStrayProcesses();
  const res = await ctx.sandbox.exec(stepArgv(spec), { timeoutMs: ctx.timeoutMs, env: ctx.env, workdir: ctx.stack.dir, onOutput });
  finish();
  if (spec.name !== "preview" || res.exitCode !== 0 || res.outputLimitExceeded) {
    return { res, output, failure: null, plan: null, planHash: null, savedPlan: null };
  }
  const text = headTail(output, COMMAND_PLAN_CHARS);
  return {
    res,
    output,
    failure: null,
    plan: { engine: "command", output: text, truncated: text.length < output.length },
    planHash: commandPlanHash(output),
    savedPlan: null,
  };
}

/** Program text (diagnostics) and names could carry a secret the program printed or used. */
function redactPreview(p: PulumiPreview, redactor: Redactor): PulumiPreview {
  if (redactor.size === 0) return p;
  return {
    ...p,
    resources: p.resources.map((r) => ({ ...r, urn: redactor.redact(r.urn), name: redactor.redact(r.name) })),
    diagnostics: p.diagnostics.map((d) => ({ ...d, message: redactor.redact(d.message), urn: d.urn === null ? null : redactor.redact(d.urn) })),
  };
}
