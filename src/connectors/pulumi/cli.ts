/**
 * Runs the Pulumi CLI inside a task's sandbox, non-interactively: select (or create) the stack,
 * `pulumi preview --json --save-plan`, then read the two files it wrote.
 *
 * What a pull request's code could do to those files is bounded here: before the engine runs,
 * every process of the sandbox user is killed (nothing an earlier step started survives into
 * it); the files go to a fresh directory with an unguessable name in the container's own /tmp;
 * after the engine exits every process is killed again before they are read (nothing survives
 * into reading them); and the caller checks the two files against each other
 * (./integrity.ts), because the Pulumi program itself runs while they are written.
 */
import { randomBytes } from "node:crypto";
import type { ExecResult, Sandbox } from "../sandbox.js";
import type { PulumiPreview } from "../../plan/types.js";
import { classifyPulumiFailure, type PulumiFailure } from "./errors.js";
import { parsePreviewJson, PreviewParseError } from "./preview-json.js";

/** Where each preview's output directory is made (the container's own tmpfs). */
export const ENGINE_DIR_PREFIX = "/tmp/.agent-engine-";

/** argv only: the stack name is validated by the config schema and passed as its own argument. */
export function stackSelectArgv(pulumiStack: string): string[] {
  return ["pulumi", "stack", "select", "--create", "--non-interactive", "--stack", pulumiStack];
}

/**
 * `pulumi preview` with its JSON on stdout redirected to a file in `outDir`; stderr (progress,
 * errors) stays the step's visible output. The shell only redirects: the stack name is `$1`,
 * the directory `$2` (made here, mode 0700; it must not exist yet).
 */
export function previewArgv(pulumiStack: string, outDir: string, refresh = false): string[] {
  return [
    "sh",
    "-c",
    // `--refresh`: read the resources' real state first (a drift check), a fixed word, never user text.
    `mkdir -m 0700 "$2" && exec pulumi preview --non-interactive${refresh ? " --refresh" : ""} --stack "$1" --json --save-plan "$2/plan.json" >"$2/preview.json"`,
    "pulumi-preview",
    pulumiStack,
    outDir,
  ];
}

export interface PulumiPreviewRun {
  /** The preview exec's result; durations cover both commands. */
  exec: ExecResult;
  /** Parsed preview (also on a program error, for its diagnostics); null when none was printed. */
  preview: PulumiPreview | null;
  /** The saved plan file's text, on success only. */
  savedPlan: string | null;
  /** Why it failed, in words the PR author can act on; null on success. */
  failure: PulumiFailure | null;
}

export interface PulumiRunOptions {
  pulumiStack: string;
  workdir: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Streams the commands' visible output (stack selection, stderr of the preview). */
  onOutput: (chunk: string) => void;
  /** Cap for reading the preview JSON and the plan back. */
  readLimitBytes: number;
  /** `preview --refresh`: compare with the resources' real state (drift checks). */
  refresh?: boolean;
  /**
   * A review stack: made from this Pulumi stack's config when it does not exist yet
   * (`stack init --copy-config-from`), its config copied again from it when it does (the
   * checkout holds no config file of an ephemeral stack).
   */
  template?: string;
}

const NO_SUCH_STACK = /no stack named '[^']*' found/;

/**
 * Selects the stack: `select --create`, or for a review stack `select`, then either the
 * template's config copied over (`config cp`) or, when it is missing, `stack init
 * --copy-config-from`. Fixed argv only; the names come from the validated config.
 */
async function selectStackIn(sandbox: Sandbox, opts: Pick<PulumiRunOptions, "pulumiStack" | "workdir" | "env" | "timeoutMs" | "template">, visible: (chunk: string) => void): Promise<ExecResult> {
  const run = (argv: string[]) => sandbox.exec(argv, { timeoutMs: opts.timeoutMs, env: opts.env, workdir: opts.workdir, onOutput: visible });
  if (opts.template === undefined) return run(stackSelectArgv(opts.pulumiStack));
  let out = "";
  const select = await sandbox.exec(["pulumi", "stack", "select", "--non-interactive", "--stack", opts.pulumiStack], { timeoutMs: opts.timeoutMs, env: opts.env, workdir: opts.workdir, onOutput: (c) => { out += c; visible(c); } });
  const next = select.exitCode === 0 ? configCopyArgv(opts.template, opts.pulumiStack) : select.exitCode !== null && NO_SUCH_STACK.test(out) ? reviewInitArgv(opts.pulumiStack, opts.template) : null;
  if (next === null) return select;
  const second = await run(next);
  return { ...second, durationMs: second.durationMs + select.durationMs };
}

