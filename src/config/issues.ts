/**
 * Config problems as people read them: the one place where a YAML document is read with line
 * numbers and zod issues become {@link ConfigIssue}s (a path such as `stacks[1].dir`, a 1-based
 * line when one is known, a message in plain words), for every config: the repository's
 * `.github/agent.yml`, the server's YAML files (credentials, diagnostics, plan policy) and its
 * environment variables.
 *
 * Every piece of document text that ends up in a message is wrapped in a sanitised code span
 * ({@link code}), so the issues can be posted verbatim in a PR comment.
 */
import type { z } from "zod";
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from "yaml";
import { closest } from "./suggest.js";

export interface ConfigIssue {
  /** e.g. `stacks[1].dir`; `""` for the document as a whole. */
  path: string;
  /** 1-based line, or null when no location is known (e.g. empty file, environment variable). */
  line: number | null;
  message: string;
}

export type IssuePath = (string | number)[];
type ZodIssue = z.core.$ZodIssue;
type Range = { range?: [number, number, number] | null };

// ---------------------------------------------------------------------------------------------
// Reading YAML
// ---------------------------------------------------------------------------------------------

/** A parsed document's tree, for the line of a path. */
export interface YamlSource {
  root: YamlNode | null;
  lineAt(offset: number): number;
}

export type YamlRead = { ok: true; data: unknown; source: YamlSource } | { ok: false; issues: ConfigIssue[] };

/** Alias expansion budget handed to `yaml` (guards against "billion laughs"). */
export const MAX_ALIAS_COUNT = 100;
/** Later YAML errors are usually consequences of the first ones. */
const MAX_SYNTAX_ISSUES = 10;

/**
 * Parses YAML 1.2 (core schema, unique keys, no `<<` merge keys). Syntax errors, an alias
 * without an anchor, too many aliases and (with `maxBytes`) too large a text come back as
 * issues; an empty document is `data: null`.
 */
export function readYaml(text: string, limits: { maxBytes?: number } = {}): YamlRead {
  const bytes = Buffer.byteLength(text, "utf8");
  if (limits.maxBytes !== undefined && bytes > limits.maxBytes) {
    return fail({ message: `the file is too large (${bytes} bytes; the limit is ${limits.maxBytes} bytes)` });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, version: "1.2", schema: "core", merge: false, strict: true });
  const lineAt = (offset: number): number => Math.max(1, lineCounter.linePos(offset).line);
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = [];
    for (const e of doc.errors) {
      const issue = { path: "", line: lineAt(e.pos[0]), message: `YAML syntax error: ${sanitizeText(e.message)}` };
      if (issues.some((i) => i.line === issue.line && i.message === issue.message)) continue;
      issues.push(issue);
      if (issues.length >= MAX_SYNTAX_ISSUES) break;
    }
    return { ok: false, issues };
  }
  const source: YamlSource = { root: doc.contents, lineAt };
  try {
    return { ok: true, data: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), source };
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    const unresolved = /^Unresolved alias[^:]*: (.*)$/.exec(err.message);
    if (unresolved) {
      const name = unresolved[1] ?? "";
      const message = `YAML alias ${code(`*${name}`)} refers to no anchor: define ${code(`&${name}`)} before using it`;
      return fail({ line: firstAliasLine(source, name), message });
    }
    return fail({
      line: firstAliasLine(source),
      message: `too many YAML aliases (limit ${MAX_ALIAS_COUNT}): the document would expand to an excessive size`,
    });
  }
}

function fail(issue: { line?: number | null; message: string }): YamlRead {
  return { ok: false, issues: [{ path: "", line: issue.line ?? null, message: issue.message }] };
}

/**
 * Line of the node at `path`: for a mapping entry the line of its key, for a list item the
 * item itself; when the path does not exist (missing key, alias) the nearest existing parent.
 */
export function lineOf(source: YamlSource | null | undefined, path: IssuePath): number | null {
  if (!source || source.root === null) return null;
  let node: unknown = source.root;
  let located: Range = source.root as Range;
  for (const seg of path) {
    if (isMap(node) && typeof seg === "string") {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === seg);
      if (!pair) break;
      const keyNode = pair.key as Range | null;
      located = keyNode?.range ? keyNode : located;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg] as Range | undefined;
      if (!item) break;
      if (item.range) located = item;
      node = item;
    } else {
      break; // scalar, alias or mismatch: stop at the nearest existing node
    }
  }
  const start = located.range?.[0];
  return typeof start === "number" ? source.lineAt(start) : null;
}

/** Line of the first alias node (optionally: the first one referring to `name`). */
function firstAliasLine(source: YamlSource, name?: string): number | null {
  let found: number | null = null;
  const walk = (node: unknown): void => {
    if (found !== null || node === null || typeof node !== "object") return;
    if (isAlias(node)) {
      if (node.range && (name === undefined || node.source === name)) found = source.lineAt(node.range[0]);
      return;
    }
    if (isMap(node) || isSeq(node)) for (const item of node.items) walk(item);
    else if (isPair(node)) {
      walk(node.key);
      walk(node.value);
    }
  };
  walk(source.root);
  return found;
}

