/** Secret rotation's policy, pure: when a static secret is due, and how old it may get before the alert. */

export const DAY_SECONDS = 86_400;

/** Seconds since the secret's current version was written. */
export function secretAgeSeconds(createdAt: Date, now: Date): number {
  return Math.max(0, Math.floor((now.getTime() - createdAt.getTime()) / 1000));
}

/** Due once its current version is `everyDays` old (a scheduled rotation then writes a new one). */
export function rotationDue(createdAt: Date, everyDays: number, now: Date): boolean {
  return secretAgeSeconds(createdAt, now) >= everyDays * DAY_SECONDS;
}

/** When the secret is due: `everyDays` after its current version was written. */
export function rotationDueAt(createdAt: Date, everyDays: number): Date {
  return new Date(createdAt.getTime() + everyDays * DAY_SECONDS * 1000);
}

/** What the GitHub App key's rotation issue needs now (the app cannot make the key; a person does). */
export type KeyNoticeAction =
  | { kind: "none" }
  /** The key in use is within `noticeDays` of due and has no issue yet. */
  | { kind: "open"; version: number; dueAt: Date }
  /** A newer key than the issue asked to replace is in use: say so and close it. */
  | { kind: "close"; issue: number; replaced: number; by: number };

export function githubKeyNoticeAction(s: {
  /** The Vault version of the key this process signs with, and when it was written. */
  inUseVersion: number;
  inUseCreatedAt: Date;
  everyDays: number;
  noticeDays: number;
  /** The latest issue opened, for which version, and whether it was closed since. */
  lastNotice: { version: number; issue: number; closed: boolean } | null;
  now: Date;
}): KeyNoticeAction {
  const last = s.lastNotice;
  if (last && !last.closed && s.inUseVersion > last.version) return { kind: "close", issue: last.issue, replaced: last.version, by: s.inUseVersion };
  if (last && last.version >= s.inUseVersion) return { kind: "none" };
  const dueAt = rotationDueAt(s.inUseCreatedAt, s.everyDays);
  if (s.now.getTime() < dueAt.getTime() - s.noticeDays * DAY_SECONDS * 1000) return { kind: "none" };
  return { kind: "open", version: s.inUseVersion, dueAt };
}
