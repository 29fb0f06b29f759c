/**
 * Postgres access for workflows and their tasks: creating previews, deploys and mainline
 * workflows, claiming, finishing, cancelling and listing tasks. Long (about 510 lines) because
 * it holds every query on those two tables, so their locking rules live in one file.
 */
import type pg from "pg";
import type { StepResult } from "../../domain/steps.js";
import type { WorkflowConfig } from "../../config/workflow.js";
import { previewWorkflowState, type TaskState, type WorkflowState } from "../../domain/states.js";
import { inTransaction, type Db } from "./db.js";
import type { PreviewOutcome } from "../../plan/types.js";
import type { PlanDecision } from "../../approval/plan-policy.js";
import type { ChecksGroup } from "../../config/checks.js";
import { takeOrQueueLocks } from "./locks.js";
import type { WaitEdge } from "../../approval/locks.js";

export interface WorkflowRow {
  id: string;
  /** `branch`: a mainline workflow (a default-branch commit previewed for a rollback or a merge commit). */
  kind: "preview" | "deploy" | "branch";
  state: WorkflowState;
  repo: string;
  installation_id: string;
  pr_number: number;
  head_sha: string;
  requested_by: string;
  delivery_id: string | null;
  config: WorkflowConfig;
  created_at: Date;
}