// ---------------------------------------------------------------------------------------------
// zod issues -> ConfigIssues
// ---------------------------------------------------------------------------------------------

export interface DescribeOptions {
  /** The document as parsed (what a value was, whether a key exists). */
  data: unknown;
  /** The schema that was checked: the keys an unknown key is compared with, hints for a missing key. */
  schema: z.core.$ZodType;
  /** Where the checked value sits in `data` (default: it is `data`); issue paths are relative to it. */
  at?: IssuePath;
  /** The YAML tree, for line numbers. */
  source?: YamlSource | null;
  /** Told when the checked value itself has the wrong type, e.g. "the file must be a YAML mapping with …". */
  rootHint?: string;
}

/**
 * One {@link ConfigIssue} per problem, sorted by line (unknown lines last): a failed union is
 * explained by the branch the author evidently meant, an unknown key comes with the closest
 * known one, a missing key is "is required", and zod's built-in English becomes plain words.
 */
export function describeZodIssues(zodIssues: readonly ZodIssue[], options: DescribeOptions): ConfigIssue[] {
  const at = options.at ?? [];
  const raw: { path: IssuePath; message: string }[] = [];
  const visit = (issue: ZodIssue, prefix: IssuePath): void => {
    const path: IssuePath = [...prefix, ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
    if (issue.code === "invalid_union") {
      const branch = pickUnionBranch(issue.errors);
      if (branch !== null && valueAt(options.data, [...at, ...path]).exists) {
        for (const sub of branch) visit(sub, path);
        return;
      }
    }
    if (issue.code === "unrecognized_keys") {
      const known = knownKeysAt(options.schema, path);
      for (const key of issue.keys) {
        const near = closest(key, known, { loose: true });
        const hint = near !== null ? ` — did you mean ${code(near)}?` : known.length > 0 ? ` (allowed: ${known.map(code).join(", ")})` : "";
        raw.push({ path: [...path, key], message: `unknown key ${code(key)}${hint}` });
      }
      return;
    }
    raw.push({ path, message: describeIssue(issue, path, options) });
  };
  for (const issue of zodIssues) visit(issue, []);

  const seen = new Set<string>();
  const out: ConfigIssue[] = [];
  for (const r of raw) {
    const issue: ConfigIssue = { path: formatPath([...at, ...r.path]), line: lineOf(options.source, [...at, ...r.path]), message: r.message };
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(issue);
  }
  // Stable sort by line so the list reads top to bottom.
  return out
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || a.i - b.i)
    .map(({ issue }) => issue);
}

/**
 * For a failed union, the branch the author evidently meant: the only one whose failure is not
 * merely "wrong type at the union's own position". Null when that is ambiguous.
 */
function pickUnionBranch(branches: readonly (readonly ZodIssue[])[]): readonly ZodIssue[] | null {
  const candidates = branches.filter((issues) => !issues.every(isTypeMismatchHere));
  return candidates.length === 1 ? (candidates[0] ?? null) : null;
}

function isTypeMismatchHere(issue: ZodIssue): boolean {
  if (issue.path.length !== 0) return false;
  if (issue.code === "invalid_type") return true;
  if (issue.code === "invalid_union") return issue.errors.every((b) => b.every(isTypeMismatchHere));
  return false;
}

function describeIssue(issue: ZodIssue, path: IssuePath, options: DescribeOptions): string {
  const { exists, value } = valueAt(options.data, [...(options.at ?? []), ...path]);
  if (!exists && path.length > 0 && ["invalid_type", "invalid_value", "invalid_union"].includes(issue.code)) {
    // A schema's own message for the missing case ("required when …") says more than ours.
    if (/^required\b/.test(issue.message)) return issue.message;
    const literal = literalAt(options.schema, path);
    const key = path[path.length - 1];
    return literal !== undefined && typeof key === "string" ? `is required (add ${code(`${key}: ${literal}`)})` : "is required";
  }
  switch (issue.code) {
    case "invalid_type": {
      if (path.length === 0) return `${options.rootHint ?? "must be a mapping"}, got ${kindOf(value)}`;
      if (!isDefaultMessage(issue.message)) return issue.message;
      const quote = issue.expected === "string" && (typeof value === "number" || typeof value === "boolean") ? " (quote it to make it text)" : "";
      return `expected ${expectedKind(issue.expected)}, got ${kindOf(value)}${quote}`;
    }
    case "invalid_value":
      return `${issue.message}, got ${describeValue(value)}`;
    case "invalid_key": {
      const inner = issue.issues.map((i) => i.message).find((m) => !isDefaultMessage(m));
      return `the key ${code(String(path[path.length - 1] ?? ""))} is not allowed here${inner ? `: it ${inner}` : ""}`;
    }
    case "too_small":
    case "too_big": {
      if (!isDefaultMessage(issue.message)) return issue.message;
      const n = Number(issue.code === "too_small" ? issue.minimum : issue.maximum);
      const bound = issue.code === "too_small" ? "at least" : "at most";
      if (issue.origin === "array") return `must have ${bound} ${n} item${n === 1 ? "" : "s"}`;
      if (issue.origin === "string") return `must be ${bound} ${n} characters`;
      return `must be ${bound} ${n}`;
    }
    default:
      return issue.message;
  }
}

