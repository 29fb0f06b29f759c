/**
 * The repository configuration file, `.github/agent.yml`.
 *
 * One zod schema ({@link RepoConfigSchema}) is the single source of truth for
 *  - the runtime check ({@link loadRepoConfig}),
 *  - the TypeScript type ({@link RepoConfig}),
 *  - the published JSON schema ({@link jsonSchema}, written to `schema/agent-config.schema.json`
 *    by `scripts/write-config-schema.ts`).
 *
 * {@link loadRepoConfig} never throws: YAML syntax errors, schema violations and resource
 * limits all come back as {@link ConfigIssue}s carrying a path (`stacks[1].dir`), a 1-based
 * line number when one can be found, and a human-readable message. Every piece of
 * user-controlled text that ends up in a message is wrapped in a sanitised code span, so the
 * issues can be posted verbatim in a PR comment via {@link formatConfigIssues}.
 */
import { z } from "zod";
import { mergePlanPolicy, PlanPolicySchema, type PlanPolicyConfig } from "../approval/plan-policy.js";
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from "yaml";

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/** Largest accepted config file, in UTF-8 bytes. */
export const MAX_CONFIG_BYTES = 256 * 1024;
/** Alias expansion budget handed to `yaml` (guards against "billion laughs"). */
export const MAX_ALIAS_COUNT = 100;
const MAX_STACKS = 50;
const MAX_ARGV = 64;
const MAX_ARG_CHARS = 4096;
const MAX_DIR_CHARS = 1024;
const MAX_TIMEOUT_SECONDS = 3600;
/** Later YAML errors are usually consequences of the first ones. */
const MAX_SYNTAX_ISSUES = 10;

/** The canonical `$id` of the published JSON schema. */
export const CONFIG_SCHEMA_ID = "https://github.com/pr-infra-agent/schema/agent-config.schema.json";
export const CONFIG_SCHEMA_TITLE = "pr-infra-agent repository configuration (.github/agent.yml)";
export const DEFAULT_CONFIG_PATH = ".github/agent.yml";

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

/** Metadata for the JSON schema lives in a private registry (no global `id` collisions). */
const docs = z.registry<{
  id?: string;
  description?: string;
  examples?: unknown[];
  pattern?: string;
}>();

export const STACK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const IMAGE_REF_RE = /^[a-z0-9][a-z0-9._/:@-]{0,254}$/;
const NO_NUL_RE = /^[^\u0000]*$/;
const CONTROL_CHAR_RE = /[\u0000-\u001f\u007f]/;
/**
 * JSON-schema-only mirror of the `dir` checks (the runtime uses the per-rule messages of
 * {@link checkDir}): relative, no `..` segment, no backslash, no control characters.
 */
const DIR_JSON_PATTERN = "^(?!/)(?![A-Za-z]:)(?!(?:.*/)?\\.\\.(?:/|$))[^\\\\\\u0000-\\u001f\\u007f]*$";

const StackName = z
  .string()
  .regex(STACK_NAME_RE, "must be 1-63 characters of letters, digits, `.`, `_` or `-`, starting with a letter or digit");
docs.add(StackName, { description: "A stack name: 1-63 characters of [A-Za-z0-9._-], starting with a letter or digit." });

const ArgString = z
  .string()
  .max(MAX_ARG_CHARS, `must be at most ${MAX_ARG_CHARS} characters`)
  .regex(NO_NUL_RE, "must not contain NUL characters");

const Argv = z
  .array(ArgString)
  .min(1, "an argv list needs at least one element (the program to run)")
  .max(MAX_ARGV, `an argv list may have at most ${MAX_ARGV} elements`)
  .refine((argv) => argv[0] !== "", { message: "the program (first argv element) must not be empty", path: [0] });
docs.add(Argv, {
  description: `A command as an argv list (executed without a shell): 1-${MAX_ARGV} strings of at most ${MAX_ARG_CHARS} characters.`,
  examples: [["npm", "test"]],
});

const Script = z
  .string()
  .max(MAX_ARG_CHARS, `a command string must be at most ${MAX_ARG_CHARS} characters`)
  .min(1, "a command string must not be empty")
  .regex(NO_NUL_RE, "must not contain NUL characters")
  .refine((s) => s === "" || s.trim() !== "", "a command string must not be blank");
docs.add(Script, {
  description: `A command string, run by a shell in the stack directory (at most ${MAX_ARG_CHARS} characters).`,
  examples: ["npm run lint"],
});

const COMMAND_HINT = "must be a command string or an argv list of strings";
const Command = z.union([Script, Argv], { error: COMMAND_HINT });

