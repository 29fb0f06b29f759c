import type { Queue } from "bullmq";

/**
 * How long a delivery (or a Slack click) may wait for Redis to take it before the answer is 503
 * by default (WebDeps.enqueueTimeoutMs; GitHub gives up on a webhook after 10 s).
 */
export const ENQUEUE_TIMEOUT_MS = 5000;

/**
 * Adds a job, or fails fast: at once when the queue's Redis connection is known to be down,
 * else after `timeoutMs`. An add that timed out may still land once Redis is back (the client
 * resends it); its job id makes GitHub's redelivery of it a no-op in the queue.
 */
export async function boundedAdd(queue: Queue, add: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`Redis did not take the job within ${timeoutMs} ms`)), timeoutMs)));
  try {
    await Promise.race([
      (async () => {
        // The ioredis connection the queue was given (src/connectors/queues.ts): known down means no wait.
        const status = (queue.opts.connection as { status?: unknown } | undefined)?.status;
        if (typeof status === "string" && status !== "ready") throw new Error(`Redis connection is ${status}`);
        const added = add();
        added.catch(() => {}); // may settle after the timeout
        await added;
      })(),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
