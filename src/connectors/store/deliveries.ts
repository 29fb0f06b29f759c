import type { Db } from "./db.js";

export interface DeliveryRecord {
  id: string;
  event: string;
  action: string | null;
  installationId: number | null;
  repo: string | null;
}

/** Records a delivery; false when this X-GitHub-Delivery was already seen. */
export async function recordDelivery(db: Db, d: DeliveryRecord): Promise<boolean> {
  const res = await db.query(
    `INSERT INTO deliveries (id, event, action, installation_id, repo)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
    [d.id, d.event, d.action, d.installationId, d.repo],
  );
  return res.rowCount === 1;
}

/**
 * Records a batch of deliveries in one statement; returns the ids that were new. The statement
 * text is the same for every batch size (arrays, not a VALUES list), so it is prepared once per
 * connection. An id twice in the batch is inserted once (DO NOTHING skips the second).
 */
export async function recordDeliveries(db: Db, ds: readonly DeliveryRecord[]): Promise<Set<string>> {
  if (ds.length === 0) return new Set();
  const res = await db.query<{ id: string }>({
    name: "deliveries_record_batch",
    text: `INSERT INTO deliveries (id, event, action, installation_id, repo)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])
           ON CONFLICT (id) DO NOTHING RETURNING id`,
    values: [ds.map((d) => d.id), ds.map((d) => d.event), ds.map((d) => d.action), ds.map((d) => d.installationId), ds.map((d) => d.repo)],
  });
  return new Set(res.rows.map((r) => r.id));
}

/** Forgets deliveries whose enqueue failed, so GitHub's redelivery of them is not rejected as a duplicate. */
export async function forgetDeliveries(db: Db, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query("DELETE FROM deliveries WHERE id = ANY($1::text[])", [ids]);
}
