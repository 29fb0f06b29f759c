import { StringDecoder } from "node:string_decoder";
import { Writable } from "node:stream";
import Docker from "dockerode";

/** Label on every container the app creates, so a reaper can find orphans. */
export const SANDBOX_LABEL = "io.pr-infra-agent.sandbox";
const SANDBOX_USER = "65534:65534";
const WORKSPACE_MOUNT = "/workspace";

export interface SandboxLimits {
  memoryMb: number;
  cpus: number;
  pids: number;
  /** Bytes of output a step may print before it is stopped. */
  outputLimitBytes: number;
}

export interface SandboxSpec {
  image: string;
  /** Host directory holding this task's checkout; the only host path mounted. */
  workspaceDir: string;
  /** Working directory inside the workspace, relative (already validated). */
  workdir: string;
  env: Record<string, string>;
  taskId: string;
  limits: SandboxLimits;
}

export interface ExecOptions {
  timeoutMs: number;
  /** Called with output as it arrives (for live check-run updates). */
  onOutput?: (chunk: string) => void;
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

export class Sandbox {
  private constructor(
    private readonly docker: Docker,
    readonly container: Docker.Container,
    private readonly spec: SandboxSpec,
  ) {}

  /** Creates and starts one fresh container for a task. */
  static async start(docker: Docker, spec: SandboxSpec): Promise<Sandbox> {
    let container: Docker.Container;
    try {
      container = await docker.createContainer({
        Image: spec.image,
        // An idle init process; steps run as execs so one container serves the whole task.
        Cmd: ["sleep", "infinity"],
        User: SANDBOX_USER,
        WorkingDir: WORKSPACE_MOUNT,
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        Labels: { [SANDBOX_LABEL]: "1", [`${SANDBOX_LABEL}.task`]: spec.taskId },
        NetworkDisabled: true,
        HostConfig: {
          NetworkMode: "none",
          Memory: spec.limits.memoryMb * 1024 * 1024,
          MemorySwap: spec.limits.memoryMb * 1024 * 1024,
          NanoCpus: Math.round(spec.limits.cpus * 1e9),
          PidsLimit: spec.limits.pids,
          CapDrop: ["ALL"],
          SecurityOpt: ["no-new-privileges"],
          Privileged: false,
          ReadonlyRootfs: true,
          Tmpfs: { "/tmp": "rw,nosuid,nodev,size=256m" },
          Binds: [`${spec.workspaceDir}:${WORKSPACE_MOUNT}:rw`],
        },
      });
    } catch (err) {
      throw new SandboxError(`could not create the sandbox container: ${(err as Error).message}`);
    }
    const sandbox = new Sandbox(docker, container, spec);
    try {
      await container.start();
    } catch (err) {
      await sandbox.remove();
      throw new SandboxError(`could not start the sandbox container: ${(err as Error).message}`);
    }
    return sandbox;
  }

  /** Runs one argv inside the container. No shell is involved unless argv names one. */
  async exec(argv: string[], opts: ExecOptions): Promise<ExecResult> {
    const started = Date.now();
    const workdir = this.spec.workdir === "." ? WORKSPACE_MOUNT : `${WORKSPACE_MOUNT}/${this.spec.workdir}`;
    const exec = await this.container.exec({
      Cmd: argv,
      User: SANDBOX_USER,
      WorkingDir: workdir,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const tail = new TailBuffer(TAIL_BYTES);
    let timedOut = false;
    let outputLimitExceeded = false;
    let killing: Promise<void> | null = null;
    const stop = () => (killing ??= this.kill());
    // One decoder per stream: a character split across chunks must not reach onOutput broken.
    const sink = () => {
      const decoder = new StringDecoder("utf8");
      return new Writable({
        write: (chunk: Buffer, _enc, cb) => {
          if (!outputLimitExceeded) {
            tail.push(chunk);
            const text = decoder.write(chunk);
            if (text) opts.onOutput?.(text);
            if (tail.total > this.spec.limits.outputLimitBytes) {
              outputLimitExceeded = true;
              void stop();
            }
          }
          cb();
        },
      });
    };
    this.docker.modem.demuxStream(stream, sink(), sink());
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
    } catch {
      exitCode = null; // container already gone (killed)
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

  /** Stops everything in the container at once (timeout, output flood, cancel). */
  async kill(): Promise<void> {
    await this.container.kill().catch(() => {});
    await this.container.wait().catch(() => {});
  }

  /** Always called, whatever happened: the container must not outlive its task. */
  async remove(): Promise<void> {
    await this.container.remove({ force: true, v: true }).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    });
  }
}

/**
 * Removes containers left by a crashed worker: those whose task is no longer running, and
 * any older than the longest a task may take. Safe with several workers on one engine.
 */
export async function reapOrphanSandboxes(
  docker: Docker,
  isRunning: (taskId: string) => Promise<boolean>,
  maxAgeSeconds: number,
): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [SANDBOX_LABEL] } });
  const now = Date.now() / 1000;
  let removed = 0;
  for (const info of list) {
    const taskId = info.Labels[`${SANDBOX_LABEL}.task`] ?? "";
    const tooOld = now - info.Created > maxAgeSeconds;
    if (!tooOld && (await isRunning(taskId))) continue;
    await docker
      .getContainer(info.Id)
      .remove({ force: true, v: true })
      .then(() => removed++)
      .catch(() => {});
  }
  return removed;
}
