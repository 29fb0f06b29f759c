/**
 * The schema of the repository configuration file, `.github/agent.yml`: one zod schema
 * ({@link RepoConfigSchema}) is the single source of truth for
 *  - the runtime check (`loadRepoConfig`, load.ts),
 *  - the TypeScript type ({@link RepoConfig}),
 *  - the published JSON schema ({@link jsonSchema}, written to `schema/agent-config.schema.json`
 *    by `scripts/write-config-schema.ts`).
 * What a stack resolves to (defaults filled, steps merged) is resolve.ts.
 */
import { CronExpressionParser } from "cron-parser";
import { z } from "zod";
import { PlanPolicySchema } from "../plan-policy.js";
import { GitHubLogin, RUNTIME_NAME_RE, STACK_NAME_RE, StackName, TeamSlug } from "../fields.js";
import { code } from "../issues.js";
import { closest } from "../suggest.js";
import { findCycle } from "../../domain/stack-graph.js";

const MAX_STACKS = 500;
/** Autoplan's blast radius: more matched stacks than this wait for a human's `/agent preview --all`. */
export const DEFAULT_AUTOPLAN_MAX_STACKS = 50;
/** A deploy run's independent stacks applied at once (`parallel_applies`). */
export const DEFAULT_PARALLEL_APPLIES = 3;
const MAX_PARALLEL_APPLIES = 20;
/** The cost guard: live review stacks per repository (`review_max_live`). */
export const DEFAULT_REVIEW_MAX_LIVE = 5;
const MAX_ARGV = 64;
const MAX_ARG_CHARS = 4096;
const MAX_DIR_CHARS = 1024;
const MAX_TIMEOUT_SECONDS = 3600;

/** The canonical `$id` of the published JSON schema. */
export const CONFIG_SCHEMA_ID = "https://github.com/pr-infra-agent/schema/agent-config.schema.json";
export const CONFIG_SCHEMA_TITLE = "pr-infra-agent repository configuration (.github/agent.yml)";

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

export const IMAGE_REF_RE = /^[a-z0-9][a-z0-9._/:@-]{0,254}$/;
const NO_NUL_RE = /^[^\u0000]*$/;
const CONTROL_CHAR_RE = /[\u0000-\u001f\u007f]/;
/**
 * JSON-schema-only mirror of the `dir` checks (the runtime uses the per-rule messages of
 * {@link checkDir}): relative, no `..` segment, no backslash, no control characters.
 */
const DIR_JSON_PATTERN = "^(?!/)(?![A-Za-z]:)(?!(?:.*/)?\\.\\.(?:/|$))[^\\\\\\u0000-\\u001f\\u007f]*$";

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
      users: z.array(GitHubLogin).max(100).optional(),
      teams: z.array(TeamSlug).max(20).optional(),
    })
    .optional(),
  count: z.enum(["reviews", "comments", "both"], { error: "must be `reviews`, `comments` or `both`" }).optional(),
  deploy_permission: z.enum(["write", "maintain", "admin"], { error: "must be `write`, `maintain` or `admin`" }).optional(),
  require: GateRequire.optional(),
  required_checks: z.array(z.string().min(1).max(200)).max(50).optional(),
  merge_method: z.enum(["merge", "squash", "rebase"], { error: "must be `merge`, `squash` or `rebase`" }).optional(),
  mode: z.enum(["deploy-then-merge", "merge-then-deploy", "merge-queue"], { error: "must be `deploy-then-merge`, `merge-then-deploy` or `merge-queue`" }).optional(),
  rollback_approvals: z.number({ error: "must be a whole number (0-10)" }).int("must be a whole number (0-10)").min(0).max(10).optional(),
});
docs.add(Gate, {
  id: "gate",
  description:
    "The human gate before `/agent deploy`: `approvals` (default 1), `approvers` (`users`/`teams`; default anyone with write access), `count` (`reviews`, `comments` (`/approve`) or `both`, default both), `deploy_permission` (default write), `require`, `required_checks` (default: every check reported on the head commit), `merge_method` (default merge), `mode` (`deploy-then-merge`, the default: apply the PR head, then merge it; `merge-then-deploy`: merge, then apply the merge commit only if its fresh plan hashes the same as the approved one; `merge-queue`: approve on the PR, merge through GitHub's merge queue (the app reports the required check `agent/merge-queue` on each merge group) and apply the group's checked plan once it lands on the default branch), `rollback_approvals` (approvals `/agent rollback` needs; default `approvals`; 0 lets a rollback run without one). Read from the default branch only.",
});

