/**
 * The Docker sandbox a task's steps run in: creating the container (limits, runtime, tmpfs
 * workspace, no network or the egress network), exec with streaming output and limits, trusted
 * files, the stray-process kill and count, limit events, the warm pool and the orphan reaper.
 * Long (about 770 lines) on purpose: every way a container is created, entered and removed is
 * in one place, so the isolation it promises (docs/sandbox.md) can be read and audited at once.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { PassThrough, Readable, Writable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import Docker from "dockerode";

/** Label on every container the app creates, so a reaper can find orphans. */
export const SANDBOX_LABEL = "io.pr-infra-agent.sandbox";
/** Which worker process created the container (its heartbeat says whether it is alive). */
export const OWNER_LABEL = `${SANDBOX_LABEL}.owner`;
/**
 * Which deployment created it: the resolved SANDBOX_WORKSPACE_ROOT. Another deployment (or a
 * test) on the same engine keeps its own root, so reaping and counting stay within one's own.
 */
export const ROOT_LABEL = `${SANDBOX_LABEL}.root`;
const SANDBOX_USER = "65534:65534";
/** PID 1 and the app's own reads and writes of trusted files: root, but with no capabilities. */
const INIT_USER = "0:0";
export const WORKSPACE_MOUNT = "/workspace";
/**
 * Root-owned (0755) tmpfs for what the app hands a step and the step must not change: the
 * approved plan a deploy applies. The sandbox user can read it, never write or replace it.
 */
export const TRUSTED_DIR = "/agent";
/**
 * PID 1: an idle root process the sandbox user can neither signal nor ptrace, so "kill every
 * process of the sandbox user" leaves it alone. It reaps nothing on purpose: a fork bomb's
 * dead processes keep their pids, so a bomb saturates the pids limit and stops at once
 * instead of churning until the wall clock (the stray-process count ignores zombies).
 */
const INIT_CMD = ["sleep", "infinity"];
/**
 * Counts live processes other than PID 1, root children of PID 1, this shell and its
 * children, and zombies. Builtins only: it must work with the pids limit exhausted.
 */
const STRAY_COUNT_SCRIPT = [
  "n=0",
  "for d in /proc/[0-9]*; do",
  '  p=${d#/proc/}; [ "$p" = 1 ] && continue; [ "$p" = "$$" ] && continue',
  "  s=; pp=; u=",
  '  while read -r k v rest; do case "$k" in State:) s=$v;; PPid:) pp=$v;; Uid:) u=$v;; esac; done < "$d/status" 2>/dev/null || continue',
  '  [ -z "$s" ] && continue; [ "$s" = Z ] && continue; [ "$pp" = "$$" ] && continue',
  '  [ "$pp" = 1 ] && [ "$u" = 0 ] && continue',
  "  n=$((n+1))",
  "done",
  'echo "stray=$n"',
].join("\n");
export const DEFAULT_WORKSPACE_MB = 1024;
/**
 * gVisor's sentry threads and its ptrace stubs are processes of the container's host pids
 * cgroup (≈300 at rest, measured here); without headroom it panics on its next fork.
 */
export const RUNSC_PIDS_OVERHEAD = 512;

export interface SandboxLimits {
  memoryMb: number;
  cpus: number;
  pids: number;
  /** Bytes of output a step may print before it is stopped. */
  outputLimitBytes: number;
  /**
   * Size of the workspace, an in-memory filesystem inside the container (default
   * DEFAULT_WORKSPACE_MB). What a step writes there counts against `memoryMb` too; it never
   * reaches the worker's disk.
   */
  workspaceMb?: number;
}

export interface SandboxOptions {
  image: string;
  limits: SandboxLimits;
  /**
   * Where the worker keeps its short-lived host-side checkouts before they are copied into a
   * sandbox; also names this deployment's containers (ROOT_LABEL).
   */
  workspaceRoot: string;
  /** This worker process's id; orphan reaping asks whether the owner is still alive. */
  owner: string;
  /**
   * A Docker `--internal` network to join instead of `none`, for stacks with an egress
   * allowlist: its only way out is the egress proxy. Default: no network at all.
   */
  network?: string | undefined;
  /** OCI runtime registered with Docker (`runc`, `runsc` for gVisor); default: the engine's default. */
  runtime?: string | undefined;
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
  /**
   * Bytes fed to the process's standard input (closed at the end); none by default. They are
   * sent only once the process has printed something: input that reaches the engine before
   * the process has opened its stdin can be dropped (seen with Docker 20.10), so a command
   * given stdin must print a line first (e.g. `echo ready; exec tar -x`).
   */
  stdin?: Buffer | Readable;
  /**
   * `root` only for the app's own fixed commands on trusted files (TRUSTED_DIR): root without
   * capabilities, which the sandbox user can neither signal nor trace. Steps run as `sandbox`.
   */
  user?: "sandbox" | "root";
  /**
   * The app's own fixed command from the image (tar, cat, kill), which starts nothing that
   * outlives it. Anything else may leave processes behind: stopStrayProcesses() is due.
   */
  internal?: boolean;
}

