import { fileURLToPath } from "node:url";
import { runner } from "node-pg-migrate";
import pg from "pg";

export type Db = pg.Pool;
/** The pool, or one client inside a transaction. */
export type Queryable = Db | pg.PoolClient;

/**
 * The database's clock to the microsecond, as text: a JS Date would drop the microseconds, so a
 * row written in the same millisecond would compare as later than this instant. Pass it back
 * as a `timestamptz` parameter.
 */
export async function dbNow(q: Queryable): Promise<string> {
  return (await q.query<{ now: string }>("SELECT clock_timestamp()::text AS now")).rows[0]!.now;
}

/** Runs `fn` in one transaction on a client of its own: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(db: Db, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    const out = await fn(client);
    await client.query("COMMIT");
    return out;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

const MIGRATIONS_DIR = fileURLToPath(new URL("../../../migrations", import.meta.url));

export function createDb(databaseUrl: string): Db {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  // An idle client losing its connection must not crash the process.
  pool.on("error", () => {});
  // Nor one that is checked out (the pool listens only to idle clients), e.g. withPrLock's
  // between its queries: the query in flight fails, and the pool drops the client on release.
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

/** Creates the database named in the URL when the server has none by that name. */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unsupported database name: ${name}`);
  url.pathname = "/postgres";
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) {
      // Identifier checked above; CREATE DATABASE takes no bind parameters.
      await admin.query(`CREATE DATABASE "${name}"`).catch((err: { code?: string }) => {
        if (err.code !== "42P04") throw err; // created concurrently by another process
      });
    }
  } finally {
    await admin.end();
  }
}

/** Runs pending migrations under node-pg-migrate's advisory lock (safe with several replicas). */
export async function migrate(databaseUrl: string): Promise<void> {
  await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    migrationsTable: "pgmigrations",
    direction: "up",
    count: Infinity,
    // Replicas starting together wait for the first one's migrations instead of failing to start.
    advisoryLockMode: "wait",
    log: () => {},
  });
}