const StepObject = z.strictObject({
  run: Command,
  timeout_seconds: z
    .number({ error: `must be a whole number of seconds (1-${MAX_TIMEOUT_SECONDS})` })
    .int(`must be a whole number of seconds (1-${MAX_TIMEOUT_SECONDS})`)
    .min(1, "must be at least 1 second")
    .max(MAX_TIMEOUT_SECONDS, `must be at most ${MAX_TIMEOUT_SECONDS} seconds`)
    .optional(),
});
docs.add(StepObject, { description: "A step with options: `run` (command string or argv list) and an optional `timeout_seconds`." });

const STEP_HINT =
  "must be a command string, an argv list of strings, or a mapping with `run` (and optional `timeout_seconds`)";
const Step = z.union([Command, StepObject], { error: STEP_HINT });
docs.add(Step, { id: "step", description: "One step: a command string, an argv list, or {run, timeout_seconds}." });

export const STEP_NAMES = ["lint", "test", "preview", "deploy"] as const;

const Steps = z.strictObject({
  lint: Step.optional(),
  test: Step.optional(),
  preview: Step.optional(),
  deploy: Step.optional(),
});
docs.add(Steps, {
  id: "steps",
  description:
    "Commands per step kind. `deploy` is only run by `/agent deploy`; previews run lint, test and preview in that order.",
});

const Dir = z
  .string()
  .superRefine((dir, ctx) => {
    const problem = checkDir(dir);
    if (problem !== null) ctx.addIssue({ code: "custom", message: problem, input: dir });
  })
  .transform(normalizeDir)
  .prefault("."); // parsed like user input, and advertised as `default` in the input JSON schema
docs.add(Dir, {
  description:
    "Working directory relative to the repository root (no absolute paths, no `..` segments, no backslashes). Default `.`.",
  pattern: DIR_JSON_PATTERN,
});

const Engine = z.enum(["pulumi", "command"], { error: "must be `pulumi` or `command`" }).default("command");
docs.add(Engine, {
  description: "`pulumi` runs `pulumi preview --json --save-plan` (and later `pulumi up --plan`) itself and renders the plan; `command` runs the configured `preview`/`deploy` commands and shows their output. Default `command`.",
});

const PathGlob = z
  .string()
  .min(1, "must not be empty")
  .max(256, "must be at most 256 characters")
  .refine((g) => !g.startsWith("/") && !g.split("/").includes(".."), "must be a glob relative to the repository root, without `..`");
const Paths = z.array(PathGlob).min(1, "must list at least one glob").max(50, "may list at most 50 globs");
docs.add(Paths, {
  description:
    "Autoplan: globs (relative to the repository root) of files whose change previews this stack on a push. Default: everything under `dir`.",
});

export const PULUMI_STACK_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(?:\/[A-Za-z0-9][A-Za-z0-9._-]{0,99}){0,2}$/;
const PulumiSettings = z.strictObject({
  stack: z
    .string()
    .regex(PULUMI_STACK_RE, "must be a Pulumi stack name: `dev`, `org/dev` or `org/project/dev` (letters, digits, `.`, `_`, `-`)")
    .optional(),
});
docs.add(PulumiSettings, {
  description: "Settings of the `pulumi` engine: `stack`, the Pulumi stack to select or create (default: the stack's `name`).",
});

const GITHUB_LOGIN_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const TEAM_SLUG_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const bool = z.boolean({ error: "must be `true` or `false`" });
const GateRequire = z.strictObject({
  preview: bool.optional(),
  status_checks: bool.optional(),
  mergeable: bool.optional(),
  undiverged: bool.optional(),
  not_draft: bool.optional(),
  lock: bool.optional(),
});
docs.add(GateRequire, {
  description:
    "Deploy requirements besides approvals, each on by default: `preview` (a successful preview of the head commit), `status_checks`, `mergeable`, `undiverged` (not behind the base branch), `not_draft`, `lock` (this PR holds the stack lock).",
});
const Gate = z.strictObject({
  approvals: z.number({ error: "must be a whole number (0-10)" }).int("must be a whole number (0-10)").min(0).max(10).optional(),
  approvers: z
    .strictObject({
      users: z.array(z.string().regex(GITHUB_LOGIN_RE, "must be a GitHub login")).max(100).optional(),
      teams: z.array(z.string().regex(TEAM_SLUG_RE, "must be a team slug (the part after `org/`)")).max(20).optional(),
    })
    .optional(),
  count: z.enum(["reviews", "comments", "both"], { error: "must be `reviews`, `comments` or `both`" }).optional(),
  deploy_permission: z.enum(["write", "maintain", "admin"], { error: "must be `write`, `maintain` or `admin`" }).optional(),
  require: GateRequire.optional(),
  required_checks: z.array(z.string().min(1).max(200)).max(50).optional(),
  merge_method: z.enum(["merge", "squash", "rebase"], { error: "must be `merge`, `squash` or `rebase`" }).optional(),
  mode: z.enum(["deploy-then-merge", "merge-then-deploy"], { error: "must be `deploy-then-merge` or `merge-then-deploy`" }).optional(),
  rollback_approvals: z.number({ error: "must be a whole number (0-10)" }).int("must be a whole number (0-10)").min(0).max(10).optional(),
});
docs.add(Gate, {
  id: "gate",
  description:
    "The human gate before `/agent deploy`: `approvals` (default 1), `approvers` (`users`/`teams`; default anyone with write access), `count` (`reviews`, `comments` (`/approve`) or `both`, default both), `deploy_permission` (default write), `require`, `required_checks` (default: every check reported on the head commit), `merge_method` (default merge), `mode` (`deploy-then-merge`, the default: apply the PR head, then merge it; `merge-then-deploy`: merge, then apply the merge commit only if its fresh plan hashes the same as the approved one), `rollback_approvals` (approvals `/agent rollback` needs; default `approvals`; 0 lets a rollback run without one). Read from the default branch only.",
});

