/**
 * Drains the GitHub write outbox: one loop per installation in this process, sending one write
 * at a time, the most urgent the installation's budget allows (pacer.ts). A write that failed
 * on the way (network, 5xx) goes back with a backoff; GitHub's "slow down" (403/429 with
 * `retry-after`, or the primary limit spent) pauses that installation's loop only. Send-once
 * writes (merge, deployment creation) are sent by their caller through `sendOnce`, under the
 * same budget, and never resent.
 */
import type { Logger } from "pino";
import type { GitHub } from "../github.js";
import type { Db } from "../store/db.js";
import { InstallationPacer, classOf, PRIORITY, type PacingOptions, type WriteClass } from "./pacer.js";
import { performWrite } from "./perform.js";
import {
  claimNext,
  enqueueWrite,
  forgetObject,
  installationsWithDueWrites,
  markFailed,
  markSent,
  pendingDue,
  requeue,
  type NewWrite,
  type OutboxRow,
} from "./store.js";

/** Transient failures of one write are retried this many times (backoff up to a minute): about 10 minutes. */
export const MAX_ATTEMPTS = 14;
/** Longest pause a rate-limit answer can impose (GitHub's primary reset is at most an hour away). */
const MAX_PAUSE_MS = 60 * 60 * 1000;

export interface SenderOptions {
  db: Db;
  clientFor: (installationId: number) => Promise<GitHub>;
  /** This process, as claims record it (the worker heartbeat's owner id). */
  owner: string;
  /** null: no pacing (tests, or a GitHub that does not limit). */
  pacing: PacingOptions | null;
  log: Logger;
  /** How often other processes' writes and debounced writes are looked for. */
  pollMs?: number;
  now?: () => number;
}

/** What a send-once write came to. `unknown`: it may or may not have reached GitHub. */
export type SendOnceOutcome = { state: "sent"; result: Record<string, unknown> } | { state: "failed"; error: string; result: Record<string, unknown> | null } | { state: "unknown" };

interface RateLimited {
  pauseMs: number;
}

/** GitHub's "slow down": a secondary limit (retry-after) or the primary limit spent (reset time). */
export function rateLimitOf(err: unknown, now = Date.now()): RateLimited | null {
  const e = err as { status?: number; response?: { headers?: Record<string, unknown> } };
  if (e.status !== 403 && e.status !== 429) return null;
  const h = e.response?.headers ?? {};
  const retryAfter = Number(h["retry-after"]);
  if (Number.isFinite(retryAfter) && retryAfter >= 0) return { pauseMs: Math.min(MAX_PAUSE_MS, retryAfter * 1000) };
  if (String(h["x-ratelimit-remaining"]) === "0") {
    const reset = Number(h["x-ratelimit-reset"]) * 1000;
    return { pauseMs: Math.min(MAX_PAUSE_MS, Number.isFinite(reset) ? Math.max(1000, reset - now) : 60_000) };
  }
  // A secondary limit without retry-after: GitHub says to wait at least a minute.
  if (/secondary rate limit/i.test(String((err as Error).message))) return { pauseMs: 60_000 };
  return null;
}

/** Worth sending again: no answer, or GitHub's own trouble. */
function isTransient(err: unknown): boolean {
  const status = (err as { status?: number }).status;
  return status === undefined || status >= 500 || status === 408;
}

function backoffMs(attempts: number): number {
  return Math.min(60_000, 500 * 2 ** Math.max(0, attempts - 1));
}

export class OutboxSender {
  private readonly pacers = new Map<number, InstallationPacer>();
  private readonly loops = new Map<number, { wake: () => void; done: Promise<void> }>();
  private readonly idleWaiters = new Set<() => void>();
  private poller: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly pollMs: number;

  constructor(private readonly o: SenderOptions) {
    this.pollMs = o.pollMs ?? 1000;
  }

  start(): void {
    const poll = async () => {
      for (const id of await installationsWithDueWrites(this.o.db, this.pollMs)) this.kick(id);
    };
    this.poller = setInterval(() => void poll().catch((err: unknown) => this.o.log.warn({ err: (err as Error).message }, "outbox poll failed")), this.pollMs);
    this.poller.unref();
    void poll().catch(() => {});
  }

  pacer(installationId: number): InstallationPacer {
    let p = this.pacers.get(installationId);
    if (!p) this.pacers.set(installationId, (p = new InstallationPacer(this.o.pacing, this.o.now)));
    return p;
  }

  /** A write for this installation was added (or is due): its loop runs, or wakes. */
  kick(installationId: number): void {
    if (this.stopped) return;
    const running = this.loops.get(installationId);
    if (running) return running.wake();
    let wake: () => void = () => {};
    let woken = false;
    const loop = {
      wake: () => {
        woken = true;
        wake();
      },
      done: Promise.resolve(),
    };
    const wait = (ms: number) =>
      new Promise<void>((resolve) => {
        if (woken || this.stopped) return resolve();
        const t = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      }).finally(() => {
        woken = false;
        wake = () => {};
      });
    loop.done = this.drain(installationId, wait)
      .catch((err: unknown) => this.o.log.error({ err, installation: installationId }, "outbox loop failed"))
      .finally(() => {
        this.loops.delete(installationId);
        if (this.loops.size === 0) for (const w of this.idleWaiters) w();
        // A write added while the loop was leaving.
        if (woken && !this.stopped) this.kick(installationId);
      });
    this.loops.set(installationId, loop);
  }

