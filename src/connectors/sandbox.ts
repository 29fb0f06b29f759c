import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { Writable } from "node:stream";
import Docker from "dockerode";

/** Label on every container the app creates, so a reaper can find orphans. */
export const SANDBOX_LABEL = "io.pr-infra-agent.sandbox";
/** Which worker process created the container (its heartbeat says whether it is alive). */
export const OWNER_LABEL = `${SANDBOX_LABEL}.owner`;
const SANDBOX_USER = "65534:65534";
export const WORKSPACE_MOUNT = "/workspace";

export interface SandboxLimits {
  memoryMb: number;
  cpus: number;
  pids: number;
  /** Bytes of output a step may print before it is stopped. */
  outputLimitBytes: number;
}

export interface SandboxOptions {
  image: string;
  limits: SandboxLimits;
  /** Where per-sandbox workspace directories are made (same path for worker and engine). */
  workspaceRoot: string;
  /** This worker process's id; orphan reaping asks whether the owner is still alive. */
  owner: string;
  /**
   * A Docker `--internal` network to join instead of `none`, for stacks with an egress
   * allowlist: its only way out is the egress proxy. Default: no network at all.
   */
  network?: string | undefined;
}

export interface ExecOptions {
  timeoutMs: number;
  /** Environment for this step only (never in the container's config: `docker inspect` does not show it). */
  env?: Record<string, string>;
  /** Working directory relative to the workspace (already validated), default the workspace. */
  workdir?: string;
  /** Called with output as it arrives (for live check-run updates), decoded per stream. */
  onOutput?: (chunk: string, stream: "stdout" | "stderr") => void;
  /**
   * Output cap for this exec instead of the sandbox's; for the app's own reads of files the
   * engine wrote (a 10,000-resource plan is larger than a step's log limit).
   */
  outputLimitBytes?: number;
}

export interface ExecResult {
  exitCode: number | null;
  timedOut: boolean;
  outputLimitExceeded: boolean;
  durationMs: number;
  /** Last bytes of combined stdout/stderr. */
  tail: string;
  totalBytes: number;
}

/** Kernel counters that explain a failed step: the cgroup OOM killer or the pids limit. */
export interface LimitEvents {
  oomKills: number;
  pidsLimitHits: number;
}

/** A sandbox could not be created or driven: the engine's fault, worth a retry. */
export class SandboxError extends Error {
  override name = "SandboxError";
}

const TAIL_BYTES = 64 * 1024;

/** Keeps the last `size` bytes of a stream in a fixed buffer: memory stays flat. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private length = 0;
  total = 0;
  constructor(private readonly size: number) {}
  push(chunk: Buffer): void {
    this.total += chunk.length;
    this.chunks.push(chunk);
    this.length += chunk.length;
    while (this.length - (this.chunks[0]?.length ?? 0) >= this.size) {
      this.length -= this.chunks.shift()!.length;
    }
  }
  toString(): string {
    const all = Buffer.concat(this.chunks);
    let start = Math.max(0, all.length - this.size);
    // Do not start in the middle of a multi-byte character (UTF-8 continuation bytes).
    while (start > 0 && start < all.length && (all[start]! & 0xc0) === 0x80) start++;
    return all.subarray(start).toString("utf8");
  }
}

/**
 * One container for one task, with its own empty workspace directory mounted at /workspace.
 * Locked down: network none, unprivileged user, no capabilities, no-new-privileges, read-only
 * root with a small tmpfs, memory (no swap) / CPU / pids limits, Docker's default seccomp.
 */
export class Sandbox {
  /** Called once the sandbox is destroyed (the pool refills then, when the CPU is free again). */
  onDestroyed: (() => void) | null = null;
  /** kill() was called (a timeout, output flood, shutdown or cancellation stopped the steps). */
  private killed = false;

  private constructor(
    private readonly docker: Docker,
    readonly container: Docker.Container,
    readonly workspaceDir: string,
    readonly image: string,
    private readonly limits: SandboxLimits,
  ) {}