export interface ExecResult {
  exitCode: number | null;
  timedOut: boolean;
  outputLimitExceeded: boolean;
  durationMs: number;
  /** Last bytes of combined stdout/stderr. */
  tail: string;
  totalBytes: number;
  /**
   * The container stopped by itself while the step ran (nobody killed it and the engine still
   * answers): under gVisor the sandbox dies when a step exceeds its memory or process limit.
   */
  sandboxDied?: boolean;
}

/** Kernel counters that explain a failed step: the cgroup OOM killer or the pids limit; and a full workspace. */
export interface LimitEvents {
  oomKills: number;
  pidsLimitHits: number;
  /** The workspace filesystem had (almost) no space left when it was looked at. */
  workspaceFull?: boolean;
}

/** A sandbox could not be created or driven: the engine's fault, worth a retry. */
export class SandboxError extends Error {
  override name = "SandboxError";
}

/**
 * The sandbox could not be brought to a state the app can trust (a process of the sandbox
 * user survived being killed): whatever it would read next could have been tampered with.
 */
export class SandboxIntegrityError extends Error {
  override name = "SandboxIntegrityError";
}

/** Copying the checkout in failed because it does not fit the workspace. */
export class WorkspaceFullError extends Error {
  override name = "WorkspaceFullError";
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
 * One container for one task. Locked down: network none, steps run as an unprivileged user,
 * no capabilities, no-new-privileges, read-only root, memory (no swap) / CPU / pids limits,
 * Docker's default seccomp. Nothing of the worker's disk is mounted: the workspace is a
 * size-limited in-memory filesystem the checkout is copied into, so a step cannot fill the
 * worker's disk, and what the app trusts lives in a root-owned directory (TRUSTED_DIR).
 */
export class Sandbox {
  /** Called once the sandbox is destroyed (the pool refills then, when the CPU is free again). */
  onDestroyed: (() => void) | null = null;
  /** kill() was called (a timeout, output flood, shutdown or cancellation stopped the steps). */
  private killed = false;
  /** Resolves once the container is no longer running (watched from the first exec on). */
  private stopped: Promise<void> | null = null;
  /** A command that is not the app's own ran since the sandbox was last known quiet. */
  private mayHaveStrays = false;

  private constructor(
    private readonly docker: Docker,
    readonly container: Docker.Container,
    readonly image: string,
    readonly runtime: string | null,
    private readonly limits: SandboxLimits,
    /** Where this sandbox's host-side checkouts are made (SANDBOX_WORKSPACE_ROOT). */
    readonly workspaceRoot: string,
    readonly owner: string,
  ) {}

  /** The workspace's size limit in MB. */
  get workspaceMb(): number {
    return this.limits.workspaceMb ?? DEFAULT_WORKSPACE_MB;
  }

