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
