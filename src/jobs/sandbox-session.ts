/**
 * The sandbox a task's steps run in, set up and torn down in one place for previews and
 * deploys: the egress allowlist (none for a fork), the runtime for its trust level, the
 * checkout of exactly the workflow's commit, a redactor holding every secret before the first
 * exec, the credentials (none for a fork; fetched last, released first) and the env each exec
 * gets. Whatever happens, credentials are released, the egress grant revoked and the container
 * and workspace removed before the caller reports anything: nothing outlives the task.
 */
import { rm } from "node:fs/promises";
import { egressRulesFor } from "../approval/egress.js";
import { decideRuntime } from "../approval/runtimes.js";
import type { ResolvedStack } from "../config/repo/resolve.js";
import type { CredentialRequest, IssuedCredentials } from "../connectors/credentials.js";
import { CheckoutError, checkoutAtSha } from "../connectors/git.js";
import { installationToken, type GitHub, membershipIn } from "../connectors/github.js";
import { Redactor } from "../connectors/redact.js";
import { WorkspaceFullError, type Sandbox } from "../connectors/sandbox.js";
import type { WorkflowRow } from "../connectors/store/workflows.js";
import { CredentialError, VaultUnavailableError } from "../connectors/vault/errors.js";
import type { AppDeps, TaskRun } from "../deps.js";
import { CredentialLifetimeError, SandboxRefusedError, TaskUserError } from "./task-errors.js";
import { repoPhase } from "../connectors/store/phases.js";
import { recordTaskTier, tierOf } from "../connectors/store/tiers.js";
import { credentialsFor } from "../approval/tiers.js";

const CHECKOUT_TIMEOUT_MS = 5 * 60_000;

export interface SandboxSession {
  sandbox: Sandbox;
  /** What every exec gets: the task's variables, the proxy and the credentials. */
  env: Record<string, string>;
  /** Knows every secret of the task; all output goes through it before it leaves the worker. */
  redactor: Redactor;
  /** The OCI runtime, or undefined for the engine's default. */
  runtime: string | undefined;
  /** The code is a fork's: no credentials, no egress, the untrusted runtime. */
  fork: boolean;
}

/**
 * Runs `fn` in a fresh sandbox holding the task's checkout. `stop` kills the running exec; when
 * it fires before the first exec, `fn` is not called and the result is null. A `preview` of a
 * fork's code gets nothing (invariant 3); a `deploy` is never of a fork (the gate refuses them).
 */
export async function withSandboxSession<T>(run: TaskRun, kind: "preview" | "deploy", stop: AbortSignal | undefined, fn: (session: SandboxSession) => Promise<T>): Promise<T | null> {
  const { deps, workflow, stack, task, log } = run;
  // Observe mode never fetches deploy credentials, whatever asked for them (src/approval/phase.ts).
  if (kind === "deploy" && (await repoPhase(deps.db, workflow.repo, deps.config.defaultPhase)).phase === "observe") throw new SandboxRefusedError("the repository is in `observe` mode: no deploy credentials are fetched");
  const fork = kind === "preview" && workflow.config.fork === true;
  // The task's trust tier: which credentials it may receive, and its runtime (src/approval/tiers.ts).
  const tier = await tierOf(deps.db, { actor: workflow.requested_by, repo: workflow.repo, stack: stack.name, fork, teams: membershipIn(run.gh, workflow.repo, workflow.requested_by) }, deps.config.defaultTier);
  await recordTaskTier(deps.db, task.id, tier.tier.name);
  const entitled = credentialsFor(tier, kind);
  const ttlSeconds = deps.config.tierTtlSeconds[tier.tier.name];
  if ("refused" in entitled) throw new SandboxRefusedError(entitled.refused);
  const egressRules = fork ? [] : egressRulesFor(deps.config.sandbox.egress.allowlist, workflow.repo, stack.name);
  if (egressRules.length > 0 && !deps.egress) throw new SandboxRefusedError("this stack has an egress allowlist but the egress proxy is not running");
  const network = egressRules.length > 0 ? deps.config.sandbox.egress.network : undefined;
  // A tier that runs under gVisor gets the server's untrusted runtime, like a fork.
  const runtime = sandboxRuntime(deps, stack, fork || tier.tier.runtime === "runsc", egressRules.length > 0);
  const { sandbox, warm } = await deps.sandboxes.acquire(workflow.config.image, network, runtime);
  log.info({ warm, container: sandbox.container.id.slice(0, 12), runtime: runtime ?? "default", fork, kind, tier: tier.tier.name, credentials: entitled.issue }, "sandbox acquired");
  const stopNow = () => void sandbox.kill();
  stop?.addEventListener("abort", stopNow);
  let issued: IssuedCredentials | null = null;
  let lifetime: NodeJS.Timeout | null = null;
  let expired = false;
  try {
    await checkout(run.gh, workflow, sandbox);
    if (stop?.aborted) return null;
    // Secrets are registered for redaction before any step runs; nothing a step prints leaves
    // the worker unredacted (check runs, comments, database, logs).
    const redactor = new Redactor();
    let proxyEnv: Record<string, string> = {};
    if (egressRules.length > 0) {
      const url = deps.egress!.grant(task.id, egressRules);
      redactor.register(url);
      proxyEnv = { HTTPS_PROXY: url, HTTP_PROXY: url, https_proxy: url, http_proxy: url };
    }
    // Fetched last before the first exec, so nothing between can leak a lease. A fork's code
    // gets none at all (the sources would refuse it too).
    issued = fork || !entitled.issue ? { env: {}, release: async () => {} } : await issueCredentials(deps, { repo: workflow.repo, stack: stack.name, kind, taskId: task.id, ttlSeconds, ...(kind === "preview" ? { fork } : {}), ...(stack.review ? { reviewOf: stack.review.base } : {}) });
    for (const value of Object.values(issued.env)) redactor.register(value);
    const env = stepEnv(workflow, stack, { ...proxyEnv, ...issued.env });
    // Credentials live no longer than the tier allows: past it the task is stopped (and they are released below).
    if (Object.keys(issued.env).length > 0) lifetime = setTimeout(() => ((expired = true), void sandbox.kill()), ttlSeconds * 1000);
    const result = await fn({ sandbox, env, redactor, runtime, fork });
    if (expired) throw new CredentialLifetimeError(`the task's credentials reached their lifetime under trust tier ${tier.tier.name} (${ttlSeconds} s), so it was stopped; nothing after that ran`);
    return result;
  } finally {
    if (lifetime) clearTimeout(lifetime);
    stop?.removeEventListener("abort", stopNow);
    // Dynamic leases end with the task, whatever its outcome.
    await issued?.release();
    deps.egress?.revoke(task.id);
    await sandbox.destroy().catch((err) => log.error({ err }, "could not remove the sandbox"));
  }
}

