/**
 * Helpers shared by the probes: the outcome type, a DOWN error whose message is a safe one-line
 * reason, HTTP GET with zod validation, and the text sanitiser every reason goes through.
 */
import type { z } from "zod";
import type { ProbeResult, ProbeStatus } from "../../domain/diagnose.js";

export type ProbeOutcome = Omit<ProbeResult, "name" | "durationMs">;
export type Detail = ProbeResult["details"][number];

/** Thrown inside a probe: the message is the (already safe) one-line reason of a DOWN result. */
export class ProbeDown extends Error {
  override name = "ProbeDown";
  constructor(
    message: string,
    readonly details: Detail[] = [],
  ) {
    super(message);
  }
}

const RANK: Record<ProbeStatus, number> = { OK: 0, DEGRADED: 1, DOWN: 2 };

export function worst(statuses: ProbeStatus[]): ProbeStatus {
  return statuses.reduce<ProbeStatus>((a, b) => (RANK[b] > RANK[a] ? b : a), "OK");
}

/** Runs a probe body; a ProbeDown becomes a DOWN outcome, anything else propagates to the runner. */
export async function guarded(body: () => Promise<ProbeOutcome>): Promise<ProbeOutcome> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof ProbeDown) return { status: "DOWN", reason: err.message, details: err.details };
    throw err;
  }
}

const MAX_REASON = 240;

/**
 * One line, bounded, without credentials: secret values become `***`, `scheme://user:pass@`
 * loses its userinfo, `token=`/`key=`/`password=` query values are hidden.
 */
export function sanitize(text: string, secrets: readonly string[] = []): string {
  let s = String(text);
  for (const secret of secrets) if (secret && secret.length >= 4) s = s.split(secret).join("***");
  s = s
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, "$1***@")
    .replace(/([?&](?:[a-z_-]*(?:token|key|secret|password|passwd|pwd|auth)[a-z_-]*)=)[^&\s#]*/gi, "$1***")
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, "$1 ***")
    .replace(/(authorization:\s*token)\s+\S+/gi, "$1 ***")
    .replace(/\s+/g, " ")
    .trim();
  return s.length > MAX_REASON ? `${s.slice(0, MAX_REASON - 1)}…` : s;
}

/** A network-level failure (no HTTP response) as a short phrase: "ECONNREFUSED", "ENOTFOUND". */
export function describeError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | null;
  const code = e?.cause?.code ?? e?.code;
  if (typeof code === "string" && code) return code;
  const msg = e?.cause?.message ?? e?.message;
  return typeof msg === "string" && msg ? msg : String(err);
}

function httpReason(status: number, what: string): string {
  if (status === 401) return `HTTP 401 from ${what}: the credential was rejected`;
  if (status === 403) return `HTTP 403 from ${what}: the credential lacks permission`;
  if (status === 404) return `HTTP 404 from ${what}: not found`;
  if (status === 429) return `HTTP 429 from ${what}: rate limited`;
  if (status >= 500) return `HTTP ${status} from ${what}: server error`;
  return `HTTP ${status} from ${what}`;
}

/**
 * GET with the run's signal. No response → ProbeDown "cannot reach <what>: CODE"; a non-2xx
 * status → ProbeDown "HTTP N from <what>: …" (or `onStatus` decides first). Aborts propagate.
 */
export async function httpGet(
  url: string,
  opts: { what: string; headers: Record<string, string>; signal: AbortSignal; onStatus?: (status: number) => string | undefined },
): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { method: "GET", headers: opts.headers, signal: opts.signal, redirect: "manual" });
  } catch (err) {
    if (opts.signal.aborted) throw err;
    throw new ProbeDown(`cannot reach ${opts.what}: ${describeError(err)}`);
  }
  if (res.status < 200 || res.status > 299) {
    await res.body?.cancel().catch(() => {});
    throw new ProbeDown(opts.onStatus?.(res.status) ?? httpReason(res.status, opts.what));
  }
  return res;
}

/** Reads and validates a JSON body; anything else → ProbeDown "unexpected response from <what>". */
export async function readJson<S extends z.ZodType>(res: Response, schema: S, what: string): Promise<z.output<S>> {
  const text = await res.text();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ProbeDown(`unexpected response from ${what} (not JSON)`);
  }
  const parsed = schema.safeParse(doc);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first ? first.path.map(String).join(".") || "body" : "body";
    throw new ProbeDown(`unexpected response from ${what} (${where}: ${first?.message ?? "invalid"})`);
  }
  return parsed.data;
}

/** "42 s ago", "3 min ago", "5 h ago", "2 d ago". */
export function ago(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

export function duration(seconds: number): string {
  return ago(seconds).replace(/ ago$/, "");
}

export function ms(n: number): string {
  return `${Math.round(n)} ms`;
}