/** A review stack's first use: created with the template's config. */
export function reviewInitArgv(pulumiStack: string, template: string): string[] {
  return ["pulumi", "stack", "init", "--non-interactive", "--stack", pulumiStack, "--copy-config-from", template];
}

/** A review stack that exists: the template's config again (the checkout has none of its own). */
export function configCopyArgv(template: string, pulumiStack: string): string[] {
  return ["pulumi", "config", "cp", "--non-interactive", "--stack", template, "--dest", pulumiStack];
}

export async function runPulumiPreview(sandbox: Sandbox, opts: PulumiRunOptions): Promise<PulumiPreviewRun> {
  const deadline = Date.now() + opts.timeoutMs;
  // Nothing an earlier step (lint, test: pull-request code) started may watch or touch the engine.
  await sandbox.stopStrayProcesses();
  const outDir = `${ENGINE_DIR_PREFIX}${randomBytes(12).toString("hex")}`;
  let stderr = "";
  const visible = (chunk: string) => {
    stderr += chunk;
    opts.onOutput(chunk);
  };
  const select = await selectStackIn(sandbox, opts, visible);
  if (select.exitCode !== 0) {
    const failure = select.exitCode === null ? null : classifyPulumiFailure(stderr, opts.pulumiStack);
    return { exec: select, preview: null, savedPlan: null, failure };
  }
  const run = await sandbox.exec(previewArgv(opts.pulumiStack, outDir, opts.refresh), {
    timeoutMs: Math.max(1000, deadline - Date.now()),
    env: opts.env,
    workdir: opts.workdir,
    onOutput: visible,
  });
  const exec = { ...run, durationMs: run.durationMs + select.durationMs };
  // Killed (time, output, memory): the sandbox's stop reason says why; nothing to read.
  if (run.exitCode === null) return { exec, preview: null, savedPlan: null, failure: null };

  // The program (pull-request code) ran inside the engine: whatever it left running goes first.
  await sandbox.stopStrayProcesses();
  const json = await sandbox.readFile(`${outDir}/preview.json`, opts.readLimitBytes);
  let preview: PulumiPreview | null = null;
  let parseProblem: string | null = null;
  if (json !== null && json.trim() !== "") {
    try {
      preview = parsePreviewJson(json, opts.pulumiStack);
    } catch (err) {
      if (!(err instanceof PreviewParseError)) throw err;
      parseProblem = err.message;
    }
  }
  if (run.exitCode !== 0) {
    const errors = preview?.diagnostics.filter((d) => d.severity === "error").map((d) => d.message) ?? [];
    return { exec, preview, savedPlan: null, failure: classifyPulumiFailure(stderr, opts.pulumiStack, errors) };
  }
  if (!preview) {
    const why = parseProblem ?? (json === null ? "pulumi preview wrote no JSON output" : "pulumi preview printed no JSON");
    return { exec: { ...exec, exitCode: 1 }, preview: null, savedPlan: null, failure: { kind: "unknown", message: why } };
  }
  const savedPlan = await sandbox.readFile(`${outDir}/plan.json`, opts.readLimitBytes);
  if (savedPlan === null) {
    return { exec: { ...exec, exitCode: 1 }, preview, savedPlan: null, failure: { kind: "unknown", message: "pulumi preview wrote no saved plan (--save-plan)" } };
  }
  return { exec, preview, savedPlan, failure: null };
}

/** `pulumi up` of exactly a saved plan: the CLI refuses any step the plan does not contain. */
export function upArgv(pulumiStack: string, planPath: string): string[] {
  return ["pulumi", "up", "--non-interactive", "--yes", "--skip-preview", "--stack", pulumiStack, "--plan", planPath];
}

export interface PulumiUpRun {
  exec: ExecResult;
  failure: PulumiFailure | null;
}

/** Selects the stack and applies the saved plan at `planPath` (a path inside the container). */
export async function runPulumiUp(
  sandbox: Sandbox,
  opts: Omit<PulumiRunOptions, "readLimitBytes"> & { planPath: string },
): Promise<PulumiUpRun> {
  const deadline = Date.now() + opts.timeoutMs;
  let stderr = "";
  const visible = (chunk: string) => {
    stderr += chunk;
    opts.onOutput(chunk);
  };
  const select = await selectStackIn(sandbox, opts, visible);
  if (select.exitCode !== 0) return { exec: select, failure: select.exitCode === null ? null : classifyPulumiFailure(stderr, opts.pulumiStack) };
  const run = await sandbox.exec(upArgv(opts.pulumiStack, opts.planPath), {
    timeoutMs: Math.max(1000, deadline - Date.now()),
    env: opts.env,
    workdir: opts.workdir,
    onOutput: visible,
  });
  const exec = { ...run, durationMs: run.durationMs + select.durationMs };
  if (run.exitCode === 0 || run.exitCode === null) return { exec, failure: null };
  return { exec, failure: classifyPulumiFailure(stderr, opts.pulumiStack) };
}