const Policy = PlanPolicySchema;
docs.add(Policy, {
  id: "policy",
  description:
    "Rules the plan is checked against before anyone approves (`protect`, `max_deletes`, `max_replaces`, `max_changes_decision`, `budget`). They can only add to the server's plan policy, never relax it. Read from the default branch only.",
});

const RuntimeName = z
  .string()
  .regex(/^[a-z][a-z0-9._-]{0,63}$/, "must be a sandbox runtime name such as `runc` or `runsc`");
docs.add(RuntimeName, {
  description: "The OCI runtime the stack's sandboxes run under (`runsc` for gVisor); the server decides which are allowed. Untrusted code (forks) always runs under the server's untrusted runtime.",
});
const StackSandbox = z.strictObject({ runtime: RuntimeName.optional() });
docs.add(StackSandbox, { description: "Sandbox settings of one stack: `runtime`." });

const Stack = z.strictObject({
  name: StackName,
  dir: Dir,
  engine: Engine,
  pulumi: PulumiSettings.optional(),
  sandbox: StackSandbox.optional(),
  gate: Gate.optional(),
  policy: Policy.optional(),
  steps: Steps.optional(),
  paths: Paths.optional(),
});
docs.add(Stack, { id: "stack", description: "One deployable stack." });

const Sandbox = z.strictObject({
  image: z
    .string()
    .regex(IMAGE_REF_RE, "must be a lowercase image reference such as `agent-sandbox:test` or `ghcr.io/org/image@sha256:…`")
    .optional(),
  runtime: RuntimeName.optional(),
});
docs.add(Sandbox, { description: "Sandbox settings: `image`, and `runtime` for every stack that names none. The server decides whether the requested image and runtime are allowed." });

/** GitHub label names: 1–50 characters, no control characters. */
const LabelName = z
  .string()
  .min(1, "must not be empty")
  .max(50, "may be at most 50 characters")
  .refine((v) => !CONTROL_CHAR_RE.test(v), "must not contain control characters");
const RunbookDir = z
  .string()
  .min(1)
  .max(200)
  .refine((v) => !v.startsWith("/") && !v.split("/").includes("..") && !CONTROL_CHAR_RE.test(v) && !v.includes("\\"), {
    error: "must be a relative folder of the repository without `..`",
  });
export const DiagnoseSettingsSchema = z.strictObject({
  label: LabelName.default("agent:diagnose"),
  templates: z.array(z.string().min(1).max(100).regex(/^[A-Za-z0-9._-]+$/, "must be a file name in .github/ISSUE_TEMPLATE/")).max(20).default([]),
  runbooks: RunbookDir.default("docs/runbooks"),
});
docs.add(DiagnoseSettingsSchema, {
  id: "diagnose",
  description:
    "Issue diagnostics (`/agent diagnose [stack]`): `label` adding it to an issue runs a diagnosis (default `agent:diagnose`); `templates` issue templates (file names under `.github/ISSUE_TEMPLATE/`) whose new issues are diagnosed on opening; `runbooks` the folder of Markdown runbooks indexed as suggested next steps (default `docs/runbooks`, re-indexed on push to the default branch).",
});

const RootObject = z.strictObject({
  version: z.literal(1, { error: "must be 1 (the only supported config version)" }),
  default_stack: StackName.optional(),
  stacks: z
    .array(Stack)
    .min(1, "must declare at least one stack")
    .max(MAX_STACKS, `may declare at most ${MAX_STACKS} stacks`),
  steps: Steps.optional(),
  sandbox: Sandbox.optional(),
  autoplan: z.boolean({ error: "must be `true` or `false`" }).default(true),
  gate: Gate.optional(),
  policy: Policy.optional(),
  diagnose: DiagnoseSettingsSchema.optional(),
});