const Policy = PlanPolicySchema;
docs.add(Policy, {
  id: "policy",
  description:
    "Rules the plan is checked against before anyone approves (`protect`, `max_deletes`, `max_replaces`, `max_changes_decision`, `budget`). They can only add to the server's plan policy, never relax it. Read from the default branch only.",
});

const RuntimeName = z.string().regex(RUNTIME_NAME_RE, "must be a sandbox runtime name such as `runc` or `runsc`");
docs.add(RuntimeName, {
  description: "The OCI runtime the stack's sandboxes run under (`runsc` for gVisor); the server decides which are allowed. Untrusted code (forks) always runs under the server's untrusted runtime.",
});
const StackSandbox = z.strictObject({ runtime: RuntimeName.optional() });
docs.add(StackSandbox, { description: "Sandbox settings of one stack: `runtime`." });

const DependsOn = z.array(StackName).max(50, "may list at most 50 stacks");
docs.add(DependsOn, {
  description:
    "Stacks this one depends on (by name): their previews run before this stack's, `/agent deploy` of several stacks applies them first and a failure of one stops this one; `/agent rollback` goes in reverse order. No cycles.",
  examples: [["network", "database"]],
});

const StackEnvironment = z.strictObject({
  name: z.string().min(1).max(255).regex(/^[^\u0000-\u001f\u007f]+$/, "must be a GitHub environment name (no control characters)").optional(),
  protection_rule: z.boolean().optional(),
});
docs.add(StackEnvironment, {
  description:
    "The stack's GitHub environment (default: the stack's name). Its protection rules (required reviewers, wait timer, deployment branches) are gate requirements of every deploy. `protection_rule: true`: this app answers the environment's custom deployment protection rule, approving a GitHub Actions deployment only when this app's gate holds for its commit.",
  examples: [{ name: "production", protection_rule: true }],
});

const StackDrift = z.strictObject({
  schedule: z
    .string()
    .max(100)
    .refine((v) => {
      try {
        CronExpressionParser.parse(v);
        return v.trim().split(/\s+/).length >= 5;
      } catch {
        return false;
      }
    }, "must be a cron expression such as `0 6 * * *` (minute hour day month weekday)"),
  refresh: z.boolean().optional(),
});
docs.add(StackDrift, {
  description:
    "Drift detection (`engine: pulumi` only): `schedule` (cron, UTC) previews the default branch's head with `--refresh` (unless `refresh: false`) and keeps one issue per stack (label `agent:drift`) open while the real resources differ from the code; `/agent drift [stack]` checks now.",
  examples: [{ schedule: "0 6 * * *" }],
});

