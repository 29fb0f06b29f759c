/**
 * What the repository configuration means for each stack: the top-level steps, gate and policy
 * merged under the stack's own, defaults filled in, steps in run order ({@link resolveStacks}).
 */
import type { PlanPolicyConfig } from "../../approval/plan-policy.js";
import { mergePlanPolicy } from "../plan-policy.js";
import { STEP_NAMES, type StepName } from "../../domain/steps.js";
import { ttlSeconds, type RepoConfig } from "./schema.js";
import type { StackNode } from "../../domain/stack-graph.js";

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
  /** Stacks whose previews and applies come first (`depends_on`); absent in workflows recorded before it existed. */
  dependsOn?: string[];
  /** Autoplan globs: a push touching any of these files previews the stack. */
  paths: string[];
  /** The deploy gate: the top-level `gate` with the stack's own keys over it. */
  gate: ResolvedGate;
  /** Plan policy from the repository (top-level `policy` merged with the stack's); null: none. */
  policy: PlanPolicyConfig | null;
  /** The sandbox runtime the stack asks for (its own, else the top-level one); null/absent: the server's default. */
  runtime?: string | null;
  /** Its GitHub environment (default: the stack's name); `protectionRule`: this app answers its custom deployment protection rule. */
  environment?: { name: string; protectionRule: boolean };
  /** Scheduled drift checks (`drift`); absent: none. */
  drift?: { schedule: string; refresh: boolean };
  /** A declared stack's `review`: how its review stacks are made; absent: it has none. */
  reviewSettings?: ReviewSettings;
  /** A review stack (`pr-<number>-<base>`, {@link reviewStackOf}); absent: a declared stack. */
  review?: { base: string; pr: number; template: string; ttlSeconds: number; maxLive: number };
}

export interface ReviewSettings {
  /** The Pulumi stack whose config a review stack copies. */
  template: string;
  ttlSeconds: number;
  /** Autoplan previews (and so deploys) the review stack too. */
  auto: boolean;
  approvals: number;
  /** The repository's cost guard (`review_max_live`). */
  maxLive: number;
}

/** The review stack of `base` for pull request `pr`. */
export function reviewStackName(base: string, pr: number): string {
  return `pr-${pr}-${base}`;
}

/**
 * The review stack of a stack with `review` for one pull request: the same program, steps and
 * policy; its own Pulumi stack (the base's organisation and project, the review name), lock and
 * GitHub environment; the gate's approvals from `review.approvals` (default 0). It holds no
 * production data, so the branch requirements (status checks, mergeable, not behind, not a
 * draft) are off: it exists to look at the change before it is reviewed. A deploy of it never
 * merges the pull request.
 */
export function reviewStackOf(base: ResolvedStack, pr: number): ResolvedStack {
  const r = base.reviewSettings!;
  const name = reviewStackName(base.name, pr);
  const org = (base.pulumiStack ?? base.name).split("/").slice(0, -1);
  return {
    name,
    dir: base.dir,
    engine: "pulumi",
    pulumiStack: [...org, name].join("/"),
    steps: base.steps,
    paths: base.paths,
    gate: { ...base.gate, approvals: r.approvals, rollbackApprovals: r.approvals, mode: "deploy-then-merge", require: { preview: true, statusChecks: false, mergeable: false, undiverged: false, notDraft: false, lock: true } },
    policy: base.policy,
    runtime: base.runtime ?? null,
    environment: { name, protectionRule: false },
    review: { base: base.name, pr, template: r.template, ttlSeconds: r.ttlSeconds, maxLive: r.maxLive },
  };
}

/** The declared stacks, then (on a pull request) the review stacks of those with `review`. */
export function withReviewStacks(stacks: readonly ResolvedStack[], pr: number): ResolvedStack[] {
  return [...stacks, ...stacks.filter((s) => s.reviewSettings && !s.review).map((s) => reviewStackOf(s, pr))];
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
  mode: "deploy-then-merge" | "merge-then-deploy" | "merge-queue";
  rollbackApprovals: number;
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
    return { name: stack.name, dir: stack.dir, engine: stack.engine, pulumiStack, steps, ...(stack.depends_on?.length ? { dependsOn: [...stack.depends_on] } : {}), paths, gate: resolveGate(config.gate, stack.gate), policy, runtime, environment: { name: stack.environment?.name ?? stack.name, protectionRule: stack.environment?.protection_rule ?? false }, ...(stack.drift ? { drift: { schedule: stack.drift.schedule, refresh: stack.drift.refresh ?? true } } : {}), ...(stack.review ? { reviewSettings: { template: stack.review.template, ttlSeconds: ttlSeconds(stack.review.ttl), auto: stack.review.auto ?? false, approvals: stack.review.approvals ?? 0, maxLive: config.review_max_live } } : {}) };
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

/** The stacks as nodes of their dependency graph (src/domain/stack-graph.ts). */
export function stackGraph(stacks: readonly ResolvedStack[]): StackNode[] {
  return stacks.map((s) => ({ name: s.name, dependsOn: s.dependsOn ?? [] }));
}
