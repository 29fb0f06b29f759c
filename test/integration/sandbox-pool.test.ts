import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import Docker from "dockerode";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { newOwnerId, OWNER_LABEL, Sandbox, SandboxPool, SandboxProvider, type SandboxOptions } from "../../src/connectors/sandbox.js";
import { WorkerHeartbeat } from "../../src/jobs/heartbeat.js";
import { createRedis } from "../../src/connectors/queues.js";
import { destroyTestEnv, makeTestEnv, startTestApp, TEST_IMAGE, TEST_REDIS_URL } from "../helpers/harness.js";

const docker = new Docker();
const root = join(tmpdir(), `agent-pooltest-${randomBytes(3).toString("hex")}`);
const owner = newOwnerId();
const opts: SandboxOptions = { image: TEST_IMAGE, limits: { memoryMb: 128, cpus: 1, pids: 64, outputLimitBytes: 100_000 }, workspaceRoot: root, owner };

async function exists(id: string): Promise<boolean> {
  return docker.getContainer(id).inspect().then(() => true, () => false);
}
async function ours(): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${OWNER_LABEL}=${owner}`] } });
  return list.map((c) => c.Id);
}

describe("warm sandbox pool", () => {
  const used: Sandbox[] = [];
  afterEach(async () => {
    for (const sb of used.splice(0)) await sb.destroy();
  });
  afterAll(async () => {
    for (const id of await ours()) await docker.getContainer(id).remove({ force: true });
    await rm(root, { recursive: true, force: true });
  });

  it("keeps N started containers; each is handed out once, and the pool refills as tasks give them back", async () => {
    const pool = new SandboxPool(docker, { ...opts, size: 2 });
    await pool.fill();
    expect(pool.ready).toBe(2);
    const idle = pool.idleIds;
    for (const id of idle) expect((await docker.getContainer(id).inspect()).State.Running).toBe(true);

    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(a.warm && b.warm).toBe(true);
    expect(new Set([a.sandbox.container.id, b.sandbox.container.id])).toEqual(new Set(idle));
    // While the tasks run, no replacement competes with them for the CPU.
    await pool.settled();
    expect(pool.ready).toBe(0);
    // The warm container works like a cold one: its own empty workspace, steps as execs.
    expect((await a.sandbox.exec(["sh", "-c", "ls -A /workspace | wc -l; id -u"], { timeoutMs: 10_000 })).tail).toBe("0\n65534\n");
    await a.sandbox.destroy();
    await pool.settled();
    expect(pool.ready).toBe(1);
    await b.sandbox.destroy();
    await pool.settled();
    expect(pool.ready).toBe(2);
    // New containers, never the handed-out ones again.
    expect(pool.idleIds.some((id) => idle.includes(id))).toBe(false);
    const refilled = pool.idleIds;
    await pool.close();
    expect(pool.ready).toBe(0);
    for (const id of refilled) expect(await exists(id)).toBe(false);
  });

  it("an empty pool starts refilling at once and hands out a cold sandbox meanwhile", async () => {
    const pool = new SandboxPool(docker, { ...opts, size: 1 });
    const got = await pool.acquire();
    used.push(got.sandbox);
    expect(got.warm).toBe(false);
    await pool.settled();
    expect(pool.ready).toBe(1);
    await pool.close();
  });

  it("never hands out a pooled container that died; falls back to a cold one when empty", async () => {
    const pool = new SandboxPool(docker, { ...opts, size: 1 });
    await pool.fill();
    const [dead] = pool.idleIds;
    await docker.getContainer(dead!).kill();
    const got = await pool.acquire();
    used.push(got.sandbox);
    expect(got.sandbox.container.id).not.toBe(dead);
    expect(got.warm).toBe(false);
    expect(await exists(dead!)).toBe(false);
    await pool.close();
  });

  it("close() removes idle containers and their workspaces", async () => {
    const pool = new SandboxPool(docker, { ...opts, size: 2 });
    await pool.fill();
    const ids = pool.idleIds;
    await pool.close();
    for (const id of ids) expect(await exists(id)).toBe(false);
    // Only workspaces of handed-out sandboxes (destroyed by their tasks) could remain; none here.
    expect((await ours()).filter((id) => ids.includes(id))).toEqual([]);
  });

  it("the provider pools only the default image; other images start cold", async () => {
    const provider = new SandboxProvider(docker, { ...opts, poolSize: 1 });
    await provider.start();
    const other = await provider.acquire(`${TEST_IMAGE.split(":")[0]}:test`);
    used.push(other.sandbox);
    expect(other.warm).toBe(true);
    await provider.settled();
    await docker.getImage(TEST_IMAGE).tag({ repo: "agent-sandbox", tag: "pooltest-alias" });
    try {
      const cold = await provider.acquire("agent-sandbox:pooltest-alias");
      used.push(cold.sandbox);
      expect(cold.warm).toBe(false);
      expect(cold.sandbox.image).toBe("agent-sandbox:pooltest-alias");
    } finally {
      await provider.close();
      await docker.getImage("agent-sandbox:pooltest-alias").remove({ noprune: true }).catch(() => {});
    }
  });
});

describe("crash recovery: heartbeats and the reaper", () => {
  it("a heartbeat is visible while the worker lives and gone after stop", async () => {
    const redis = createRedis(TEST_REDIS_URL);
    const hb = new WorkerHeartbeat(redis, `hbtest${randomBytes(3).toString("hex")}`, newOwnerId(), 5);
    await hb.start();
    expect(await hb.isAlive(hb.owner)).toBe(true);
    expect(await hb.isAlive(newOwnerId())).toBe(false);
    await hb.stop();
    expect(await hb.isAlive(hb.owner)).toBe(false);
    await redis.quit();
  });

  it("a starting worker removes the sandbox and the checkout directory a crashed worker left behind", async () => {
    const env = await makeTestEnv({ SANDBOX_POOL_SIZE: "0" });
    // A sandbox owned by a worker that has no heartbeat (it crashed mid-task).
    const crashed = await Sandbox.create(docker, { ...opts, owner: newOwnerId(), workspaceRoot: env.workspaceRoot });
    // ...and the worker-side checkout it was copying in.
    const checkoutDir = await crashed.makeHostDir();
    expect(await exists(crashed.container.id)).toBe(true);
    const app = await startTestApp(env, "worker");
    try {
      expect(await exists(crashed.container.id)).toBe(false);
      expect(existsSync(checkoutDir)).toBe(false);
    } finally {
      await app.stop();
      await destroyTestEnv(env);
    }
  });
});