/** `30m`, `72h`, `7d`: a review stack's lifetime, 10 minutes to 30 days. */
export const TTL_RE = /^([1-9][0-9]{0,5})([mhd])$/;
const TTL_UNIT_SECONDS = { m: 60, h: 3600, d: 86_400 } as const;
const MIN_TTL_SECONDS = 600;
const MAX_TTL_SECONDS = 30 * 86_400;
/** Seconds of a TTL that passed the schema's check. */
export function ttlSeconds(ttl: string): number {
  const m = TTL_RE.exec(ttl);
  return m ? Number(m[1]) * TTL_UNIT_SECONDS[m[2] as keyof typeof TTL_UNIT_SECONDS] : 0;
}
const Ttl = z.string().superRefine((v, ctx) => {
  // One message per problem: a malformed value is not also "out of range".
  if (!TTL_RE.test(v)) ctx.addIssue({ code: "custom", message: "must be a duration such as `30m`, `72h` or `7d`", input: v });
  else if (ttlSeconds(v) < MIN_TTL_SECONDS || ttlSeconds(v) > MAX_TTL_SECONDS) ctx.addIssue({ code: "custom", message: "must be between 10 minutes and 30 days", input: v });
});
docs.add(Ttl, { description: "A review stack's lifetime: minutes, hours or days (`30m`, `72h`, `7d`), 10 minutes to 30 days.", pattern: TTL_RE.source });
/** The longest declared name a review stack can be made of: `pr-<number>-<name>` must stay a stack name (63). */
export const MAX_REVIEW_BASE_NAME = 50;
const StackReview = z.strictObject({
  template: z
    .string()
    .regex(PULUMI_STACK_RE, "must be a Pulumi stack name: `staging`, `org/staging` or `org/project/staging`"),
  ttl: Ttl.default("72h"),
  auto: z.boolean({ error: "must be `true` or `false`" }).optional(),
  approvals: z.number({ error: "must be a whole number (0-10)" }).int("must be a whole number (0-10)").min(0).max(10).optional(),
});
docs.add(StackReview, {
  description:
    "Review stacks (`engine: pulumi` only): `/agent preview --review` (or every autoplan when `auto: true`) creates the ephemeral stack `pr-<number>-<name>` with the config of the Pulumi stack `template` (`pulumi stack init --copy-config-from`), deploys it through the gate (`approvals`, default 0: review stacks hold no production data) without merging, and comments its outputs. It is destroyed when the pull request closes or merges, on `/agent destroy --review`, and when `ttl` passes (default `72h`, renewed by every deploy; a warning comes first).",
  examples: [{ template: "staging", ttl: "72h" }],
});

