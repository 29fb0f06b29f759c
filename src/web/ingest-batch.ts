/**
 * Group commit for webhook deliveries. Each delivery alone costs a Postgres round trip and a
 * Redis round trip; deliveries arriving together are instead written with one INSERT and one
 * BullMQ addBulk, and each request is answered once the batch holding it has committed.
 *
 * A batch is one unit: when Postgres or Redis fails it, every delivery in it is refused and the
 * rows it inserted are deleted again, so GitHub's redelivery of any of them gets through.
 */
import type { Queue } from "bullmq";
import type { Logger } from "pino";
import type { Db } from "../connectors/store/db.js";
import { forgetDeliveries, recordDeliveries, type DeliveryRecord } from "../connectors/store/deliveries.js";
import { WEBHOOK_JOB_OPTIONS, jobIdFrom, type WebhookJobData } from "../connectors/queues.js";
import { boundedAdd } from "./enqueue.js";

/** What happened to one delivery: queued for a worker, recorded only (an event not handled), or seen before. */
export type IngestOutcome = "queued" | "unhandled" | "duplicate";

/** The batch holding the delivery could not be committed; nothing of it is recorded. */
export class IngestUnavailableError extends Error {
  constructor(
    readonly store: "postgres" | "redis",
    options: { cause: unknown },
  ) {
    super(store === "postgres" ? "database unavailable" : "queue unavailable", options);
  }
}

export interface IngestDelivery {
  record: DeliveryRecord;
  /** The job data; built by the caller inside its request's span, so the trace carrier is that span's. */
  data: WebhookJobData;
}

export interface IngestBatcherOptions {
  db: Db;
  queue: Queue<WebhookJobData>;
  /** Events that become a job; the others are only recorded. */
  handled: ReadonlySet<string>;
  /** Bound on addBulk (boundedAdd): past it the batch is refused. */
  enqueueTimeoutMs: number;
  log: Logger;
  /** A batch is written once it holds this many deliveries… */
  maxBatch?: number;
  /** …or this long after its first one arrived, whichever comes first. */
  maxWaitMs?: number;
}

export interface IngestBatcher {
  /** Resolves once the batch holding `d` committed; rejects (IngestUnavailableError: Postgres or Redis) when it did not. */
  submit(d: IngestDelivery): Promise<IngestOutcome>;
}

interface Waiting {
  d: IngestDelivery;
  resolve(outcome: IngestOutcome): void;
  reject(err: unknown): void;
}

export const DEFAULT_MAX_BATCH = 64;
export const DEFAULT_MAX_WAIT_MS = 2;

export function createIngestBatcher(opts: IngestBatcherOptions): IngestBatcher {
  const maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
  const maxWaitMs = opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
  let pending: Waiting[] = [];
  let timer: NodeJS.Timeout | null = null;

  function flush(): void {
    if (timer) clearTimeout(timer);
    timer = null;
    const batch = pending;
    pending = [];
    // commit answers every waiter itself; this only catches its own bugs (a settled promise ignores it).
    if (batch.length > 0) void commit(batch).catch((err: unknown) => batch.forEach((w) => w.reject(err)));
  }

  async function commit(batch: Waiting[]): Promise<void> {
    // The first of an id in the batch is the one written; any later one is a duplicate of it.
    const first = new Map<string, IngestDelivery>();
    for (const w of batch) if (!first.has(w.d.record.id)) first.set(w.d.record.id, w.d);
    const candidates = [...first.values()];

    let fresh: Set<string>;
    try {
      fresh = await recordDeliveries(opts.db, candidates.map((d) => d.record));
    } catch (cause) {
      opts.log.error({ err: cause, deliveries: batch.length }, "could not record a batch of deliveries");
      const err = new IngestUnavailableError("postgres", { cause });
      for (const w of batch) w.reject(err);
      return;
    }

    const jobs = candidates
      .filter((d) => fresh.has(d.record.id) && opts.handled.has(d.record.event))
      .map((d) => ({ name: d.record.event, data: d.data, opts: { ...WEBHOOK_JOB_OPTIONS, jobId: jobIdFrom(["wh", d.record.id]) } }));
    if (jobs.length > 0) {
      try {
        await boundedAdd(opts.queue, () => opts.queue.addBulk(jobs), opts.enqueueTimeoutMs);
      } catch (cause) {
        // Not recorded as seen, so GitHub's redelivery gets through. addBulk is a pipeline, not
        // a transaction: jobs that did land make that redelivery's add a no-op (same job id).
        await forgetDeliveries(opts.db, [...fresh]).catch((err: unknown) => opts.log.error({ err, deliveries: fresh.size }, "could not forget a batch of deliveries"));
        opts.log.error({ err: cause, deliveries: batch.length }, "could not enqueue a batch of deliveries");
        const err = new IngestUnavailableError("redis", { cause });
        for (const w of batch) w.reject(err);
        return;
      }
    }

    const answered = new Set<string>();
    for (const w of batch) {
      const { id, event } = w.d.record;
      if (!fresh.has(id) || answered.has(id)) {
        w.resolve("duplicate");
        continue;
      }
      answered.add(id);
      w.resolve(opts.handled.has(event) ? "queued" : "unhandled");
    }
  }

  return {
    submit(d) {
      return new Promise<IngestOutcome>((resolve, reject) => {
        pending.push({ d, resolve, reject });
        if (pending.length >= maxBatch) flush();
        else timer ??= setTimeout(flush, maxWaitMs);
      });
    },
  };
}
