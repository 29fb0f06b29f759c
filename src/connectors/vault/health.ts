/**
 * Vault's health endpoint (`GET /v1/sys/health`, unauthenticated) and a probe that asks it on
 * an interval, so an outage shows in `/readyz` and `agent_vault_up` without waiting for a task
 * to need a credential.
 *
 * What counts as up, by Vault's documented status codes:
 *  - 200 initialised, unsealed, active: up.
 *  - 429 unsealed standby: up. A standby forwards requests to the active node, so the app's
 *    reads, leases and renewals still succeed through it (this is the node a load balancer in
 *    front of an HA cluster may hand us).
 *  - 473 performance standby: up. It serves reads itself and forwards writes.
 *  - 472 disaster-recovery secondary: down. A DR secondary does not serve client requests until
 *    it is promoted.
 *  - 501 not initialised, 503 sealed, 530 removed from its cluster, any other status, no answer
 *    within the request timeout, no connection: down.
 */
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";

export interface VaultHealth {
  up: boolean;
  /** The HTTP status, or null when Vault did not answer. */
  status: number | null;
  /** Short, for `/readyz` and logs: "active", "sealed (503)", "unreachable: ECONNREFUSED", … */
  state: string;
}

const KNOWN: Record<number, { up: boolean; state: string }> = {
  200: { up: true, state: "active" },
  429: { up: true, state: "standby" },
  473: { up: true, state: "performance standby" },
  472: { up: false, state: "disaster-recovery secondary (472)" },
  501: { up: false, state: "not initialised (501)" },
  503: { up: false, state: "sealed (503)" },
  530: { up: false, state: "removed from its cluster (530)" },
};

export function healthFromStatus(status: number): VaultHealth {
  const known = KNOWN[status];
  return known ? { ...known, status } : { up: false, status, state: `answered ${status}` };
}

/**
 * One `GET <address>/v1/sys/health`. Never throws: no answer is a "down" result. No token and
 * no namespace header: the endpoint is unauthenticated and served from the root namespace.
 * Node's http(s) client, like node-vault's: fetch() refuses some ports outright ("bad port").
 */
export async function fetchVaultHealth(address: string, timeoutMs: number): Promise<VaultHealth> {
  try {
    return healthFromStatus(await statusOf(`${address.replace(/\/+$/, "")}/v1/sys/health`, timeoutMs));
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    const reason = typeof e?.code === "string" ? e.code : typeof e?.message === "string" && e.message ? e.message : "no answer";
    return { up: false, status: null, state: `unreachable: ${reason.slice(0, 120)}` };
  }
}

/** The status of a GET; the body is drained unread. */
function statusOf(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const get = target.protocol === "https:" ? httpsGet : httpGet;
    const req = get(target, { headers: { accept: "application/json" }, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

/** The timers a probe needs (the session's Clock fits), injectable so tests never sleep. */
export interface ProbeTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Runs `check` every `intervalMs` from `start()` until `stop()`; the next round is scheduled
 * when one ends, so a slow Vault never stacks probes up. `probeNow()` runs one round at once
 * (a round in flight is shared) and resolves with its result.
 */
export class HealthProbe<T> {
  readonly #check: () => Promise<T>;
  readonly #intervalMs: number;
  readonly #timers: ProbeTimers;
  #timer: unknown = null;
  #inFlight: Promise<T> | null = null;
  #running = false;

  constructor(opts: { check: () => Promise<T>; intervalMs: number; timers: ProbeTimers }) {
    this.#check = opts.check;
    this.#intervalMs = opts.intervalMs;
    this.#timers = opts.timers;
  }

  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== null) this.#timers.clearTimeout(this.#timer);
    this.#timer = null;
  }

  probeNow(): Promise<T> {
    this.#inFlight ??= this.#check().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  #schedule(): void {
    if (!this.#running) return;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = null;
      // check() reports through its own side effects (the session's reachability); a failure
      // here is already a "down" result, so there is nothing to catch but the unexpected.
      void this.probeNow()
        .catch(() => {})
        .finally(() => this.#schedule());
    }, this.#intervalMs);
  }
}