/**
 * Credentials for a task. Vault being unreachable is retried with the job; a refusal (no
 * permission, no such secret or key) will not change by retrying and fails the task at once.
 */
export async function issueCredentials(deps: AppDeps, req: CredentialRequest): Promise<IssuedCredentials> {
  try {
    return await deps.credentials.forTask(req);
  } catch (err) {
    if (err instanceof CredentialError && !(err.cause instanceof VaultUnavailableError)) {
      throw new TaskUserError(`this task's credentials could not be issued: ${err.message}; nothing was run`);
    }
    throw err;
  }
}

/**
 * Fetches exactly the workflow's commit into a short-lived directory on the worker and copies
 * it into the sandbox's workspace (an in-memory filesystem with a size limit); the worker's
 * copy is removed at once.
 */
export async function checkout(gh: GitHub, workflow: WorkflowRow, sandbox: Sandbox): Promise<void> {
  const dir = await sandbox.makeHostDir();
  try {
    await checkoutAtSha({
      cloneUrl: workflow.config.cloneUrl,
      sha: workflow.head_sha,
      token: await installationToken(gh),
      dest: dir,
      timeoutMs: CHECKOUT_TIMEOUT_MS,
    });
    await sandbox.copyIn(dir);
  } catch (err) {
    if (err instanceof CheckoutError && !err.transient) throw new TaskUserError(err.message);
    if (err instanceof WorkspaceFullError) throw new TaskUserError(`${err.message}; nothing was run`);
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The sandbox runtime of a task: the untrusted one for a fork's code, else the stack's (from
 * the default branch) when the server allows it. A refusal fails the task once, clearly.
 */
export function sandboxRuntime(deps: AppDeps, stack: ResolvedStack, untrusted: boolean, egress: boolean): string | undefined {
  const decision = decideRuntime({ untrusted, requested: stack.runtime }, deps.config.sandbox);
  if (!decision.ok) throw new SandboxRefusedError(`this task cannot run: ${decision.message}`);
  // gVisor is registered with `--network=none`: it cannot reach the egress proxy.
  if (egress && decision.runtime === "runsc") {
    throw new SandboxRefusedError(`stack ${stack.name} has an egress allowlist but runs under \`runsc\` (gVisor), which this server runs without any network; drop one of the two`);
  }
  return decision.runtime;
}

/** Only what the task is entitled to; passed per exec, so it is not in the container's config. */
export function stepEnv(workflow: WorkflowRow, stack: ResolvedStack, extra: Record<string, string>): Record<string, string> {
  return {
    CI: "true",
    HOME: "/tmp",
    AGENT_STACK: stack.name,
    AGENT_HEAD_SHA: workflow.head_sha,
    AGENT_PR_NUMBER: String(workflow.pr_number),
    AGENT_REPOSITORY: workflow.repo,
    ...(stack.engine === "pulumi" ? { PULUMI_SKIP_UPDATE_CHECK: "true" } : {}),
    ...extra,
  };
}
