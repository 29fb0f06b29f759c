/**
 * Slack Block Kit messages: the approval request with its Approve / Deny buttons, the message
 * that replaces it once decided, and the deploy / approval / lock notifications. Pure: no I/O,
 * no clock.
 *
 * Everything that comes from a repository or a pull request (repository, stack, resource names,
 * logins, error text) is escaped for mrkdwn (`&`, `<`, `>`), so it cannot form a link, a user or
 * channel mention or a `<!channel>` broadcast, and `@` is followed by a zero-width space so a
 * plain `@channel` / `@here` stays text even where Slack would link names.
 */
import { escapeMrkdwn, type SlackMessage } from "../connectors/slack/mrkdwn.js";
import { APPROVE_ACTION_ID, DENY_ACTION_ID, APPROVAL_BLOCK_ID, BUTTON_VALUE_MAX, type ApprovalRequest, type ApprovalButtonValue } from "../domain/slack-approval.js";

/** Destructive operations listed by name; the rest are counted. */
export const DESTRUCTIVE_LIST_MAX = 10;

export interface DecisionOutcome {
  /** `refused`: the click did not count (unmapped user, not allowed, SHA or plan moved on, expired). */
  decision: "approved" | "denied" | "refused";
  /** Slack user ID of whoever clicked. */
  by: string;
  githubLogin: string | null;
  reason?: string;
}

export type NotificationEvent =
  | "deploy.started"
  | "deploy.succeeded"
  | "deploy.failed"
  | "approval.expired"
  | "lock.stolen"
  | "lock.expired";

export interface Notification {
  event: NotificationEvent;
  repo: string;
  prNumber?: number;
  stack: string;
  sha?: string;
  /** Free text (an error, who took the lock); escaped and shortened. */
  detail?: string;
  /** A link for more (check run, log); used only when http(s). */
  url?: string;
}

/** Inline code for a name: backticks would end the span, so they become `'`. */
function code(text: string, max = 200): string {
  return `\`${escapeMrkdwn(text.replace(/`/g, "'").replace(/\s+/g, " "), max) || " "}\``;
}

/** Plain text (header blocks, dialog text): shown literally, only bounded. */
function plain(text: string, max: number): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, " ");
  return clean.length <= max ? clean : `${clean.slice(0, max - 1)}…`;
}

/** An http(s) URL made safe inside `<url|label>`, or null. */
function safeUrl(url: string | undefined): string | null {
  if (!url) return null;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
  const href = parsed.href.replace(/\|/g, "%7C").replace(/</g, "%3C").replace(/>/g, "%3E").replace(/&/g, "&amp;");
  return href.length <= 2000 ? href : null;
}

function link(url: string | undefined, label: string): string {
  const href = safeUrl(url);
  return href ? `<${href}|${label}>` : label;
}

function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

/** `sha256:0123456789ab` → `0123456789ab`. */
function shortPlan(planHash: string): string {
  const i = planHash.indexOf(":");
  return planHash.slice(i + 1, i + 1 + 12);
}

/** A user mention for a Slack user ID, escaped text for anything else. */
function slackUser(id: string): string {
  return /^[UW][A-Z0-9]{2,30}$/.test(id) ? `<@${id}>` : escapeMrkdwn(id, 100);
}

/** Slack's date token: shown in the reader's time zone, the ISO time where it cannot be. */
function slackDate(date: Date): string {
  const unix = Math.floor(date.getTime() / 1000);
  return `<!date^${unix}^{date_short_pretty} {time}|${date.toISOString()}>`;
}

function mrkdwn(text: string) {
  return { type: "mrkdwn", text };
}

function section(text: string) {
  return { type: "section", text: mrkdwn(text) };
}

// ---------------------------------------------------------------------------------------------
// Approval request
// ---------------------------------------------------------------------------------------------

/** The button value; throws if it would exceed Slack's 2,000 characters (it would not post). */
export function approvalButtonValue(r: ApprovalRequest): string {
  const value: ApprovalButtonValue = {
    v: 1,
    repo: r.repo,
    pr: r.prNumber,
    stack: r.stack,
    sha: r.sha,
    plan: r.planHash,
    kind: r.kind,
    inst: r.installationId,
  };
  const json = JSON.stringify(value);
  if (json.length > BUTTON_VALUE_MAX) throw new Error(`approval button value is ${json.length} characters (Slack allows ${BUTTON_VALUE_MAX})`);
  return json;
}

function title(r: ApprovalRequest): string {
  return r.kind === "rollback" ? `rollback of ${r.stack}` : `deploy to ${r.stack}`;
}

