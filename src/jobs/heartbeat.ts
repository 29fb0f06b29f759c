import type { Redis } from "ioredis";

/**
 * A worker process says it is alive by refreshing a short-lived Redis key. Other workers'
 * reapers treat sandboxes whose owner has no heartbeat as orphans of a crashed process.
 */
export class WorkerHeartbeat {
  private timer: NodeJS.Timeout | null = null;
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly owner: string,
    private readonly ttlSeconds = 30,
  ) {}

  private key(owner: string): string {
    return `${this.prefix}:worker-heartbeat:${owner}`;
  }

  async start(): Promise<void> {
    const beat = () => this.redis.set(this.key(this.owner), String(Date.now()), "EX", this.ttlSeconds);
    await beat();
    this.timer = setInterval(() => void beat().catch(() => {}), (this.ttlSeconds * 1000) / 3);
    this.timer.unref();
  }

  async isAlive(owner: string): Promise<boolean> {
    return (await this.redis.exists(this.key(owner))) === 1;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.del(this.key(this.owner)).catch(() => 0);
  }
}
