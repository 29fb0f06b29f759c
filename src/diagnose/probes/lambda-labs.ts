/**
 * Lambda Cloud: `GET /instances` with the API key as `Authorization: Bearer`; `data[]` holds the
 * account's instances with `status` active / booting / unhealthy / terminating / terminated /
 * preempted. With instance_names, each named instance must exist and be active: booting is
 * DEGRADED, unhealthy or missing/terminating/terminated/preempted is DOWN. Without names every
 * live instance is judged (unhealthy DOWN; booting, preempted or unknown DEGRADED).
 */
import { z } from "zod";
import type { Probe, ProbeStatus } from "../../domain/diagnose.js";
import { guarded, httpGet, readJson, worst, type Detail } from "./common.js";

const Instance = z.looseObject({
  id: z.string(),
  name: z.string().nullish(),
  status: z.string(),
  region: z.looseObject({ name: z.string() }).nullish(),
  instance_type: z.looseObject({ name: z.string() }).nullish(),
});
const InstancesResponse = z.looseObject({ data: z.array(Instance) });
type InstanceT = z.infer<typeof Instance>;

const GONE = new Set(["terminated", "terminating", "preempted"]);

export interface LambdaLabsProbeOptions {
  apiUrl: string;
  apiKey: string;
  instanceNames?: string[];
}

export function lambdaLabsProbe(opts: LambdaLabsProbeOptions): Probe {
  return {
    name: "lambda-labs",
    run: (signal) =>
      guarded(async () => {
        const what = "the Lambda Cloud API";
        const res = await httpGet(`${opts.apiUrl}/instances`, { what, headers: { authorization: `Bearer ${opts.apiKey}`, accept: "application/json" }, signal });
        const instances = (await readJson(res, InstancesResponse, what)).data;
        const label = (i: InstanceT) => i.name || i.id;
        const describe = (i: InstanceT) => [i.status, i.instance_type?.name, i.region?.name].filter(Boolean).join(" · ");
        const judged: Array<{ status: ProbeStatus; text: string }> = [];
        const details: Detail[] = [];

        if (opts.instanceNames?.length) {
          for (const name of opts.instanceNames) {
            const found = instances.filter((i) => i.name === name);
            const live = found.filter((i) => !GONE.has(i.status));
            for (const i of found) details.push({ label: name, value: describe(i) });
            if (!found.length) {
              judged.push({ status: "DOWN", text: `${name} not found` });
              details.push({ label: name, value: "missing" });
            } else if (!live.length) {
              judged.push({ status: "DOWN", text: `${name} is ${found.map((i) => i.status).join("/")}` });
            } else {
              for (const i of live) judged.push(judgeLive(name, i.status));
            }
          }
        } else {
          const live = instances.filter((i) => !GONE.has(i.status) || i.status === "preempted");
          for (const i of live) {
            details.push({ label: label(i), value: describe(i) });
            judged.push(i.status === "preempted" ? { status: "DEGRADED", text: `${label(i)} was preempted` } : judgeLive(label(i), i.status));
          }
          const gone = instances.length - live.length;
          if (gone) details.push({ label: "terminated", value: String(gone) });
          if (!live.length) return { status: "OK", reason: "no running instances on the account", details };
        }
        const status = worst(judged.map((j) => j.status));
        if (status === "OK") return { status, reason: `${judged.length} instance(s) active`, details };
        const bad = judged.filter((j) => j.status !== "OK").sort((a, b) => (a.status === b.status ? 0 : a.status === "DOWN" ? -1 : 1));
        return { status, reason: bad.map((j) => j.text).join("; "), details };
      }),
  };
}

function judgeLive(name: string, status: string): { status: ProbeStatus; text: string } {
  if (status === "active") return { status: "OK", text: `${name} active` };
  if (status === "booting") return { status: "DEGRADED", text: `${name} is booting` };
  if (status === "unhealthy") return { status: "DOWN", text: `${name} is unhealthy` };
  return { status: "DEGRADED", text: `${name} is in state ${status}` };
}