function requestBlocks(r: ApprovalRequest, headline: string): unknown[] {
  const fields = [
    mrkdwn(`*Repository*\n${code(r.repo)}`),
    mrkdwn(`*Pull request*\n${link(r.prUrl, `#${r.prNumber}`)}`),
    mrkdwn(`*Stack*\n${code(r.stack)}`),
    mrkdwn(`*Commit*\n${code(shortSha(r.sha))}`),
    mrkdwn(`*Plan*\n${code(shortPlan(r.planHash))}`),
    mrkdwn(`*Requested by*\n${code(r.requestedBy, 100)}`),
    mrkdwn(`*Expires*\n${slackDate(r.expiresAt)}`),
  ];
  const blocks: unknown[] = [
    { type: "header", text: { type: "plain_text", text: plain(headline, 150), emoji: true } },
    { type: "section", fields },
    section(`*Plan:* ${escapeMrkdwn(r.summary, 500) || "no changes"}`),
  ];
  if (r.destructive.length === 0) {
    blocks.push(section("No destructive operations."));
  } else {
    const shown = r.destructive.slice(0, DESTRUCTIVE_LIST_MAX);
    const lines = shown.map((d) => `• *${d.op}* ${code(d.type, 120)} ${code(d.name, 120)}`);
    const more = r.destructive.length - shown.length;
    if (more > 0) lines.push(`…and ${more} more`);
    const n = r.destructive.length;
    blocks.push(section(`:warning: *${n} destructive operation${n === 1 ? "" : "s"}*\n${lines.join("\n")}`));
  }
  return blocks;
}

export function approvalRequestMessage(r: ApprovalRequest): SlackMessage {
  const value = approvalButtonValue(r);
  const destructive = r.destructive.length;
  const blocks = requestBlocks(r, `Approval needed: ${title(r)}`);
  blocks.push({
    type: "actions",
    block_id: APPROVAL_BLOCK_ID,
    elements: [
      {
        type: "button",
        action_id: APPROVE_ACTION_ID,
        text: { type: "plain_text", text: "Approve", emoji: true },
        style: "primary",
        value,
        confirm: {
          title: { type: "plain_text", text: "Approve?" },
          text: {
            type: "plain_text",
            text: plain(
              `Approve the ${title(r)} of ${r.repo} at ${shortSha(r.sha)}` +
                (destructive > 0 ? `, which deletes or replaces ${destructive} resource${destructive === 1 ? "" : "s"}` : "") +
                "?",
              300,
            ),
          },
          confirm: { type: "plain_text", text: "Approve" },
          deny: { type: "plain_text", text: "Cancel" },
        },
      },
      {
        type: "button",
        action_id: DENY_ACTION_ID,
        text: { type: "plain_text", text: "Deny", emoji: true },
        style: "danger",
        value,
      },
    ],
  });
  const text =
    `Approval needed: ${escapeMrkdwn(title(r), 100)} in ${escapeMrkdwn(r.repo, 200)} (PR #${r.prNumber}, ${shortSha(r.sha)}), ` +
    `plan ${escapeMrkdwn(r.summary, 200)}` +
    (destructive > 0 ? `, ${destructive} destructive` : "");
  return { text, blocks };
}

// ---------------------------------------------------------------------------------------------
// Decision
// ---------------------------------------------------------------------------------------------

/** The request as it was, without buttons, with who decided what. */
export function decisionMessage(r: ApprovalRequest, outcome: DecisionOutcome): SlackMessage {
  const who = slackUser(outcome.by) + (outcome.githubLogin ? ` (GitHub ${code(outcome.githubLogin, 100)})` : "");
  const reason = outcome.reason ? `: ${escapeMrkdwn(outcome.reason, 1000)}` : "";
  let line: string;
  let headline: string;
  switch (outcome.decision) {
    case "approved":
      headline = `Approved: ${title(r)}`;
      line = `:white_check_mark: *Approved* by ${who}${reason}`;
      break;
    case "denied":
      headline = `Denied: ${title(r)}`;
      line = `:no_entry: *Denied* by ${who}${reason}`;
      break;
    case "refused":
      headline = `Approval not accepted: ${title(r)}`;
      line = `:warning: *Not accepted* from ${who}${reason || ": not allowed to approve"}`;
      break;
  }
  const blocks = requestBlocks(r, headline);
  blocks.push({ type: "context", elements: [mrkdwn(line)] });
  const text = `${escapeMrkdwn(headline, 150)} in ${escapeMrkdwn(r.repo, 200)} (PR #${r.prNumber})`;
  return { text, blocks };
}

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

const EVENTS: Record<NotificationEvent, { emoji: string; title: string }> = {
  "deploy.started": { emoji: ":rocket:", title: "Deploy started" },
  "deploy.succeeded": { emoji: ":white_check_mark:", title: "Deploy succeeded" },
  "deploy.failed": { emoji: ":x:", title: "Deploy failed" },
  "approval.expired": { emoji: ":hourglass:", title: "Approval request expired" },
  "lock.stolen": { emoji: ":unlock:", title: "Stack lock taken over" },
  "lock.expired": { emoji: ":unlock:", title: "Stack lock expired" },
};

export function notificationMessage(n: Notification): SlackMessage {
  const { emoji, title: eventTitle } = EVENTS[n.event];
  const parts = [`*Repository* ${code(n.repo)}`, `*Stack* ${code(n.stack)}`];
  if (n.prNumber !== undefined) parts.push(`*PR* #${n.prNumber}`);
  if (n.sha) parts.push(`*Commit* ${code(shortSha(n.sha))}`);
  const blocks: unknown[] = [
    section(`${emoji} *${eventTitle}*`),
    { type: "context", elements: [mrkdwn(parts.join("  ·  "))] },
  ];
  if (n.detail) blocks.push(section(escapeMrkdwn(n.detail, 2900)));
  const href = safeUrl(n.url);
  if (href) blocks.push({ type: "context", elements: [mrkdwn(`<${href}|Details>`)] });
  const text =
    `${eventTitle}: ${escapeMrkdwn(n.repo, 200)} ${escapeMrkdwn(n.stack, 100)}` + (n.prNumber !== undefined ? ` (PR #${n.prNumber})` : "");
  return { text, blocks };
}
