/**
 * Review stacks' policy, pure: whether one more may go live (the cost guard), and what a sweep
 * does with a live one (warn before its TTL passes, destroy once it has). No I/O.
 */

/** A live review stack as the policy sees it. */
export interface LiveReviewStack {
  stack: string;
  pr: number;
  expiresAt: Date;
}

export type ReviewSlot = { ok: true; renewal: boolean } | { ok: false; live: LiveReviewStack[]; max: number };

/**
 * The cost guard: a stack already live is renewed (it costs nothing more); a new one goes live
 * only while fewer than `max` are (counting those being destroyed, whose resources still exist).
 */
export function decideReviewSlot(stack: string, live: readonly LiveReviewStack[], max: number): ReviewSlot {
  if (live.some((l) => l.stack === stack)) return { ok: true, renewal: true };
  if (live.length < max) return { ok: true, renewal: false };
  return { ok: false, live: [...live].sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime()), max };
}

/** The expiry warning comes this long before the TTL passes: a quarter of the TTL, between 5 minutes and a day. */
export function warnBeforeSeconds(ttlSeconds: number): number {
  return Math.min(86_400, Math.max(300, Math.floor(ttlSeconds / 4)));
}

export type SweepAction = "destroy" | "warn" | "none";

/** What a sweep at `now` does with a live review stack. */
export function sweepAction(s: { expiresAt: Date; warnedAt: Date | null; ttlSeconds: number }, now: Date): SweepAction {
  const left = (s.expiresAt.getTime() - now.getTime()) / 1000;
  if (left <= 0) return "destroy";
  if (s.warnedAt === null && left <= warnBeforeSeconds(s.ttlSeconds)) return "warn";
  return "none";
}

/** `pr-12-web` → { pr: 12, base: "web" }; null for a name that is no review stack's. */
export function parseReviewStackName(name: string): { pr: number; base: string } | null {
  const m = /^pr-([1-9][0-9]{0,8})-(.+)$/.exec(name);
  return m ? { pr: Number(m[1]), base: m[2]! } : null;
}

/** "3 h 20 min", "2 days": a lifetime in words. */
export function durationWords(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 2 * 86_400) return `${Math.round(s / 86_400)} days`;
  // Rounded to the minute first, so 7170 s is "2 h", never "1 h 60 min".
  const minutes = Math.max(1, Math.round(s / 60));
  if (minutes >= 60) {
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  return `${minutes} min`;
}