/** zod's built-in English messages start like this; ours never do. */
function isDefaultMessage(message: string): boolean {
  return /^(Invalid input|Too small|Too big|Invalid)/.test(message);
}

function expectedKind(expected: string): string {
  const kinds: Record<string, string> = { object: "a mapping", array: "a list", string: "a string", number: "a number", int: "a number", boolean: "true or false" };
  return kinds[expected] ?? expected;
}

function kindOf(value: unknown): string {
  if (value === null || value === undefined) return "nothing (null)";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
      return `the number ${code(String(value))}`;
    case "boolean":
      return code(String(value));
    case "object":
      return "a mapping";
    default:
      return typeof value;
  }
}

function describeValue(value: unknown): string {
  if (typeof value === "string") return code(JSON.stringify(value));
  if (typeof value === "number" || typeof value === "boolean") return code(String(value));
  return kindOf(value);
}

function valueAt(data: unknown, path: IssuePath): { exists: boolean; value: unknown } {
  let cur: unknown = data;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === "number") {
      if (seg >= cur.length) return { exists: false, value: undefined };
      cur = cur[seg];
    } else if (typeof cur === "object" && cur !== null && !Array.isArray(cur) && Object.prototype.hasOwnProperty.call(cur, seg)) {
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      return { exists: false, value: undefined };
    }
  }
  return { exists: true, value: cur };
}

type Def = Record<string, unknown>;
const defOf = (schema: z.core.$ZodType): Def => schema._zod.def as unknown as Def;

/** The schemas (unions spread, wrappers looked through) that a data path points at. */
function schemasAt(schema: z.core.$ZodType, path: IssuePath): z.core.$ZodType[] {
  let frontier = [schema];
  for (const seg of path) {
    const next: z.core.$ZodType[] = [];
    for (const s of frontier.flatMap(unwrap)) {
      const def = defOf(s);
      if (def.type === "object" && typeof seg === "string") {
        const child = (def.shape as Record<string, z.core.$ZodType>)[seg];
        if (child) next.push(child);
      } else if (def.type === "record" && typeof seg === "string") {
        next.push(def.valueType as z.core.$ZodType);
      } else if (def.type === "array" && typeof seg === "number") {
        next.push(def.element as z.core.$ZodType);
      }
    }
    frontier = next;
  }
  return frontier.flatMap(unwrap);
}

/** Keys of the object schema(s) that a data path points at. */
function knownKeysAt(schema: z.core.$ZodType, path: IssuePath): string[] {
  const keys = new Set<string>();
  for (const s of schemasAt(schema, path)) {
    const def = defOf(s);
    if (def.type === "object") for (const k of Object.keys(def.shape as object)) keys.add(k);
  }
  return [...keys];
}

/** The one value a literal schema at `path` accepts (`version: 1`), if it is one. */
function literalAt(schema: z.core.$ZodType, path: IssuePath): string | undefined {
  const [only, ...more] = schemasAt(schema, path);
  const values = only && more.length === 0 && defOf(only).type === "literal" ? (defOf(only).values as unknown[]) : [];
  return values.length === 1 ? String(values[0]) : undefined;
}

/** Looks through optional/default/pipe wrappers and spreads unions into their options. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType[] {
  const def = defOf(schema);
  switch (def.type) {
    case "optional":
    case "default":
    case "prefault":
    case "nullable":
    case "readonly":
      return unwrap(def.innerType as z.core.$ZodType);
    case "pipe":
      return unwrap(def.in as z.core.$ZodType);
    case "union":
      return (def.options as z.core.$ZodType[]).flatMap(unwrap);
    default:
      return [schema];
  }
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

/** `stacks[1].dir`; odd keys as `["a b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(seg))) out += out === "" ? String(seg) : `.${String(seg)}`;
    else out += `[${JSON.stringify(truncate(String(seg), 64))}]`;
  }
  return out;
}

/**
 * The issues as indented lines for an error raised at start-up: `  vault.address: must be an
 * http(s) URL (line 3)`; `(top level)` for the document itself.
 */
export function issueLines(issues: readonly ConfigIssue[]): string {
  return issues.map((i) => `  ${i.path || "(top level)"}: ${i.message}${i.line !== null ? ` (line ${i.line})` : ""}`).join("\n");
}

/** An inline code span for (possibly user-controlled) text: no backticks, no newlines, bounded. */
export function code(text: string): string {
  return "`" + truncate(text.replace(/`/g, "'").replace(/[\r\n\t]+/g, " "), 80) + "`";
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** YAML parser messages may quote the document; keep them single-line, bounded and inert. */
function sanitizeText(text: string): string {
  return truncate(text.replace(/`/g, "'").replace(/@/g, "@\u200b").replace(/\s*\n\s*/g, " ").trim(), 200);
}
