/**
 * "Did you mean …?": the one edit distance and the one closest-word search, for config keys and
 * stack names (src/config/) and for command and stack names typed in a comment (src/commands/).
 * Pure, no I/O.
 */

/** Words longer than this are never compared (the distance is quadratic in their length). */
const MAX_WORD = 64;

/**
 * Optimal string alignment distance: Levenshtein (insert, delete, substitute) plus the swap of
 * two adjacent characters, each costing 1. Gives up early once the distance must exceed `limit`
 * and then returns `limit + 1`.
 */
export function editDistance(a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, before[j - 2]! + 1);
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    // Row minima never decrease (and grow by at most 1 a row), so no later row can get back under.
    if (rowMin > limit) return limit + 1;
    before = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

export interface SuggestOptions {
  /** The largest distance still suggested; default a third of the word's length, 1 to 3. */
  maxDistance?: number;
  /**
   * For config keys: compare case-insensitively, count a word that differs only in `-`/`_` as
   * distance 1, and one that is a prefix of the other (3 characters or more) as distance 2.
   */
  loose?: boolean;
}

/** The candidate closest to `word` if it is plausibly a typo of it (the first such on a tie), or null. */
export function closest(word: string, candidates: readonly string[], options: SuggestOptions = {}): string | null {
  if (word.length === 0 || word.length > MAX_WORD) return null;
  const limit = options.maxDistance ?? Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  const w = options.loose ? word.toLowerCase() : word;
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    if (candidate.length > MAX_WORD) continue;
    const c = options.loose ? candidate.toLowerCase() : candidate;
    let d = editDistance(w, c, limit);
    if (options.loose) {
      if (w.replace(/[-_]/g, "") === c.replace(/[-_]/g, "")) d = Math.min(d, 1);
      else if (w.length >= 3 && (c.startsWith(w) || w.startsWith(c))) d = Math.min(d, 2);
    }
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best;
}