  private async drain(installationId: number, wait: (ms: number) => Promise<void>): Promise<void> {
    const pacer = this.pacer(installationId);
    while (!this.stopped) {
      const maxPriority = pacer.maxPriorityNow();
      const row = maxPriority >= 0 ? await claimNext(this.o.db, installationId, maxPriority, this.o.owner) : null;
      if (row) {
        pacer.take();
        await this.send(row, pacer);
        continue;
      }
      const due = await pendingDue(this.o.db, installationId);
      if (due.length === 0) return;
      // The earliest moment one of them may go: its due time, and a token for its class.
      const next = Math.min(...due.map((d) => Math.max(d.dueInMs, pacer.waitMs(classOf(d.priority)))));
      // Due and allowed, yet not claimed: its object has a write in flight elsewhere; look again later.
      await wait(next > 0 ? Math.min(next, this.pollMs) : this.pollMs);
    }
  }

  private async send(row: OutboxRow, pacer: InstallationPacer): Promise<void> {
    const log = this.o.log.child({ outbox_id: row.id, kind: row.kind, installation: Number(row.installation_id) });
    try {
      const gh = await this.o.clientFor(Number(row.installation_id));
      const done = await performWrite(this.o.db, gh, row);
      if (done.skipped) await markFailed(this.o.db, row.id, done.skipped);
      else await markSent(this.o.db, row, done.result, done.created);
      if (done.forget) await forgetObject(this.o.db, done.forget);
    } catch (err) {
      const limited = rateLimitOf(err);
      const message = (err as Error).message ?? String(err);
      if (limited) {
        log.warn({ pause_ms: limited.pauseMs }, "GitHub asked to slow down: pausing this installation's writes");
        pacer.pause(limited.pauseMs);
        await requeue(this.o.db, row, 0, message, { refundAttempt: true });
      } else if (isTransient(err) && row.attempts < MAX_ATTEMPTS) {
        log.warn({ err: message, attempt: row.attempts }, "GitHub write failed; will send it again");
        await requeue(this.o.db, row, backoffMs(row.attempts), message);
      } else {
        log.warn({ err: message, status: (err as { status?: number }).status }, "GitHub refused the write");
        await markFailed(this.o.db, row.id, message);
      }
    }
  }

  /**
   * A write that must reach GitHub at most once, sent now by its caller (who needs the answer):
   * recorded as in flight before the call, so a crash leaves it `unknown`, never resent. The
   * idempotency key ties it to its cause: calling again returns the first outcome.
   */
  async sendOnce(w: Omit<NewWrite, "sendOnce" | "claimAs" | "priority"> & { idempotencyKey: string; cls?: WriteClass }): Promise<SendOnceOutcome> {
    const { row, existing } = await enqueueWrite(this.o.db, { ...w, priority: PRIORITY[w.cls ?? "final"], sendOnce: true, claimAs: this.o.owner });
    if (existing) return outcomeOf(row);
    const installationId = w.installationId;
    const pacer = this.pacer(installationId);
    for (;;) {
      const ms = pacer.waitMs(w.cls ?? "final");
      if (ms > 0) {
        await new Promise((r) => setTimeout(r, ms));
        continue;
      }
      pacer.take();
      try {
        const gh = await this.o.clientFor(installationId);
        const done = await performWrite(this.o.db, gh, row);
        await markSent(this.o.db, row, done.result);
        return { state: "sent", result: done.result };
      } catch (err) {
        const limited = rateLimitOf(err);
        // GitHub refused before doing anything: safe to wait and send.
        if (limited && limited.pauseMs <= 60_000) {
          pacer.pause(limited.pauseMs);
          continue;
        }
        const message = (err as Error).message ?? String(err);
        if (isTransient(err)) {
          await this.o.db.query("UPDATE github_outbox SET state = 'unknown', last_error = $2, done_at = clock_timestamp() WHERE id = $1", [row.id, message]);
          return { state: "unknown" };
        }
        await markFailed(this.o.db, row.id, message);
        return { state: "failed", error: message, result: null };
      }
    }
  }

  /** Resolves once no loop of this process runs and nothing is due (tests, shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      if (this.loops.size === 0) {
        const due = await installationsWithDueWrites(this.o.db, 0);
        if (due.length === 0 || this.stopped) return;
        for (const id of due) this.kick(id);
      }
      await new Promise<void>((resolve) => {
        const w = () => {
          this.idleWaiters.delete(w);
          resolve();
        };
        this.idleWaiters.add(w);
        if (this.loops.size === 0) w();
      });
    }
  }

  /** Stops taking new work; loops finish what is due within `drainMs`, the rest waits in the outbox. */
  async stop(drainMs = 5000): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((r) => (timer = setTimeout(r, drainMs)))]);
    clearTimeout(timer);
    this.stopped = true;
    for (const l of this.loops.values()) l.wake();
    await Promise.all([...this.loops.values()].map((l) => l.done));
  }
}

function outcomeOf(row: OutboxRow): SendOnceOutcome {
  if (row.state === "sent") return { state: "sent", result: row.result ?? {} };
  if (row.state === "failed") return { state: "failed", error: row.last_error ?? "refused", result: row.result };
  return { state: "unknown" };
}
