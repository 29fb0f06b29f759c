import type { Logger } from "pino";
import { appendAudit } from "../store/audit.js";
import { parseReviewStackName } from "../../approval/review.js";
import { stackCredentials, type CredentialsConfig, type SecretRef } from "../../config/credentials-config.js";
import { refuseUntrusted, type CredentialRequest, type CredentialSource, type IssuedCredentials } from "../credentials.js";
import { dbNow, type Db } from "../store/db.js";
import {
  markLeaseRevoked,
  markLeaseRevokeFailed,
  markPathsRevoked,
  orphanedLeases,
  recordLease,
  unrevokedLeases,
  type CredentialLease,
} from "../store/leases.js";
import { CredentialError, VaultUnavailableError } from "./errors.js";

export { CredentialError } from "./errors.js";

/** The Vault calls the source needs (a VaultSession in production). */
export interface VaultApi {
  read(path: string): Promise<unknown>;
  revokeLease(leaseId: string): Promise<void>;
  revokePrefix(prefix: string): Promise<void>;
  createChildToken(r: { ttlSeconds: number; meta: Record<string, string> }): Promise<{ token: string; accessor: string }>;
  readAs(token: string, path: string): Promise<unknown>;
  revokeAccessor(accessor: string): Promise<void>;
}

export interface VaultCredentialSourceOptions {
  vault: VaultApi;
  config: Pick<CredentialsConfig, "stacks">;
  db: Db;
  log: Logger;
  /** `vault.task_tokens`: a task's dynamic secrets are read with a child token that dies at the task's lifetime (CredentialRequest.ttlSeconds). */
  taskTokens?: boolean;
}

export interface RecoveryResult {
  revoked: number;
  /** Left unrevoked (with revoke_error) for the next recovery. */
  failed: number;
}

export interface RevokeAllResult {
  leasesRevoked: number;
  leasesFailed: number;
  prefixesRevoked: string[];
  prefixesFailed: string[];
}

/** One Vault read serving one or more task variables. */
interface Read {
  source: SecretRef["source"];
  path: string;
  vars: { name: string; key: string }[];
}

type LeaseRef = Pick<CredentialLease, "leaseId" | "path">;

/**
 * Task credentials from Vault. A task gets exactly the set configured for its stack and kind
 * (a preview never sees deploy mappings); each dynamic lease is recorded in Postgres before
 * the credentials are handed out, so release(), crash recovery and break-glass can revoke it.
 */
export class VaultCredentialSource implements CredentialSource {
  readonly #vault: VaultApi;
  readonly #config: Pick<CredentialsConfig, "stacks">;
  readonly #db: Db;
  readonly #log: Logger;
  readonly #taskTokens: boolean;

  constructor(opts: VaultCredentialSourceOptions) {
    this.#vault = opts.vault;
    this.#config = opts.config;
    this.#db = opts.db;
    this.#log = opts.log;
    this.#taskTokens = opts.taskTokens ?? false;
  }

  async forTask(req: CredentialRequest): Promise<IssuedCredentials> {
    refuseUntrusted(req);
    const set = stackCredentials(this.#config, req.stack, req.reviewOf)?.[req.kind] ?? {};
    const env: Record<string, string> = {};
    const issued: LeaseRef[] = [];
    const reads = groupReads(set);
    // Vault itself ends the task's dynamic credentials at its lifetime: they belong to a child token that dies then.
    const child = this.#taskTokens && req.ttlSeconds && reads.some((r) => r.source === "dynamic") ? await this.#childToken(req, req.ttlSeconds) : null;
    const endChild = async () => {
      if (!child) return;
      await this.#vault.revokeAccessor(child.accessor).catch((err: Error) => this.#log.warn({ err: err.message, task: req.taskId }, "could not revoke the task's Vault token; it expires by itself"));
    };
    try {
      for (const read of reads) {
        const body = await this.#read(read, read.source === "dynamic" ? child?.token : undefined);
        let values: unknown;
        if (read.source === "dynamic") {
          const lease = await this.#recordLease(req, read, body);
          if (lease) issued.push(lease);
          values = (body as { data?: unknown } | null)?.data;
        } else {
          values = (body as { data?: { data?: unknown } } | null)?.data?.data;
        }
        for (const v of read.vars) env[v.name] = pick(values, v, read.path);
      }
    } catch (err) {
      // Nothing half-issued stays alive: what was leased before the failure goes back now.
      await this.#release(issued);
      await endChild();
      throw err;
    }
    await this.#audit(req, "credentials.issued", { variables: Object.keys(env).sort(), paths: [...new Set(reads.map((r) => r.path))], leases: issued.map((l) => l.leaseId), ...(child ? { token_ttl_seconds: req.ttlSeconds } : {}) });
    let released: Promise<void> | null = null;
    const release = async () => {
      await this.#release(issued);
      await endChild();
      if (issued.length) await this.#audit(req, "credentials.revoked", { leases: issued.map((l) => l.leaseId) });
    };
    return { env, release: () => (released ??= release()) };
  }

  /** Credential issue and revoke are audited (names, paths and lease ids; never a value). */
  async #audit(req: CredentialRequest, action: "credentials.issued" | "credentials.revoked", detail: Record<string, unknown>): Promise<void> {
    await appendAudit(this.#db, { actor: "agent", action, repo: req.repo, taskId: req.taskId, detail: { stack: req.stack, kind: req.kind, ...detail } }).catch((err: unknown) =>
      this.#log.error({ err: (err as Error).message, action }, "could not audit the credentials"),
    );
  }

