/**
 * The layering rule of docs/architecture.md, enforced: no import cycle among src/ files (type-only
 * imports included), and no import from a lower layer into a higher one. Reads the sources as
 * text; needs no services.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

/**
 * Layers, highest first: a file may import from its own layer and any layer below it. The
 * composition root (app, main, cli, deps) wires everything and is imported by nobody below it
 * but as the `AppDeps` type, which jobs and commands take as their context.
 */
export const LAYERS: ReadonlyArray<{ name: string; folders: readonly string[] }> = [
  { name: "composition root", folders: ["app.ts", "main.ts", "cli.ts"] },
  { name: "handlers", folders: ["handlers"] },
  { name: "commands", folders: ["commands"] },
  { name: "jobs", folders: ["jobs"] },
  { name: "deploys", folders: ["deploys"] },
  { name: "dependencies", folders: ["deps.ts"] },
  { name: "render, web, diagnose, ops", folders: ["render", "web", "diagnose", "ops"] },
  { name: "connectors", folders: ["connectors"] },
  { name: "config", folders: ["config"] },
  { name: "approval", folders: ["approval"] },
  { name: "domain, plan", folders: ["domain", "plan"] },
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.ts$/.test(name) && !/\.d\.ts$/.test(name) ? [path] : [];
  });
}

/** Relative imports of a file (static, dynamic, type-only and re-exports), as src-relative paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const re = /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
  const out: string[] = [];
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2]!;
    if (!spec.startsWith(".")) continue;
    const target = resolve(dirname(file), spec).replace(/\.js$/, ".ts");
    out.push(relative(SRC, target));
  }
  return out;
}

function layerOf(rel: string): number {
  const top = rel.split("/")[0]!;
  const i = LAYERS.findIndex((l) => l.folders.includes(top));
  if (i < 0) throw new Error(`${rel} is in no layer of docs/architecture.md: add its folder to LAYERS`);
  return i;
}

const files = sourceFiles(SRC).map((f) => relative(SRC, f));
const graph = new Map(files.map((f) => [f, importsOf(join(SRC, f)).filter((t) => files.includes(t))]));

/** Strongly connected components with more than one file (Tarjan). */
function cycles(): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) strong(f);
  return out;
}

describe("the layering rule (docs/architecture.md)", () => {
  it("every file of src/ belongs to a layer", () => {
    for (const f of files) expect(() => layerOf(f), f).not.toThrow();
  });

  it("has no import cycle, type-only imports included", () => {
    expect(cycles()).toEqual([]);
  });

  it("no file imports from a higher layer", () => {
    const upward = [...graph].flatMap(([from, targets]) =>
      targets.filter((to) => layerOf(to) < layerOf(from)).map((to) => `${from} (${LAYERS[layerOf(from)]!.name}) imports ${to} (${LAYERS[layerOf(to)]!.name})`),
    );
    expect(upward).toEqual([]);
  });

  it("control: the check notices an upward import and a cycle", () => {
    // A fake graph run through the same rules: approval importing jobs, and a two-file cycle.
    expect(layerOf("jobs/x.ts")).toBeLessThan(layerOf("approval/y.ts"));
    const saved = new Map(graph);
    graph.set("approval/__probe_a.ts", ["approval/__probe_b.ts"]);
    graph.set("approval/__probe_b.ts", ["approval/__probe_a.ts"]);
    files.push("approval/__probe_a.ts", "approval/__probe_b.ts");
    try {
      expect(cycles()).toContainEqual(["approval/__probe_a.ts", "approval/__probe_b.ts"]);
    } finally {
      graph.clear();
      for (const [k, v] of saved) graph.set(k, v);
      files.splice(files.indexOf("approval/__probe_a.ts"), 2);
    }
  });
});
