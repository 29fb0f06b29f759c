import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A second, private Docker engine for one test file, so a test can restart (or kill) an engine
 * without touching the shared one at /var/run/docker.sock that other tests use.
 *
 * Everything it owns is under one temp dir: the API socket, the data root (its own overlay2
 * store, its own image copy), the exec root (its own managed containerd, netns, runtime
 * state), the pidfile and its own daemon.json (so /etc/docker/daemon.json is not read). Its
 * containers live under their own cgroup parent, so they can be found (and killed) by cgroup
 * at cleanup without looking at anyone else's. No bridge, no iptables/ip6tables, no
 * masquerading: it changes nothing in the host's network. Live restore is off (the default):
 * a restart stops or kills every container, as a real engine restart does.
 *
 * The app processes reach it through DOCKER_HOST=`host` (dockerode reads DOCKER_HOST). Bind
 * mounts are host paths, so the workers' SANDBOX_WORKSPACE_ROOT works as with the main engine.
 */
export class PrivateDockerd {
  /** Client for this engine. */
  readonly docker: Docker;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private stopped = false;
  /** If the test process exits without stop() (a crash, an interrupted run): no daemon outlives it. */
  private readonly onExit = () => {
    if (this.pid !== null) this.child!.kill("SIGTERM");
  };

  private constructor(
    /** The temp dir holding everything of this engine. */
    readonly dir: string,
    /** Cgroup parent of its containers (cgroupfs driver). */
    readonly cgroupParent: string,
    private readonly storageDriver: string,
  ) {
    this.docker = new Docker({ socketPath: this.socketPath });
    process.once("exit", this.onExit);
  }

  get socketPath(): string {
    return join(this.dir, "docker.sock");
  }

  /** For DOCKER_HOST. */
  get host(): string {
    return `unix://${this.socketPath}`;
  }

  get logPath(): string {
    return join(this.dir, "dockerd.log");
  }

  /** The daemon's pid while it runs. */
  get pid(): number | null {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? this.child.pid! : null;
  }

  /**
   * Starts the engine, waits until it answers, and copies `images` into it from the main engine
   * (the one `new Docker()` reaches). On any failure everything is removed again.
   */
  static async start(opts: { images?: string[]; readyTimeoutMs?: number } = {}): Promise<PrivateDockerd> {
    const main = new Docker();
    // The same storage driver as the main engine: known to work on this kernel and filesystem.
    const info = (await main.info()) as { Driver?: string };
    const dir = await mkdtemp(join(tmpdir(), "agent-dockerd-"));
    const engine = new PrivateDockerd(dir, `/agent-dockerd-${randomBytes(4).toString("hex")}`, info.Driver || "overlay2");
    try {
      await mkdir(join(dir, "data"), { mode: 0o700 });
      await mkdir(join(dir, "exec"), { mode: 0o700 });
      await writeFile(join(dir, "daemon.json"), "{}\n");
      await engine.launch(opts.readyTimeoutMs ?? 30_000);
      for (const image of opts.images ?? []) await engine.copyImage(main, image);
    } catch (err) {
      await engine.stop();
      throw err;
    }
    return engine;
  }