export const RepoConfigSchema = RootObject
  // Cross-field checks that still make sense while other parts of the file are invalid:
  // run them regardless of earlier issues so the author gets them in the same round.
  .superRefine(
    (cfg, ctx) => {
      const raw = cfg as unknown;
      if (!isRecord(raw) || !Array.isArray(raw.stacks)) return;
      const firstIndex = new Map<string, number>();
      raw.stacks.forEach((stack: unknown, i: number) => {
        if (!isRecord(stack) || typeof stack.name !== "string") return;
        const seen = firstIndex.get(stack.name);
        if (seen === undefined) firstIndex.set(stack.name, i);
        else
          ctx.addIssue({
            code: "custom",
            path: ["stacks", i, "name"],
            message: `duplicate stack name ${code(stack.name)} (already declared at ${code(`stacks[${seen}]`)})`,
            input: stack.name,
          });
      });
      if (typeof raw.default_stack === "string" && STACK_NAME_RE.test(raw.default_stack) && !firstIndex.has(raw.default_stack)) {
        const known = [...firstIndex.keys()];
        const near = closest(raw.default_stack, known);
        ctx.addIssue({
          code: "custom",
          path: ["default_stack"],
          message:
            `names an undeclared stack ${code(raw.default_stack)}` +
            (near !== null ? ` (did you mean ${code(near)}?)` : known.length > 0 ? ` (declared: ${known.slice(0, 10).map(code).join(", ")})` : ""),
          input: raw.default_stack,
        });
      }
    },
    { when: () => true },
  )
  // Needs fully valid steps to be meaningful, so it only runs once everything else passed.
  .superRefine((cfg, ctx) => {
    cfg.stacks.forEach((stack, i) => {
      if (stack.engine === "pulumi") {
        for (const name of ["preview", "deploy"] as const) {
          if (stack.steps?.[name] !== undefined)
            ctx.addIssue({
              code: "custom",
              path: ["stacks", i, "steps", name],
              message: `stack ${code(stack.name)} uses the \`pulumi\` engine, which runs \`pulumi ${name === "preview" ? "preview" : "up"}\` itself: remove this step, or use \`engine: command\` to run your own command`,
            });
        }
        return; // the engine supplies the preview step
      }
      if (stack.pulumi !== undefined)
        ctx.addIssue({ code: "custom", path: ["stacks", i, "pulumi"], message: "`pulumi` settings only apply to stacks with `engine: pulumi`" });
      const merged = { ...cfg.steps, ...stack.steps };
      if (merged.lint === undefined && merged.test === undefined && merged.preview === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["stacks", i],
          message: `stack ${code(stack.name)} has no \`lint\`, \`test\` or \`preview\` step: define one under the top-level \`steps\` or under ${code(`stacks[${i}].steps`)}`,
        });
      }
    });
  });
docs.add(RepoConfigSchema, {
  description:
    "Configuration for pr-infra-agent, read from `.github/agent.yml` on the repository's default branch (never the PR head). Declares the stacks a PR can preview/deploy and the commands run for each step.",
});

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export type RepoConfig = z.infer<typeof RepoConfigSchema>;
/** `diagnose:` of the repository config, defaults filled. */
export type RepoDiagnoseSettings = z.infer<typeof DiagnoseSettingsSchema>;
/** The settings a repository without a (valid) `diagnose:` section gets. */
export const DEFAULT_DIAGNOSE_SETTINGS: RepoDiagnoseSettings = DiagnoseSettingsSchema.parse({});
export type StepName = "lint" | "test" | "preview" | "deploy";

/**
 * One step to run. Exactly one of `argv` / `script` is non-null, except for a step the engine
 * runs itself (`engine: "pulumi"`: `pulumi preview` / `pulumi up`), where both are null.
 */
export interface StepSpec {
  name: StepName;
  argv: string[] | null;
  script: string | null;
  timeoutSeconds: number | null;
  engine?: "pulumi";
}

/** A stack with the top-level steps merged in. `steps` is ordered lint, test, preview, deploy. */
export interface ResolvedStack {
  name: string;
  dir: string;
  engine: "pulumi" | "command";
  /** The Pulumi stack the `pulumi` engine selects (default: `name`); null for `command`. */
  pulumiStack: string | null;
  steps: StepSpec[];
  /** Autoplan globs: a push touching any of these files previews the stack. */
  paths: string[];
  /** The deploy gate: the top-level `gate` with the stack's own keys over it. */
  gate: ResolvedGate;
  /** Plan policy from the repository (top-level `policy` merged with the stack's); null: none. */
  policy: PlanPolicyConfig | null;
  /** The sandbox runtime the stack asks for (its own, else the top-level one); null/absent: the server's default. */
  runtime?: string | null;
}

export interface ResolvedGate {
  approvals: number;
  /** null: anyone with write access. */
  approvers: { users: string[]; teams: string[] } | null;
  count: "reviews" | "comments" | "both";
  deployPermission: "write" | "maintain" | "admin";
  require: { preview: boolean; statusChecks: boolean; mergeable: boolean; undiverged: boolean; notDraft: boolean; lock: boolean };
  /** null: every check reported on the head commit must be green. */
  requiredChecks: string[] | null;
  mergeMethod: "merge" | "squash" | "rebase";
  mode: "deploy-then-merge" | "merge-then-deploy";
  rollbackApprovals: number;
}

