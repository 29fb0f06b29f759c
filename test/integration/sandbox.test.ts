/**
 * The sandbox against the real Docker engine: every protection the app relies on to run
 * pull-request code is exercised as an attack that must fail, with a positive control where
 * one is needed to show the check would notice if the protection were missing. The attacks
 * run under both OCI runtimes: runc (the repository's own code) and runsc/gVisor (untrusted
 * code: forks); where gVisor enforces a limit differently, the test says how.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rm, statfs, writeFile } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
import { hostname, networkInterfaces, tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import Docker from "dockerode";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  OWNER_LABEL,
  reapOrphanSandboxes,
  ROOT_LABEL,
  RUNSC_PIDS_OVERHEAD,
  Sandbox,
  SANDBOX_LABEL,
  SandboxIntegrityError,
  TRUSTED_DIR,
  WorkspaceFullError,
  type ExecOptions,
  type ExecResult,
  type SandboxLimits,
} from "../../src/connectors/sandbox.js";

const IMAGE = "agent-sandbox:test";
const LIMITS: SandboxLimits = { memoryMb: 256, cpus: 1, pids: 128, outputLimitBytes: 1_000_000, workspaceMb: 64 };
/** Owner ids of this run share a prefix so the safety net only touches our own containers. */
const RUN = `w${randomBytes(3).toString("hex")}`;
const OWNER = `${RUN}${randomBytes(3).toString("hex")}`;
const WORKSPACE_ROOT = join(tmpdir(), `agent-sbtest-${RUN}`);

const docker = new Docker();
const sandboxes: Sandbox[] = [];

/** Per-sandbox defaults for run(): the env and workdir a task would pass to every step. */
const stepDefaults = new WeakMap<Sandbox, Partial<ExecOptions>>();

/** The runtimes the attacks run under: runc for trusted code, gVisor for forks. */
const RUNTIMES = ["runc", "runsc"] as const;
type Runtime = (typeof RUNTIMES)[number];

async function startSandbox(
  over: { files?: Record<string, string>; workdir?: string; env?: Record<string, string>; owner?: string; limits?: Partial<SandboxLimits>; runtime?: Runtime } = {},
): Promise<{ sb: Sandbox; owner: string }> {
  const owner = over.owner ?? OWNER;
  const sb = await Sandbox.create(docker, { image: IMAGE, limits: { ...LIMITS, ...over.limits }, workspaceRoot: WORKSPACE_ROOT, owner, runtime: over.runtime });
  sandboxes.push(sb);
  if (over.files) {
    // As a task does it: files on the worker, copied into the sandbox's own workspace.
    const dir = await sb.makeHostDir();
    for (const [name, content] of Object.entries(over.files)) {
      const path = join(dir, name);
      await mkdir(join(path, ".."), { recursive: true });
      await writeFile(path, content, { mode: 0o644 });
    }
    await sb.copyIn(dir);
    await rm(dir, { recursive: true, force: true });
  }
  stepDefaults.set(sb, { workdir: over.workdir ?? ".", env: over.env ?? {} });
  return { sb, owner };
}

/** A file the host creates in the workspace while a step runs (a signal the step waits for). */
function touch(sb: Sandbox, name: string): Promise<ExecResult> {
  return sb.exec(["touch", `/workspace/${name}`], { timeoutMs: 10_000 });
}

function run(sb: Sandbox, argv: string[], opts: Partial<ExecOptions> = {}): Promise<ExecResult> {
  return sb.exec(argv, { timeoutMs: 20_000, ...stepDefaults.get(sb), ...opts });
}

const sh = (script: string): string[] => ["sh", "-c", script];

/** Free bytes of the filesystem holding `path` (the worker's disk). */
async function freeBytes(path: string): Promise<number> {
  const st = await statfs(path);
  return st.bavail * st.bsize;
}

async function inspectStatus(id: string): Promise<number | undefined> {
  try {
    await docker.getContainer(id).inspect();
    return 200;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode;
  }
}

/**
 * exec() fires kill() without awaiting it, so the engine may still report the container as
 * running for a few ms after exec() returns: wait for the stop event (bounded), then check.
 */
async function expectStopped(sb: Sandbox): Promise<void> {
  let guard: NodeJS.Timeout | undefined;
  const waited = await Promise.race([
    sb.container.wait({ condition: "not-running" }).then(() => "stopped"),
    new Promise<string>((r) => (guard = setTimeout(() => r("still running after 10 s"), 10_000))),
  ]).finally(() => clearTimeout(guard));
  expect(waited).toBe("stopped");
  const state = (await sb.container.inspect()).State;
  expect(state.Running).toBe(false);
  expect(state.ExitCode).toBe(137); // killed, not exited by itself
}