/** The stack's outputs as `pulumi stack output --json` prints them (secrets as "[secret]"). */
export function stackOutputArgv(pulumiStack: string): string[] {
  return ["pulumi", "stack", "output", "--non-interactive", "--json", "--stack", pulumiStack];
}

/** Reads the selected stack's outputs; null when they cannot be read (the apply itself succeeded). */
export async function readStackOutputs(sandbox: Sandbox, opts: { pulumiStack: string; workdir: string; env: Record<string, string>; timeoutMs: number }): Promise<Record<string, unknown> | null> {
  let stdout = "";
  const res = await sandbox.exec(stackOutputArgv(opts.pulumiStack), { timeoutMs: opts.timeoutMs, env: opts.env, workdir: opts.workdir, onOutput: (chunk, stream) => { if (stream === "stdout") stdout += chunk; } });
  if (res.exitCode !== 0) return null;
  try {
    const parsed: unknown = JSON.parse(stdout);
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export interface PulumiDestroyRun {
  /** The stack did not exist: nothing to destroy. */
  gone: boolean;
  exec: ExecResult;
  /** The destroy's preview (`destroy --preview-only --json`): what it deletes. */
  preview: PulumiPreview | null;
  failure: PulumiFailure | null;
}

/** `destroy --preview-only --json` into a file of `outDir`, as for a preview. */
export function destroyPreviewArgv(pulumiStack: string, outDir: string): string[] {
  return ["sh", "-c", `mkdir -m 0700 "$2" && exec pulumi destroy --non-interactive --preview-only --stack "$1" --json >"$2/destroy.json"`, "pulumi-destroy-preview", pulumiStack, outDir];
}

/** Deletes every resource of the stack, then the stack and its config (`--remove`). */
export function destroyArgv(pulumiStack: string): string[] {
  return ["pulumi", "destroy", "--non-interactive", "--yes", "--skip-preview", "--remove", "--stack", pulumiStack];
}

/**
 * Destroys a review stack: selects it (a missing stack is already gone), copies the template's
 * config (providers read it), previews the destroy (the record of what it deletes), then
 * destroys it and removes the stack. The program is not run.
 */
export async function runPulumiDestroy(sandbox: Sandbox, opts: Omit<PulumiRunOptions, "refresh"> & { template: string }): Promise<PulumiDestroyRun> {
  const deadline = Date.now() + opts.timeoutMs;
  let stderr = "";
  const visible = (chunk: string) => {
    stderr += chunk;
    opts.onOutput(chunk);
  };
  const left = () => Math.max(1000, deadline - Date.now());
  const run = (argv: string[]) => sandbox.exec(argv, { timeoutMs: left(), env: opts.env, workdir: opts.workdir, onOutput: visible });
  const select = await run(["pulumi", "stack", "select", "--non-interactive", "--stack", opts.pulumiStack]);
  if (select.exitCode !== 0) {
    if (select.exitCode !== null && NO_SUCH_STACK.test(stderr)) return { gone: true, exec: select, preview: null, failure: null };
    return { gone: false, exec: select, preview: null, failure: select.exitCode === null ? null : classifyPulumiFailure(stderr, opts.pulumiStack) };
  }
  const copied = await run(configCopyArgv(opts.template, opts.pulumiStack));
  if (copied.exitCode !== 0) return { gone: false, exec: copied, preview: null, failure: copied.exitCode === null ? null : classifyPulumiFailure(stderr, opts.pulumiStack) };
  const outDir = `${ENGINE_DIR_PREFIX}${randomBytes(12).toString("hex")}`;
  const previewed = await run(destroyPreviewArgv(opts.pulumiStack, outDir));
  if (previewed.exitCode !== 0) return { gone: false, exec: previewed, preview: null, failure: previewed.exitCode === null ? null : classifyPulumiFailure(stderr, opts.pulumiStack) };
  const json = await sandbox.readFile(`${outDir}/destroy.json`, opts.readLimitBytes);
  let preview: PulumiPreview | null = null;
  try {
    preview = json ? parsePreviewJson(json, opts.pulumiStack) : null;
  } catch (err) {
    if (!(err instanceof PreviewParseError)) throw err;
  }
  const destroyed = await run(destroyArgv(opts.pulumiStack));
  const exec = { ...destroyed, durationMs: destroyed.durationMs + previewed.durationMs + copied.durationMs + select.durationMs };
  if (destroyed.exitCode === 0 || destroyed.exitCode === null) return { gone: false, exec, preview, failure: null };
  return { gone: false, exec, preview, failure: classifyPulumiFailure(stderr, opts.pulumiStack) };
}
