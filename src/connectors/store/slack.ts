import type { ApprovalRequest } from "../../domain/slack-approval.js";
import type { Db } from "./db.js";

export interface SlackMessageRow {
  id: string;
  channel: string | null;
  ts: string | null;
  request: Omit<ApprovalRequest, "expiresAt"> & { expiresAt: string };
  decided: string | null;
}

interface Key {
  repo: string;
  prNumber: number;
  stack: string;
  sha: string;
  planHash: string;
}

/** Claims the one approval message of a plan; null when it was posted (or is being posted) already. */
export async function claimSlackRequest(db: Db, k: Key, request: ApprovalRequest): Promise<string | null> {
  const res = await db.query<{ id: string }>(
    `INSERT INTO slack_messages (repo, pr_number, stack, head_sha, plan_hash, request) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT DO NOTHING RETURNING id`,
    [k.repo, k.prNumber, k.stack, k.sha, k.planHash, JSON.stringify(request)],
  );
  return res.rows[0]?.id ?? null;
}

export async function setSlackMessage(db: Db, id: string, channel: string, ts: string): Promise<void> {
  await db.query("UPDATE slack_messages SET channel = $2, ts = $3 WHERE id = $1", [id, channel, ts]);
}

export async function findSlackRequest(db: Db, k: Key): Promise<SlackMessageRow | null> {
  const res = await db.query<SlackMessageRow>(
    "SELECT id, channel, ts, request, decided FROM slack_messages WHERE repo = $1 AND pr_number = $2 AND stack = $3 AND head_sha = $4 AND plan_hash = $5",
    [k.repo, k.prNumber, k.stack, k.sha, k.planHash],
  );
  return res.rows[0] ?? null;
}

export async function setSlackDecision(db: Db, id: string, decided: string): Promise<void> {
  await db.query("UPDATE slack_messages SET decided = $2 WHERE id = $1", [id, decided]);
}