export interface ConfigIssue {
  /** e.g. `stacks[1].dir`; `""` for the document as a whole. */
  path: string;
  /** 1-based line, or null when no location is known (e.g. empty file). */
  line: number | null;
  message: string;
}

export type LoadResult = { ok: true; config: RepoConfig; stacks: ResolvedStack[] } | { ok: false; issues: ConfigIssue[] };

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/** Parses and validates `.github/agent.yml`. Never throws. */
export function loadRepoConfig(yamlText: string): LoadResult {
  try {
    return loadUnsafe(yamlText);
  } catch (err) {
    // Last resort: the yaml library or zod threw on pathological input (e.g. stack exhaustion).
    const detail = err instanceof RangeError ? "the document is too deeply nested" : "the document could not be processed";
    return fail([{ path: "", line: null, message: `could not read the config: ${detail}` }]);
  }
}

function loadUnsafe(yamlText: string): LoadResult {
  if (typeof yamlText !== "string") {
    return fail([{ path: "", line: null, message: "the config must be text" }]);
  }
  const bytes = Buffer.byteLength(yamlText, "utf8");
  if (bytes > MAX_CONFIG_BYTES) {
    return fail([
      { path: "", line: null, message: `the file is too large (${bytes} bytes; the limit is ${MAX_CONFIG_BYTES} bytes)` },
    ]);
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(yamlText, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    version: "1.2",
    schema: "core",
    merge: false,
    strict: true,
  });
  const lineAt = (offset: number): number => Math.max(1, lineCounter.linePos(offset).line);

  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = [];
    const seen = new Set<string>();
    for (const e of doc.errors) {
      const issue = { path: "", line: lineAt(e.pos[0]), message: `YAML syntax error: ${sanitizeText(e.message)}` };
      const key = `${issue.line}\u0000${issue.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      issues.push(issue);
      if (issues.length >= MAX_SYNTAX_ISSUES) break;
    }
    return fail(issues);
  }

  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    return fail([
      {
        path: "",
        line: null,
        message: "the file is empty: it needs at least `version: 1` and a `stacks` list",
      },
    ]);
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    const unresolved = /^Unresolved alias[^:]*: (.*)$/.exec(err.message);
    if (unresolved) {
      const name = unresolved[1] ?? "";
      return fail([
        {
          path: "",
          line: firstAliasLine(doc.contents, lineAt, name),
          message: `YAML alias ${code(`*${name}`)} refers to no anchor: define ${code(`&${name}`)} before using it`,
        },
      ]);
    }
    return fail([
      {
        path: "",
        line: firstAliasLine(doc.contents, lineAt),
        message: `too many YAML aliases (limit ${MAX_ALIAS_COUNT}): the document would expand to an excessive size`,
      },
    ]);
  }

  const result = RepoConfigSchema.safeParse(data);
  if (!result.success) {
    const issues = convertIssues(result.error.issues, data, doc.contents, lineAt);
    return fail(issues);
  }
  return { ok: true, config: result.data, stacks: resolveStacks(result.data) };
}

function fail(issues: ConfigIssue[]): LoadResult {
  return { ok: false, issues };
}

/** Merges top-level steps under each stack's own steps (key by key) and orders them. */
export function resolveStacks(config: RepoConfig): ResolvedStack[] {
  return config.stacks.map((stack) => {
    const merged = { ...config.steps, ...stack.steps };
    const pulumi = stack.engine === "pulumi";
    const steps: StepSpec[] = [];
    for (const name of STEP_NAMES) {
      // The pulumi engine runs preview and deploy itself; top-level commands for them apply
      // to `command` stacks only.
      if (pulumi && (name === "preview" || name === "deploy")) {
        steps.push({ name, argv: null, script: null, timeoutSeconds: null, engine: "pulumi" });
        continue;
      }
      const step = merged[name];
      if (step !== undefined) steps.push(toStepSpec(name, step));
    }
    const paths = stack.paths ?? [stack.dir === "." ? "**" : `${stack.dir}/**`];
    const pulumiStack = pulumi ? (stack.pulumi?.stack ?? stack.name) : null;
    const policy = config.policy || stack.policy ? mergePlanPolicy(config.policy, stack.policy) : null;
    const runtime = stack.sandbox?.runtime ?? config.sandbox?.runtime ?? null;
    return { name: stack.name, dir: stack.dir, engine: stack.engine, pulumiStack, steps, paths, gate: resolveGate(config.gate, stack.gate), policy, runtime };
  });
}

type GateConfig = NonNullable<RepoConfig["gate"]>;

/** The gate of a stack that configures none: one approval by anyone with write access, every requirement on. */
export const DEFAULT_GATE: ResolvedGate = Object.freeze(resolveGate(undefined, undefined));

/** Stack keys over top-level keys (`require` key by key), then the defaults. */
function resolveGate(top: GateConfig | undefined, own: GateConfig | undefined): ResolvedGate {
  const g = { ...top, ...own };
  const req = { ...top?.require, ...own?.require };
  const approvers = g.approvers && ((g.approvers.users?.length ?? 0) > 0 || (g.approvers.teams?.length ?? 0) > 0) ? { users: g.approvers.users ?? [], teams: g.approvers.teams ?? [] } : null;
  return {
    approvals: g.approvals ?? 1,
    approvers,
    count: g.count ?? "both",
    deployPermission: g.deploy_permission ?? "write",
    require: {
      preview: req.preview ?? true,
      statusChecks: req.status_checks ?? true,
      mergeable: req.mergeable ?? true,
      undiverged: req.undiverged ?? true,
      notDraft: req.not_draft ?? true,
      lock: req.lock ?? true,
    },
    requiredChecks: g.required_checks ?? null,
    mergeMethod: g.merge_method ?? "merge",
    mode: g.mode ?? "deploy-then-merge",
    rollbackApprovals: g.rollback_approvals ?? g.approvals ?? 1,
  };
}

type StepValue = NonNullable<NonNullable<RepoConfig["steps"]>[StepName]>;

function toStepSpec(name: StepName, step: StepValue): StepSpec {
  const [run, timeout] = typeof step === "string" || Array.isArray(step) ? [step, null] : [step.run, step.timeout_seconds ?? null];
  return typeof run === "string"
    ? { name, argv: null, script: run, timeoutSeconds: timeout }
    : { name, argv: [...run], script: null, timeoutSeconds: timeout };
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

const MAX_FORMATTED_ISSUES = 50;

/**
 * Markdown bullet list for a PR comment, e.g.
 * "- `.github/agent.yml` line 7, `stacks[1].dir`: must be a relative path without `..`".
 */
export function formatConfigIssues(issues: ConfigIssue[], file: string = DEFAULT_CONFIG_PATH): string {
  const shown = issues.slice(0, MAX_FORMATTED_ISSUES);
  const lines = shown.map((issue) => {
    let where = code(file);
    if (issue.line !== null) where += ` line ${issue.line}`;
    if (issue.path !== "") where += `, ${code(issue.path)}`;
    return `- ${where}: ${issue.message.replace(/\s*\n\s*/g, " ")}`;
  });
  if (issues.length > shown.length) lines.push(`- … and ${issues.length - shown.length} more`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// JSON schema
// ---------------------------------------------------------------------------------------------

/** The published JSON schema (describes the file as written: defaults make keys optional). */
export function jsonSchema(): object {
  const generated = z.toJSONSchema(RepoConfigSchema, {
    target: "draft-2020-12",
    io: "input",
    metadata: docs,
    unrepresentable: "any",
  }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return { $schema, $id: CONFIG_SCHEMA_ID, title: CONFIG_SCHEMA_TITLE, ...rest };
}

// ---------------------------------------------------------------------------------------------
// dir helpers
// ---------------------------------------------------------------------------------------------

function checkDir(dir: string): string | null {
  if (dir === "") return "must not be empty (use `.` for the repository root)";
  if (dir.length > MAX_DIR_CHARS) return `must be at most ${MAX_DIR_CHARS} characters`;
  if (dir.includes("\u0000")) return "must not contain NUL characters";
  if (CONTROL_CHAR_RE.test(dir)) return "must not contain control characters";
  if (dir.includes("\\")) return "must use `/` as separator (backslashes are not allowed)";
  if (dir.startsWith("/") || /^[A-Za-z]:/.test(dir)) return "must be a relative path (absolute paths are not allowed)";
  if (dir.split("/").includes("..")) return "must be a relative path without `..`";
  return null;
}

/** `./infra/` -> `infra`, `a//b/./c` -> `a/b/c`, `./` -> `.`. Assumes {@link checkDir} passed. */
function normalizeDir(dir: string): string {
  const parts = dir.split("/").filter((p) => p !== "" && p !== ".");
  return parts.length === 0 ? "." : parts.join("/");
}

// ---------------------------------------------------------------------------------------------
// zod issue -> ConfigIssue
// ---------------------------------------------------------------------------------------------

type Path = (string | number)[];
type ZodIssue = z.core.$ZodIssue;

function convertIssues(
  zodIssues: readonly ZodIssue[],
  data: unknown,
  root: YamlNode | null,
  lineAt: (offset: number) => number,
): ConfigIssue[] {
  const raw: { path: Path; message: string; keyLine?: boolean }[] = [];
  const visit = (issue: ZodIssue, prefix: Path): void => {
    const path: Path = [...prefix, ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
    if (issue.code === "invalid_union") {
      const value = valueAt(data, path).value;
      const branch = pickUnionBranch(issue.errors);
      if (branch !== null && value !== undefined) {
        for (const sub of branch) visit(sub, path);
        return;
      }
    }
    if (issue.code === "unrecognized_keys") {
      const known = knownKeysAt(path);
      for (const key of issue.keys) {
        const near = closest(key, known);
        const hint =
          near !== null
            ? ` — did you mean ${code(near)}?`
            : known.length > 0
              ? ` (allowed: ${known.map(code).join(", ")})`
              : "";
        raw.push({ path: [...path, key], message: `unknown key ${code(key)}${hint}`, keyLine: true });
      }
      return;
    }
    raw.push({ path, message: describeIssue(issue, path, data) });
  };
  for (const issue of zodIssues) visit(issue, []);

  const seen = new Set<string>();
  const out: ConfigIssue[] = [];
  for (const r of raw) {
    const issue: ConfigIssue = { path: formatPath(r.path), line: lineForPath(root, r.path, lineAt), message: r.message };
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(issue);
  }
  // Stable sort by line so the list reads top to bottom; unknown lines last.
  return out
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || a.i - b.i)
    .map(({ issue }) => issue);
}

/**
 * For a failed union, the branch the author evidently meant: the only one whose failure is not
 * merely "wrong type at the union's own position". Returns null when that is ambiguous.
 */
function pickUnionBranch(branches: readonly (readonly ZodIssue[])[]): readonly ZodIssue[] | null {
  const candidates = branches.filter((issues) => !issues.every(isTypeMismatchHere));
  return candidates.length === 1 ? (candidates[0] ?? null) : null;
}

function isTypeMismatchHere(issue: ZodIssue): boolean {
  if (issue.path.length !== 0) return false;
  if (issue.code === "invalid_type") return true;
  if (issue.code === "invalid_union") return issue.errors.every((b) => b.every(isTypeMismatchHere));
  return false;
}

function describeIssue(issue: ZodIssue, path: Path, data: unknown): string {
  const { exists, value } = valueAt(data, path);
  if (!exists && path.length > 0 && ["invalid_type", "invalid_value", "invalid_union"].includes(issue.code)) {
    const last = path[path.length - 1];
    if (last === "version") return "is required (add `version: 1`)";
    return "is required";
  }
  switch (issue.code) {
    case "invalid_type": {
      if (path.length === 0) return `the file must be a YAML mapping with \`version\` and \`stacks\`, got ${kindOf(value)}`;
      if (isDefaultMessage(issue.message)) {
        const hint =
          issue.expected === "string" && (typeof value === "number" || typeof value === "boolean")
            ? " (quote it to make it text)"
            : "";
        return `expected ${expectedKind(issue.expected)}, got ${kindOf(value)}${hint}`;
      }
      return issue.message;
    }
    case "invalid_value":
      return `${issue.message}, got ${describeValue(value)}`;
    case "too_small":
    case "too_big":
      if (isDefaultMessage(issue.message)) {
        const n = Number(issue.code === "too_small" ? issue.minimum : issue.maximum);
        const bound = issue.code === "too_small" ? "at least" : "at most";
        if (issue.origin === "array") return `must have ${bound} ${n} item${n === 1 ? "" : "s"}`;
        if (issue.origin === "string") return `must be ${bound} ${n} characters`;
        return `must be ${bound} ${n}`;
      }
      return issue.message;
    default:
      return issue.message;
  }
}

/** zod's built-in English messages start like this; ours never do. */
function isDefaultMessage(message: string): boolean {
  return /^(Invalid input|Too small|Too big|Invalid)/.test(message);
}

function expectedKind(expected: string): string {
  switch (expected) {
    case "object":
      return "a mapping";
    case "array":
      return "a list";
    case "string":
      return "a string";
    case "number":
    case "int":
      return "a number";
    case "boolean":
      return "true or false";
    default:
      return expected;
  }
}

function kindOf(value: unknown): string {
  if (value === null || value === undefined) return "nothing (null)";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
      return `the number ${code(String(value))}`;
    case "boolean":
      return `${code(String(value))}`;
    case "object":
      return "a mapping";
    default:
      return typeof value;
  }
}

function describeValue(value: unknown): string {
  if (typeof value === "string") return code(JSON.stringify(value));
  if (typeof value === "number" || typeof value === "boolean") return code(String(value));
  return kindOf(value);
}

function valueAt(data: unknown, path: Path): { exists: boolean; value: unknown } {
  let cur: unknown = data;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === "number") {
      if (seg >= cur.length) return { exists: false, value: undefined };
      cur = cur[seg];
    } else if (isRecord(cur) && Object.prototype.hasOwnProperty.call(cur, seg)) {
      cur = cur[seg];
    } else {
      return { exists: false, value: undefined };
    }
  }
  return { exists: true, value: cur };
}

/** Keys of the object schema(s) that the given data path points at. */
function knownKeysAt(path: Path): string[] {
  let frontier: z.core.$ZodType[] = [RootObject];
  for (const seg of path) {
    const next: z.core.$ZodType[] = [];
    for (const s of frontier.flatMap(unwrap)) {
      const def = s._zod.def as unknown as Record<string, unknown>;
      if (def.type === "object" && typeof seg === "string") {
        const child = (def.shape as Record<string, z.core.$ZodType>)[seg];
        if (child) next.push(child);
      } else if (def.type === "array" && typeof seg === "number") {
        next.push(def.element as z.core.$ZodType);
      }
    }
    frontier = next;
  }
  const keys = new Set<string>();
  for (const s of frontier.flatMap(unwrap)) {
    const def = s._zod.def as unknown as Record<string, unknown>;
    if (def.type === "object") for (const k of Object.keys(def.shape as object)) keys.add(k);
  }
  return [...keys];
}

/** Looks through optional/default/pipe wrappers and spreads unions into their options. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType[] {
  const def = schema._zod.def as unknown as Record<string, unknown>;
  switch (def.type) {
    case "optional":
    case "default":
    case "prefault":
    case "nullable":
    case "readonly":
      return unwrap(def.innerType as z.core.$ZodType);
    case "pipe":
      return unwrap(def.in as z.core.$ZodType);
    case "union":
      return (def.options as z.core.$ZodType[]).flatMap(unwrap);
    default:
      return [schema];
  }
}

// ---------------------------------------------------------------------------------------------
// Line numbers
// ---------------------------------------------------------------------------------------------

/**
 * Line of the node at `path`: for a mapping entry the line of its key, for a list item the
 * item itself; when the path does not exist (missing key, alias) the nearest existing parent.
 */
function lineForPath(root: YamlNode | null, path: Path, lineAt: (offset: number) => number): number | null {
  if (root === null) return null;
  let node: unknown = root;
  let located: { range?: [number, number, number] | null } = root as { range?: [number, number, number] | null };
  for (const seg of path) {
    if (isMap(node) && typeof seg === "string") {
      const pair = node.items.find((p) => isPair(p) && keyText(p.key) === seg);
      if (!pair) break;
      const keyNode = pair.key as { range?: [number, number, number] | null } | null;
      located = keyNode?.range ? keyNode : located;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg] as { range?: [number, number, number] | null } | undefined;
      if (!item) break;
      if (item.range) located = item;
      node = item;
    } else {
      break; // scalar, alias or mismatch: stop at the nearest existing node
    }
  }
  const start = located.range?.[0];
  return typeof start === "number" ? lineAt(start) : null;
}

function keyText(key: unknown): string | null {
  if (isScalar(key)) return String(key.value);
  return null;
}

/** Line of the first alias node (optionally: the first one referring to `source`). */
function firstAliasLine(root: YamlNode | null, lineAt: (offset: number) => number, source?: string): number | null {
  let found: number | null = null;
  const walk = (node: unknown): void => {
    if (found !== null || node === null || typeof node !== "object") return;
    if (isAlias(node)) {
      if (node.range && (source === undefined || node.source === source)) found = lineAt(node.range[0]);
      return;
    }
    if (isMap(node) || isSeq(node)) for (const item of node.items) walk(item);
    else if (isPair(node)) {
      walk(node.key);
      walk(node.value);
    }
  };
  walk(root);
  return found;
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `stacks[1].dir`; odd keys as `["a b"]`. */
function formatPath(path: Path): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(truncate(seg, 64))}]`;
  }
  return out;
}

/** An inline code span for (possibly user-controlled) text: no backticks, no newlines, bounded. */
function code(text: string): string {
  return "`" + truncate(text.replace(/`/g, "'").replace(/[\r\n\t]+/g, " "), 80) + "`";
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** YAML parser messages may quote the document; keep them single-line, bounded and inert. */
function sanitizeText(text: string): string {
  return truncate(text.replace(/`/g, "'").replace(/@/g, "@\u200b").replace(/\s*\n\s*/g, " ").trim(), 200);
}

/** The closest known word if it is plausibly a typo of `word`. */
function closest(word: string, candidates: readonly string[]): string | null {
  const w = word.toLowerCase();
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const cl = c.toLowerCase();
    let d = osaDistance(w, cl);
    if (w.replace(/[-_]/g, "") === cl.replace(/[-_]/g, "")) d = Math.min(d, 1);
    else if (w.length >= 3 && (cl.startsWith(w) || w.startsWith(cl))) d = Math.min(d, 2);
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  return best !== null && bestDistance <= limit ? best : null;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function osaDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity;
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      const prev = d[i - 1]!;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      row[j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