  private async launch(readyTimeoutMs: number): Promise<void> {
    const args = [
      `--host=${this.host}`,
      `--data-root=${join(this.dir, "data")}`,
      `--exec-root=${join(this.dir, "exec")}`,
      `--pidfile=${join(this.dir, "docker.pid")}`,
      `--config-file=${join(this.dir, "daemon.json")}`,
      `--storage-driver=${this.storageDriver}`,
      `--cgroup-parent=${this.cgroupParent}`,
      "--bridge=none",
      "--iptables=false",
      "--ip6tables=false",
      "--ip-masq=false",
      "--userland-proxy=false",
    ];
    const out = openSync(this.logPath, "a");
    let child: ChildProcess;
    try {
      child = spawn("dockerd", args, { stdio: ["ignore", out, out] });
    } finally {
      closeSync(out);
    }
    this.child = child;
    this.exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
    spawnError.catch(() => {});
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (this.pid === null) throw new Error(`private dockerd exited during start-up:\n${this.logTail()}`);
      const ok = await Promise.race([
        this.docker.ping().then(
          () => true,
          () => false,
        ),
        spawnError,
        sleep(2000).then(() => false),
      ]);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`private dockerd did not answer within ${readyTimeoutMs} ms:\n${this.logTail()}`);
      await sleep(100);
    }
  }

  /** `docker save` from `from` piped into this engine's `docker load`. */
  private async copyImage(from: Docker, image: string): Promise<void> {
    const tar = await from.getImage(image).get();
    const res = await this.docker.loadImage(tar, { quiet: true });
    await new Promise<void>((resolve, reject) =>
      this.docker.modem.followProgress(res, (err: Error | null, events: Array<{ error?: string }>) => {
        const failed = err ?? (events.find((e) => e.error) ? new Error(events.find((e) => e.error)!.error) : null);
        if (failed) reject(new Error(`could not load ${image} into the private engine: ${failed.message}`));
        else resolve();
      }),
    );
    await this.docker.getImage(image).inspect();
  }

  /**
   * Stops the daemon (SIGTERM: a graceful engine restart, which stops the running containers
   * with their stop timeout; SIGKILL: the engine dies at once) and starts it again on the same
   * data root. Resolves once it answers again, with how long the API was away.
   */
  async restart(signal: "SIGTERM" | "SIGKILL" = "SIGTERM", readyTimeoutMs = 30_000): Promise<{ downMs: number; stopMs: number }> {
    const started = Date.now();
    await this.halt(signal, 45_000);
    const stopMs = Date.now() - started;
    await this.launch(readyTimeoutMs);
    return { downMs: Date.now() - started, stopMs };
  }

  /** Sends `signal` and waits for the daemon to exit (SIGKILL after `timeoutMs`). */
  private async halt(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const child = this.child;
    if (!child || this.pid === null) return;
    const containerd = await this.containerdPid();
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    // The daemon's managed containerd dies with it (a parent-death signal), but not at the same
    // instant: a daemon started while the old containerd is still exiting finds it "still
    // running", waits for its socket and gives up ("timeout waiting for containerd to start").
    if (containerd !== null) {
      const deadline = Date.now() + 10_000;
      while (alive(containerd)) {
        if (Date.now() > deadline) {
          process.kill(containerd, "SIGKILL");
          break;
        }
        await sleep(50);
      }
    }
  }

  /** The pid of this engine's managed containerd (from its pidfile, checked against its command line). */
  private async containerdPid(): Promise<number | null> {
    const pid = Number((await readFile(join(this.dir, "exec", "containerd", "containerd.pid"), "utf8").catch(() => "")).trim());
    if (!pid) return null;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    return cmdline.includes(`${this.dir}/`) ? pid : null;
  }

  /**
   * Removes everything, whatever state the engine is in: its containers (through the API while
   * it answers), the daemon, any process it left (its containerd and shims, found by this dir
   * in their command line; container processes, found by this engine's cgroup parent), its
   * mounts under the dir (overlay, netns), its cgroups, and the dir. Idempotent, never throws.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    process.off("exit", this.onExit);
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        console.warn(`private dockerd cleanup: ${what}: ${(err as Error).message}`);
      }
    };
    if (this.pid !== null) {
      await step("remove containers", async () => {
        const list = await this.docker.listContainers({ all: true });
        await Promise.all(list.map((c) => this.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})));
      });
      await step("stop the daemon", () => this.halt("SIGTERM", 20_000));
    }
    // Whatever outlived the daemon (a SIGKILLed daemon's containerd keeps its shims): only
    // processes naming this engine's dir, or in this engine's cgroups, are touched.
    await step("kill leftover processes", async () => {
      for (let round = 0; round < 3; round++) {
        const pids = new Set([...(await this.pidsByCommandLine()), ...(await this.pidsInCgroups())]);
        pids.delete(process.pid);
        if (pids.size === 0) return;
        for (const pid of pids) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
        await sleep(300);
      }
    });
    await step("unmount", () => this.unmountAll());
    await step("remove cgroups", () => this.removeCgroups());
    await step("remove the temp dir", () => rm(this.dir, { recursive: true, force: true, maxRetries: 3 }));
  }

  private async pidsByCommandLine(): Promise<number[]> {
    const pids: number[] = [];
    for (const name of await readdir("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
      if (cmdline.includes(`${this.dir}/`)) pids.push(Number(name));
    }
    return pids;
  }

  /** The cgroup v1 controller dirs (or the v2 unified dir) that hold this engine's cgroup parent. */
  private async cgroupDirs(): Promise<string[]> {
    const base = "/sys/fs/cgroup";
    const dirs = [join(base, this.cgroupParent)];
    for (const c of await readdir(base).catch(() => [] as string[])) dirs.push(join(base, c, this.cgroupParent));
    const found: string[] = [];
    for (const d of dirs) if (await readdir(d).then(() => true, () => false)) found.push(d);
    return found;
  }

  private async pidsInCgroups(): Promise<number[]> {
    const pids: number[] = [];
    const walk = async (d: string): Promise<void> => {
      const procs = await readFile(join(d, "cgroup.procs"), "utf8").catch(() => "");
      for (const p of procs.split("\n")) if (p.trim()) pids.push(Number(p));
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(d, e.name));
    };
    for (const d of await this.cgroupDirs()) await walk(d);
    return pids;
  }

  private async removeCgroups(): Promise<void> {
    const rmTree = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await rmTree(join(d, e.name));
      await rmdir(d);
    };
    for (const d of await this.cgroupDirs()) await rmTree(d);
  }

  /** Mount points at or under the dir, deepest first; lazily detached (nothing else uses them). */
  private async unmountAll(): Promise<void> {
    const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    for (let round = 0; round < 5; round++) {
      const mounts = (await readFile("/proc/self/mountinfo", "utf8"))
        .split("\n")
        .map((l) => unescape(l.split(" ")[4] ?? ""))
        .filter((m) => m === this.dir || m.startsWith(`${this.dir}/`))
        .sort((a, b) => b.length - a.length);
      if (mounts.length === 0) return;
      for (const m of mounts) await run("umount", ["-l", m]).catch(() => {});
    }
    throw new Error(`mounts left under ${this.dir}`);
  }

  /** The end of the daemon's log, for failure messages. */
  logTail(lines = 20): string {
    try {
      return readFileSync(this.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}
