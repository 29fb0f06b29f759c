import { describe, expect, it } from "vitest";
import { connected, downstreamOf, findCycle, layersOf, upstreamWithin, type StackNode } from "../../src/domain/stack-graph.js";
import { loadRepoConfig } from "../../src/config/repo/load.js";
import { jsonSchema } from "../../src/config/repo/schema.js";
import type { ConfigIssue } from "../../src/config/issues.js";

/** `b depends_on a` means a comes first. */
const node = (name: string, ...dependsOn: string[]): StackNode => ({ name, dependsOn });

/** network → {database, cache} → {api, worker} → frontend. */
const DIAMOND: StackNode[] = [
  node("network"),
  node("database", "network"),
  node("cache", "network"),
  node("api", "database", "cache"),
  node("worker", "database"),
  node("frontend", "api", "worker"),
];
const ALL = DIAMOND.map((s) => s.name);

/** Every selected stack's selected upstreams sit in an earlier layer. */
function expectOrdered(stacks: StackNode[], layers: string[][]): void {
  const layerOf = new Map<string, number>();
  layers.forEach((layer, i) => layer.forEach((name) => layerOf.set(name, i)));
  const selected = layers.flat();
  for (const [name, ups] of upstreamWithin(stacks, selected)) {
    for (const up of ups) expect(layerOf.get(up)!, `${up} before ${name}`).toBeLessThan(layerOf.get(name)!);
  }
}

describe("stack graph: findCycle", () => {
  it("finds no cycle in a diamond (a node reached twice is not a cycle)", () => {
    expect(findCycle(DIAMOND)).toBeNull();
    expect(findCycle([...DIAMOND].reverse())).toBeNull();
  });

  it("finds no cycle when nothing depends on anything", () => {
    expect(findCycle([node("a"), node("b")])).toBeNull();
    expect(findCycle([])).toBeNull();
  });

  it("reports a self-loop as a closed path of one stack", () => {
    expect(findCycle([node("x"), node("a", "a")])).toEqual(["a", "a"]);
  });

  it("reports a 3-cycle as the closed path in walk order, without the tail that led to it", () => {
    // d → a → b → c → a: the walk starts at d, but d is not part of the cycle.
    const cycle = findCycle([node("d", "a"), node("a", "b"), node("b", "c"), node("c", "a")]);
    expect(cycle).toEqual(["a", "b", "c", "a"]);
    expect(cycle![0]).toBe(cycle![cycle!.length - 1]);
    expect(new Set(cycle).size).toBe(cycle!.length - 1);
    // consecutive entries are real depends_on edges
    const edges = new Map([["a", "b"], ["b", "c"], ["c", "a"]]);
    for (let i = 0; i + 1 < cycle!.length; i++) expect(edges.get(cycle![i]!)).toBe(cycle![i + 1]);
  });

  it("walks the cycle from where it is entered", () => {
    expect(findCycle([node("b", "c"), node("c", "a"), node("a", "b")])).toEqual(["b", "c", "a", "b"]);
  });

  it("finds a cycle hanging below an acyclic part", () => {
    const stacks = [...DIAMOND, node("x", "frontend", "y"), node("y", "x")];
    expect(findCycle(stacks)).toEqual(["x", "y", "x"]);
  });

  it("ignores edges to undeclared stacks", () => {
    expect(findCycle([node("a", "ghost"), node("b", "a", "phantom")])).toBeNull();
    // an undeclared name cannot close a cycle, even if it is named on both sides
    expect(findCycle([node("a", "ghost"), node("b", "ghost")])).toBeNull();
    // and a real cycle is still found past them
    expect(findCycle([node("a", "ghost", "b"), node("b", "a")])).toEqual(["a", "b", "a"]);
  });
});