async function ourContainers(): Promise<Docker.ContainerInfo[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [SANDBOX_LABEL] } });
  return list.filter((c) => (c.Labels[OWNER_LABEL] ?? "").startsWith(RUN));
}

beforeAll(async () => {
  // Fail fast with a clear message if the engine or image is missing.
  await docker.ping();
  await docker.getImage(IMAGE).inspect();
});

afterEach(async () => {
  for (const sb of sandboxes.splice(0)) await sb.destroy();
});

afterAll(async () => {
  // Safety net: nothing of this run may outlive the file.
  for (const c of await ourContainers()) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
  expect(await ourContainers()).toEqual([]);
  await rm(WORKSPACE_ROOT, { recursive: true, force: true });
});

describe("Sandbox.exec basics", () => {
  it("combines stdout and stderr in the tail and reports exit codes", async () => {
    const { sb } = await startSandbox();
    const ok = await run(sb, sh("echo to-stdout; echo to-stderr >&2"));
    expect(ok.exitCode).toBe(0);
    expect(ok.timedOut).toBe(false);
    expect(ok.outputLimitExceeded).toBe(false);
    expect(ok.tail).toContain("to-stdout\n");
    expect(ok.tail).toContain("to-stderr\n");
    expect(ok.totalBytes).toBe(Buffer.byteLength(ok.tail));

    const three = await run(sb, sh("echo failing; exit 3"));
    expect(three.exitCode).toBe(3);
    expect(three.timedOut).toBe(false);
    expect(three.tail).toBe("failing\n");

    // The sandbox survives a failing step: the next step still runs.
    expect((await run(sb, ["true"])).exitCode).toBe(0);
  });

  it("runs as uid/gid 65534 in the step's workdir, with the workspace and the step's env", async () => {
    const { sb } = await startSandbox({
      files: { "hello.txt": "hello from the host\n", "infra/prod/main.sh": "echo prod\n" },
      workdir: "infra/prod",
      env: { TF_VAR_region: "eu-west-1", SPACED: "a b  c; $(id)" },
    });
    expect((await run(sb, ["id", "-u"])).tail).toBe("65534\n");
    expect((await run(sb, ["id", "-g"])).tail).toBe("65534\n");
    expect((await run(sb, ["pwd"])).tail).toBe("/workspace/infra/prod\n");
    expect((await run(sb, ["cat", "main.sh"])).tail).toBe("echo prod\n");
    expect((await run(sb, ["cat", "/workspace/hello.txt"])).tail).toBe("hello from the host\n");
    expect((await run(sb, ["printenv", "TF_VAR_region"])).tail).toBe("eu-west-1\n");
    expect((await run(sb, ["printenv", "SPACED"])).tail).toBe("a b  c; $(id)\n");
  });

  it("uses /workspace itself for workdir '.'", async () => {
    const { sb } = await startSandbox({ workdir: "." });
    expect((await run(sb, ["pwd"])).tail).toBe("/workspace\n");
  });

  it("streams output to onOutput while the step is still running", async () => {
    const { sb } = await startSandbox();
    const chunks: string[] = [];
    // The step waits for a file the host only creates after seeing "ready" in onOutput: if the
    // output were delivered only at the end, the step would hit its timeout instead.
    const res = await run(sb, sh("echo ready; while [ ! -e go ]; do sleep 0.05; done; echo done"), {
      timeoutMs: 20_000,
      onOutput: (chunk) => {
        chunks.push(chunk);
        if (chunk.includes("ready")) void touch(sb, "go");
      },
    });
    expect(res.timedOut).toBe(false);
    expect(res.exitCode).toBe(0);
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks.join("")).toBe("ready\ndone\n");
    expect(res.tail).toBe("ready\ndone\n");
  });

  it("passes multi-byte UTF-8 split across chunks to onOutput intact", async () => {
    const { sb } = await startSandbox();
    const chunks: string[] = [];
    // Print a line and the first two bytes of "€" (E2 82 AC), wait until the host has received
    // them, then print the last byte: the character is split across chunks, deterministically.
    const res = await run(sb, sh("printf 'start\\n\\342\\202'; while [ ! -e go ]; do sleep 0.05; done; printf '\\254\\n'"), {
      onOutput: (chunk) => {
        chunks.push(chunk);
        void touch(sb, "go");
      },
    });
    expect(res.exitCode).toBe(0);
    expect(res.tail).toBe("start\n€\n");
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks.join("")).toBe("start\n€\n");
    expect(chunks.join("")).not.toContain("\ufffd");
  });

  it("does not shell-interpret argv", async () => {
    const { sb } = await startSandbox();
    const res = await run(sb, ["echo", "a; touch /tmp/x", "$(id)", "`id`", "|", "id"]);
    expect(res.exitCode).toBe(0);
    expect(res.tail).toBe("a; touch /tmp/x $(id) `id` | id\n");
    expect(res.tail).not.toContain("uid=");
    expect((await run(sb, ["test", "-e", "/tmp/x"])).exitCode).toBe(1);
    // Control: the same check does notice a file that a shell step really creates.
    await run(sb, sh("touch /tmp/y"));
    expect((await run(sb, ["test", "-e", "/tmp/y"])).exitCode).toBe(0);
  });
});

