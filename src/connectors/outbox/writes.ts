/**
 * Every GitHub write the app makes, as the rest of the code asks for it: added to the outbox
 * (one row, in the class that says how urgent it is) and handed to this process's sender.
 * Nothing here waits for GitHub except the two send-once writes whose answer the caller needs.
 */
import type { CheckRunUpdate, RepoRef } from "../github.js";
import type { Db } from "../store/db.js";
import { PRIORITY, type WriteClass } from "./pacer.js";
import type { CheckRunWrite } from "./perform.js";
import type { OutboxSender, SendOnceOutcome } from "./sender.js";
import { enqueueWrite, objectKeys, objectsUnder, type NewWrite } from "./store.js";

/** Where a write goes: the installation whose budget it spends, and the repository. */
export interface WriteTarget {
  installationId: number;
  repo: RepoRef;
}

export interface WriteOptions {
  /** How urgent (default: final). */
  cls?: WriteClass;
  /** Ties the write to its cause (a delivery's step): a re-run of the cause adds nothing. */
  idempotencyKey?: string;
  /** Held back this long for newer writes to the same object to merge in. */
  delayMs?: number;
  /** At most one write to the object per this many milliseconds; writes meanwhile merge (the sticky comment). */
  minIntervalMs?: number;
}

export interface DebounceOptions {
  /** Progress writes wait this long for newer ones (CHECK_RUN_UPDATE_INTERVAL_MS). */
  progressMs: number;
}

export class GitHubWrites {
  constructor(
    private readonly db: Db,
    private readonly sender: OutboxSender,
    private readonly debounce: DebounceOptions,
  ) {}

  private async add(t: WriteTarget, w: Omit<NewWrite, "installationId" | "repo" | "priority">, o: WriteOptions = {}): Promise<void> {
    const cls = o.cls ?? "final";
    await enqueueWrite(this.db, {
      ...w,
      installationId: t.installationId,
      repo: `${t.repo.owner}/${t.repo.repo}`,
      priority: PRIORITY[cls],
      idempotencyKey: o.idempotencyKey ?? null,
      delayMs: o.delayMs ?? (cls === "progress" ? this.debounce.progressMs : 0),
      ...(o.minIntervalMs ? { minIntervalMs: o.minIntervalMs } : {}),
    });
    this.sender.kick(t.installationId);
  }

  /** A reaction on a comment (👀: the command was seen). */
  reactToComment(t: WriteTarget, commentId: number, content: "eyes" | "confused" | "-1", o: WriteOptions = {}): Promise<void> {
    return this.add(t, { kind: "reaction", body: { commentId, content } }, { cls: "ack", ...o });
  }

  /** A reaction on the issue itself (a label or template started something, not a comment). */
  reactToIssue(t: WriteTarget, issueNumber: number, content: "eyes" | "confused", o: WriteOptions = {}): Promise<void> {
    return this.add(t, { kind: "reaction", body: { issueNumber, content } }, { cls: "ack", ...o });
  }

  /** A new comment (a reply, a result). */
  comment(t: WriteTarget, issueNumber: number, body: string, o: WriteOptions = {}): Promise<void> {
    return this.add(t, { kind: "comment", body: { issueNumber, body } }, o);
  }

  /** The comment kept under `key`: updated in place, created when there is none (or it was deleted). */
  upsertComment(t: WriteTarget, key: string, issueNumber: number, body: string, o: WriteOptions = {}): Promise<void> {
    return this.add(t, { kind: "comment_upsert", objectKey: key, body: { issueNumber, body } }, o);
  }

  /** Deletes the comment kept under `key` (nothing when there is none). */
  deleteComment(t: WriteTarget, key: string, o: WriteOptions = {}): Promise<void> {
    return this.add(t, { kind: "comment_delete", objectKey: key, body: {} }, o);
  }

  /** Keys of the comments kept under a prefix (the parts of a sticky comment). */
  async commentsUnder(prefix: string): Promise<string[]> {
    return (await objectsUnder(this.db, prefix)).map((o) => o.key);
  }

  /**
   * The check run of a task: created with `identity` the first time, updated after. A newer
   * write replaces an unsent one, so queued → in_progress → completed before its turn is one
   * write. Without identity, a task whose check run was never created gets none.
   */
  checkRun(t: WriteTarget, taskId: string, update: CheckRunUpdate, o: WriteOptions & { identity?: { name: string; headSha: string } } = {}): Promise<void> {
    const body: CheckRunWrite = { ...update, ...(o.identity ? { name: o.identity.name, headSha: o.identity.headSha, externalId: taskId } : {}) };
    return this.add(t, { kind: "check_run", objectKey: objectKeys.checkRun(taskId), body: body as Record<string, unknown> }, o);
  }

  /** A deployment's status (a newer state replaces an unsent older one). */
  deploymentStatus(t: WriteTarget, deploymentId: number, state: "in_progress" | "success" | "failure" | "error", d: { description: string; logUrl?: string | null }, o: WriteOptions = {}): Promise<void> {
    const repo = `${t.repo.owner}/${t.repo.repo}`;
    return this.add(t, { kind: "deployment_status", objectKey: objectKeys.deploymentStatus(repo, deploymentId), body: { deploymentId, state, description: d.description, logUrl: d.logUrl ?? null } }, o);
  }

  /** Creates a GitHub Deployment, at most once per key. */
  createDeployment(t: WriteTarget, key: string, d: { sha: string; environment: string; description: string; payload: Record<string, unknown> }): Promise<SendOnceOutcome> {
    return this.sender.sendOnce({ installationId: t.installationId, repo: `${t.repo.owner}/${t.repo.repo}`, kind: "deployment", idempotencyKey: key, body: d });
  }

  /** Merges a pull request if its head is still `sha`, at most once per key. */
  merge(t: WriteTarget, key: string, m: { number: number; sha: string; method: "merge" | "squash" | "rebase" }): Promise<SendOnceOutcome> {
    return this.sender.sendOnce({ installationId: t.installationId, repo: `${t.repo.owner}/${t.repo.repo}`, kind: "merge", idempotencyKey: key, body: m });
  }

  /** Resolves once everything due has been sent (tests, shutdown). */
  idle(): Promise<void> {
    return this.sender.idle();
  }
}
