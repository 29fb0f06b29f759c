import type { Logger } from "pino";
import { STACK_NAME_RE } from "../config/fields.js";
import { appendAudit } from "../connectors/store/audit.js";
import type { Db } from "../connectors/store/db.js";
import type { RevokeAllResult } from "../connectors/vault/credential-source.js";

/**
 * Break-glass: the operator action for "credentials may be compromised, stop everything".
 * It revokes every credential lease the app holds (Vault prefix revocation, see
 * VaultCredentialSource.revokeAll), stops the queued deploys and reports the ones already
 * applying, and leaves exactly one audit row whatever happened. Used by the CLI
 * (`npm run agent -- revoke`) and by `POST /admin/break-glass`.
 */

export const BREAK_GLASS_AUDIT_ACTION = "break_glass.revoke";

/** Who asked: a GitHub login or a person's name, as it goes to the audit log and to the deploys stopped. */
export const OPERATOR_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$/;

export interface BreakGlassDeps {
  db: Db;
  log: Logger;
  /** The credential source; revokeAll exists only with Vault (the env fallback holds no leases). */
  credentials: { revokeAll?(filter: { stack?: string }): Promise<RevokeAllResult> };
  /**
   * Tells the workers running these deploys to stop them now (Redis pub/sub): the sandbox is
   * killed mid-apply and the deploy is handed to a human (NEEDS_ATTENTION).
   */
  stopRunning?(taskIds: string[]): Promise<void>;
}

export interface BreakGlassRequest {
  /** One stack; every stack when absent. */
  stack?: string | undefined;
  actor: string;
  via: "cli" | "http";
}

export interface DeployRef {
  taskId: string;
  repo: string;
  prNumber: number;
  stack: string;
  kind: string;
  requestedBy: string;
  /** When it started applying (running deploys only). */
  startedAt?: string | null;
}

export type CredentialsOutcome =
  /** Every recorded lease and every prefix was revoked. */
  | ({ status: "revoked" } & RevokeAllResult)
  /** Vault answered for some but not all: what failed stays recorded for recovery. */
  | ({ status: "incomplete" } & RevokeAllResult)
  /** The env fallback: nothing leased, nothing to revoke (not an error). */
  | { status: "unsupported"; reason: string }
  /** revokeAll itself failed. */
  | { status: "failed"; error: string };

export type DeploysOutcome =
  | {
      status: "done";
      /** Queued deploys now FAILED (their tasks CANCELLED): they will not start. */
      cancelled: DeployRef[];
      /** Deploys already applying: not stopped (half an apply leaves the stack unknown); a human checks them. */
      running: DeployRef[];
    }
  | { status: "failed"; error: string };

export interface BreakGlassResult {
  ok: boolean;
  /** null: every stack. */
  stack: string | null;
  actor: string;
  via: "cli" | "http";
  credentials: CredentialsOutcome;
  deploys: DeploysOutcome;
  /** Whether the audit row was written. */
  audited: boolean;
  /** Why ok is false; empty when ok. */
  errors: string[];
}

/** The request itself is invalid (stack or operator name): nothing was done, nothing audited. */
export class BreakGlassInputError extends Error {
  override name = "BreakGlassInputError";
}

/**
 * Break-glass ran but did not fully succeed. `result` says what did happen (and was audited,
 * unless `result.audited` is false). Messages are built here from our own and Vault-connector
 * messages, which never carry a token or a secret value.
 */
