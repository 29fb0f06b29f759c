import type { Db } from "./db.js";

/**
 * Replay protection for Slack interaction requests. A signed request stays valid for Slack's
 * timestamp window (SLACK_MAX_SKEW_SECONDS either way), so a captured click could be sent
 * again; its signature is recorded here before the click is queued, and a request whose
 * signature is already here is not acted on again.
 */

/**
 * Extra time a key is kept beyond the window: the web replicas' clocks (which judge the window)
 * may differ a little from each other.
 */
export const REPLAY_KEY_MARGIN_SECONDS = 60;

/**
 * Records a request's signature; true the first time it is seen, false for a replay. Keys whose
 * request can no longer pass the timestamp check are pruned in the same round trip.
 */
export async function claimSlackReplayKey(
  db: Db,
  k: { signature: string; requestTs: number; windowSeconds: number; nowMs?: number },
): Promise<boolean> {
  const nowSeconds = Math.floor((k.nowMs ?? Date.now()) / 1000);
  // One statement: the prune and the insert share a snapshot, so a key being pruned cannot be
  // the one inserted (its request would be outside the window and refused before this).
  const res = await db.query<{ inserted: boolean }>(
    `WITH pruned AS (DELETE FROM slack_replay_keys WHERE request_ts < to_timestamp($3))
     INSERT INTO slack_replay_keys (signature, request_ts) VALUES ($1, to_timestamp($2))
     ON CONFLICT (signature) DO NOTHING RETURNING true AS inserted`,
    [k.signature, k.requestTs, nowSeconds - k.windowSeconds - REPLAY_KEY_MARGIN_SECONDS],
  );
  return res.rowCount === 1;
}

/** Forgets a key whose click could not be queued, so nothing counts it as handled. */
export async function forgetSlackReplayKey(db: Db, signature: string): Promise<void> {
  await db.query("DELETE FROM slack_replay_keys WHERE signature = $1", [signature]);
}
