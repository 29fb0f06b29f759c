/**
 * Pulumi Cloud: the latest update of the stack,
 *
 *   GET {api_url}/api/stacks/{org}/{project}/{stack}/updates?output-type=service&pageSize=1&page=1
 *   Authorization: token <access token>     Accept: application/vnd.pulumi+8
 *
 * (https://www.pulumi.com/docs/pulumi-cloud/reference/stack-updates, "List Stack Updates";
 * `?pageSize=1&page=1` returns only the most recent update). With `output-type=service` the body
 * is GetStackUpdatesResponse: `updates[].info` holds `kind`, `startTime`/`endTime` (epoch seconds),
 * `result` (not-started / in-progress / succeeded / failed) and `version`; the default "cli" shape
 * has those fields directly on `updates[]`, and both are accepted.
 *
 * succeeded → OK; failed → DOWN; in-progress or not-started for longer than in_progress_max_s →
 * DEGRADED (shorter → OK, "in progress"); no update at all → DEGRADED; 404 → DOWN (no such stack).
 */
import { z } from "zod";
import type { Probe } from "../../domain/diagnose.js";
import { ago, duration, guarded, httpGet, readJson, type Detail } from "./common.js";

const Info = z.looseObject({
  kind: z.string(),
  startTime: z.number(),
  endTime: z.number().nullish(),
  result: z.enum(["not-started", "in-progress", "succeeded", "failed"]),
  version: z.number().int().nullish(),
  message: z.string().nullish(),
});
const ServiceUpdate = z
  .looseObject({ info: Info, version: z.number().int().nullish(), updateID: z.string().nullish() })
  .transform((u) => ({ ...u.info, version: u.info.version ?? u.version ?? null }));
/** Both shapes normalised to the update's info. */
const UpdatesResponse = z.looseObject({ updates: z.array(z.union([ServiceUpdate, Info])) });

export interface PulumiProbeOptions {
  apiUrl: string;
  organization: string;
  project: string;
  stack: string;
  accessToken: string;
  inProgressMaxS: number;
  now?: () => number;
}

export function pulumiProbe(opts: PulumiProbeOptions): Probe {
  const now = opts.now ?? Date.now;
  return {
    name: "pulumi",
    run: (signal) =>
      guarded(async () => {
        const what = "Pulumi Cloud";
        const id = `${opts.organization}/${opts.project}/${opts.stack}`;
        const path = [opts.organization, opts.project, opts.stack].map(encodeURIComponent).join("/");
        const res = await httpGet(`${opts.apiUrl}/api/stacks/${path}/updates?output-type=service&pageSize=1&page=1`, {
          what,
          headers: { authorization: `token ${opts.accessToken}`, accept: "application/vnd.pulumi+8" },
          signal,
          onStatus: (s) => (s === 404 ? `stack ${id} not found (HTTP 404)` : undefined),
        });
        const body = await readJson(res, UpdatesResponse, what);
        const info = body.updates[0];
        if (!info) return { status: "DEGRADED", reason: `stack ${id} has no updates yet`, details: [] };
        const version = info.version ?? null;
        const nowS = now() / 1000;
        const v = version != null ? ` (version ${version})` : "";
        const details: Detail[] = [
          { label: "stack", value: id },
          { label: "last update", value: `${info.kind} · ${info.result}${version != null ? ` · v${version}` : ""}` },
          { label: "started", value: new Date(info.startTime * 1000).toISOString() },
        ];
        if (info.endTime) details.push({ label: "ended", value: new Date(info.endTime * 1000).toISOString() });
        const endedAgo = info.endTime ? ` ${ago(nowS - info.endTime)}` : "";
        switch (info.result) {
          case "succeeded":
            return { status: "OK", reason: `last ${info.kind} on ${id} succeeded${endedAgo}${v}`, details };
          case "failed":
            return { status: "DOWN", reason: `last ${info.kind} on ${id} failed${endedAgo}${v}`, details };
          default: {
            const running = nowS - info.startTime;
            const state = info.result === "in-progress" ? "in progress" : "not started";
            if (running > opts.inProgressMaxS) {
              return { status: "DEGRADED", reason: `${info.kind} on ${id} ${state} for ${duration(running)} (> ${duration(opts.inProgressMaxS)})${v}`, details };
            }
            return { status: "OK", reason: `${info.kind} on ${id} ${state} for ${duration(running)}${v}`, details };
          }
        }
      }),
  };
}
