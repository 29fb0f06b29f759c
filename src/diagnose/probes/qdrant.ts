/**
 * Qdrant: `GET /healthz` (plain text, 200 when the server is up), then `GET /collections/{name}`
 * for each configured collection: `result.status` green = OK, yellow (optimising) / grey
 * (optimisations pending) = DEGRADED, red (an operation failed) = DOWN. The API key, when
 * configured, goes in the `api-key` header.
 */
import { z } from "zod";
import type { Probe, ProbeStatus } from "../../domain/diagnose.js";
import { guarded, httpGet, ms, readJson, worst, type Detail } from "./common.js";

const CollectionResponse = z.looseObject({
  result: z.looseObject({
    status: z.enum(["green", "yellow", "grey", "red"]),
    optimizer_status: z.unknown().optional(),
    points_count: z.number().int().nullish(),
    indexed_vectors_count: z.number().int().nullish(),
    segments_count: z.number().int().nullish(),
  }),
});

const MEANING: Record<z.infer<typeof CollectionResponse>["result"]["status"], { status: ProbeStatus; text: string }> = {
  green: { status: "OK", text: "green" },
  yellow: { status: "DEGRADED", text: "yellow (optimising)" },
  grey: { status: "DEGRADED", text: "grey (optimisations pending)" },
  red: { status: "DOWN", text: "red (an operation failed)" },
};

export interface QdrantProbeOptions {
  url: string;
  apiKey?: string;
  collections: string[];
}

export function qdrantProbe(opts: QdrantProbeOptions): Probe {
  return {
    name: "qdrant",
    run: (signal) =>
      guarded(async () => {
        const headers: Record<string, string> = opts.apiKey ? { "api-key": opts.apiKey } : {};
        const what = "Qdrant";
        const t0 = performance.now();
        const health = await httpGet(`${opts.url}/healthz`, { what, headers, signal });
        await health.text();
        const healthMs = performance.now() - t0;
        const details: Detail[] = [{ label: "healthz", value: ms(healthMs) }];
        const judged = await Promise.all(
          opts.collections.map(async (name) => {
            const res = await httpGet(`${opts.url}/collections/${encodeURIComponent(name)}`, {
              what,
              headers: { ...headers, accept: "application/json" },
              signal,
              onStatus: (s) => (s === 404 ? `collection ${name} not found (HTTP 404)` : undefined),
            });
            const r = (await readJson(res, CollectionResponse, what)).result;
            return { name, ...MEANING[r.status], points: r.points_count };
          }),
        );
        for (const c of judged) details.push({ label: `collection ${c.name}`, value: `${c.status === "OK" ? "green" : c.text}${c.points != null ? ` · ${c.points} points` : ""}` });
        const status = worst(judged.map((c) => c.status));
        if (status === "OK") {
          return { status, reason: `healthz passed in ${ms(healthMs)}${judged.length ? `; ${judged.length} collection(s) green` : ""}`, details };
        }
        const bad = judged.filter((c) => c.status !== "OK").sort((a, b) => (a.status === "DOWN" ? -1 : b.status === "DOWN" ? 1 : 0));
        return { status, reason: bad.map((c) => `collection ${c.name} is ${c.text}`).join("; "), details };
      }),
  };
}