export class BreakGlassError extends Error {
  override name = "BreakGlassError";
  constructor(
    message: string,
    readonly result: BreakGlassResult,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const NO_VAULT_REASON = "credentials come from the env fallback (no Vault): there are no leases to revoke";

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 1000);

/**
 * Stops the queued deploys first, so none can start (and be issued fresh credentials) after
 * the revocation, then revokes; each half runs even when the other failed. Throws
 * BreakGlassInputError for a bad request and BreakGlassError when anything failed.
 */
export async function breakGlass(deps: BreakGlassDeps, req: BreakGlassRequest): Promise<BreakGlassResult> {
  if (req.stack !== undefined && !STACK_NAME_RE.test(req.stack)) {
    throw new BreakGlassInputError("stack must be a stack name ([A-Za-z0-9][A-Za-z0-9._-], at most 63 characters)");
  }
  if (!OPERATOR_NAME_PATTERN.test(req.actor)) {
    throw new BreakGlassInputError("operator must be a name ([A-Za-z0-9][A-Za-z0-9 ._@-], at most 100 characters)");
  }
  const stack = req.stack ?? null;
  const log = deps.log.child({ break_glass: true, stack: stack ?? "*", actor: req.actor, via: req.via });
  log.warn("break-glass: revoking credential leases and stopping queued deploys");
  const errors: string[] = [];
  let firstError: unknown = null;

  let deploys: DeploysOutcome;
  try {
    deploys = { status: "done", ...(await stopDeploys(deps.db, stack, `stopped by break-glass (@${req.actor})`)) };
  } catch (err) {
    firstError ??= err;
    deploys = { status: "failed", error: message(err) };
    errors.push(`stopping deploys failed: ${message(err)}`);
    log.error({ err: message(err) }, "break-glass: could not stop the queued deploys");
  }

  // Running deploys are stopped before their credentials go, so a half-revoked apply does not linger.
  let stoppedRunning: string[] = [];
  if (deploys.status === "done" && deploys.running.length > 0 && deps.stopRunning) {
    try {
      await deps.stopRunning(deploys.running.map((d) => d.taskId));
      stoppedRunning = deploys.running.map((d) => d.taskId);
    } catch (err) {
      firstError ??= err;
      errors.push(`stopping the running deploys failed: ${message(err)}`);
      log.error({ err: message(err) }, "break-glass: could not signal the running deploys");
    }
  }

  let credentials: CredentialsOutcome;
  if (!deps.credentials.revokeAll) {
    credentials = { status: "unsupported", reason: NO_VAULT_REASON };
  } else {
    try {
      const r = await deps.credentials.revokeAll(stack === null ? {} : { stack });
      const complete = r.leasesFailed === 0 && r.prefixesFailed.length === 0;
      credentials = { status: complete ? "revoked" : "incomplete", ...r };
      if (!complete) {
        errors.push(
          `credential revocation incomplete: ${r.leasesFailed} lease(s) and ${r.prefixesFailed.length} prefix(es) failed` +
            (r.prefixesFailed.length ? ` (${r.prefixesFailed.join(", ")})` : ""),
        );
      }
    } catch (err) {
      firstError ??= err;
      credentials = { status: "failed", error: message(err) };
      errors.push(`credential revocation failed: ${message(err)}`);
      log.error({ err: message(err) }, "break-glass: credential revocation failed");
    }
  }

  const result: BreakGlassResult = { ok: false, stack, actor: req.actor, via: req.via, credentials, deploys, audited: false, errors };
  try {
    await appendAudit(deps.db, {
      actor: req.actor,
      action: BREAK_GLASS_AUDIT_ACTION,
      detail: {
        stack: stack ?? "*",
        via: req.via,
        credentials,
        cancelled: deploys.status === "done" ? deploys.cancelled.map(brief) : null,
        running: deploys.status === "done" ? deploys.running.map(brief) : null,
        stop_signalled: stoppedRunning,
        ...(deploys.status === "failed" ? { deploys_error: deploys.error } : {}),
        ...(errors.length ? { error: errors.join("; ") } : {}),
      },
    });
    result.audited = true;
  } catch (err) {
    firstError ??= err;
    errors.push(`writing the audit row failed: ${message(err)}`);
    log.error({ err: message(err) }, "break-glass: could not write the audit row");
  }

  result.ok = errors.length === 0;
  if (!result.ok) throw new BreakGlassError(`break-glass did not complete: ${errors.join("; ")}`, result, { cause: firstError ?? undefined });
  log.warn(
    {
      cancelled: deploys.status === "done" ? deploys.cancelled.length : 0,
      running: deploys.status === "done" ? deploys.running.map((d) => d.taskId) : [],
      credentials: credentials.status,
    },
    "break-glass: done",
  );
  return result;
}

const brief = (d: DeployRef) => ({ task_id: d.taskId, repo: d.repo, pr: d.prNumber, stack: d.stack });

interface DeployDbRow {
  task_id: string;
  repo: string;
  stack: string;
  pr_number: number;
  kind: string;
  requested_by: string;
  started_at: Date | null;
}

const toRef = (r: DeployDbRow): DeployRef => ({ taskId: r.task_id, repo: r.repo, prNumber: r.pr_number, stack: r.stack, kind: r.kind, requestedBy: r.requested_by });

/**
 * In one transaction: queued deploys of the stack (every stack with null) become FAILED with
 * `why`, their tasks CANCELLED (a worker that picks the job up finds the deploy no longer
 * PENDING and does nothing), their workflows CANCELLED once all their tasks are; and the
 * deploys already applying are listed. A deploy that a worker starts concurrently is either
 * stopped or listed as running, never missed (the UPDATE re-checks the row it waited for).
 */
async function stopDeploys(db: Db, stack: string | null, why: string): Promise<{ cancelled: DeployRef[]; running: DeployRef[] }> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    const stopped = await client.query<DeployDbRow>(
      `UPDATE deploys SET state = 'FAILED', error = $2, finished_at = now()
       WHERE state = 'PENDING' AND ($1::text IS NULL OR stack = $1)
       RETURNING task_id, repo, stack, pr_number, kind, requested_by, started_at`,
      [stack, why],
    );
    const taskIds = stopped.rows.map((r) => r.task_id);
    const tasks = await client.query<{ workflow_id: string }>(
      `UPDATE tasks SET state = 'CANCELLED', error = $2, finished_at = now()
       WHERE id = ANY($1::uuid[]) AND state IN ('PENDING', 'AWAITING_APPROVAL')
       RETURNING workflow_id`,
      [taskIds, why],
    );
    await client.query(
      `UPDATE workflows w SET state = 'CANCELLED', updated_at = now()
       WHERE w.id = ANY($1::uuid[]) AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.workflow_id = w.id AND t.state <> 'CANCELLED')`,
      [[...new Set(tasks.rows.map((t) => t.workflow_id))]],
    );
    const running = await client.query<DeployDbRow>(
      `SELECT task_id, repo, stack, pr_number, kind, requested_by, started_at FROM deploys
       WHERE state = 'RUNNING' AND ($1::text IS NULL OR stack = $1)
       ORDER BY started_at NULLS LAST, task_id`,
      [stack],
    );
    await client.query("COMMIT");
    return {
      cancelled: stopped.rows.map(toRef).sort((a, b) => a.repo.localeCompare(b.repo) || a.stack.localeCompare(b.stack)),
      running: running.rows.map((r) => ({ ...toRef(r), startedAt: r.started_at ? r.started_at.toISOString() : null })),
    };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