describe.each(RUNTIMES)("network isolation under %s", (runtime) => {
  const servers: Server[] = [];
  const hits = { loopback: 0, any: 0 };
  let loopbackPort = 0;
  let anyPort = 0;

  const listen = (host: string, onConn: () => void): Promise<{ server: Server; port: number }> =>
    new Promise((resolve, reject) => {
      const server = createServer((s) => {
        onConn();
        s.destroy();
      });
      server.once("error", reject);
      server.listen(0, host, () => {
        servers.push(server);
        resolve({ server, port: (server.address() as { port: number }).port });
      });
    });

  beforeAll(async () => {
    loopbackPort = (await listen("127.0.0.1", () => hits.loopback++)).port;
    anyPort = (await listen("0.0.0.0", () => hits.any++)).port;
  });
  afterAll(async () => {
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  });

  const hostIPv4s = (): string[] =>
    Object.values(networkInterfaces())
      .flatMap((l) => l ?? [])
      .filter((a) => a.family === "IPv4" && !a.internal)
      .map((a) => a.address);

  const hostConnect = (host: string, port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = connect({ host, port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });

  it("cannot reach the host's TCP servers on loopback, host addresses or the docker bridge", async () => {
    const ips = hostIPv4s();
    expect(ips.length).toBeGreaterThan(0);
    const targets: [string, number][] = [
      ["127.0.0.1", loopbackPort],
      ["127.0.0.1", anyPort],
      ["172.17.0.1", anyPort],
      ...ips.flatMap((ip): [string, number][] => [
        [ip, anyPort],
        [ip, loopbackPort],
      ]),
    ];

    // Control: from the host every server is reachable and counted, so zero hits below
    // means the container could not get through, not that the servers were dead.
    expect(await hostConnect("127.0.0.1", loopbackPort)).toBe(true);
    for (const ip of ["127.0.0.1", ...ips]) expect(await hostConnect(ip, anyPort)).toBe(true);
    await expect.poll(() => hits.loopback).toBe(1);
    await expect.poll(() => hits.any).toBe(1 + ips.length);
    hits.loopback = 0;
    hits.any = 0;

    const { sb } = await startSandbox({ runtime });
    const script = `
      const net = require("net");
      const targets = JSON.parse(process.argv[1]);
      const one = ([host, port]) => new Promise((res) => {
        const s = net.connect({ host, port, timeout: 3000 });
        s.once("connect", () => { s.destroy(); res({ host, port, ok: true }); });
        s.once("timeout", () => { s.destroy(); res({ host, port, ok: false, err: "timeout" }); });
        s.once("error", (e) => res({ host, port, ok: false, err: e.code }));
      });
      Promise.all(targets.map(one)).then((r) => console.log("RESULT " + JSON.stringify(r)));
    `;
    const res = await run(sb, ["node", "-e", script, JSON.stringify(targets)]);
    expect(res.exitCode).toBe(0);
    const line = res.tail.split("\n").find((l) => l.startsWith("RESULT "));
    expect(line, res.tail).toBeDefined();
    const results = JSON.parse(line!.slice("RESULT ".length)) as { host: string; port: number; ok: boolean; err?: string }[];
    expect(results).toHaveLength(targets.length);
    for (const r of results) expect(r, JSON.stringify(r)).toMatchObject({ ok: false });
    expect(hits).toEqual({ loopback: 0, any: 0 });
  });

  it("has no network interface except lo", async () => {
    const { sb } = await startSandbox({ runtime });
    const res = await run(sb, ["cat", "/proc/net/dev"]);
    expect(res.exitCode).toBe(0);
    const ifaces = res.tail
      .split("\n")
      .slice(2)
      .map((l) => l.split(":")[0]!.trim())
      .filter(Boolean);
    expect(ifaces).toEqual(["lo"]);
  });
});

describe.each(RUNTIMES)("filesystem and privileges under %s", (runtime) => {
  it("has a read-only root fs, a writable /tmp and a writable workspace", async () => {
    const { sb } = await startSandbox({ runtime });
    // /var/tmp is world-writable in the image, so only the read-only root stops this write
    // (for /etc and /usr the unprivileged user alone would already fail).
    const res = await run(sb, sh("echo pwned > /var/tmp/x"));
    expect(res.exitCode).not.toBe(0);
    expect(res.tail).toContain("Read-only file system");
    for (const path of ["/etc/x", "/usr/x"]) expect((await run(sb, sh(`echo pwned > ${path}`))).exitCode, path).not.toBe(0);
    const mounts = (await run(sb, ["cat", "/proc/self/mounts"])).tail.split("\n");
    const root = mounts.find((l) => l.split(" ")[1] === "/");
    expect(root?.split(" ")[3]?.split(",")).toContain("ro");

    const tmp = await run(sb, sh("echo scratch > /tmp/f && cat /tmp/f"));
    expect(tmp).toMatchObject({ exitCode: 0, tail: "scratch\n" });
    const w = await run(sb, sh("echo built > /workspace/out.txt && mkdir -p /workspace/d/e && echo ok"));
    expect(w).toMatchObject({ exitCode: 0, tail: "ok\n" });
    expect(await sb.readFile("/workspace/out.txt", 1024)).toBe("built\n");
  });

  it("has no capabilities, no_new_privs, seccomp (runc), and the configured limits; nothing of the host is mounted", async () => {
    const { sb } = await startSandbox({ runtime });
    const status = (await run(sb, ["cat", "/proc/self/status"])).tail;
    const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)`, "m").exec(status)?.[1];
    expect(field("CapEff")).toBe("0000000000000000");
    expect(field("CapPrm")).toBe("0000000000000000");
    expect(field("CapBnd")).toBe("0000000000000000");
    if (runtime === "runc") {
      expect(field("NoNewPrivs")).toBe("1");
      expect(field("Seccomp")).toBe("2");
    }

    // Attacks that need a capability or an unconfined seccomp profile. (gVisor implements user
    // namespaces inside its own kernel, where they give nothing on the host: not checked there.)
    if (runtime === "runc") {
      const userns = await run(sb, ["unshare", "-Ur", "id", "-u"]);
      expect(userns.exitCode).not.toBe(0);
      expect(userns.tail).not.toBe("0\n");
    }
    expect((await run(sb, ["chown", "0:0", "/workspace"])).exitCode).not.toBe(0);

    const info = await sb.container.inspect();
    const hc = info.HostConfig;
    expect(hc.Runtime).toBe(runtime);
    expect(hc.Privileged).toBe(false);
    expect(hc.CapDrop).toEqual(["ALL"]);
    expect(hc.CapAdd ?? []).toEqual([]);
    expect(hc.SecurityOpt).toContain("no-new-privileges");
    expect(hc.ReadonlyRootfs).toBe(true);
    expect(hc.NetworkMode).toBe("none");
    // NetworkDisabled leaves the container attached to no network at all (not even "none").
    expect(Object.keys(info.NetworkSettings.Networks ?? {}).filter((n) => n !== "none")).toEqual([]);
    expect((info.Config as { NetworkDisabled?: boolean }).NetworkDisabled).toBe(true);
    expect(hc.Memory).toBe(256 * 1024 * 1024);
    expect(hc.MemorySwap).toBe(256 * 1024 * 1024);
    // gVisor's own threads count against the host's pids cgroup: it gets a fixed headroom.
    expect(hc.PidsLimit).toBe(128 + (runtime === "runsc" ? RUNSC_PIDS_OVERHEAD : 0));
    expect(hc.NanoCpus).toBe(1e9);
    expect(hc.Devices ?? []).toEqual([]);
    // PID 1 is root without capabilities (so the step user can neither kill nor trace it);
    // every step runs as 65534.
    expect(info.Config.User).toBe("0:0");
    expect((await run(sb, ["id", "-u"])).tail).toBe("65534\n");
    // Nothing of the worker's disk is mounted: the workspace, /tmp and the trusted dir are in memory.
    expect(hc.Binds ?? []).toEqual([]);
    expect(info.Mounts).toEqual([]);
    const tmpfs = (hc as { Tmpfs?: Record<string, string> }).Tmpfs ?? {};
    expect(Object.keys(tmpfs).sort()).toEqual([TRUSTED_DIR, "/tmp", "/workspace"].sort());
    expect(tmpfs["/workspace"]).toContain(`size=${LIMITS.workspaceMb}m`);
  });

  it("the workspace has a size limit: a step that fills it fails with ENOSPC and is reported so; the worker's disk is untouched", async () => {
    const { sb } = await startSandbox({ runtime, limits: { workspaceMb: 16 } });
    const before = await freeBytes(tmpdir());
    // Control: a write well within the limit succeeds.
    expect((await run(sb, sh("head -c 4194304 /dev/zero > /workspace/small && echo ok"))).tail).toBe("ok\n");
    // The attack: fill the disk (64 MB, four times the limit).
    const fill = await run(sb, sh("head -c 67108864 /dev/zero > /workspace/big; echo rc=$?"));
    expect(fill.tail).toMatch(/No space left on device/);
    expect(fill.tail).toMatch(/rc=[1-9]/);
    const used = Number((await run(sb, sh("du -sk /workspace | cut -f1"))).tail.trim());
    expect(used).toBeLessThanOrEqual(16 * 1024 + 64);
    expect((await sb.limitEvents()).workspaceFull).toBe(true);
    // The worker's own disk did not take the 64 MB (bounded slack for other activity).
    expect(before - (await freeBytes(tmpdir()))).toBeLessThan(32 * 1024 * 1024);
    // After freeing space, the workspace is no longer reported full.
    await run(sb, ["rm", "-f", "/workspace/big"]);
    expect((await sb.limitEvents()).workspaceFull).toBe(false);
  });

  it("a checkout larger than the workspace is refused with WorkspaceFullError", async () => {
    const { sb } = await startSandbox({ runtime, limits: { workspaceMb: 16 } });
    const dir = await sb.makeHostDir();
    try {
      await writeFile(join(dir, "huge.bin"), Buffer.alloc(24 * 1024 * 1024, 7));
      await expect(sb.copyIn(dir)).rejects.toBeInstanceOf(WorkspaceFullError);
      // Control: a checkout that fits is copied in, owned by the step user.
      await rm(join(dir, "huge.bin"));
      await run(sb, ["rm", "-f", "/workspace/huge.bin"]);
      await writeFile(join(dir, "ok.txt"), "fits\n");
      await sb.copyIn(dir);
      expect((await run(sb, sh("cat /workspace/ok.txt; find /workspace/ok.txt -printf '%U\\n'"))).tail).toBe("fits\n65534\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("files the app hands a step (TRUSTED_DIR) can be read but not changed, replaced or removed by it", async () => {
    const { sb } = await startSandbox({ runtime });
    const path = await sb.writeTrustedFile("approved-plan.json", '{"plan":"approved"}');
    expect(path).toBe(`${TRUSTED_DIR}/approved-plan.json`);
    // Control: the step reads it.
    expect((await run(sb, ["cat", path])).tail).toBe('{"plan":"approved"}');
    // Attacks: overwrite, chmod, replace by rename, remove, plant a sibling.
    const attack = await run(
      sb,
      sh(`echo '{"plan":"evil"}' > ${path}; chmod 666 ${path}; echo evil > /tmp/e; mv -f /tmp/e ${path}; rm -f ${path}; echo x > ${TRUSTED_DIR}/other; true`),
    );
    expect(attack.exitCode).toBe(0);
    expect((await run(sb, ["cat", path])).tail).toBe('{"plan":"approved"}');
    expect((await run(sb, ["test", "-e", `${TRUSTED_DIR}/other`])).exitCode).not.toBe(0);
  });
});

describe.each(RUNTIMES)("stray processes under %s", (runtime) => {
  it("stopStrayProcesses kills what an earlier step left running (detached, in its own session) and leaves the sandbox usable", async () => {
    const { sb } = await startSandbox({ runtime });
    // The attack: a step starts a detached process that would rewrite files later.
    await run(sb, sh("setsid sh -c 'while :; do echo tampered > /tmp/target; sleep 0.05; done' >/dev/null 2>&1 < /dev/null & echo started"));
    await run(sb, sh("while [ ! -e /tmp/target ]; do sleep 0.05; done"));
    // Control: it is alive and keeps writing before the sandbox is quieted.
    expect(await sb.strayProcessCount()).toBeGreaterThan(0);
    await sb.stopStrayProcesses();
    expect(await sb.strayProcessCount()).toBe(0);
    await run(sb, sh("echo trusted > /tmp/target"));
    // Nothing rewrites it any more; the next step runs as usual.
    expect(await sb.readFile("/tmp/target", 1024)).toBe("trusted\n");
    expect((await run(sb, ["true"])).exitCode).toBe(0);
  });

  it("a fork bomb at the process limit is either stopped or reported as a failed check, never trusted", async () => {
    const { sb } = await startSandbox({ runtime, limits: { pids: 64 } });
    await run(sb, sh("setsid sh -c 'f() { while :; do sleep 0.1; (f &) ; done; }; f' >/dev/null 2>&1 < /dev/null & true"));
    const outcome = await sb.stopStrayProcesses().then(
      () => "stopped",
      (err: unknown) => (err instanceof SandboxIntegrityError ? "integrity error" : `unexpected: ${String(err)}`),
    );
    expect(["stopped", "integrity error"]).toContain(outcome);
    if (outcome === "stopped") expect(await sb.strayProcessCount()).toBe(0);
  });

  it("throws SandboxIntegrityError when a process survives being killed", async () => {
    const { sb } = await startSandbox({ runtime });
    // Stand-in for "a process the kill cannot reach": one the app itself starts as root. The
    // sandbox user cannot kill it, so the check must say it failed rather than pretend.
    void sb.exec(["sleep", "60"], { timeoutMs: 70_000, user: "root" }).catch(() => {});
    await expect.poll(() => sb.strayProcessCount(), { timeout: 20_000 }).toBeGreaterThan(0);
    await expect(sb.stopStrayProcesses(3)).rejects.toBeInstanceOf(SandboxIntegrityError);
  });
});

describe.each(RUNTIMES)("resource limits under %s", (runtime) => {
  it("stops a step at its wall-clock timeout and stops the container", async () => {
    const { sb } = await startSandbox({ runtime });
    const res = await run(sb, ["sleep", "600"], { timeoutMs: 2000 });
    expect(res.timedOut).toBe(true);
    expect(res.exitCode).toBeNull();
    expect(res.outputLimitExceeded).toBe(false);
    expect(res.durationMs).toBeGreaterThanOrEqual(1900);
    expect(res.durationMs).toBeLessThan(30_000);
    await expectStopped(sb);
  });

  it("stops a step that prints more than the output limit, keeping only a bounded tail", async () => {
    const { sb } = await startSandbox({ runtime, limits: { outputLimitBytes: 100_000 } });
    let streamed = 0;
    // `yes` never ends by itself: only the output limit (or, failing that, the timeout) stops it.
    const res = await run(sb, ["yes", "flood"], { timeoutMs: 30_000, onOutput: (c) => (streamed += Buffer.byteLength(c)) });
    expect(res.outputLimitExceeded).toBe(true);
    expect(res.timedOut).toBe(false);
    expect(res.exitCode).toBeNull();
    expect(res.totalBytes).toBeGreaterThan(100_000);
    expect(res.totalBytes).toBeLessThan(50_000_000);
    expect(Buffer.byteLength(res.tail)).toBeLessThanOrEqual(64 * 1024 + 16);
    expect(res.tail.length).toBeGreaterThan(1000);
    // The tail is the flood (cut at an arbitrary chunk boundary), nothing else.
    expect(res.tail).toMatch(/^[flod\n]+$/);
    expect(res.tail).toContain("flood\nflood\n");
    // Nothing is streamed to the check run after the limit.
    expect(streamed).toBeLessThanOrEqual(res.totalBytes);
    expect(res.durationMs).toBeLessThan(30_000);
    await expectStopped(sb);
  });

  it("caps the number of processes (pids limit)", async () => {
    const { sb } = await startSandbox({ runtime, limits: { pids: 64 } });
    expect((await sb.container.inspect()).HostConfig.PidsLimit).toBe(64 + (runtime === "runsc" ? RUNSC_PIDS_OVERHEAD : 0));
    if (runtime === "runc") expect((await run(sb, ["cat", "/sys/fs/cgroup/pids/pids.max"])).tail).toBe("64\n");
    // Each iteration forks one long-lived process and then prints how many it has forked
    // (echo is a builtin: no fork). Without the limit this reaches 2000.
    const bomb = sh('i=0; while [ $i -lt 2000 ]; do sleep 30 >/dev/null 2>&1 & i=$((i+1)); echo "n=$i"; done; wait');
    const res = await run(sb, bomb, { timeoutMs: 30_000 });
    const counts = [...res.tail.matchAll(/^n=(\d+)$/gm)].map((m) => Number(m[1]));
    const max = Math.max(0, ...counts);
    expect(max).toBeLessThan(2000);
    if (runtime === "runc") {
      expect(max).toBeGreaterThan(10);
      expect(max).toBeLessThan(64);
      expect(res.timedOut || res.exitCode !== 0).toBe(true);
      expect(res.tail).toMatch(/fork|Resource temporarily unavailable/i);
    } else {
      // gVisor: the sandbox (its sentry included) hits the host limit and stops, or the step is refused.
      expect(res.sandboxDied || res.exitCode !== 0 || res.timedOut).toBe(true);
    }
    expect(res.durationMs).toBeLessThan(40_000);
    // The host is fine.
    expect(execFileSync("true").length).toBe(0);
  });

  it("kills a step that allocates more than the memory limit", async () => {
    const { sb } = await startSandbox({ runtime, limits: { memoryMb: runtime === "runsc" ? 192 : 64 } });
    if (runtime === "runc") expect((await run(sb, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])).tail).toBe(`${64 * 1024 * 1024}\n`);
    // Bounded so that, without a limit, it would succeed and print "survived" instead.
    const hog = ["node", "-e", "const a=[]; for (let i = 0; i < 512; i++) a.push(Buffer.alloc(1 << 20, 1)); console.log('survived', a.length)"];
    const res = await run(sb, hog, { timeoutMs: 30_000 });
    expect(res.timedOut).toBe(false);
    expect(res.tail).not.toContain("survived");
    if (runtime === "runc") {
      expect(res.exitCode).toBe(137); // SIGKILL from the OOM killer
    } else {
      // gVisor: the OOM killer takes the whole sandbox (the sentry is in the same cgroup).
      expect(res.sandboxDied || res.exitCode === 137).toBe(true);
    }
  });
});

describe("lifecycle", () => {
  it("labels containers with their owner and deployment, and destroy() deletes the container (twice is harmless)", async () => {
    const { sb } = await startSandbox();
    const info = await sb.container.inspect();
    expect(info.Config.Labels[SANDBOX_LABEL]).toBe("1");
    expect(info.Config.Labels[OWNER_LABEL]).toBe(OWNER);
    expect(info.Config.Labels[ROOT_LABEL]).toBe(resolve(WORKSPACE_ROOT));
    expect(info.State.Running).toBe(true);
    // Step env is passed per exec, never baked into the container's config.
    expect(info.Config.Env.filter((e) => !e.startsWith("PATH=") && !e.startsWith("HOME="))).toEqual([]);

    await sb.destroy();
    expect(await inspectStatus(info.Id)).toBe(404);
    await expect(sb.destroy()).resolves.toBeUndefined();
    expect(await inspectStatus(info.Id)).toBe(404);
  });

  it("reapOrphanSandboxes removes what dead workers left (containers and checkout directories), then anything too old", async () => {
    const aliveOwner = `${RUN}aaaaaa`;
    const deadOwner = `${RUN}dddddd`;
    const a = await startSandbox({ owner: aliveOwner });
    const b = await startSandbox({ owner: deadOwner });
    // Checkouts each worker was copying in when it died (or not).
    const aDir = await a.sb.makeHostDir();
    const bDir = await b.sb.makeHostDir();
    const asked: string[] = [];
    // Owners outside this run (none expected) count as alive so the first pass leaves them alone.
    const isOwnerAlive = async (owner: string) => {
      asked.push(owner);
      return owner === aliveOwner || !owner.startsWith(RUN);
    };
    expect(await reapOrphanSandboxes(docker, { self: OWNER, isOwnerAlive, maxAgeSeconds: 3600, workspaceRoot: WORKSPACE_ROOT })).toBe(1);
    expect(asked).toEqual(expect.arrayContaining([aliveOwner, deadOwner]));
    expect(await inspectStatus(a.sb.container.id)).toBe(200);
    expect(await inspectStatus(b.sb.container.id)).toBe(404);
    expect(existsSync(aDir)).toBe(true);
    expect(existsSync(bDir)).toBe(false);

    // Nothing may live longer than maxAge: A goes too, whatever its owner's heartbeat says.
    const removed = await reapOrphanSandboxes(docker, { self: OWNER, isOwnerAlive: async () => true, maxAgeSeconds: 0, workspaceRoot: WORKSPACE_ROOT });
    expect(removed).toBeGreaterThanOrEqual(1);
    expect(await inspectStatus(a.sb.container.id)).toBe(404);
    expect(await ourContainers()).toEqual([]);
  });

  it("reapOrphanSandboxes with a workspace root leaves other deployments' sandboxes alone, however dead their owners look", async () => {
    // Another deployment on the same engine: its own workspace root, heartbeats under another
    // queue prefix, so from here its live owner looks dead.
    const otherRoot = join(tmpdir(), `agent-sbtest-${RUN}-other`);
    const theirs = await Sandbox.create(docker, { image: IMAGE, limits: LIMITS, workspaceRoot: otherRoot, owner: `${RUN}eeeeee` });
    sandboxes.push(theirs);
    const theirDir = await theirs.makeHostDir();
    const ours = await startSandbox({ owner: `${RUN}dddddd` });
    try {
      const removed = await reapOrphanSandboxes(docker, { self: OWNER, isOwnerAlive: async (o) => !o.startsWith(RUN), maxAgeSeconds: 3600, workspaceRoot: WORKSPACE_ROOT });
      expect(removed).toBe(1);
      expect(await inspectStatus(ours.sb.container.id)).toBe(404);
      expect(await inspectStatus(theirs.container.id)).toBe(200);
      expect(existsSync(theirDir)).toBe(true);
    } finally {
      await rm(otherRoot, { recursive: true, force: true });
    }
  });
});

describe.each(RUNTIMES)("isolation between sandboxes and from the host under %s", (runtime) => {
  it("does not expose a sibling's workspace or processes, nor the host's files", async () => {
    const secret = `sibling-secret-${randomBytes(6).toString("hex")}`;
    const one = await startSandbox({ runtime, files: { [`${secret}.txt`]: `${secret}\n` } });
    const two = await startSandbox({ runtime, files: { "mine.txt": "mine\n" } });

    // Sandbox 1 leaves a marker process behind.
    const marker = String(700000 + Math.floor(Math.random() * 99999));
    await run(one.sb, sh(`sleep ${marker} >/dev/null 2>&1 &`));
    const scanProcs = sh('for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f" 2>/dev/null; echo; done');
    // Control: the scan finds it from inside sandbox 1...
    expect((await run(one.sb, scanProcs)).tail).toContain(`sleep ${marker}`);
    // ...but not from sandbox 2.
    expect((await run(two.sb, scanProcs)).tail).not.toContain(marker);

    // Control: the search finds the secret from sandbox 1...
    const search = sh(`grep -rl ${secret} /workspace /tmp 2>/dev/null; find / -xdev -name '${secret}*' 2>/dev/null; true`);
    expect((await run(one.sb, search)).tail).toContain(secret);
    // ...and finds nothing from sandbox 2, which sees only its own workspace.
    const found = await run(two.sb, search);
    expect(found.tail).toBe("");
    // `find`, not `ls`: gVisor answers coreutils' statx on a tmpfs mount point with EINVAL.
    expect((await run(two.sb, ["find", "/workspace", "-mindepth", "1"])).tail).toBe("/workspace/mine.txt\n");
    const mountinfo = (await run(two.sb, ["cat", "/proc/self/mountinfo"])).tail;
    expect(mountinfo).not.toContain(basename(WORKSPACE_ROOT));
    expect(mountinfo.split("\n").filter((l) => l.split(" ")[4] === "/workspace")).toHaveLength(1);
    const rootEntries = (await run(two.sb, ["ls", "-A", "/"])).tail.split("\n").filter(Boolean);
    expect(rootEntries).not.toContain("work");
    expect(rootEntries.filter((e) => e.startsWith("agent-sb-"))).toEqual([]);

    // The host's project and files are not there.
    expect(existsSync("/work/main/package.json")).toBe(true);
    expect((await run(two.sb, ["test", "-e", "/work/main/package.json"])).exitCode).not.toBe(0);
    expect((await run(two.sb, ["test", "-e", WORKSPACE_ROOT])).exitCode).not.toBe(0);
    const containerHostname = (await run(two.sb, ["cat", "/etc/hostname"])).tail.trim();
    expect(containerHostname).not.toBe(hostname());
    expect(two.sb.container.id.startsWith(containerHostname)).toBe(true);
  });
});
