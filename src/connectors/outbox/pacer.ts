/**
 * The write budget of one installation: a token bucket (a burst, then a steady rate), where the
 * last tokens are kept for the more urgent classes. An acknowledgement may take the last token;
 * a final result leaves `reserve.final` for acknowledgements; a progress update leaves
 * `reserve.progress`. So a stream of progress updates can never make the next 👀 or queued
 * check run wait for a refill. A secondary-limit answer pauses the bucket until GitHub's
 * `retry-after` has passed. No I/O and no timers: the sender asks and waits itself.
 */

/** Most urgent first: the order in which the outbox drains. */
export const WRITE_CLASSES = ["ack", "final", "progress"] as const;
export type WriteClass = (typeof WRITE_CLASSES)[number];
export const PRIORITY: Record<WriteClass, number> = { ack: 0, final: 1, progress: 2 };

export interface PacingOptions {
  /** Writes allowed at once after a quiet spell. */
  burst: number;
  /** Steady writes per second. */
  perSecond: number;
  /** Tokens a class must leave in the bucket for more urgent classes. */
  reserve: { final: number; progress: number };
}

/** GitHub asks for about a second between writes and caps content creation at 80 a minute. */
export const DEFAULT_PACING: PacingOptions = { burst: 10, perSecond: 1, reserve: { final: 2, progress: 4 } };

export class InstallationPacer {
  private tokens: number;
  private refilledAt: number;
  private pausedUntil = 0;

  constructor(
    private readonly opts: PacingOptions | null,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = opts?.burst ?? 0;
    this.refilledAt = now();
  }

  private refill(): void {
    if (!this.opts) return;
    const t = this.now();
    if (t <= this.refilledAt) return; // paused: the refill starts when the pause ends
    this.tokens = Math.min(this.opts.burst, this.tokens + ((t - this.refilledAt) / 1000) * this.opts.perSecond);
    this.refilledAt = t;
  }

  private floor(cls: WriteClass): number {
    if (!this.opts || cls === "ack") return 0;
    return this.opts.reserve[cls];
  }

  /** The least urgent priority number that may be sent now (-1: none, the bucket is paused or empty). */
  maxPriorityNow(): number {
    if (this.now() < this.pausedUntil) return -1;
    if (!this.opts) return PRIORITY.progress;
    this.refill();
    let allowed = -1;
    for (const cls of WRITE_CLASSES) if (this.tokens >= 1 + this.floor(cls)) allowed = PRIORITY[cls];
    return allowed;
  }

  /** Milliseconds until a write of class `cls` may go (0: now). */
  waitMs(cls: WriteClass): number {
    const paused = Math.max(0, this.pausedUntil - this.now());
    if (!this.opts) return paused;
    this.refill();
    const missing = 1 + this.floor(cls) - this.tokens;
    return Math.max(paused, missing <= 0 ? 0 : Math.ceil((missing / this.opts.perSecond) * 1000));
  }

  /** Spends one token (the caller checked the class was allowed). */
  take(): void {
    if (!this.opts) return;
    this.refill();
    this.tokens = Math.max(0, this.tokens - 1);
  }

  /** GitHub said "slow down" (403/429 with retry-after): nothing is sent before then. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
    this.tokens = 0;
    this.refilledAt = this.now() + ms;
  }

  get paused(): boolean {
    return this.now() < this.pausedUntil;
  }
}

export function classOf(priority: number): WriteClass {
  return WRITE_CLASSES[priority] ?? "progress";
}
