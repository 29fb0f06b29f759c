/**
 * Egress policy: which destinations a stack's sandbox may reach (the egress proxy,
 * src/connectors/egress-proxy.ts, enforces it). Server configuration only (invariant 2): the
 * allowlist comes from SANDBOX_EGRESS_ALLOWLIST; pure, no I/O.
 *
 * Rule syntax (`parseEgressRules`): `host[:port]`, port defaulting to 443. `host` is an exact
 * DNS name, `*.example.com` (any subdomain at any depth, NOT the apex `example.com`), or an IP
 * literal (`127.0.0.1`, `[::1]:8443`, or bare `::1` meaning port 443). Wildcards need at least
 * two labels after `*.`, so `*.com` is rejected; note there is no public-suffix list, so
 * `*.co.uk` is accepted — the operator writes these rules, not pull-request authors.
 */
import { isIP, isIPv4, isIPv6 } from "node:net";

export interface EgressRule {
  /** Exact lowercase name, "*.example.com" (subdomains only, not the apex), or an IP literal (IPv6 without brackets). */
  host: string;
  port: number;
}

export class EgressConfigError extends Error {
  override name = "EgressConfigError";
}

const DEFAULT_PORT = 443;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const PORT_RE = /^[0-9]{1,5}$/;

function isValidHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split(".");
  if (!labels.every((l) => LABEL_RE.test(l))) return false;
  // An all-numeric last label is never a real TLD; refusing it keeps "1.2.3" / "2130706433"
  // (inet_aton shorthands for IPv4 addresses) from posing as names.
  return !/^[0-9]+$/.test(labels[labels.length - 1]!);
}

/** Canonical text of an IPv6 literal (lowercase, zero-compressed), or null. */
export function canonicalIPv6(ip: string): string | null {
  if (!isIPv6(ip)) return null;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
}

/**
 * Normalises a destination host: lowercase, one trailing dot removed, IPv6 brackets removed
 * and the address canonicalised. Returns null when it is neither a valid name nor an IP.
 */
export function normalizeHost(raw: string): { host: string; ip: boolean } | null {
  let h = raw.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) {
    const v6 = canonicalIPv6(h.slice(1, -1));
    return v6 === null ? null : { host: v6, ip: true };
  }
  if (h.endsWith(".")) h = h.slice(0, -1);
  if (isIPv4(h)) return { host: h, ip: true };
  const v6 = canonicalIPv6(h);
  if (v6 !== null) return { host: v6, ip: true };
  return isValidHostname(h) ? { host: h, ip: false } : null;
}