const Stack = z.strictObject({
  name: StackName,
  depends_on: DependsOn.optional(),
  environment: StackEnvironment.optional(),
  drift: StackDrift.optional(),
  review: StackReview.optional(),
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
  // The blast radius: a push matching more stacks waits for `/agent preview --all`.
  autoplan_max_stacks: z
    .number({ error: `must be a whole number (1-${MAX_STACKS})` })
    .int(`must be a whole number (1-${MAX_STACKS})`)
    .min(1, `must be a whole number (1-${MAX_STACKS})`)
    .max(MAX_STACKS, `must be a whole number (1-${MAX_STACKS})`)
    .default(DEFAULT_AUTOPLAN_MAX_STACKS),
  // A deploy run's independent stacks apply side by side, at most this many at once.
  parallel_applies: z
    .number({ error: `must be a whole number (1-${MAX_PARALLEL_APPLIES})` })
    .int(`must be a whole number (1-${MAX_PARALLEL_APPLIES})`)
    .min(1, `must be a whole number (1-${MAX_PARALLEL_APPLIES})`)
    .max(MAX_PARALLEL_APPLIES, `must be a whole number (1-${MAX_PARALLEL_APPLIES})`)
    .default(DEFAULT_PARALLEL_APPLIES),
  gate: Gate.optional(),
  policy: Policy.optional(),
  diagnose: DiagnoseSettingsSchema.optional(),
  // The cost guard: live review stacks of this repository at most (the server may lower it).
  review_max_live: z
    .number({ error: "must be a whole number (0-100)" })
    .int("must be a whole number (0-100)")
    .min(0, "must be a whole number (0-100)")
    .max(100, "must be a whole number (0-100)")
    .default(DEFAULT_REVIEW_MAX_LIVE),
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
      checkDependsOn(raw.stacks, firstIndex, ctx);
      checkReviewNames(raw.stacks, ctx);
      if (typeof raw.default_stack === "string" && STACK_NAME_RE.test(raw.default_stack) && !firstIndex.has(raw.default_stack)) {
        const known = [...firstIndex.keys()];
        const near = closest(raw.default_stack, known, { loose: true });
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
      // A review stack is made, read and destroyed with Pulumi's own commands.
      if (stack.review !== undefined)
        ctx.addIssue({ code: "custom", path: ["stacks", i, "review"], message: `stack ${code(stack.name)}: \`review\` needs \`engine: pulumi\` (review stacks are made with \`pulumi stack init --copy-config-from\` and removed with \`pulumi destroy\`)` });
      // Drift is a resource-level comparison: only the pulumi engine's plan says what differs.
      if (stack.drift !== undefined)
        ctx.addIssue({ code: "custom", path: ["stacks", i, "drift"], message: `stack ${code(stack.name)}: \`drift\` needs \`engine: pulumi\` (a command's output cannot tell which resources drifted)` });
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

export type RepoConfig = z.infer<typeof RepoConfigSchema>;
/** `diagnose:` of the repository config, defaults filled. */
export type RepoDiagnoseSettings = z.infer<typeof DiagnoseSettingsSchema>;
/** The settings a repository without a (valid) `diagnose:` section gets. */
export const DEFAULT_DIAGNOSE_SETTINGS: RepoDiagnoseSettings = DiagnoseSettingsSchema.parse({});

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
// Checks
// ---------------------------------------------------------------------------------------------

/**
 * `depends_on` names declared stacks, not the stack itself, and the graph has no cycle (the
 * message walks the cycle). Works on the raw input so it reports alongside other problems.
 */
function checkDependsOn(stacks: unknown[], declared: Map<string, number>, ctx: z.RefinementCtx): void {
  const nodes: Array<{ name: string; dependsOn: string[] }> = [];
  stacks.forEach((stack, i) => {
    if (!isRecord(stack) || typeof stack.name !== "string" || !Array.isArray(stack.depends_on)) return;
    const ok: string[] = [];
    stack.depends_on.forEach((dep: unknown, j: number) => {
      if (typeof dep !== "string" || !STACK_NAME_RE.test(dep)) return; // the field's own check reports it
      const path = ["stacks", i, "depends_on", j];
      if (dep === stack.name) {
        ctx.addIssue({ code: "custom", path, message: `stack ${code(dep)} cannot depend on itself`, input: dep });
      } else if (!declared.has(dep)) {
        const near = closest(dep, [...declared.keys()], { loose: true });
        ctx.addIssue({ code: "custom", path, message: `names an undeclared stack ${code(dep)}${near !== null ? ` (did you mean ${code(near)}?)` : ""}`, input: dep });
      } else ok.push(dep);
    });
    if (declared.get(stack.name) === i) nodes.push({ name: stack.name, dependsOn: ok });
  });
  const cycle = findCycle(nodes);
  if (cycle) {
    const at = declared.get(cycle[0]!)!;
    ctx.addIssue({ code: "custom", path: ["stacks", at, "depends_on"], message: `stacks depend on each other in a cycle: ${cycle.map(code).join(" → ")}; remove one of these \`depends_on\` entries` });
  }
}

/**
 * A stack with `review` has a name short enough for `pr-<number>-<name>`, and no declared
 * stack is named like another's review stack (it would be destroyed with the pull request).
 */
function checkReviewNames(stacks: unknown[], ctx: z.RefinementCtx): void {
  const reviewed = new Set<string>();
  stacks.forEach((stack, i) => {
    if (!isRecord(stack) || typeof stack.name !== "string" || stack.review === undefined) return;
    reviewed.add(stack.name);
    if (stack.name.length > MAX_REVIEW_BASE_NAME)
      ctx.addIssue({ code: "custom", path: ["stacks", i, "name"], message: `a stack with \`review\` may have at most ${MAX_REVIEW_BASE_NAME} characters, so that its review stacks \`pr-<number>-${stack.name.slice(0, 8)}…\` are stack names too`, input: stack.name });
  });
  stacks.forEach((stack, i) => {
    if (!isRecord(stack) || typeof stack.name !== "string") return;
    const m = /^pr-[0-9]+-(.+)$/.exec(stack.name);
    if (m && reviewed.has(m[1]!))
      ctx.addIssue({ code: "custom", path: ["stacks", i, "name"], message: `${code(stack.name)} is the name of a review stack of ${code(m[1]!)}; rename it`, input: stack.name });
  });
}

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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