export interface TaskRow {
  id: string;
  workflow_id: string;
  kind: string;
  stack: string;
  state: TaskState;
  job_id: string;
  check_run_id: string | null;
  attempts: number;
  steps: StepResult[];
  error: string | null;
  plan_hash: string | null;
  /** The typed, redacted preview result; null until a preview step produced one. */
  plan: PreviewOutcome | null;
  /** Tasks that must succeed before this one is enqueued: its shared checks, and the previews of the stacks it depends on. */
  depends_on: string[];
  /** The plan policy's decision on this preview; null when no policy applies (or no plan). */
  policy: PlanDecision | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

/** A live task with the delivery that created its workflow. */
export type LiveTaskRow = TaskRow & { workflow_delivery_id: string | null };

export interface NewPreviewWorkflow {
  repo: string;
  installationId: number;
  prNumber: number;
  headSha: string;
  requestedBy: string;
  deliveryId: string | null;
  config: WorkflowConfig;
  stacks: string[];
  jobIdFor: (stack: string) => string;
  /** Shared lint/test groups (config.checks); previews of their stacks wait for them. */
  checks?: ChecksGroup[];
  /** The stacks (of `stacks`) whose previews a stack's preview waits for (`depends_on`, src/domain/stack-graph.ts). */
  upstream?: Map<string, string[]>;
  /** Take the stack locks of the new tasks for this PR, all or none; none free: they all join the lock queues. */
  locks?: { lockedBy: string; ttlSeconds: number; except?: string[] };
  checksJobIdFor?: (key: string) => string;
}

export interface CreatedWorkflow {
  /** Null when every stack collapsed into an identical live task (nothing new recorded). */
  workflow: WorkflowRow | null;
  /** Tasks created now; stacks whose identical job is already live are left out. */
  tasks: TaskRow[];
  /** The identical tasks already queued or running, which the new command collapsed into. */
  alreadyLive: LiveTaskRow[];
  /** Older queued tasks on the same PR and stack that this workflow superseded. */
  superseded: TaskRow[];
  /** Checks tasks the new previews wait for: created now, or identical live ones reused. */
  checks: TaskRow[];
  /** The new tasks' stacks were not all free for this PR: none was taken and they all wait in the lock queues. */
  lockQueued?: boolean;
  /** Waiting for the locks would close a cycle with other PRs' waits: nothing was recorded. */
  deadlock?: WaitEdge[];
}

type WorkflowFields = Pick<NewPreviewWorkflow, "repo" | "installationId" | "prNumber" | "headSha" | "requestedBy" | "deliveryId" | "config">;

async function insertWorkflow(client: pg.PoolClient, kind: WorkflowRow["kind"], w: WorkflowFields): Promise<WorkflowRow> {
  const wf = await client.query<WorkflowRow>(
    `INSERT INTO workflows (kind, repo, installation_id, pr_number, head_sha, requested_by, delivery_id, config)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
    [kind, w.repo, w.installationId, w.prNumber, w.headSha, w.requestedBy, w.deliveryId, JSON.stringify(w.config)],
  );
  return wf.rows[0]!;
}

/**
 * Creates a preview workflow and one PENDING task per stack in one transaction. A stack whose
 * job (same repo, PR, SHA, stack, command) is already live collapses into it; queued tasks
 * for the same stacks on an older head SHA are cancelled as superseded.
 */
export async function createPreviewWorkflow(db: Db, w: NewPreviewWorkflow): Promise<CreatedWorkflow> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    // The same delivery handled again (its handler died after this commit): its own tasks, nothing new.
    if (w.deliveryId) {
      const earlier = await client.query<LiveTaskRow>(
        `SELECT t.*, w.delivery_id AS workflow_delivery_id FROM tasks t JOIN workflows w ON w.id = t.workflow_id
         WHERE w.delivery_id = $1 AND w.kind = 'preview' AND w.repo = $2 AND w.pr_number = $3 AND t.kind = 'preview'`,
        [w.deliveryId, w.repo, w.prNumber],
      );
      if (earlier.rows.length > 0) {
        await client.query("ROLLBACK");
        return { workflow: null, tasks: [], alreadyLive: earlier.rows, superseded: [], checks: [] };
      }
    }
    const workflow = await insertWorkflow(client, "preview", w);
    const tasks: TaskRow[] = [];
    const alreadyLive: LiveTaskRow[] = [];
    for (const stack of w.stacks) {
      const jobId = w.jobIdFor(stack);
      const res = await client.query<TaskRow>(
        `INSERT INTO tasks (workflow_id, kind, stack, job_id) VALUES ($1, 'preview', $2, $3)
         ON CONFLICT (job_id) WHERE state IN ('PENDING', 'RUNNING') DO NOTHING RETURNING *`,
        [workflow.id, stack, jobId],
      );
      if (res.rows[0]) {
        tasks.push(res.rows[0]);
        continue;
      }
      const existing = await client.query<LiveTaskRow>(
        `SELECT t.*, w.delivery_id AS workflow_delivery_id FROM tasks t JOIN workflows w ON w.id = t.workflow_id
         WHERE t.job_id = $1 AND t.state IN ('PENDING', 'RUNNING')`,
        [jobId],
      );
      if (existing.rows[0]) alreadyLive.push(existing.rows[0]);
    }
    if (tasks.length === 0) {
      await client.query("ROLLBACK");
      return { workflow: null, tasks, alreadyLive, superseded: [], checks: [] };
    }
    // Dependency order: a new preview waits for the previews of its upstream stacks in this
    // command, new or the identical live ones it collapsed into.
    const taskOfStack = new Map<string, string>([...alreadyLive, ...tasks].map((t) => [t.stack, t.id]));
    for (const t of tasks) {
      const ups = (w.upstream?.get(t.stack) ?? []).map((s) => taskOfStack.get(s)).filter((id): id is string => id !== undefined);
      if (ups.length === 0) continue;
      await client.query("UPDATE tasks SET depends_on = depends_on || $1::uuid[] WHERE id = $2", [ups, t.id]);
      t.depends_on = [...t.depends_on, ...ups];
    }
    const locking = w.locks
      ? await takeOrQueueLocks(client, { repo: w.repo, prNumber: w.prNumber, lockedBy: w.locks.lockedBy, ttlSeconds: w.locks.ttlSeconds, requestId: workflow.id, tasks: tasks.filter((t) => !w.locks!.except?.includes(t.stack)) })
      : { queued: false };
    if (locking.deadlock) {
      // Waiting would never end: nothing of this command is recorded.
      await client.query("ROLLBACK");
      return { workflow: null, tasks: [], alreadyLive: [], superseded: [], checks: [], deadlock: locking.deadlock };
    }
    const lockQueued = locking.queued;
    const checks: TaskRow[] = [];
    for (const group of w.checks ?? []) {
      const waiting = tasks.filter((t) => group.stacks.includes(t.stack));
      if (waiting.length === 0) continue;
      const jobId = w.checksJobIdFor!(group.key);
      const inserted = await client.query<TaskRow>(
        `INSERT INTO tasks (workflow_id, kind, stack, job_id) VALUES ($1, 'checks', $2, $3)
         ON CONFLICT (job_id) WHERE state IN ('PENDING', 'RUNNING') DO NOTHING RETURNING *`,
        [workflow.id, group.label, jobId],
      );
      // Identical checks already queued or running (another command on this commit) are reused.
      const row =
        inserted.rows[0] ??
        (await client.query<TaskRow>("SELECT * FROM tasks WHERE job_id = $1 AND state IN ('PENDING', 'RUNNING')", [jobId])).rows[0];
      if (!row) continue; // finished meanwhile: the previews run their own checks
      checks.push(row);
      await client.query("UPDATE tasks SET depends_on = array_append(depends_on, $1) WHERE id = ANY($2::uuid[])", [row.id, waiting.map((t) => t.id)]);
      for (const t of waiting) t.depends_on = [...t.depends_on, row.id];
    }
    const superseded = await client.query<TaskRow>(
      `UPDATE tasks t SET state = 'CANCELLED', finished_at = now(), error = 'superseded by a newer preview'
       FROM workflows w
       WHERE t.workflow_id = w.id AND w.repo = $1 AND w.pr_number = $2 AND w.id <> $3
         AND t.kind = 'preview' AND t.state = 'PENDING' AND t.stack = ANY($4::text[])
       RETURNING t.*`,
      [w.repo, w.prNumber, workflow.id, tasks.map((t) => t.stack)],
    );
    // Queued checks that no live preview waits for any more are superseded with them.
    const orphaned = await client.query<TaskRow>(
      `UPDATE tasks c SET state = 'CANCELLED', finished_at = now(), error = 'superseded by a newer preview'
       FROM workflows w
       WHERE c.workflow_id = w.id AND w.repo = $1 AND w.pr_number = $2 AND w.id <> $3
         AND c.kind = 'checks' AND c.state = 'PENDING'
         AND NOT EXISTS (SELECT 1 FROM tasks d WHERE c.id = ANY(d.depends_on) AND d.state IN ('PENDING', 'RUNNING'))
       RETURNING c.*`,
      [w.repo, w.prNumber, workflow.id],
    );
    await client.query("COMMIT");
    return { workflow, tasks, alreadyLive, superseded: [...superseded.rows, ...orphaned.rows], checks, lockQueued };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export async function getTask(db: Db, taskId: string): Promise<{ task: TaskRow; workflow: WorkflowRow } | null> {
  const t = await db.query<TaskRow>("SELECT * FROM tasks WHERE id = $1", [taskId]);
  const task = t.rows[0];
  if (!task) return null;
  const w = await db.query<WorkflowRow>("SELECT * FROM workflows WHERE id = $1", [task.workflow_id]);
  return { task, workflow: w.rows[0]! };
}

/**
 * Moves a task to RUNNING for one attempt. Null when it may not run any more (cancelled,
 * superseded, or already finished by an earlier attempt).
 */
export async function claimTask(db: Db, taskId: string): Promise<TaskRow | null> {
  const res = await db.query<TaskRow>(
    `UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, started_at = coalesce(started_at, now())
     WHERE id = $1 AND state IN ('PENDING', 'RUNNING') RETURNING *`,
    [taskId],
  );
  const task = res.rows[0] ?? null;
  if (task) await refreshWorkflowState(db, task.workflow_id);
  return task;
}

/** Hands a RUNNING task back to the queue (worker shutting down): it will run again from the start. */
export async function releaseTask(db: Db, taskId: string): Promise<void> {
  await db.query("UPDATE tasks SET state = 'PENDING', steps = '[]'::jsonb WHERE id = $1 AND state = 'RUNNING'", [taskId]);
}

export async function saveTaskSteps(db: Db, taskId: string, steps: StepResult[]): Promise<void> {
  await db.query("UPDATE tasks SET steps = $2 WHERE id = $1 AND state = 'RUNNING'", [taskId, JSON.stringify(steps)]);
}

/** Ends a RUNNING task; returns the workflow's new state. */
export async function finishTask(
  db: Db,
  taskId: string,
  outcome: { state: Extract<TaskState, "SUCCEEDED" | "FAILED" | "CANCELLED" | "BLOCKED">; steps: StepResult[]; error: string | null },
): Promise<WorkflowState | null> {
  const res = await db.query<TaskRow>(
    `UPDATE tasks SET state = $2, steps = $3, error = $4, finished_at = now()
     WHERE id = $1 AND state IN ('PENDING', 'RUNNING') RETURNING workflow_id`,
    [taskId, outcome.state, JSON.stringify(outcome.steps), outcome.error],
  );
  const row = res.rows[0];
  return row ? refreshWorkflowState(db, row.workflow_id) : null;
}

/**
 * A new push: every queued or running preview of this PR on another head SHA is cancelled
 * (its results would describe code that is no longer the PR). Returns the cancelled tasks.
 */
export async function cancelOlderPreviews(db: Db, repo: string, prNumber: number, headSha: string): Promise<TaskRow[]> {
  const res = await db.query<TaskRow>(
    `UPDATE tasks t SET state = 'CANCELLED', finished_at = now(), error = 'superseded by a newer commit'
     FROM workflows w
     WHERE t.workflow_id = w.id AND w.repo = $1 AND w.pr_number = $2 AND w.head_sha <> $3 AND w.kind = 'preview'
       AND t.kind IN ('preview', 'checks') AND t.state IN ('PENDING', 'RUNNING')
     RETURNING t.*`,
    [repo, prNumber, headSha],
  );
  for (const id of new Set(res.rows.map((t) => t.workflow_id))) await refreshWorkflowState(db, id);
  return res.rows;
}

/**
 * `/agent cancel`: every queued or running preview (and shared checks) of the PR, and its
 * queued deploys, end as CANCELLED. A deploy that is already applying is left alone: stopping
 * `pulumi up` half-way would leave the stack in an unknown state.
 */
export async function cancelPrTasks(db: Db, repo: string, prNumber: number, by: string): Promise<{ cancelled: TaskRow[]; applying: TaskRow[] }> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    const res = await client.query<TaskRow>(
      `UPDATE tasks t SET state = 'CANCELLED', finished_at = now(), error = $3
       FROM workflows w
       WHERE t.workflow_id = w.id AND w.repo = $1 AND w.pr_number = $2
         AND ((t.kind IN ('preview', 'checks') AND t.state IN ('PENDING', 'RUNNING')) OR (t.kind = 'deploy' AND t.state = 'PENDING'))
       RETURNING t.*`,
      [repo, prNumber, `cancelled by @${by}`],
    );
    await client.query(
      "UPDATE deploys SET state = 'FAILED', error = $2, finished_at = now() WHERE task_id = ANY($1::uuid[]) AND state = 'PENDING'",
      [res.rows.filter((t) => t.kind === "deploy").map((t) => t.id), `cancelled by @${by}`],
    );
    const applying = await client.query<TaskRow>(
      `SELECT t.* FROM tasks t JOIN workflows w ON w.id = t.workflow_id
       WHERE w.repo = $1 AND w.pr_number = $2 AND t.kind = 'deploy' AND t.state = 'RUNNING'`,
      [repo, prNumber],
    );
    await client.query("COMMIT");
    for (const id of new Set(res.rows.map((t) => t.workflow_id))) await refreshWorkflowState(db, id);
    return { cancelled: res.rows, applying: applying.rows };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Whether a task was cancelled (a running worker checks after its steps were stopped). */
export async function isTaskCancelled(db: Db, taskId: string): Promise<boolean> {
  const res = await db.query("SELECT 1 FROM tasks WHERE id = $1 AND state = 'CANCELLED'", [taskId]);
  return Boolean(res.rowCount);
}

async function refreshWorkflowState(db: Db, workflowId: string): Promise<WorkflowState> {
  const res = await db.query<{ state: TaskState }>("SELECT state FROM tasks WHERE workflow_id = $1", [workflowId]);
  const state = previewWorkflowState(res.rows.map((r) => r.state));
  await db.query("UPDATE workflows SET state = $2, updated_at = now() WHERE id = $1", [workflowId, state]);
  return state;
}

export interface StackView {
  task: TaskRow;
  headSha: string;
  requestedBy: string;
}

/** The newest preview task per stack on a pull request: what the sticky comment shows. */
export async function latestPreviewPerStack(db: Db, repo: string, prNumber: number): Promise<StackView[]> {
  const res = await db.query<TaskRow & { head_sha: string; requested_by: string }>(
    `SELECT DISTINCT ON (t.stack) t.*, w.head_sha, w.requested_by
     FROM tasks t JOIN workflows w ON w.id = t.workflow_id
     WHERE w.repo = $1 AND w.pr_number = $2 AND w.kind = 'preview' AND t.kind = 'preview' AND t.state <> 'CANCELLED'
     ORDER BY t.stack, t.created_at DESC`,
    [repo, prNumber],
  );
  return res.rows.map(({ head_sha, requested_by, ...task }) => ({ task, headSha: head_sha, requestedBy: requested_by }));
}

/** Tasks by id, in no particular order. */
export async function getTasks(db: Db, ids: string[]): Promise<TaskRow[]> {
  if (ids.length === 0) return [];
  return (await db.query<TaskRow>("SELECT * FROM tasks WHERE id = ANY($1::uuid[])", [ids])).rows;
}

/** Previews still waiting for this task (shared checks, or an upstream stack's preview); never a deploy, whose `depends_on` is its preview. */
export async function pendingDependents(db: Db, taskId: string): Promise<TaskRow[]> {
  return (await db.query<TaskRow>("SELECT * FROM tasks WHERE $1 = ANY(depends_on) AND state = 'PENDING' AND kind = 'preview' ORDER BY created_at", [taskId])).rows;
}

/** Serialises work on one PR's sticky comment across workers and replicas. */
export function withPrLock<T>(db: Db, repo: string, prNumber: number, fn: () => Promise<T>): Promise<T> {
  return withAdvisoryLock(db, repo, prNumber, fn);
}

/** Runs `fn` holding the session advisory lock (hashtext(name), n): one holder across workers and replicas. */
export async function withAdvisoryLock<T>(db: Db, name: string, n: number, fn: () => Promise<T>): Promise<T> {
  const client = await db.connect();
  let lost: Error | undefined;
  const onLost = (err: Error) => (lost = err);
  client.on("error", onLost);
  try {
    await client.query("SELECT pg_advisory_lock(hashtext($1), $2)", [name, n]);
    try {
      return await fn();
    } finally {
      // A lost connection ended the session, and its advisory lock with it: nothing to unlock.
      await client.query("SELECT pg_advisory_unlock(hashtext($1), $2)", [name, n]).catch((err: unknown) => {
        if (!lost) throw err;
      });
    }
  } finally {
    client.off("error", onLost);
    client.release(lost);
  }
}

export interface NewDeployWorkflow {
  repo: string;
  installationId: number;
  prNumber: number;
  headSha: string;
  planHash: string;
  requestedBy: string;
  deliveryId: string | null;
  config: WorkflowConfig;
  stack: string;
  jobId: string;
  /** The preview task whose saved plan is applied. */
  previewTaskId: string;
  /** `branch`: the apply of a default-branch commit (rollback); no merge follows. */
  kind?: "deploy" | "branch";
  /** When the human asked (the rollback SLA counts from here); default now. */
  requestedAt?: Date;
}

/**
 * Records a deploy: workflow, task and `deploys` row in one transaction. The deploys table's
 * unique indexes make it at most one live deploy per stack and one apply per plan: a second
 * request (a redelivery, a second `/agent deploy`, another worker) gets null.
 */
export async function createDeployWorkflow(db: Db, d: NewDeployWorkflow): Promise<{ workflow: WorkflowRow; task: TaskRow } | null> {
  return refusedAsNull(db, async (client) => (await insertDeploy(client, d)) ?? refuse());
}

/** One deploy of a run: `after` names the stacks (earlier in the list) whose deploys must succeed first. */
export type NewRunDeploy = NewDeployWorkflow & { after: string[] };

/**
 * Records a deploy run: every stack's deploy in one transaction, all or none (a stack with a
 * live deploy, or a plan applied before, fails the whole run; then null and nothing is
 * recorded). Items come in dependency order.
 */
export async function createDeployRun(db: Db, runId: string, items: NewRunDeploy[]): Promise<Array<{ workflow: WorkflowRow; task: TaskRow; stack: string }> | null> {
  return refusedAsNull(db, async (client) => {
    const out: Array<{ workflow: WorkflowRow; task: TaskRow; stack: string }> = [];
    for (const item of items) {
      const after = item.after.map((s) => out.find((o) => o.stack === s)?.task.id).filter((id): id is string => id !== undefined);
      const created = (await insertDeploy(client, item, { runId, after })) ?? refuse();
      out.push({ ...created, stack: item.stack });
    }
    return out;
  });
}

/** A unique index refused a row: the transaction is rolled back and the caller gets null. */
class Refused extends Error {}
const refuse = (): never => {
  throw new Refused("refused by a unique index");
};
async function refusedAsNull<T>(db: Db, fn: (client: pg.PoolClient) => Promise<T>): Promise<T | null> {
  try {
    return await inTransaction(db, fn);
  } catch (err) {
    if (err instanceof Refused) return null;
    throw err;
  }
}

/** Inside a transaction: workflow, task and deploys row of one deploy; null when the unique indexes refuse it. */
async function insertDeploy(client: pg.PoolClient, d: NewDeployWorkflow, run: { runId: string; after: string[] } | null = null): Promise<{ workflow: WorkflowRow; task: TaskRow } | null> {
  {
    const workflow = await insertWorkflow(client, "deploy", d);
    const t = await client.query<TaskRow>(
      `INSERT INTO tasks (workflow_id, kind, stack, job_id, plan_hash, depends_on) VALUES ($1, 'deploy', $2, $3, $4, ARRAY[$5]::uuid[])
       ON CONFLICT (job_id) WHERE state IN ('PENDING', 'RUNNING') DO NOTHING RETURNING *`,
      [workflow.id, d.stack, d.jobId, d.planHash, d.previewTaskId],
    );
    const task = t.rows[0];
    if (!task) return null;
    const ins = await client.query(
      `INSERT INTO deploys (task_id, repo, stack, pr_number, head_sha, plan_hash, requested_by, kind, preview_task_id, requested_at, run_id, after_tasks)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10, now()), $11, $12::uuid[])
       ON CONFLICT DO NOTHING`,
      [task.id, d.repo, d.stack, d.prNumber, d.headSha, d.planHash, d.requestedBy, d.kind ?? "deploy", d.previewTaskId, d.requestedAt ?? null, run?.runId ?? null, run?.after ?? []],
    );
    if (ins.rowCount !== 1) return null;
    return { workflow, task };
  }
}

/** The latest preview task of a stack on a PR (any state), with its workflow's head SHA. */
export async function latestPreviewOf(db: Db, repo: string, prNumber: number, stack: string): Promise<(TaskRow & { head_sha: string }) | null> {
  const res = await db.query<TaskRow & { head_sha: string }>(
    `SELECT t.*, w.head_sha FROM tasks t JOIN workflows w ON w.id = t.workflow_id
     WHERE w.repo = $1 AND w.pr_number = $2 AND w.kind = 'preview' AND t.kind = 'preview' AND t.stack = $3 AND t.state <> 'CANCELLED'
     ORDER BY t.created_at DESC LIMIT 1`,
    [repo, prNumber, stack],
  );
  return res.rows[0] ?? null;
}

export interface NewBranchPreview {
  repo: string;
  installationId: number;
  /** The PR or issue the command was typed in: replies and approvals live there. */
  threadNumber: number;
  sha: string;
  requestedBy: string;
  deliveryId: string | null;
  config: WorkflowConfig;
  stack: string;
  jobId: string;
  /** Tasks that must end first (a merge group's apply check waits for the stack's live deploys). */
  after?: string[];
}

/** A preview of a default-branch commit (rollback, or a merge commit to re-approve). */
export async function createMainlinePreview(db: Db, b: NewBranchPreview): Promise<{ workflow: WorkflowRow; task: TaskRow } | null> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    const workflow = await insertWorkflow(client, "branch", { ...b, prNumber: b.threadNumber, headSha: b.sha });
    const t = await client.query<TaskRow>(
      `INSERT INTO tasks (workflow_id, kind, stack, job_id, depends_on) VALUES ($1, 'preview', $2, $3, $4::uuid[])
       ON CONFLICT (job_id) WHERE state IN ('PENDING', 'RUNNING') DO NOTHING RETURNING *`,
      [workflow.id, b.stack, b.jobId, b.after ?? []],
    );
    if (!t.rows[0]) {
      await client.query("ROLLBACK");
      return null;
    }
    await client.query("COMMIT");
    return { workflow, task: t.rows[0] };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** The newest branch preview (rollback / merge commit) of a stack asked for in a PR or issue. */
export async function latestMainlinePreview(db: Db, repo: string, threadNumber: number, stack: string): Promise<{ task: TaskRow; workflow: WorkflowRow } | null> {
  const res = await db.query<{ id: string }>(
    `SELECT t.id FROM tasks t JOIN workflows w ON w.id = t.workflow_id
     WHERE w.repo = $1 AND w.pr_number = $2 AND w.kind = 'branch' AND t.kind = 'preview' AND t.stack = $3 AND t.state <> 'CANCELLED'
     ORDER BY t.created_at DESC LIMIT 1`,
    [repo, threadNumber, stack],
  );
  return res.rows[0] ? getTask(db, res.rows[0].id) : null;
}

/** Per stack, the newest branch preview in a thread if it succeeded and was never applied: what `/approve` there approves. */
export async function approvableBranchPreviews(db: Db, repo: string, threadNumber: number): Promise<Array<TaskRow & { head_sha: string; purpose: string; command: string }>> {
  const res = await db.query<TaskRow & { head_sha: string; purpose: string; command: string }>(
    `SELECT * FROM (
       SELECT DISTINCT ON (t.stack) t.*, w.head_sha, w.config->'branch'->>'purpose' AS purpose, w.config->'branch'->>'command' AS command FROM tasks t JOIN workflows w ON w.id = t.workflow_id
       WHERE w.repo = $1 AND w.pr_number = $2 AND w.kind = 'branch' AND t.kind = 'preview' AND t.state <> 'CANCELLED'
       ORDER BY t.stack, t.created_at DESC) latest
     WHERE latest.state = 'SUCCEEDED' AND latest.plan_hash IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM deploys d WHERE d.preview_task_id = latest.id AND d.state <> 'BLOCKED')`,
    [repo, threadNumber],
  );
  return res.rows;
}

/** A closed pull request leaves every lock queue: its waiting previews are cancelled (returned, to be announced). */
export async function cancelLockWaitsOf(db: Db, repo: string, prNumber: number, why: string): Promise<TaskRow[]> {
  const res = await db.query<TaskRow>(
    `UPDATE tasks t SET state = 'CANCELLED', finished_at = now(), error = $3
     FROM lock_waits w WHERE w.task_id = t.id AND w.repo = $1 AND w.pr_number = $2 AND t.state = 'PENDING'
     RETURNING t.*`,
    [repo, prNumber, why],
  );
  await db.query("DELETE FROM lock_waits WHERE repo = $1 AND pr_number = $2", [repo, prNumber]);
  return res.rows;
}

/**
 * A review stack's destroy (src/deploys/review.ts): a `deploy` workflow with one `destroy` task,
 * so that it runs, logs and is audited like any task. No deploys row: nothing is applied from a plan.
 */
export async function createDestroyWorkflow(db: Db, d: { repo: string; installationId: number; prNumber: number; headSha: string; requestedBy: string; config: WorkflowConfig; stack: string; jobId: string }): Promise<{ workflow: WorkflowRow; task: TaskRow }> {
  return inTransaction(db, async (client) => {
    const workflow = await insertWorkflow(client, "deploy", { ...d, deliveryId: null });
    const t = await client.query<TaskRow>("INSERT INTO tasks (workflow_id, kind, stack, job_id) VALUES ($1, 'destroy', $2, $3) RETURNING *", [workflow.id, d.stack, d.jobId]);
    return { workflow, task: t.rows[0]! };
  });
}