describe("stack graph: upstreamWithin", () => {
  it("gives each selected stack its direct selected upstreams, sorted", () => {
    const up = upstreamWithin(DIAMOND, ALL);
    expect(up.get("network")).toEqual([]);
    expect(up.get("database")).toEqual(["network"]);
    expect(up.get("cache")).toEqual(["network"]);
    expect(up.get("api")).toEqual(["cache", "database"]);
    expect(up.get("worker")).toEqual(["database"]);
    expect(up.get("frontend")).toEqual(["api", "worker"]);
    expect([...up.keys()]).toEqual(ALL);
  });

  it("walks through unselected stacks: frontend waits for network", () => {
    const up = upstreamWithin(DIAMOND, ["network", "frontend"]);
    expect(up.get("frontend")).toEqual(["network"]);
    expect(up.get("network")).toEqual([]);
    expect([...up.keys()]).toEqual(["network", "frontend"]);
  });

  it("stops at the nearest selected ancestor on each path", () => {
    // frontend → api → database (selected, stop) ; api → cache → network (selected)
    const up = upstreamWithin(DIAMOND, ["database", "network", "frontend"]);
    expect(up.get("frontend")).toEqual(["database", "network"]);
    expect(up.get("database")).toEqual(["network"]);
    // with only frontend and database, network is not reached through database
    expect(upstreamWithin(DIAMOND, ["frontend", "database"]).get("frontend")).toEqual(["database"]);
  });

  it("lists an upstream reached along several paths once", () => {
    expect(upstreamWithin(DIAMOND, ["frontend", "database"]).get("frontend")).toHaveLength(1);
    expect(upstreamWithin(DIAMOND, ["network", "api"]).get("api")).toEqual(["network"]);
  });

  it("has no upstreams for stacks that are unrelated or depend on undeclared names", () => {
    const up = upstreamWithin([node("a", "ghost"), node("b")], ["a", "b"]);
    expect(up.get("a")).toEqual([]);
    expect(up.get("b")).toEqual([]);
  });

  it("does not count a downstream as an upstream", () => {
    expect(upstreamWithin(DIAMOND, ["frontend", "network"]).get("network")).toEqual([]);
    expect(upstreamWithin(DIAMOND, ["worker", "api"])).toEqual(new Map([["worker", []], ["api", []]]));
  });
});

describe("stack graph: layersOf", () => {
  it("puts the diamond in four layers", () => {
    const layers = layersOf(DIAMOND, ALL);
    expect(layers).toEqual([["network"], ["database", "cache"], ["api", "worker"], ["frontend"]]);
    expectOrdered(DIAMOND, layers);
  });

  it("keeps the selection order within a layer, whatever the declaration order", () => {
    const layers = layersOf(DIAMOND, ["worker", "frontend", "cache", "api", "network", "database"]);
    expect(layers).toEqual([["network"], ["cache", "database"], ["worker", "api"], ["frontend"]]);
  });

  it("orders selected stacks through unselected ones", () => {
    expect(layersOf(DIAMOND, ["frontend", "network"])).toEqual([["network"], ["frontend"]]);
    // worker → database (unselected) → network
    expect(layersOf(DIAMOND, ["frontend", "worker", "network"])).toEqual([["network"], ["worker"], ["frontend"]]);
    // worker depends on database only, so it is independent of cache
    expect(layersOf(DIAMOND, ["frontend", "worker", "cache"])).toEqual([["worker", "cache"], ["frontend"]]);
  });

  it("puts independent stacks in one layer", () => {
    expect(layersOf(DIAMOND, ["api", "worker"])).toEqual([["api", "worker"]]);
    expect(layersOf([node("a", "ghost"), node("b", "phantom")], ["b", "a"])).toEqual([["b", "a"]]);
  });

  it("has no layers when nothing is selected", () => {
    expect(layersOf(DIAMOND, [])).toEqual([]);
  });

  it("gives a 30-stack DAG of depth 4 exactly 4 layers, each stack at its depth", () => {
    const sizes = [3, 7, 10, 10];
    const byLayer: string[][] = sizes.map((n, d) => Array.from({ length: n }, (_, i) => `s${d}-${i}`));
    const stacks: StackNode[] = [];
    const depthOf = new Map<string, number>();
    byLayer.forEach((names, d) =>
      names.forEach((name, i) => {
        depthOf.set(name, d);
        const deps: string[] = [];
        if (d > 0) {
          const prev = byLayer[d - 1]!;
          deps.push(prev[i % prev.length]!); // one edge from the layer just above: fixes the depth
          if (d > 1) deps.push(byLayer[0]![i % byLayer[0]!.length]!); // plus a long edge to the top
        }
        stacks.push(node(name, ...deps));
      }),
    );
    expect(stacks).toHaveLength(30);
    // select in a scrambled order, declared order reversed
    const selected = stacks.map((s) => s.name).reverse();
    const layers = layersOf([...stacks].reverse(), selected);
    expect(layers).toHaveLength(4);
    expect(layers.flat().sort()).toEqual(stacks.map((s) => s.name).sort());
    layers.forEach((layer, d) => {
      for (const name of layer) expect(depthOf.get(name), name).toBe(d);
      // selection order within the layer
      expect(layer).toEqual(selected.filter((n) => depthOf.get(n) === d));
    });
    expectOrdered(stacks, layers);
    expect(findCycle(stacks)).toBeNull();
  });
});

