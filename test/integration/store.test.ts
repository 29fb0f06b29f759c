import { readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendAudit, listAudit } from "../../src/connectors/store/audit.js";
import { ensureDatabase, migrate, type Db } from "../../src/connectors/store/db.js";
import { recordDelivery } from "../../src/connectors/store/deliveries.js";
import { acquireStackLock, getStackLock, locksHeldBy, releaseStackLocks } from "../../src/connectors/store/locks.js";
import { claimTask, createPreviewWorkflow, finishTask, latestPreviewPerStack, type NewPreviewWorkflow } from "../../src/connectors/store/workflows.js";
import { previewJobId } from "../../src/connectors/queues.js";
import { migratedTestDb } from "../helpers/harness.js";

const sha = (c: string) => c.repeat(40);

describe("PostgreSQL store: migrations, append-only audit log, task rows", () => {
  let url: string;
  let db: Db;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    ({ url, db, drop } = await migratedTestDb("s"));
  });
  afterAll(() => drop());

  it("runs migrations through node-pg-migrate, idempotently", async () => {
    await migrate(url);
    await ensureDatabase(url);
    const { rows } = await db.query("SELECT name FROM pgmigrations");
    // Every migration file, once, in order.
    const files = readdirSync(new URL("../../migrations/", import.meta.url)).filter((f) => f.endsWith(".sql")).sort().map((f) => f.replace(/\.sql$/, ""));
    expect(files.slice(0, 5)).toEqual(["1732240000000_foundation", "1732240000001_task-logs", "1732240000002_stack-locks", "1732240000003_plans", "1732240000004_task-dependencies"]);
    expect(rows.map((r) => r.name)).toEqual(files);
  });

  it("the audit log rejects UPDATE, DELETE and TRUNCATE", async () => {
    await appendAudit(db, { actor: "alice", action: "command.received", repo: "o/r", prNumber: 1, detail: { command: "preview" } });
    await expect(db.query("UPDATE audit_log SET actor = 'mallory'")).rejects.toThrow(/append-only/);
    await expect(db.query("DELETE FROM audit_log")).rejects.toThrow(/append-only/);
    await expect(db.query("TRUNCATE audit_log")).rejects.toThrow(/append-only/);
    const rows = await listAudit(db, "o/r", 1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor: "alice", action: "command.received", detail: { command: "preview" } });
  });

  it("dedupes deliveries on their id", async () => {
    const d = { id: "d-1", event: "issue_comment", action: "created", installationId: 1, repo: "o/r" };
    expect(await recordDelivery(db, d)).toBe(true);
    expect(await recordDelivery(db, d)).toBe(false);
  });

  it("rejects task states outside the state machine and head SHAs that are not SHAs", async () => {
    const wf = (headSha: string): NewPreviewWorkflow => ({
      repo: "o/r", installationId: 1, prNumber: 2, headSha, requestedBy: "alice", deliveryId: null,
      config: { image: "i", cloneUrl: "https://x/o/r.git", defaultBranch: "main", stacks: [] },
      stacks: ["dev"], jobIdFor: (s) => previewJobId("o/r", 2, headSha, s),
    });
    await expect(createPreviewWorkflow(db, wf("not-a-sha; drop table"))).rejects.toThrow(/check constraint/);
    const created = await createPreviewWorkflow(db, wf(sha("a")));
    await expect(db.query("UPDATE tasks SET state = 'DONE' WHERE id = $1", [created.tasks[0]!.id])).rejects.toThrow(/invalid input value for enum/);
  });

  it("collapses an identical live task, supersedes queued ones on an older SHA, and lets finished ones run again", async () => {
    const base = (headSha: string, deliveryId: string | null = null): NewPreviewWorkflow => ({
      repo: "o/r2", installationId: 1, prNumber: 3, headSha, requestedBy: "alice", deliveryId,
      config: { image: "i", cloneUrl: "https://x/o/r2.git", defaultBranch: "main", stacks: [] },
      stacks: ["dev", "prod"], jobIdFor: (s) => previewJobId("o/r2", 3, headSha, s),
    });
    const first = await createPreviewWorkflow(db, base(sha("b")));
    expect(first.tasks.map((t) => t.stack)).toEqual(["dev", "prod"]);
    const dup = await createPreviewWorkflow(db, base(sha("b")));
    expect(dup.workflow).toBeNull();
    expect(dup.tasks).toEqual([]);
    expect(dup.alreadyLive.map((t) => t.id).sort()).toEqual(first.tasks.map((t) => t.id).sort());

    // A push: the queued tasks of the old SHA are cancelled and may no longer be claimed.
    const pushed = await createPreviewWorkflow(db, base(sha("c")));
    expect(pushed.superseded.map((t) => t.id).sort()).toEqual(first.tasks.map((t) => t.id).sort());
    expect(await claimTask(db, first.tasks[0]!.id)).toBeNull();

    // Finished tasks do not block the same command later.
    for (const t of pushed.tasks) {
      expect(await claimTask(db, t.id)).not.toBeNull();
      await finishTask(db, t.id, { state: "SUCCEEDED", steps: [], error: null });
    }
    const again = await createPreviewWorkflow(db, base(sha("c")));
    expect(again.tasks).toHaveLength(2);
    const latest = await latestPreviewPerStack(db, "o/r2", 3);
    expect(latest.map((v) => [v.task.stack, v.task.state, v.headSha])).toEqual([
      ["dev", "PENDING", sha("c")],
      ["prod", "PENDING", sha("c")],
    ]);
    const { rows } = await db.query("SELECT state FROM workflows WHERE id = $1", [pushed.workflow!.id]);
    expect(rows[0].state).toBe("READY_FOR_APPLY");
  });

  it("stack locks: one holder under concurrent attempts, renewal by the holder, expiry, release", async () => {
    const repo = "o/locks";
    // 20 pull requests race for the same stack on separate connections: exactly one wins.
    const attempts = await Promise.all(
      Array.from({ length: 20 }, (_, i) => acquireStackLock(db, { repo, stack: "prod", prNumber: 100 + i, lockedBy: `u${i}`, ttlSeconds: 3600 })),
    );
    const winners = attempts.filter((a) => a.ok);
    expect(winners).toHaveLength(1);
    const holder = (winners[0] as { lock: { prNumber: number } }).lock.prNumber;
    for (const a of attempts) if (!a.ok) expect(a.holder.prNumber).toBe(holder);
    expect((await getStackLock(db, repo, "prod"))?.prNumber).toBe(holder);

    // The holder renews; another PR still cannot take it.
    expect((await acquireStackLock(db, { repo, stack: "prod", prNumber: holder, lockedBy: "again", ttlSeconds: 3600 })).ok).toBe(true);
    expect((await acquireStackLock(db, { repo, stack: "prod", prNumber: 999, lockedBy: "x", ttlSeconds: 3600 })).ok).toBe(false);

    // An expired lock is free for anyone.
    await acquireStackLock(db, { repo, stack: "dev", prNumber: 1, lockedBy: "a", ttlSeconds: 3600 });
    await db.query("UPDATE stack_locks SET expires_at = now() - interval '1 second' WHERE repo = $1 AND stack = 'dev'", [repo]);
    expect(await getStackLock(db, repo, "dev")).toBeNull();
    const taken = await acquireStackLock(db, { repo, stack: "dev", prNumber: 2, lockedBy: "b", ttlSeconds: 3600 });
    expect(taken.ok && taken.lock.prNumber).toBe(2);

    expect((await locksHeldBy(db, repo, holder)).map((l) => l.stack)).toEqual(["prod"]);
    expect((await releaseStackLocks(db, repo, { prNumber: holder })).map((l) => l.stack)).toEqual(["prod"]);
    expect(await getStackLock(db, repo, "prod")).toBeNull();
    expect((await releaseStackLocks(db, repo, { stack: "dev" })).map((l) => l.prNumber)).toEqual([2]);
  });
});