  /** Makes a fresh workspace and creates and starts a container on it. */
  static async create(docker: Docker, opts: SandboxOptions): Promise<Sandbox> {
    await mkdir(opts.workspaceRoot, { recursive: true, mode: 0o700 });
    const workspaceDir = await mkdtemp(join(opts.workspaceRoot, `${opts.owner}-`));
    // The sandbox user is not the worker's user: let it write its own workspace.
    await chmod(workspaceDir, 0o777);
    let container: Docker.Container;
    try {
      container = await docker.createContainer({
        Image: opts.image,
        // An idle init process; steps run as execs, so a started container can wait in a pool.
        Cmd: ["sleep", "infinity"],
        User: SANDBOX_USER,
        WorkingDir: WORKSPACE_MOUNT,
        Env: ["HOME=/tmp"],
        Labels: { [SANDBOX_LABEL]: "1", [OWNER_LABEL]: opts.owner },
        NetworkDisabled: !opts.network,
        HostConfig: {
          NetworkMode: opts.network ?? "none",
          Memory: opts.limits.memoryMb * 1024 * 1024,
          MemorySwap: opts.limits.memoryMb * 1024 * 1024,
          NanoCpus: Math.round(opts.limits.cpus * 1e9),
          PidsLimit: opts.limits.pids,
          CapDrop: ["ALL"],
          SecurityOpt: ["no-new-privileges"],
          Privileged: false,
          ReadonlyRootfs: true,
          Tmpfs: { "/tmp": "rw,nosuid,nodev,size=256m" },
          Binds: [`${workspaceDir}:${WORKSPACE_MOUNT}:rw`],
        },
      });
    } catch (err) {
      await rm(workspaceDir, { recursive: true, force: true });
      throw new SandboxError(`could not create the sandbox container: ${(err as Error).message}`);
    }
    const sandbox = new Sandbox(docker, container, workspaceDir, opts.image, opts.limits);
    try {
      await container.start();
    } catch (err) {
      await sandbox.destroy();
      throw new SandboxError(`could not start the sandbox container: ${(err as Error).message}`);
    }
    return sandbox;
  }