/** A port number 1-65535 written in decimal, or null. */
export function parsePort(text: string): number | null {
  if (!PORT_RE.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : null;
}

/** Parses one entry; returns the rule or a reason it is invalid. */
function parseEntry(raw: string): EgressRule | string {
  const entry = raw.trim();
  if (entry === "") return "empty entry";
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) return "a URL scheme is not allowed; write host[:port], e.g. api.example.com:443";
  if (entry.includes("/")) return "a path is not allowed; write host[:port]";
  if (/[?#]/.test(entry)) return "a query or fragment is not allowed; write host[:port]";
  if (entry.includes("@")) return "credentials are not allowed; write host[:port]";
  if (/\s/.test(entry)) return "whitespace inside the entry";

  let hostPart: string;
  let portPart: string | null = null;
  if (entry.startsWith("[")) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(entry);
    if (!m) return "malformed bracketed IPv6 address; write [addr]:port";
    const v6 = canonicalIPv6(m[1]!);
    if (v6 === null) return `"${m[1]}" is not an IPv6 address`;
    hostPart = v6;
    portPart = m[2] ?? null;
  } else if (isIPv6(entry)) {
    hostPart = entry;
  } else {
    const colons = entry.split(":").length - 1;
    if (colons > 1) return "an IPv6 address with a port must be bracketed, e.g. [2001:db8::1]:443";
    const i = entry.lastIndexOf(":");
    hostPart = i === -1 ? entry : entry.slice(0, i);
    portPart = i === -1 ? null : entry.slice(i + 1);
  }

  let port = DEFAULT_PORT;
  if (portPart !== null) {
    const p = parsePort(portPart);
    if (p === null) return `port "${portPart}" is not a number in 1-65535`;
    port = p;
  }

  let host = hostPart.toLowerCase();
  if (host === "") return "missing host";
  if (host.endsWith(".") && !host.startsWith("[")) host = host.slice(0, -1);
  if (host === "*") return 'a bare "*" would allow everything; list the destinations';
  if (host.startsWith("*.")) {
    const suffix = host.slice(2);
    if (suffix.includes("*")) return 'only one leading "*." wildcard label is allowed';
    if (isIP(suffix) !== 0 || !isValidHostname(suffix)) return `"${suffix}" is not a valid domain name`;
    if (!suffix.includes(".")) return `"*.${suffix}" would match a whole top-level domain; name at least the registrable domain, e.g. *.example.${suffix}`;
    return { host: `*.${suffix}`, port };
  }
  if (host.includes("*")) return 'a wildcard is only allowed as the whole first label, e.g. "*.example.com"';
  if (isIPv4(host)) return { host, port };
  const v6 = canonicalIPv6(host);
  if (v6 !== null) return { host: v6, port };
  if (!isValidHostname(host)) return `"${hostPart}" is not a valid host name or IP address`;
  return { host, port };
}

/**
 * Parses operator allowlist entries such as "api.pulumi.com:443", "*.amazonaws.com" (port
 * defaults to 443) or "127.0.0.1:8080". Every bad entry is reported in one EgressConfigError.
 * Duplicates are dropped.
 */
export function parseEgressRules(entries: string[]): EgressRule[] {
  const rules: EgressRule[] = [];
  const seen = new Set<string>();
  const problems: string[] = [];
  entries.forEach((raw, i) => {
    const r = typeof raw === "string" ? parseEntry(raw) : "not a string";
    if (typeof r === "string") {
      problems.push(`entry ${i} ${JSON.stringify(raw)}: ${r}`);
      return;
    }
    const key = `${r.host}|${r.port}`;
    if (!seen.has(key)) {
      seen.add(key);
      rules.push(r);
    }
  });
  if (problems.length > 0) throw new EgressConfigError(`invalid egress allowlist: ${problems.join("; ")}`);
  return rules;
}

/** Whether one rule allows a normalised destination (see {@link normalizeHost}). */
export function ruleMatches(rule: EgressRule, host: string, ip: boolean, port: number): boolean {
  if (rule.port !== port) return false;
  let rh = rule.host.toLowerCase();
  if (rh.endsWith(".")) rh = rh.slice(0, -1);
  if (rh.startsWith("*.")) return !ip && host.endsWith(rh.slice(1)) && host.length > rh.length - 1;
  if (ip) return (canonicalIPv6(rh) ?? rh) === host;
  return rh === host;
}

/** Whether host:port is on the allowlist (host case-insensitive, a trailing dot ignored). */
export function isAllowed(rules: EgressRule[], host: string, port: number): boolean {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return false;
  const n = normalizeHost(host);
  if (n === null) return false;
  return rules.some((r) => ruleMatches(r, n.host, n.ip, port));
}

/**
 * Which destinations a stack's steps may reach. Server configuration only (invariant 2):
 * keys are `owner/repo:stack`, with `*` allowed for either side; all matching entries add up.
 * No matching entry means no egress at all (network `none`).
 */
export type EgressAllowlist = ReadonlyArray<{ repo: string; stack: string; rules: EgressRule[] }>;

export function egressRulesFor(allowlist: EgressAllowlist, repo: string, stack: string): EgressRule[] {
  const out: EgressRule[] = [];
  for (const entry of allowlist) {
    const repoOk = entry.repo === "*" || entry.repo.toLowerCase() === repo.toLowerCase();
    const stackOk = entry.stack === "*" || entry.stack === stack;
    if (repoOk && stackOk) out.push(...entry.rules);
  }
  const seen = new Set<string>();
  return out.filter((r) => {
    const k = `${r.host}:${r.port}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
}
