/**
 * The knowledge base of past failures: what gets indexed (failed tasks and the deploy that
 * fixed them, runbook sections, resolved diagnostic issues) and how it is searched. Storage is
 * a VectorStore (Qdrant or PostgreSQL), vectors come from an Embedder; `knowledge_sources`
 * remembers a digest per source so unchanged sources are not embedded again.
 */
import { createHash } from "node:crypto";
import type { Db } from "../connectors/store/db.js";
import { forgetIndexed, indexedDigests, indexedIds, markIndexed, nextGoodDeploy, recentFailures } from "../connectors/store/diagnostics.js";
import { tail } from "../render/markdown.js";
import { RUNBOOK_FILE, splitRunbook } from "./runbooks.js";
import type { Embedder, KnowledgeEntry, SearchFilter, SearchHit, VectorStore } from "../domain/diagnose.js";

/** Failures older than this are not indexed on first sync (they were indexed back then, or are stale). */
export const FAILURE_WINDOW_DAYS = 180;
/** Failures looked at per sync. */
export const FAILURES_PER_SYNC = 200;
/** Characters of a failing step's log that are embedded (the end, where errors are). */
export const EMBEDDED_LOG_CHARS = 3000;

/** Below this cosine similarity a hit is noise, not a lead. */
export const MIN_SIMILARITY = 0.15;

/**
 * Several rankings (the issue's own words, the latest failures' logs) into one list: taken in
 * turn, best first, each entry once, noise dropped. The reporter's words lead when they match
 * something: they describe the incident; the latest failure may be another one.
 */
export function mergeHits(rankings: SearchHit[][], limit: number): SearchHit[] {
  const lists = rankings.map((r) => r.filter((h) => h.score >= MIN_SIMILARITY));
  // An entry found by several queries shows its best score.
  const best = new Map<string, number>();
  for (const h of lists.flat()) best.set(h.entry.id, Math.max(best.get(h.entry.id) ?? -1, h.score));
  const out: SearchHit[] = [];
  const seen = new Set<string>();
  for (let i = 0; out.length < limit && lists.some((l) => i < l.length); i++) {
    for (const l of lists) {
      const h = l[i];
      if (!h || seen.has(h.entry.id) || out.length >= limit) continue;
      seen.add(h.entry.id);
      out.push({ ...h, score: best.get(h.entry.id)! });
    }
  }
  return out;
}

export interface RunbookFile {
  path: string;
  text: string;
}

export class KnowledgeBase {
  constructor(
    private readonly db: Db,
    readonly store: VectorStore,
    readonly embedder: Embedder,
    private readonly webBaseUrl: string,
  ) {}

  private digest(e: KnowledgeEntry): string {
    return createHash("sha256")
      .update(JSON.stringify([this.embedder.name, this.store.name, e.title, e.text, e.resolution, e.url, e.stack]))
      .digest("hex");
  }

  /** Upserts the entries that are new or changed; returns how many were embedded. */
  async index(entries: KnowledgeEntry[]): Promise<number> {
    if (entries.length === 0) return 0;
    const known = await indexedDigests(this.db, entries.map((e) => e.id));
    const changed = entries.map((e) => ({ e, digest: this.digest(e) })).filter(({ e, digest }) => known.get(e.id) !== digest);
    if (changed.length === 0) return 0;
    const vectors = await this.embedder.embed(changed.map(({ e }) => `${e.title}\n${e.text}`));
    await this.store.upsert(changed.map(({ e }) => e), vectors);
    await markIndexed(this.db, changed.map(({ e, digest }) => ({ id: e.id, repo: e.repo, kind: e.kind, digest })));
    return changed.length;
  }

  private pullUrl(repo: string, n: number): string {
    return `${this.webBaseUrl}/${repo}/pull/${n}`;
  }