  /** Runs one argv inside the container. No shell is involved unless argv names one. */
  async exec(argv: string[], opts: ExecOptions): Promise<ExecResult> {
    const started = Date.now();
    const workdir = !opts.workdir || opts.workdir === "." ? WORKSPACE_MOUNT : `${WORKSPACE_MOUNT}/${opts.workdir}`;
    let exec: Docker.Exec;
    let stream: NodeJS.ReadWriteStream;
    try {
      exec = await this.container.exec({
        Cmd: argv,
        User: SANDBOX_USER,
        WorkingDir: workdir,
        Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      stream = await exec.start({ hijack: true, stdin: false });
    } catch (err) {
      throw new SandboxError(`could not run a step in the sandbox: ${(err as Error).message}`);
    }
    const tail = new TailBuffer(TAIL_BYTES);
    let timedOut = false;
    let outputLimitExceeded = false;
    let killing: Promise<void> | null = null;
    const stop = () => (killing ??= this.kill());
    // One decoder per stream: a character split across chunks must not reach onOutput broken.
    const limit = opts.outputLimitBytes ?? this.limits.outputLimitBytes;
    const sink = (name: "stdout" | "stderr") => {
      const decoder = new StringDecoder("utf8");
      return new Writable({
        write: (chunk: Buffer, _enc, cb) => {
          if (!outputLimitExceeded) {
            tail.push(chunk);
            const text = decoder.write(chunk);
            if (text) opts.onOutput?.(text, name);
            if (tail.total > limit) {
              outputLimitExceeded = true;
              void stop();
            }
          }
          cb();
        },
      });
    };
    this.docker.modem.demuxStream(stream, sink("stdout"), sink("stderr"));
    const timer = setTimeout(() => {
      timedOut = true;
      void stop();
    }, opts.timeoutMs);
    try {
      await new Promise<void>((resolve) => {
        stream.on("end", resolve);
        stream.on("close", resolve);
        stream.on("error", () => resolve());
      });
    } finally {
      clearTimeout(timer);
    }
    // After a kill, return only once the container has really stopped.
    if (killing) await killing;
    let exitCode: number | null = null;
    try {
      exitCode = (await exec.inspect()).ExitCode ?? null;
    } catch (err) {
      // Stopped on purpose (killed): no exit code. Otherwise the step's output ended because the
      // engine went away (restarted, crashed: its container and the exec died with it), not
      // because the step failed: the engine's fault, retried like any other SandboxError.
      if (!killing && !this.killed) {
        throw new SandboxError(`lost the step's sandbox: the container engine stopped answering while the step ran (${(err as Error).message})`);
      }
      exitCode = null;
    }
    return {
      exitCode: timedOut || outputLimitExceeded ? null : exitCode,
      timedOut,
      outputLimitExceeded,
      durationMs: Date.now() - started,
      tail: tail.toString(),
      totalBytes: tail.total,
    };
  }

  /**
   * Reads the container's cgroup counters (v1 or v2 layout) to explain a failure: an OOM kill
   * or the pids limit. Zeroes when the container is gone or the files are not there.
   *
   * Shell builtins only (no `cat`): after a fork bomb the container has no process to spare.
   * When even the reading shell cannot start, the engine's stats (no process needed) tell
   * whether the container sits at its process limit.
   */
  async limitEvents(): Promise<LimitEvents> {
    const files = "/sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events /sys/fs/cgroup/pids/pids.events /sys/fs/cgroup/pids.events";
    const script = `for f in ${files}; do [ -r "$f" ] && while IFS= read -r l; do echo "$l"; done < "$f"; done; true`;
    let oomKills = 0;
    let pidsLimitHits = 0;
    try {
      const res = await this.exec(["sh", "-c", script], { timeoutMs: 5000 });
      oomKills = Number(/^oom_kill (\d+)$/m.exec(res.tail)?.[1] ?? 0);
      pidsLimitHits = Number(/^max (\d+)$/m.exec(res.tail)?.[1] ?? 0);
    } catch {
      // fall through to the stats
    }
    if (pidsLimitHits === 0) {
      try {
        const stats = (await this.container.stats({ stream: false })) as { pids_stats?: { current?: number; limit?: number } };
        const { current, limit } = stats.pids_stats ?? {};
        // A bomb oscillates just under the limit (processes die, others fork): within 10% counts.
        if (current !== undefined && limit !== undefined && limit > 0 && current >= limit * 0.9) pidsLimitHits = 1;
      } catch {
        // the container is gone: nothing more to learn
      }
    }
    return { oomKills, pidsLimitHits };
  }

  async isRunning(): Promise<boolean> {
    try {
      return Boolean((await this.container.inspect()).State.Running);
    } catch {
      return false;
    }
  }

  /** Stops everything in the container at once (timeout, output flood, shutdown). */
  async kill(): Promise<void> {
    this.killed = true;
    await this.container.kill().catch(() => {});
    await this.container.wait().catch(() => {});
  }

  /** Always called, whatever happened: neither the container nor its workspace outlives the task. */
  async destroy(): Promise<void> {
    try {
      await this.container.remove({ force: true, v: true }).catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
    } finally {
      // Even when the engine cannot remove the container now (it is restarting): the workspace
      // is the worker's own, and the dead container is removed by the reaper once the engine
      // answers again (a stopped sandbox container serves no one).
      await rm(this.workspaceDir, { recursive: true, force: true });
      const done = this.onDestroyed;
      this.onDestroyed = null;
      done?.();
    }
  }
}

/**
 * Started, idle, never-used sandboxes of one image, so a task gets a running container at once
 * instead of waiting for create + start. Each is handed out exactly once and destroyed by its
 * task; the pool refills in the background. Cold creation is the fallback.
 */
export class SandboxPool {
  private readonly idle: Sandbox[] = [];
  private filling = 0;
  private closed = false;
  private refill: Promise<void> = Promise.resolve();

  constructor(
    private readonly docker: Docker,
    private readonly opts: SandboxOptions & { size: number },
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  get image(): string {
    return this.opts.image;
  }

  /** Idle containers ready now. */
  get ready(): number {
    return this.idle.length;
  }

  /** Ids of the idle containers (not handed to any task yet). */
  get idleIds(): string[] {
    return this.idle.map((sb) => sb.container.id);
  }

  /** Resolves when no refill is in flight. */
  async settled(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.refill;
      await current.catch(() => {});
    } while (current !== this.refill);
  }

  /** Starts filling (at most `count` more); resolves when that filling is done (or failed). */
  fill(count = Infinity): Promise<void> {
    const missing = Math.min(count, this.opts.size - this.idle.length - this.filling);
    if (this.closed || missing <= 0) return this.refill;
    this.filling += missing;
    const batch = Array.from({ length: missing }, async () => {
      try {
        const sb = await Sandbox.create(this.docker, this.opts);
        if (this.closed) await sb.destroy();
        else this.idle.push(sb);
      } catch (err) {
        this.onError(err);
      } finally {
        this.filling--;
      }
    });
    // Chained, so settled() waits for every batch still in flight, not just the newest.
    this.refill = Promise.all([this.refill.catch(() => {}), ...batch]).then(() => {});
    return this.refill;
  }

  /**
   * A started sandbox: a warm one when available (checked alive), otherwise a cold one. The
   * replacement is started when the task gives its sandbox back (destroy), not while its steps
   * run: on a small machine a concurrent container start slows the task's own execs down.
   * An empty pool starts refilling at once.
   */
  async acquire(): Promise<{ sandbox: Sandbox; warm: boolean }> {
    while (this.idle.length > 0) {
      const sb = this.idle.shift()!;
      if (await sb.isRunning()) {
        sb.onDestroyed = () => void this.fill(1);
        return { sandbox: sb, warm: true };
      }
      await sb.destroy().catch(() => {});
    }
    void this.fill();
    return { sandbox: await Sandbox.create(this.docker, this.opts), warm: false };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.refill.catch(() => {});
    const all = this.idle.splice(0);
    await Promise.all(all.map((sb) => sb.destroy().catch(() => {})));
  }
}

/** Hands out sandboxes: pooled for the default image, cold for any other allowed image. */
export class SandboxProvider {
  private readonly pool: SandboxPool | null;
  constructor(
    private readonly docker: Docker,
    private readonly opts: SandboxOptions & { poolSize: number },
    onError?: (err: unknown) => void,
  ) {
    this.pool = opts.poolSize > 0 ? new SandboxPool(docker, { ...opts, size: opts.poolSize }, onError) : null;
  }

  start(): Promise<void> {
    return this.pool?.fill() ?? Promise.resolve();
  }

  /** Containers waiting in the pool, i.e. not serving a task. */
  get idleIds(): string[] {
    return this.pool?.idleIds ?? [];
  }

  /** Resolves when the pool is not creating containers. */
  settled(): Promise<void> {
    return this.pool?.settled() ?? Promise.resolve();
  }

  /** Pooled containers have no network; a sandbox that needs the egress network is made cold. */
  async acquire(image: string, network?: string): Promise<{ sandbox: Sandbox; warm: boolean }> {
    if (this.pool && image === this.pool.image && !network) return this.pool.acquire();
    return { sandbox: await Sandbox.create(this.docker, { ...this.opts, image, network }), warm: false };
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}

export function newOwnerId(): string {
  return `w${randomBytes(6).toString("hex")}`;
}

export interface ReapOptions {
  /** This process's owner id: its own containers are left alone (except when too old). */
  self: string;
  /** Whether another worker process is still alive (its heartbeat). */
  isOwnerAlive: (owner: string) => Promise<boolean>;
  /** Containers older than this are removed whoever owns them. */
  maxAgeSeconds: number;
  /**
   * This deployment's SANDBOX_WORKSPACE_ROOT. When given, only containers whose workspace is
   * mounted from under it are considered (another deployment on the same engine keeps its
   * heartbeats under another queue prefix: its live owners would look dead from here), and
   * the workspace directories of dead owners under it are removed too.
   */
  workspaceRoot?: string;
}

/**
 * Removes what crashed workers left behind: labelled containers whose owner is dead, any older
 * than the longest a task may take, any that have stopped (no sandbox is of use once its
 * container has exited: an engine restart kills them all, and a task could not remove its own
 * while the engine was away), and the dead owners' workspace directories. Safe to run from
 * several workers on one engine at once.
 */
export async function reapOrphanSandboxes(docker: Docker, opts: ReapOptions): Promise<number> {
  const all = await docker.listContainers({ all: true, filters: { label: [SANDBOX_LABEL] } });
  const root = opts.workspaceRoot ? `${resolve(opts.workspaceRoot)}/` : null;
  const list = root ? all.filter((c) => (c.Mounts ?? []).some((m) => m.Destination === WORKSPACE_MOUNT && m.Source.startsWith(root))) : all;
  const now = Date.now() / 1000;
  const alive = new Map<string, boolean>([[opts.self, true]]);
  const ownerAlive = async (owner: string) => {
    if (!alive.has(owner)) alive.set(owner, owner !== "" && (await opts.isOwnerAlive(owner)));
    return alive.get(owner)!;
  };
  let removed = 0;
  for (const info of list) {
    const tooOld = now - info.Created > opts.maxAgeSeconds;
    // "exited"/"dead" only: a "created" container is one being started right now.
    const stopped = info.State === "exited" || info.State === "dead";
    if (!tooOld && !stopped && (await ownerAlive(info.Labels[OWNER_LABEL] ?? ""))) continue;
    await docker
      .getContainer(info.Id)
      .remove({ force: true, v: true })
      .then(() => removed++)
      .catch(() => {});
  }
  if (opts.workspaceRoot) {
    const entries = await readdir(opts.workspaceRoot).catch(() => [] as string[]);
    for (const name of entries) {
      const owner = name.split("-")[0] ?? "";
      if (!/^w[0-9a-f]{12}$/.test(owner) || (await ownerAlive(owner))) continue;
      await rm(join(opts.workspaceRoot, name), { recursive: true, force: true }).catch(() => {});
    }
  }
  return removed;
}