  /** Creates and starts a container with an empty workspace. */
  static async create(docker: Docker, opts: SandboxOptions): Promise<Sandbox> {
    const root = resolve(opts.workspaceRoot);
    const workspaceMb = opts.limits.workspaceMb ?? DEFAULT_WORKSPACE_MB;
    const gvisor = opts.runtime === "runsc";
    let container: Docker.Container;
    try {
      container = await docker.createContainer({
        Image: opts.image,
        // An idle init process; steps run as execs, so a started container can wait in a pool.
        Cmd: INIT_CMD,
        User: INIT_USER,
        WorkingDir: WORKSPACE_MOUNT,
        Env: ["HOME=/tmp"],
        Labels: { [SANDBOX_LABEL]: "1", [OWNER_LABEL]: opts.owner, [ROOT_LABEL]: root },
        NetworkDisabled: !opts.network,
        HostConfig: {
          NetworkMode: opts.network ?? "none",
          ...(opts.runtime ? { Runtime: opts.runtime } : {}),
          Memory: opts.limits.memoryMb * 1024 * 1024,
          MemorySwap: opts.limits.memoryMb * 1024 * 1024,
          NanoCpus: Math.round(opts.limits.cpus * 1e9),
          PidsLimit: opts.limits.pids + (gvisor ? RUNSC_PIDS_OVERHEAD : 0),
          CapDrop: ["ALL"],
          SecurityOpt: ["no-new-privileges"],
          Privileged: false,
          ReadonlyRootfs: true,
          // Docker mounts a tmpfs `noexec` unless told otherwise: the workspace holds the steps' scripts.
          Tmpfs: {
            "/tmp": "rw,nosuid,nodev,size=256m",
            [WORKSPACE_MOUNT]: `rw,exec,nosuid,nodev,size=${workspaceMb}m,uid=65534,gid=65534,mode=0700`,
            [TRUSTED_DIR]: "rw,nosuid,nodev,noexec,size=128m,mode=0755",
          },
        },
      });
    } catch (err) {
      throw new SandboxError(`could not create the sandbox container: ${(err as Error).message}`);
    }
    const sandbox = new Sandbox(docker, container, opts.image, opts.runtime ?? null, opts.limits, root, opts.owner);
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
    if (!opts.internal) this.mayHaveStrays = true;
    const workdir = !opts.workdir || opts.workdir === "." ? WORKSPACE_MOUNT : `${WORKSPACE_MOUNT}/${opts.workdir}`;
    let exec: Docker.Exec;
    let stream: NodeJS.ReadWriteStream;
    try {
      exec = await this.container.exec({
        Cmd: argv,
        User: opts.user === "root" ? INIT_USER : SANDBOX_USER,
        WorkingDir: workdir,
        Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
        AttachStdin: opts.stdin !== undefined,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      stream = await exec.start({ hijack: true, stdin: opts.stdin !== undefined });
    } catch (err) {
      throw new SandboxError(`could not run a step in the sandbox: ${(err as Error).message}`);
    }
    let feedInput = () => {};
    if (opts.stdin !== undefined) {
      const input = Buffer.isBuffer(opts.stdin) ? Readable.from([opts.stdin]) : opts.stdin;
      // A reader that stops early (the process exited) must not crash the worker.
      stream.on("error", () => {});
      input.on("error", () => stream.end());
      let fed = false;
      feedInput = () => {
        if (fed) return;
        fed = true;
        input.pipe(stream as unknown as NodeJS.WritableStream);
      };
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
          feedInput();
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
    // A gVisor sandbox that dies leaves its exec's stream open: the container stopping ends it too.
    let died = false;
    try {
      await new Promise<void>((resolve) => {
        stream.on("end", resolve);
        stream.on("close", resolve);
        stream.on("error", () => resolve());
        if (this.runtime === "runsc") {
          void this.whenStopped().then(() => {
            if (!killing && !this.killed) died = true;
            resolve();
          });
        }
      });
    } finally {
      clearTimeout(timer);
    }
    if (died) {
      (stream as unknown as { destroy?: () => void }).destroy?.();
      // Still answering: the container died, not the engine (that case is an engine fault below).
      const engineUp = await this.container.inspect().then(() => true, () => false);
      if (engineUp) {
        return { exitCode: null, timedOut: false, outputLimitExceeded: false, durationMs: Date.now() - started, tail: tail.toString(), totalBytes: tail.total, sandboxDied: true };
      }
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
   * Copies a host directory (a fresh checkout) into the workspace: a tar stream into `tar -x`
   * run as the sandbox user, so the files are the sandbox user's and the workspace's size
   * limit holds. Throws WorkspaceFullError when it does not fit.
   */
  async copyIn(hostDir: string, timeoutMs = 5 * 60_000): Promise<void> {
    const pack = spawn("tar", ["-C", hostDir, "-cf", "-", "."], { stdio: ["ignore", "pipe", "pipe"] });
    let packError = "";
    pack.stderr.on("data", (d: Buffer) => (packError += d.toString()).slice(0, 2000));
    const packed = new Promise<number | null>((resolve) => pack.on("close", (code) => resolve(code)));
    // Read from the start: Node drains (and drops) a child's unread stdout when the child exits.
    const input = new PassThrough();
    pack.stdout.pipe(input);
    let out = "";
    const res = await this.exec(["sh", "-c", 'echo ready; exec tar -x -f - -C "$1"', "copy-in", WORKSPACE_MOUNT], {
      internal: true,
      timeoutMs,
      stdin: input,
      outputLimitBytes: 64 * 1024,
      onOutput: (chunk) => (out += chunk),
    });
    const packCode = await packed;
    if (packCode !== 0) throw new SandboxError(`could not pack the checkout: ${packError.trim().slice(0, 300) || `tar exited ${packCode}`}`);
    if (res.exitCode === 0) return;
    if (/no space left|wrote only \d+ of \d+ bytes/i.test(out)) {
      throw new WorkspaceFullError(`the checkout does not fit into the sandbox's workspace (limit ${this.workspaceMb} MB)`);
    }
    throw new SandboxError(`could not copy the checkout into the sandbox (exit ${res.exitCode ?? "killed"}): ${out.trim().slice(-300)}`);
  }

  /**
   * Writes a file the steps may read but not change (TRUSTED_DIR, root-owned, mode 0444): the
   * approved plan a deploy applies. Written by root-without-capabilities, read by anyone.
   */
  async writeTrustedFile(name: string, content: string): Promise<string> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`not a trusted file name: ${name}`);
    const path = `${TRUSTED_DIR}/${name}`;
    const res = await this.exec(["sh", "-c", 'echo ready; umask 022 && cat > "$1.tmp" && chmod 0444 "$1.tmp" && mv -f "$1.tmp" "$1"', "write-trusted", path], {
      timeoutMs: 60_000,
      user: "root",
      internal: true,
      stdin: Buffer.from(content, "utf8"),
      outputLimitBytes: 64 * 1024,
    });
    if (res.exitCode !== 0) throw new SandboxError(`could not write ${path} in the sandbox (exit ${res.exitCode ?? "killed"}): ${res.tail.trim().slice(-300)}`);
    return path;
  }

  /**
   * Reads a file inside the container as the sandbox user; null when absent, unreadable or
   * larger than `limitBytes`. Call after stopStrayProcesses() for files a step wrote.
   */
  async readFile(path: string, limitBytes: number): Promise<string | null> {
    let out = "";
    const res = await this.exec(["cat", "--", path], {
      timeoutMs: 60_000,
      internal: true,
      outputLimitBytes: limitBytes,
      onOutput: (chunk, stream) => {
        if (stream === "stdout") out += chunk;
      },
    });
    return res.exitCode === 0 ? out : null;
  }

  /**
   * Kills every process of the sandbox user and checks that nothing but the init and its
   * sleep is left. `kill(-1)` runs as the sandbox user (root here has no CAP_KILL); the count
   * runs as root, which no process of the sandbox user can signal or trace, and reads the
   * kernel's /proc (gVisor's own under runsc), so a survivor cannot hide from it or fake it.
   * Repeated while anything survives (gVisor's kill(-1) can miss a process forked meanwhile).
   * Called before the engine step (nothing a PR's earlier step started survives into it) and
   * after it (nothing survives into reading what it wrote). Throws SandboxIntegrityError.
   */
  async stopStrayProcesses(attempts = 20): Promise<void> {
    // Only the app's own commands ran since the sandbox was last quiet (or ever): nothing to stop.
    if (!this.mayHaveStrays) return;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      await this.exec(["sh", "-c", "kill -KILL -1 2>/dev/null; true"], { timeoutMs: 10_000, outputLimitBytes: 4096, internal: true });
      if (!(await this.isRunning())) throw new SandboxIntegrityError("the sandbox stopped while its processes were being stopped");
      if ((await this.strayProcessCount()) === 0) {
        this.mayHaveStrays = false;
        return;
      }
      // Killed processes take a moment to be reaped: back off briefly, then kill again.
      await delay(Math.min(200, 10 * attempt));
    }
    throw new SandboxIntegrityError("a process in the sandbox survived being killed; nothing it could have touched is trusted");
  }

  /**
   * Live processes in the container besides the init, its sleep and the counting shell:
   * what a step left running. Shell builtins only, run as root.
   */
  async strayProcessCount(): Promise<number> {
    // Slow only while a step's processes still hog the CPU; past the timeout the sandbox is killed.
    // Under gVisor an exec's output stream now and then ends before the last line is delivered
    // (exit 0, no output): that is a lost answer, not an answer, so ask again a few times.
    let exitCode: number | null = null;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const res = await this.exec(["sh", "-c", STRAY_COUNT_SCRIPT], { timeoutMs: 30_000, user: "root", outputLimitBytes: 4096, internal: true });
      const m = /^stray=(\d+)$/m.exec(res.tail);
      if (res.exitCode === 0 && m) return Number(m[1]);
      exitCode = res.exitCode;
      if (res.exitCode !== 0) break;
    }
    throw new SandboxIntegrityError(`could not count the sandbox's processes (exit ${exitCode ?? "killed"})`);
  }

  /**
   * Reads the container's cgroup counters (v1 or v2 layout) to explain a failure: an OOM kill
   * or the pids limit; and whether the workspace is full. Zeroes when the container is gone
   * or the files are not there.
   *
   * Shell builtins only for the counters (no `cat`): after a fork bomb the container has no
   * process to spare. When even the reading shell cannot start, the engine's stats (no
   * process needed) tell whether the container sits at its process limit.
   */
  async limitEvents(): Promise<LimitEvents> {
    const files = "/sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events /sys/fs/cgroup/pids/pids.events /sys/fs/cgroup/pids.events";
    const script = `for f in ${files}; do [ -r "$f" ] && while IFS= read -r l; do echo "$l"; done < "$f"; done; df -Pk ${WORKSPACE_MOUNT} 2>/dev/null; true`;
    let oomKills = 0;
    let pidsLimitHits = 0;
    let workspaceFull = false;
    try {
      const res = await this.exec(["sh", "-c", script], { timeoutMs: 5000, internal: true });
      oomKills = Number(/^oom_kill (\d+)$/m.exec(res.tail)?.[1] ?? 0);
      pidsLimitHits = Number(/^max (\d+)$/m.exec(res.tail)?.[1] ?? 0);
      // `df -P`: Filesystem 1024-blocks Used Available Capacity Mounted-on
      const df = new RegExp(`^\\S+\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+\\S+\\s+${WORKSPACE_MOUNT}$`, "m").exec(res.tail);
      if (df) workspaceFull = Number(df[3]) < Math.max(64, Number(df[1]) / 100);
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
    return { oomKills, pidsLimitHits, workspaceFull };
  }

  /** Resolves when the container stops (or is gone); one watch per sandbox. */
  private whenStopped(): Promise<void> {
    this.stopped ??= this.container.wait({ condition: "not-running" }).then(
      () => {},
      () => {},
    );
    return this.stopped;
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

  /**
   * A directory on the worker for one checkout, named after this worker (the reaper removes
   * those of dead workers). The caller copies it in and removes it.
   */
  async makeHostDir(): Promise<string> {
    await mkdir(this.workspaceRoot, { recursive: true, mode: 0o700 });
    return mkdtemp(join(this.workspaceRoot, `${this.owner}-`));
  }

  /** Always called, whatever happened: the container does not outlive the task. */
  async destroy(): Promise<void> {
    try {
      await this.container.remove({ force: true, v: true }).catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
    } finally {
      // Even when the engine cannot remove the container now (it is restarting): the dead
      // container is removed by the reaper once the engine answers again.
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

  /**
   * Pooled containers have no network and the default runtime; a sandbox that needs the egress
   * network, another image or another runtime (gVisor for untrusted code) is made cold.
   */
  async acquire(image: string, network?: string, runtime?: string): Promise<{ sandbox: Sandbox; warm: boolean }> {
    const runtimeMatches = (runtime ?? null) === (this.opts.runtime ?? null);
    if (this.pool && image === this.pool.image && !network && runtimeMatches) return this.pool.acquire();
    return { sandbox: await Sandbox.create(this.docker, { ...this.opts, image, network, runtime }), warm: false };
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
   * This deployment's SANDBOX_WORKSPACE_ROOT. When given, only containers labelled with it
   * (ROOT_LABEL) are considered (another deployment on the same engine keeps its heartbeats
   * under another queue prefix: its live owners would look dead from here), and the host-side
   * checkout directories of dead owners under it are removed too.
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
  const list = await docker.listContainers({
    all: true,
    filters: { label: opts.workspaceRoot ? [`${ROOT_LABEL}=${resolve(opts.workspaceRoot)}`] : [SANDBOX_LABEL] },
  });
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
