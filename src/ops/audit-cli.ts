import { parseArgs } from "node:util";
import { GITHUB_LOGIN_SOURCE, STACK_NAME_RE } from "../config/fields.js";
import { exportAudit, verifyAuditChain, type AuditExportFilter } from "../connectors/store/audit-chain.js";
import type { Db } from "../connectors/store/db.js";

/**
 * `audit verify` and `audit export`: the operator's view of the hash-chained audit log
 * (src/connectors/store/audit-chain.ts). src/cli.ts dispatches `audit …` here.
 */

export const AUDIT_USAGE = `usage: npm run agent -- audit verify
       npm run agent -- audit export [--repo <owner/name>] [--stack <name>] [--since <ISO time>] [--until <ISO time>] [--limit <n>]

  verify     recompute every row's hash and check the chain; prints "ok: N rows, head <hash>"
             (keep the head: a later run must still contain it) or "BROKEN at id X: <reason>"
  export     the matching rows as JSON lines (one row per line, hash and prev_hash included),
             in chain order
  --repo     only this repository
  --stack    only rows about this stack (detail.stack)
  --since    only rows at or after this time, e.g. 2024-11-01 or 2024-11-01T12:00:00Z
  --until    only rows before this time (same format)
  --limit    at most this many rows

exit status: 0 ok, 1 chain broken or failure, 2 usage error
`;

export interface AuditCliIo {
  stdout(s: string): void;
  stderr(s: string): void;
}

/** owner/name as GitHub allows them. */
export const REPO_PATTERN = new RegExp(`^${GITHUB_LOGIN_SOURCE}\\/(?!\\.\\.?$)[A-Za-z0-9._-]{1,100}$`);

// A date, or a date and time with an explicit offset: a time without one would depend on
// the operator's machine's time zone.
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

function parseIsoTime(text: string): Date | null {
  const m = ISO_TIME.exec(text);
  if (!m) return null;
  const [, y, mo, d, h = "00", mi = "00", s = "00"] = m;
  // Reject what Date would silently roll over (2024-02-30, 24:00).
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.getUTCFullYear() !== Number(y) || day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d)) return null;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return null;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * Runs `audit <argv…>` (argv: the words after `audit`; a leading `audit` is skipped too) and
 * returns the exit status. Never closes deps.db.
 */
export async function auditCommand(argv: readonly string[], deps: { db: Db }, io: AuditCliIo): Promise<number> {
  const usage = (message: string) => {
    io.stderr(`error: ${message}\n\n${AUDIT_USAGE}`);
    return 2;
  };
  const args = argv[0] === "audit" ? argv.slice(1) : [...argv];

  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        repo: { type: "string" },
        stack: { type: "string" },
        since: { type: "string" },
        until: { type: "string" },
        limit: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(AUDIT_USAGE);
    return 0;
  }
  const [command, ...extra] = positionals;
  if (command === undefined) return usage("no audit command given (verify or export)");
  if (command !== "verify" && command !== "export") return usage(`unknown audit command: ${JSON.stringify(command).slice(0, 60)}`);
  if (extra.length) return usage(`unexpected argument: ${JSON.stringify(extra[0]).slice(0, 60)}`);

  if (command === "verify") {
    const given = (["repo", "stack", "since", "until", "limit"] as const).find((k) => values[k] !== undefined);
    if (given) return usage(`--${given} applies to export, not verify`);
    try {
      const result = await verifyAuditChain(deps.db);
      if (result.ok) {
        io.stdout(`ok: ${result.rows} rows, head ${result.head ?? "none"}\n`);
        return 0;
      }
      io.stdout(`BROKEN at id ${result.brokenAt.id}: ${result.brokenAt.reason}\n`);
      return 1;
    } catch (err) {
      io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    }
  }

  const filter: AuditExportFilter = {};
  if (values.repo !== undefined) {
    if (!REPO_PATTERN.test(values.repo)) return usage(`--repo: not owner/name: ${JSON.stringify(values.repo).slice(0, 80)}`);
    filter.repo = values.repo;
  }
  if (values.stack !== undefined) {
    if (!STACK_NAME_RE.test(values.stack)) return usage(`--stack: not a stack name: ${JSON.stringify(values.stack).slice(0, 80)}`);
    filter.stack = values.stack;
  }
  for (const key of ["since", "until"] as const) {
    const text = values[key];
    if (text === undefined) continue;
    const date = parseIsoTime(text);
    if (!date) return usage(`--${key}: not an ISO 8601 date or date-time with offset: ${JSON.stringify(text).slice(0, 80)}`);
    filter[key] = date;
  }
  if (filter.since && filter.until && filter.since.getTime() >= filter.until.getTime()) {
    return usage("--since must be before --until");
  }
  if (values.limit !== undefined) {
    const n = /^\d{1,15}$/.test(values.limit) ? Number(values.limit) : NaN;
    if (!(n >= 1)) return usage(`--limit: not a positive integer: ${JSON.stringify(values.limit).slice(0, 40)}`);
    filter.limit = n;
  }
  try {
    for await (const line of exportAudit(deps.db, filter)) io.stdout(`${line}\n`);
    return 0;
  } catch (err) {
    io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
