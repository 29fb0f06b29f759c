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

/** Forgets a delivery whose enqueue failed, so GitHub's manual redelivery is not rejected. */
export async function forgetDelivery(db: Db, id: string): Promise<void> {
  await db.query("DELETE FROM deliveries WHERE id = $1", [id]);
}
