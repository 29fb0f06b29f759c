/**
 * The Slack approval contract: what an approval request holds and what its buttons carry back.
 * Shared by the renderer (src/render/slack.ts), the Slack connector and the store. Plain data.
 */
export const APPROVE_ACTION_ID = "agent_approve";
export const DENY_ACTION_ID = "agent_deny";
export const APPROVAL_BLOCK_ID = "agent_approval";
/** Slack's limit for a button's `value`. */
export const BUTTON_VALUE_MAX = 2000;

export interface DestructiveOp {
  op: "delete" | "replace";
  type: string;
  name: string;
}

export interface ApprovalRequest {
  kind: "deploy" | "rollback";
  /** `owner/repo`. */
  repo: string;
  prNumber: number;
  prUrl: string;
  stack: string;
  /** The head SHA the approval is bound to. */
  sha: string;
  /** The plan hash the approval is bound to (`sha256:…`). */
  planHash: string;
  /** Counts, e.g. `+3 ~1 -2`. */
  summary: string;
  destructive: DestructiveOp[];
  /** GitHub login of whoever asked for the deploy. */
  requestedBy: string;
  expiresAt: Date;
  installationId: number;
}

/**
 * What a button carries back to the app: everything needed to find the deploy and to bind the
 * approval to the same SHA and plan. Compact keys: Slack limits a value to 2,000 characters.
 * Not trusted on its own: the interaction's signature proves Slack sent it, and the approval
 * policy checks it against the stored deploy.
 */
export interface ApprovalButtonValue {
  v: 1;
  repo: string;
  pr: number;
  stack: string;
  sha: string;
  plan: string;
  kind: "deploy" | "rollback";
  inst: number;
}