  /**
   * Revokes the recorded, unrevoked leases of tasks that are no longer RUNNING: those of a
   * worker that died before release(). Run at worker start.
   */
  async recoverLeases(): Promise<RecoveryResult> {
    const leases = await orphanedLeases(this.#db);
    const result: RecoveryResult = { revoked: 0, failed: 0 };
    for (const [i, lease] of leases.entries()) {
      const err = await this.#revoke(lease);
      if (!err) result.revoked++;
      else if (err instanceof VaultUnavailableError) {
        // No point in timing out once per lease: the rest waits for the next recovery.
        result.failed += leases.length - i;
        break;
      } else result.failed++;
    }
    if (leases.length) this.#log.info({ ...result }, "recovered credential leases of tasks that are no longer running");
    return result;
  }

  /**
   * Break-glass: revokes, in Vault, everything issued under the dynamic paths of a stack (its
   * own set, or the "*" set it uses; every stack without a filter) and of the leases recorded
   * for it, by prefix; then marks the rows. Leases of a path whose prefix revocation failed
   * (e.g. no `sudo` on sys/leases/revoke-prefix) are revoked one by one instead.
   */
  async revokeAll(filter: { stack?: string } = {}): Promise<RevokeAllResult> {
    const startedAt = await dbNow(this.#db);
    const leases = await unrevokedLeases(this.#db, filter);
    const paths = new Set([...this.#configuredDynamicPaths(filter.stack), ...leases.map((l) => l.path)]);
    const result: RevokeAllResult = { leasesRevoked: 0, leasesFailed: 0, prefixesRevoked: [], prefixesFailed: [] };
    for (const path of [...paths].sort()) {
      try {
        await this.#vault.revokePrefix(path);
        result.prefixesRevoked.push(path);
      } catch (err) {
        this.#log.error({ path, err: (err as Error).message }, "break-glass: prefix revocation failed");
        result.prefixesFailed.push(path);
      }
    }
    // Rows of other stacks sharing a revoked path are revoked too, and counted.
    result.leasesRevoked += await markPathsRevoked(this.#db, result.prefixesRevoked, startedAt);
    const done = new Set(result.prefixesRevoked);
    for (const lease of leases.filter((l) => !done.has(l.path))) {
      if (await this.#revoke(lease)) result.leasesFailed++;
      else result.leasesRevoked++;
    }
    this.#log.warn({ stack: filter.stack ?? "*", ...result }, "break-glass: credential leases revoked");
    return result;
  }

  /** The task's child token; refused (the app's policy lacks `auth/token/create`), the task gets nothing. */
  async #childToken(req: CredentialRequest, ttlSeconds: number): Promise<{ token: string; accessor: string }> {
    try {
      return await this.#vault.createChildToken({ ttlSeconds, meta: { task: req.taskId, repo: req.repo, stack: req.stack, kind: req.kind } });
    } catch (err) {
      const first = Object.keys(stackCredentials(this.#config, req.stack, req.reviewOf)?.[req.kind] ?? {})[0] ?? null;
      throw new CredentialError(`cannot create the task's Vault token (vault.task_tokens; the app's policy needs "update" on auth/token/create): ${(err as Error).message}`, first, "auth/token/create", { cause: err });
    }
  }

  async #read(read: Read, token?: string): Promise<unknown> {
    try {
      return await (token ? this.#vault.readAs(token, read.path) : this.#vault.read(read.path));
    } catch (err) {
      throw new CredentialError(`${varNames(read)}: cannot read ${read.path}: ${(err as Error).message}`, read.vars[0]!.name, read.path, { cause: err });
    }
  }

  /** Records the lease before anything else can fail; an unrecordable lease is revoked at once. */
  async #recordLease(req: CredentialRequest, read: Read, body: unknown): Promise<LeaseRef | null> {
    const b = body as { lease_id?: unknown; lease_duration?: unknown } | null;
    // Some dynamic engines hand out credentials without a revocable lease.
    if (typeof b?.lease_id !== "string" || !b.lease_id) return null;
    const lease = { leaseId: b.lease_id, path: read.path };
    try {
      await recordLease(this.#db, { ...lease, taskId: req.taskId, repo: req.repo, stack: req.stack, kind: req.kind, ttlSeconds: Number(b.lease_duration) || 0 });
    } catch (err) {
      // Unrecorded, it could not be found again after a crash: give it back now.
      await this.#vault.revokeLease(lease.leaseId).catch((e: Error) => this.#log.error({ leaseId: lease.leaseId, err: e.message }, "could not revoke an unrecorded lease"));
      throw new CredentialError(`${varNames(read)}: cannot record the lease from ${read.path}: ${(err as Error).message}`, read.vars[0]!.name, read.path, { cause: err });
    }
    return lease;
  }

  /** Revokes leases one by one; never throws (a failure stays recorded for recovery). */
  async #release(leases: LeaseRef[]): Promise<void> {
    for (const lease of leases) await this.#revoke(lease);
  }

  /** Revokes one lease and updates its row; returns the failure, if any, instead of throwing. */
  async #revoke(lease: LeaseRef): Promise<Error | null> {
    try {
      await this.#vault.revokeLease(lease.leaseId);
    } catch (err) {
      const message = (err as Error).message;
      this.#log.error({ leaseId: lease.leaseId, path: lease.path, err: message }, "credential lease revocation failed; left for recovery");
      await markLeaseRevokeFailed(this.#db, lease.leaseId, message).catch(() => {});
      return err as Error;
    }
    try {
      await markLeaseRevoked(this.#db, lease.leaseId);
    } catch (err) {
      // Revoked in Vault, still open in the table: recovery revokes it again, harmlessly.
      this.#log.error({ leaseId: lease.leaseId, err: (err as Error).message }, "lease revoked but not marked");
    }
    return null;
  }

  #configuredDynamicPaths(stack: string | undefined): string[] {
    // A review stack's name (`pr-<n>-<stack>`) may be asked for: its review credentials' paths too (revoking more is safe).
    const review = stack === undefined ? null : parseReviewStackName(stack);
    const sets = stack === undefined ? Object.values(this.#config.stacks) : [stackCredentials(this.#config, stack), ...(review ? [stackCredentials(this.#config, stack, review.base)] : [])].filter((s) => s !== null);
    return sets.flatMap((s) => [...Object.values(s.preview), ...Object.values(s.deploy)]).filter((r) => r.source === "dynamic").map((r) => r.path);
  }
}

/** One read per distinct (source, path): two variables from one dynamic path share one lease. */
function groupReads(set: Record<string, SecretRef>): Read[] {
  const reads = new Map<string, Read>();
  for (const [name, ref] of Object.entries(set)) {
    const id = `${ref.source}:${ref.path}`;
    let read = reads.get(id);
    if (!read) reads.set(id, (read = { source: ref.source, path: ref.path, vars: [] }));
    read.vars.push({ name, key: ref.key });
  }
  return [...reads.values()];
}

/** A variable's value from a secret's data; errors name the variable, key and path only. */
function pick(values: unknown, v: { name: string; key: string }, path: string): string {
  const value = values && typeof values === "object" ? (values as Record<string, unknown>)[v.key] : undefined;
  if (value === undefined || value === null) throw new CredentialError(`${v.name}: key "${v.key}" not found in ${path}`, v.name, path);
  if (typeof value === "object") throw new CredentialError(`${v.name}: key "${v.key}" in ${path} is not a string`, v.name, path);
  return String(value);
}

const varNames = (read: Read) => read.vars.map((v) => v.name).join(", ");
