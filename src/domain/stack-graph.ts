/**
 * The stacks' dependency graph (`depends_on` in `.github/agent.yml`): pure functions over
 * names, no I/O. An edge `b depends_on a` means a's preview (and apply) comes before b's.
 */

/** What the graph needs of a stack. */
export interface StackNode {
  name: string;
  dependsOn: readonly string[];
}

/**
 * The first cycle found, as a closed path (`["a", "b", "a"]`), or null when there is none.
 * Edges to undeclared stacks are ignored (the schema reports those separately).
 */
export function findCycle(stacks: readonly StackNode[]): string[] | null {
  const edges = new Map(stacks.map((s) => [s.name, s.dependsOn] as const));
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (name: string): string[] | null => {
    state.set(name, "open");
    path.push(name);
    for (const up of edges.get(name) ?? []) {
      if (!edges.has(up)) continue;
      const seen = state.get(up);
      if (seen === "open") return [...path.slice(path.indexOf(up)), up];
      if (seen === undefined) {
        const found = visit(up);
        if (found) return found;
      }
    }
    path.pop();
    state.set(name, "done");
    return null;
  };
  for (const s of stacks) {
    if (state.has(s.name)) continue;
    const found = visit(s.name);
    if (found) return found;
  }
  return null;
}

/**
 * For each selected stack, the selected stacks it waits for: its nearest selected ancestors,
 * reached through stacks that are not selected (previewing `network` and `service` of
 * network → database → service still orders them). Assumes no cycle.
 */
export function upstreamWithin(stacks: readonly StackNode[], selected: readonly string[]): Map<string, string[]> {
  const edges = new Map(stacks.map((s) => [s.name, s.dependsOn] as const));
  const chosen = new Set(selected);
  const out = new Map<string, string[]>();
  for (const name of selected) {
    const found: string[] = [];
    const seen = new Set<string>();
    const stack = [...(edges.get(name) ?? [])];
    while (stack.length > 0) {
      const up = stack.pop()!;
      if (seen.has(up)) continue;
      seen.add(up);
      if (chosen.has(up)) found.push(up);
      else stack.push(...(edges.get(up) ?? []));
    }
    out.set(name, found.sort());
  }
  return out;
}

/**
 * The selected stacks in topological layers: every stack's selected upstreams are in earlier
 * layers; stacks within a layer are independent and keep the order they were selected in.
 */
export function layersOf(stacks: readonly StackNode[], selected: readonly string[]): string[][] {
  const upstream = upstreamWithin(stacks, selected);
  const depth = new Map<string, number>();
  const depthOf = (name: string): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    const d = Math.max(-1, ...(upstream.get(name) ?? []).map(depthOf)) + 1;
    depth.set(name, d);
    return d;
  };
  const layers: string[][] = [];
  for (const name of selected) {
    const d = depthOf(name);
    (layers[d] ??= []).push(name);
  }
  return layers.filter((l) => l !== undefined);
}

/** Every stack that depends on `name`, directly or through others (not `name` itself). */
export function downstreamOf(stacks: readonly StackNode[], name: string): string[] {
  const found = new Set<string>();
  const queue = [name];
  while (queue.length > 0) {
    const current = queue.shift()!;
    for (const s of stacks) {
      if (s.dependsOn.includes(current) && !found.has(s.name) && s.name !== name) {
        found.add(s.name);
        queue.push(s.name);
      }
    }
  }
  return stacks.map((s) => s.name).filter((n) => found.has(n));
}

/** Whether two stacks have a path between them in either direction (then they may not run in parallel). */
export function connected(stacks: readonly StackNode[], a: string, b: string): boolean {
  return downstreamOf(stacks, a).includes(b) || downstreamOf(stacks, b).includes(a);
}