  /** Failed tasks of a repository and, once a later deploy of the stack succeeded, that fix. */
  async failureEntries(repo: string): Promise<KnowledgeEntry[]> {
    const since = new Date(Date.now() - FAILURE_WINDOW_DAYS * 86_400_000);
    const failures = await recentFailures(this.db, repo, null, FAILURES_PER_SYNC, since);
    const entries: KnowledgeEntry[] = [];
    for (const f of failures) {
      const at = f.finishedAt ?? f.createdAt;
      const fix = await nextGoodDeploy(this.db, repo, f.stack, at);
      const step = f.step ? ` at step ${f.step}` : "";
      entries.push({
        id: `failure:${f.taskId}`,
        kind: "failure",
        repo,
        stack: f.stack,
        title: `${f.kind} of ${f.stack} failed${step} (#${f.prNumber})`,
        text: [f.error ?? "", f.reason ?? "", tail(f.log, EMBEDDED_LOG_CHARS)].filter(Boolean).join("\n"),
        resolution: fix ? `Fixed by #${fix.prNumber} (commit ${fix.headSha.slice(0, 7)}), deployed ${fix.finishedAt.toISOString()}` : null,
        url: this.pullUrl(repo, fix?.prNumber ?? f.prNumber),
        occurredAt: at.toISOString(),
      });
    }
    return entries;
  }

  async syncFailures(repo: string): Promise<number> {
    return this.index(await this.failureEntries(repo));
  }

  /**
   * Re-indexes a repository's runbooks from the given files (all Markdown files under the
   * configured folder at `ref`); sections that no longer exist are removed.
   */
  async indexRunbooks(repo: string, ref: string, files: RunbookFile[]): Promise<{ indexed: number; removed: number }> {
    const entries: KnowledgeEntry[] = [];
    const now = new Date().toISOString();
    for (const f of files.filter((x) => RUNBOOK_FILE.test(x.path))) {
      for (const s of splitRunbook(f.path, f.text)) {
        entries.push({
          id: `runbook:${repo}:${f.path}#${s.slug}`,
          kind: "runbook",
          repo,
          stack: null,
          title: `${f.path.split("/").pop()} › ${s.heading}`,
          text: s.body,
          resolution: null,
          url: `${this.webBaseUrl}/${repo}/blob/${encodeURIComponent(ref)}/${f.path.split("/").map(encodeURIComponent).join("/")}#${s.slug}`,
          occurredAt: now,
        });
      }
    }
    const current = new Set(entries.map((e) => e.id));
    const stale = (await indexedIds(this.db, repo, "runbook")).filter((id) => !current.has(id));
    if (stale.length) {
      await this.store.remove(stale);
      await forgetIndexed(this.db, stale);
    }
    return { indexed: await this.index(entries), removed: stale.length };
  }

  async hasRunbooks(repo: string): Promise<boolean> {
    return (await indexedIds(this.db, repo, "runbook")).length > 0;
  }

  /** A closed diagnostic issue: its symptoms (title, body) and the closing comment as the resolution. */
  async indexResolvedIssue(i: { repo: string; number: number; title: string; body: string; resolution: string | null; url: string; closedAt: string }): Promise<number> {
    return this.index([
      {
        id: `issue:${i.repo}#${i.number}`,
        kind: "issue",
        repo: i.repo,
        stack: null,
        title: `#${i.number} ${i.title}`.slice(0, 200),
        text: i.body.slice(0, 6000),
        resolution: i.resolution ? i.resolution.slice(0, 2000) : null,
        url: i.url,
        occurredAt: i.closedAt,
      },
    ]);
  }

  async search(text: string, filter: SearchFilter, limit: number, exclude: ReadonlySet<string> = new Set()): Promise<SearchHit[]> {
    const [vector] = await this.embedder.embed([text]);
    const hits = await this.store.search(vector!, filter, limit + exclude.size);
    return hits.filter((h) => !exclude.has(h.entry.id)).slice(0, limit);
  }
}
