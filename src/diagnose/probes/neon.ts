/**
 * Neon (API v2, `Authorization: Bearer <API key>`): the branch (`GET /projects/{id}/branches/{branch}`,
 * or `GET /projects/{id}/branches` and its default branch when no branch is configured) and the
 * compute endpoints (`GET /projects/{id}/endpoints`) of that branch.
 *
 * Judged from the documented fields:
 * - branch `current_state`: `ready` OK; `init` (being created) and `archived` (in cold storage, the
 *   first connection restores it, slowly) DEGRADED; anything else DEGRADED with the state named.
 * - endpoint `disabled: true` DOWN (connections are refused); `current_state` `active` OK, `idle` OK
 *   (scaled to zero since `suspended_at`, woken by the next connection, with a cold start), `init`
 *   DEGRADED (starting), anything else DEGRADED; a branch with no endpoint is DOWN.
 */
import { z } from "zod";
import type { Probe, ProbeStatus } from "../../domain/diagnose.js";
import { ago, guarded, httpGet, readJson, worst, type Detail } from "./common.js";

const Branch = z.looseObject({
  id: z.string(),
  name: z.string(),
  current_state: z.string(),
  pending_state: z.string().nullish(),
  default: z.boolean().optional(),
  primary: z.boolean().optional(),
});
const Endpoint = z.looseObject({
  id: z.string(),
  branch_id: z.string(),
  type: z.string().optional(),
  current_state: z.string(),
  pending_state: z.string().nullish(),
  disabled: z.boolean().optional(),
  suspended_at: z.string().nullish(),
  last_active: z.string().nullish(),
});
const BranchResponse = z.looseObject({ branch: Branch });
const BranchesResponse = z.looseObject({ branches: z.array(Branch) });
const EndpointsResponse = z.looseObject({ endpoints: z.array(Endpoint) });

type BranchT = z.infer<typeof Branch>;
type EndpointT = z.infer<typeof Endpoint>;

export interface NeonProbeOptions {
  apiUrl: string;
  projectId: string;
  branchId?: string;
  apiKey: string;
  now?: () => number;
}

export function neonProbe(opts: NeonProbeOptions): Probe {
  const now = opts.now ?? Date.now;
  return {
    name: "neon",
    run: (signal) =>
      guarded(async () => {
        const headers = { authorization: `Bearer ${opts.apiKey}`, accept: "application/json" };
        const project = `${opts.apiUrl}/projects/${encodeURIComponent(opts.projectId)}`;
        const what = "the Neon API";
        const [branches, endpoints] = await Promise.all([
          (async (): Promise<BranchT[]> => {
            if (opts.branchId) {
              const res = await httpGet(`${project}/branches/${encodeURIComponent(opts.branchId)}`, {
                what,
                headers,
                signal,
                onStatus: (s) => (s === 404 ? `branch ${opts.branchId} of project ${opts.projectId} not found (HTTP 404)` : undefined),
              });
              return [(await readJson(res, BranchResponse, what)).branch];
            }
            const res = await httpGet(`${project}/branches`, {
              what,
              headers,
              signal,
              onStatus: (s) => (s === 404 ? `project ${opts.projectId} not found (HTTP 404)` : undefined),
            });
            const all = (await readJson(res, BranchesResponse, what)).branches;
            const defaults = all.filter((b) => b.default === true || b.primary === true);
            return defaults.length ? defaults.slice(0, 1) : all;
          })(),
          (async () => {
            const res = await httpGet(`${project}/endpoints`, {
              what,
              headers,
              signal,
              onStatus: (s) => (s === 404 ? `project ${opts.projectId} not found (HTTP 404)` : undefined),
            });
            return (await readJson(res, EndpointsResponse, what)).endpoints;
          })(),
        ]);
        if (!branches.length) return { status: "DOWN", reason: `project ${opts.projectId} has no branches`, details: [] };

        const statuses: ProbeStatus[] = [];
        const reasons: Array<{ status: ProbeStatus; text: string }> = [];
        const details: Detail[] = [];
        for (const b of branches) {
          const branch = judgeBranch(b);
          statuses.push(branch.status);
          reasons.push(branch);
          details.push({ label: `branch ${b.name}`, value: b.current_state + (b.pending_state ? ` → ${b.pending_state}` : "") });
          const eps = endpoints.filter((e) => e.branch_id === b.id);
          if (!eps.length) {
            statuses.push("DOWN");
            reasons.push({ status: "DOWN", text: `branch ${b.name} has no compute endpoint` });
            continue;
          }
          for (const e of eps) {
            const ep = judgeEndpoint(e, now());
            statuses.push(ep.status);
            reasons.push(ep);
            details.push({ label: `endpoint ${e.id}`, value: `${e.current_state}${e.disabled ? " (disabled)" : ""}${e.type ? ` · ${e.type}` : ""}` });
          }
        }
        const status = worst(statuses);
        // The reason names what drives the status first, then the rest briefly.
        const ordered = [...reasons.filter((r) => r.status === status), ...reasons.filter((r) => r.status !== status)];
        return { status, reason: ordered.map((r) => r.text).join("; "), details };
      }),
  };
}

function judgeBranch(b: BranchT): { status: ProbeStatus; text: string } {
  const pending = b.pending_state && b.pending_state !== b.current_state ? ` (changing to ${b.pending_state})` : "";
  switch (b.current_state) {
    case "ready":
      return { status: pending ? "DEGRADED" : "OK", text: `branch ${b.name} ready${pending}` };
    case "init":
      return { status: "DEGRADED", text: `branch ${b.name} is still being created (init)${pending}` };
    case "archived":
      return { status: "DEGRADED", text: `branch ${b.name} is archived: the first connection restores it from cold storage (slow)${pending}` };
    default:
      return { status: "DEGRADED", text: `branch ${b.name} is in state ${b.current_state}${pending}` };
  }
}

function judgeEndpoint(e: EndpointT, nowMs: number): { status: ProbeStatus; text: string } {
  if (e.disabled) return { status: "DOWN", text: `endpoint ${e.id} is disabled: connections are refused` };
  const pending = e.pending_state && e.pending_state !== e.current_state ? ` (changing to ${e.pending_state})` : "";
  switch (e.current_state) {
    case "active":
      return { status: "OK", text: `endpoint ${e.id} active${pending}` };
    case "idle": {
      const since = e.suspended_at ? Date.parse(e.suspended_at) : NaN;
      const when = Number.isFinite(since) ? ` since ${ago((nowMs - since) / 1000)}` : "";
      return { status: "OK", text: `endpoint ${e.id} idle (scaled to zero${when}; the next connection wakes it with a cold start)${pending}` };
    }
    case "init":
      return { status: "DEGRADED", text: `endpoint ${e.id} is starting (init)${pending}` };
    default:
      return { status: "DEGRADED", text: `endpoint ${e.id} is in state ${e.current_state}${pending}` };
  }
}
