import type { Redis } from "ioredis";

/**
 * Cross-worker cancellation of running tasks: whoever cancels a task (in the database)
 * publishes its id; the worker running it aborts, which kills its sandbox at once.
 */
export class TaskCancellation {
  private readonly running = new Map<string, AbortController>();
  private constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly channel: string,
  ) {}

  static async start(redis: Redis, prefix: string): Promise<TaskCancellation> {
    const subscriber = redis.duplicate();
    const c = new TaskCancellation(redis, subscriber, `${prefix}:cancel-task`);
    subscriber.on("message", (_channel: string, taskId: string) => c.running.get(taskId)?.abort());
    await subscriber.subscribe(c.channel);
    return c;
  }

  /** A signal that fires when the task is cancelled anywhere; call the returned release when done. */
  watch(taskId: string): { signal: AbortSignal; release: () => void } {
    const controller = new AbortController();
    this.running.set(taskId, controller);
    return { signal: controller.signal, release: () => this.running.delete(taskId) };
  }

  async cancel(taskIds: string[]): Promise<void> {
    await publishTaskCancel(this.publisher, this.channel.slice(0, -":cancel-task".length), taskIds);
  }

  async close(): Promise<void> {
    await this.subscriber.quit().catch(() => {});
  }
}

/** Publishes cancellations without subscribing (the break-glass CLI and the web tier). */
export async function publishTaskCancel(redis: Redis, prefix: string, taskIds: string[]): Promise<void> {
  for (const id of taskIds) await redis.publish(`${prefix}:cancel-task`, id);
}
