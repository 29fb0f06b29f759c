/**
 * Prices and patterns of the plan policy (plan-policy.ts): `cost_hints` by resource type (exact
 * or glob), US dollars as whole cents, and the `*` globs that `types`, `urns` and hints use.
 */

/**
 * `*` matches any run of characters, `/` and `:` included (type tokens and URNs are not paths);
 * everything else is literal and the match is anchored and case-sensitive.
 */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}$`, "s");
}

/** US dollars as whole cents; undefined for anything but a finite number. */
export function centsOf(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? Math.round(v * 100) : undefined;
}

export interface Hints {
  exact: Map<string, number>;
  /** Globs, most literal characters first, then in declaration order. */
  globs: Array<{ re: RegExp; cents: number }>;
}

/** `cost_hints` read defensively: entries that are not a price ≥ 0 are ignored. */
export function readHints(raw: unknown): Hints {
  const exact = new Map<string, number>();
  const globs: Array<{ re: RegExp; cents: number; literal: number; order: number }> = [];
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { exact, globs: [] };
  let order = 0;
  for (const [key, value] of Object.entries(raw)) {
    const cents = centsOf(value);
    if (cents === undefined || cents < 0 || key === "") continue;
    if (!key.includes("*")) exact.set(key, cents);
    else globs.push({ re: globToRegExp(key), cents, literal: key.replace(/\*/g, "").length, order: order++ });
  }
  globs.sort((a, b) => b.literal - a.literal || a.order - b.order);
  return { exact, globs };
}

/**
 * The hint for a type: an exact key wins; else the matching glob with the most literal (non-`*`)
 * characters, ties going to the one declared first; `"*"` is thus the fallback. Undefined: none.
 */
export function priceOf(hints: Hints, type: string): number | undefined {
  const exact = hints.exact.get(type);
  if (exact !== undefined) return exact;
  return hints.globs.find((g) => g.re.test(type))?.cents;
}