describe("stack graph: downstreamOf and connected", () => {
  it("lists every transitive downstream in declaration order, not the stack itself", () => {
    expect(downstreamOf(DIAMOND, "network")).toEqual(["database", "cache", "api", "worker", "frontend"]);
    expect(downstreamOf(DIAMOND, "database")).toEqual(["api", "worker", "frontend"]);
    expect(downstreamOf(DIAMOND, "cache")).toEqual(["api", "frontend"]);
    expect(downstreamOf(DIAMOND, "api")).toEqual(["frontend"]);
    expect(downstreamOf(DIAMOND, "frontend")).toEqual([]);
  });

  it("keeps declaration order even when the walk reaches stacks in another order", () => {
    // walking from a reaches y before z, but z is declared first
    expect(downstreamOf([node("z", "y"), node("y", "a"), node("a")], "a")).toEqual(["z", "y"]);
  });

  it("terminates on a cycle and leaves the stack itself out", () => {
    const cyclic = [node("a", "c"), node("b", "a"), node("c", "b"), node("d", "c")];
    expect(downstreamOf(cyclic, "a")).toEqual(["b", "c", "d"]);
    expect(downstreamOf([node("a", "a")], "a")).toEqual([]);
  });

  it("has no downstreams for an unknown stack name that nothing names", () => {
    expect(downstreamOf(DIAMOND, "nope")).toEqual([]);
  });

  it("connects stacks with a path in either direction, not siblings", () => {
    expect(connected(DIAMOND, "network", "frontend")).toBe(true);
    expect(connected(DIAMOND, "frontend", "network")).toBe(true);
    expect(connected(DIAMOND, "cache", "frontend")).toBe(true);
    expect(connected(DIAMOND, "worker", "database")).toBe(true);
    expect(connected(DIAMOND, "database", "cache")).toBe(false);
    expect(connected(DIAMOND, "api", "worker")).toBe(false);
    expect(connected(DIAMOND, "cache", "worker")).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// The config schema's depends_on checks
// ---------------------------------------------------------------------------------------------

function config(stacksYaml: string): string {
  return `version: 1\nsteps: { preview: echo hi }\nstacks:\n${stacksYaml}`;
}

function issuesOf(yaml: string): ConfigIssue[] {
  const res = loadRepoConfig(yaml);
  if (res.ok) throw new Error("expected the config to be rejected");
  return res.issues;
}

const DIAMOND_YAML = config(
  [
    "  - { name: network }",
    "  - { name: database, depends_on: [network] }",
    "  - { name: cache, depends_on: [network] }",
    "  - { name: api, depends_on: [database, cache] }",
    "  - { name: worker, depends_on: [database] }",
    "  - { name: frontend, depends_on: [api, worker] }",
    "",
  ].join("\n"),
);

describe("repo config: depends_on", () => {
  it("loads a valid diamond and resolves dependsOn only where it is non-empty", () => {
    const res = loadRepoConfig(DIAMOND_YAML);
    if (!res.ok) throw new Error(JSON.stringify(res.issues));
    expect(res.stacks.map((s) => s.name)).toEqual(ALL);
    expect(res.stacks.map((s) => s.dependsOn)).toEqual([undefined, ["network"], ["network"], ["database", "cache"], ["database"], ["api", "worker"]]);
    expect("dependsOn" in res.stacks[0]!).toBe(false);
    expect(res.config.stacks[3]!.depends_on).toEqual(["database", "cache"]);
  });

  it("resolves an empty depends_on to no dependsOn", () => {
    const res = loadRepoConfig(config("  - { name: a, depends_on: [] }\n  - { name: b }\n"));
    if (!res.ok) throw new Error(JSON.stringify(res.issues));
    expect(res.stacks[0]!.dependsOn).toBeUndefined();
  });

  it("accepts depends_on naming a stack declared later in the file", () => {
    const res = loadRepoConfig(config("  - { name: app, depends_on: [net] }\n  - { name: net }\n"));
    expect(res.ok).toBe(true);
  });

  it("rejects an unknown name, naming it and suggesting the closest declared stack", () => {
    const issues = issuesOf(config("  - { name: network }\n  - { name: database }\n  - { name: api, depends_on: [database, netwrok] }\n"));
    expect(issues).toHaveLength(1);
    const issue = issues[0]!;
    expect(issue.path).toBe("stacks[2].depends_on[1]");
    expect(issue.line).toBe(6);
    expect(issue.message).toContain("`netwrok`");
    expect(issue.message).toContain("undeclared");
    expect(issue.message).toMatch(/did you mean `network`\?/);
  });

  it("rejects an unknown name without a suggestion when nothing is close", () => {
    const issues = issuesOf(config("  - { name: network }\n  - { name: api, depends_on: [zzzzzzzzzz] }\n"));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe("stacks[1].depends_on[0]");
    expect(issues[0]!.message).toContain("`zzzzzzzzzz`");
    expect(issues[0]!.message).not.toContain("did you mean");
  });

  it("rejects a self-dependency", () => {
    const issues = issuesOf(config("  - { name: network }\n  - { name: api, depends_on: [network, api] }\n"));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe("stacks[1].depends_on[1]");
    expect(issues[0]!.line).toBe(5);
    expect(issues[0]!.message).toContain("`api`");
    expect(issues[0]!.message).toMatch(/itself/);
    // not mistaken for a cycle
    expect(issues[0]!.message).not.toMatch(/cycle/);
  });

  it("rejects a cycle a → b → c → a, walking the cycle in the message", () => {
    const issues = issuesOf(config("  - { name: a, depends_on: [b] }\n  - { name: b, depends_on: [c] }\n  - { name: c, depends_on: [a] }\n"));
    expect(issues).toHaveLength(1);
    const issue = issues[0]!;
    expect(issue.message).toMatch(/cycle/);
    expect(issue.message).toContain("`a` → `b` → `c` → `a`");
    expect(issue.path).toBe("stacks[0].depends_on");
    expect(issue.line).toBe(4);
  });

  it("points the cycle issue at the depends_on of the first stack in the cycle", () => {
    const issues = issuesOf(config("  - { name: base }\n  - { name: x, depends_on: [base, y] }\n  - { name: y, depends_on: [x] }\n"));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe("stacks[1].depends_on");
    expect(issues[0]!.line).toBe(5);
    expect(issues[0]!.message).toContain("`x` → `y` → `x`");
    expect(issues[0]!.message).not.toContain("`base`");
  });

  it("reports depends_on problems alongside other problems of the file", () => {
    const issues = issuesOf(config("  - { name: a, dir: /abs, depends_on: [nope] }\n"));
    expect(issues.map((i) => i.path).sort()).toEqual(["stacks[0].depends_on[0]", "stacks[0].dir"]);
  });

  it("rejects a depends_on entry that is not a stack name through the field's own check only", () => {
    const issues = issuesOf(config("  - { name: a }\n  - { name: b, depends_on: ['bad name'] }\n"));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe("stacks[1].depends_on[0]");
    expect(issues[0]!.message).not.toContain("undeclared");
  });

  it("publishes depends_on in the JSON schema's stack definition", () => {
    const schema = jsonSchema() as Record<string, unknown>;
    const props = schema.properties as Record<string, Record<string, unknown>>;
    const items = props.stacks!.items as Record<string, unknown>;
    // The stack definition is either inline or a local $ref into $defs: follow it, whichever it is.
    let stackDef = items;
    if (typeof items.$ref === "string") {
      expect(items.$ref).toMatch(/^#\//);
      stackDef = items.$ref
        .slice(2)
        .split("/")
        .reduce<Record<string, unknown>>((at, key) => at[key] as Record<string, unknown>, schema);
    }
    const stackProps = stackDef.properties as Record<string, Record<string, unknown>>;
    expect(Object.keys(stackProps)).toContain("name");
    const dependsOn = stackProps.depends_on;
    expect(dependsOn).toBeDefined();
    expect(dependsOn!.type).toBe("array");
    expect(dependsOn!.maxItems).toBe(50);
    expect((dependsOn!.items as Record<string, unknown>).type).toBe("string");
    expect(String(dependsOn!.description)).toMatch(/cycle/i);
    expect((stackDef.required as string[] | undefined) ?? []).not.toContain("depends_on");
  });
});
