import { EventEmitter } from "node:events";
import nock from "nock";

export interface RecordedCall {
  method: string;
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown> | null;
  headers: Record<string, string | string[] | undefined>;
  /** When the stand-in answered it (ms, the fake's clock). */
  at?: number;
}

export interface FakePull {
  headSha: string;
  state?: "open" | "closed";
  draft?: boolean;
  headRepo?: string;
  author?: string;
  /** Paths the PR changes (GET /pulls/:n/files). */
  files?: string[];
  /** `mergeable` as GitHub reports it (default true; null while computing). */
  mergeable?: boolean | null;
  /** Commits the base branch has that the head does not (compare API `behind_by`, default 0). */
  behindBy?: number;
  merged?: boolean;
  /** The merge commit the merge API answers with (default ffff…). */
  mergeSha?: string;
  /**
   * The PR's commits as GET /pulls/:n/commits lists them: each one's author and committer
   * GitHub login (null: an e-mail not linked to an account). Default: one commit, the head,
   * authored and committed by the PR's author.
   */
  commits?: Array<{ sha?: string; author: string | null; committer: string | null }>;
}

/** A pull request review as `GET /pulls/:n/reviews` lists it. */
export interface FakeReview {
  id: number;
  user: { login: string; type: string };
  state: "APPROVED" | "CHANGES_REQUESTED" | "COMMENTED" | "DISMISSED";
  commit_id: string;
  submitted_at: string;
}

const checkRunPatch = (c: RecordedCall, status: string) =>
  c.method === "PATCH" && /\/check-runs\/\d+$/.test(c.path) && c.body?.status === status;
/** A check-run update to `completed` / `in_progress`. */
export const isCheckRunCompleted = (c: RecordedCall) => checkRunPatch(c, "completed");
export const isCheckRunInProgress = (c: RecordedCall) => checkRunPatch(c, "in_progress");

/**
 * Which `files` keys a contents-API `ref` reads, first match wins. Branch files are keyed by
 * the bare name (`main:.github/agent.yml`); `refs/heads/main` reads those. A tag is keyed
 * `refs/tags/<name>:…` and, like a tag named as a branch does in git, shadows the branch for
 * the bare name: `main` reads the tag's files first.
 */
function refCandidates(ref: string): string[] {
  if (ref.startsWith("refs/heads/")) return [ref, ref.slice("refs/heads/".length)];
  if (ref.startsWith("refs/")) return [ref];
  return [`refs/tags/${ref}`, ref];
}

/** An answer: status, JSON (or text) body, and optional extra response headers. */
export type Reply = [number, unknown] | [number, unknown, Record<string, string>];

export interface GitHubFakeOptions {
  /**
   * Install the nock interceptor for `baseUrl` (default). False: nothing is intercepted and
   * requests reach the fake only through `respond` (test/helpers/github-server.ts serves it
   * over real HTTP for other processes).
   */
  intercept?: boolean;
  /** GitHub's secondary "content creation" limit (off unless given; see ContentLimitOptions). */
  contentLimit?: ContentLimitOptions;
}

/**
 * GitHub's secondary rate limit on content creation: at most `perMinute` content-creating
 * writes (POST/PATCH/PUT/DELETE under /repos/: comments, reactions, check runs, deployments,
 * statuses, merges; not GETs, not the installation-token endpoint) per installation in any
 * rolling window of `windowMs`. A write past it is answered as GitHub answers it — 403,
 * `retry-after` (whole seconds until a slot frees, at least 1) and the secondary-limit message —
 * and changes nothing.
 */
export interface ContentLimitOptions {
  /** Writes allowed per window (default 80: GitHub's documented content-creation limit per minute). */
  perMinute?: number;
  /** The rolling window (ms, default 60,000). */
  windowMs?: number;
  /** The clock (default Date.now): tests move it instead of sleeping. */
  now?: () => number;
  /**
   * Which installation a call spends (default: its `authorization` header, i.e. the installation
   * token; this fake hands every installation the same token, so one budget in practice).
   */
  installationOf?: (c: RecordedCall) => string;
}

/** GitHub's answer to a write past a secondary rate limit (body as the REST API sends it). */
export const SECONDARY_LIMIT_BODY = {
  message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
  documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
} as const;

/** A call the content-creation limit counts: a write under /repos/ (GETs and token requests are not). */
export const isContentCreating = (c: Pick<RecordedCall, "method" | "path">): boolean =>
  ["POST", "PATCH", "PUT", "DELETE"].includes(c.method) && c.path.startsWith("/repos/");

/** The rolling-window counter behind `contentLimit`. */
class ContentLimiter {
  readonly perMinute: number;
  readonly windowMs: number;
  readonly now: () => number;
  private readonly installationOf: (c: RecordedCall) => string;
  /** Per installation, the times of the writes let through within the window (oldest first). */
  private readonly admitted = new Map<string, number[]>();

  constructor(o: ContentLimitOptions) {
    this.perMinute = o.perMinute ?? 80;
    this.windowMs = o.windowMs ?? 60_000;
    this.now = o.now ?? Date.now;
    this.installationOf = o.installationOf ?? ((c) => String(c.headers.authorization ?? "anonymous"));
    if (!Number.isInteger(this.perMinute) || this.perMinute < 1) throw new Error(`contentLimit.perMinute must be a positive integer, got ${this.perMinute}`);
  }

  /** null: the write may go (and is counted); else the seconds to send as `retry-after`. */
  check(c: RecordedCall): number | null {
    const t = this.now();
    const key = this.installationOf(c);
    let times = this.admitted.get(key);
    if (!times) this.admitted.set(key, (times = []));
    while (times.length > 0 && times[0]! <= t - this.windowMs) times.shift();
    if (times.length < this.perMinute) {
      times.push(t);
      return null;
    }
    // The oldest write in the window leaves it at times[0] + windowMs: a slot frees then.
    return Math.max(1, Math.ceil((times[0]! + this.windowMs - t) / 1000));
  }
}

/**
 * GitHub's REST API at the HTTP boundary (nock), answering with bodies shaped like the real
 * API's and recording every call so tests can assert on them or await them.
 */
export class GitHubFake {
  readonly calls: RecordedCall[] = [];
  readonly unexpected: RecordedCall[] = [];
  /** login -> role_name (admin, maintain, write, triage, read, none). */
  readonly permissions = new Map<string, string>();
  /**
   * `${ref}:${path}` -> file content: a branch's files under its bare name (`main:…`, read by
   * `main` and `refs/heads/main`), a tag's under `refs/tags/<name>:…`, a commit's under its SHA.
   */
  readonly files = new Map<string, string>();
  readonly pulls = new Map<number, FakePull>();
  /** Issue/PR comments; `login` is the author (default: this app's bot). */
  readonly comments = new Map<number, { body: string; issue: number; login?: string }>();
  readonly checkRuns = new Map<number, Record<string, unknown>>();
  readonly reviews = new Map<number, FakeReview[]>();
  /** Team slug → member logins (GET /orgs/:org/teams/:slug/members, and …/memberships/:login). */
  readonly teams = new Map<string, string[]>();
  /** When set, GET …/teams/:slug/memberships/:login answers this status (GitHub failing). */
  membershipFailure: number | null = null;
  readonly deployments = new Map<number, { ref: string; environment: string; statuses: string[] }>();
  /** The default branch's merge queue, as GraphQL `Repository.mergeQueue.entries` lists it. */
  mergeQueue: Array<{ position: number; prNumber: number; headSha: string }> = [];
  /** GitHub environments by name, as GET /environments/:name answers (absent: 404); `branch_policies` for custom deployment branches. */
  readonly environments = new Map<string, { protection_rules: unknown[]; deployment_branch_policy: { protected_branches: boolean; custom_branch_policies: boolean } | null; branch_policies?: Array<{ name: string; type?: string }> }>();
  /** Branches GitHub protects (GET /branches/:branch `protected`). */
  readonly protectedBranches = new Set<string>();
  /** GET /app/installations (the app's JWT) and GET /installation/repositories: what the app is installed on (default none). */
  appInstallations: Array<{ id: number }> = [];
  installationRepos: Array<{ full_name: string; clone_url: string; default_branch: string }> = [];
  /** What GET /branches/:branch answers as the branch's commit (default 000…). */
  readonly branchHeads = new Map<string, string>();
  /** Issues the app opened (POST /issues), as updated since (PATCH /issues/:n). */
  readonly issues = new Map<number, { title: string; body: string; state: "open" | "closed"; labels: string[] }>();
  /** Files changed between two commits (`base...head` → paths), for the compare API. */
  readonly compares = new Map<string, string[]>();
  /** Writes refused by the content-creation limit (not in `calls`: nothing was done). */
  readonly limitedCalls: RecordedCall[] = [];
  private readonly events = new EventEmitter();
  private nextId = 5000;
  private readonly scope: nock.Scope | null = null;
  private contentLimiter: ContentLimiter | null = null;

  constructor(
    readonly repo: string,
    readonly token: string,
    readonly baseUrl = "https://api.github.com",
    opts: GitHubFakeOptions = {},
  ) {
    this.events.setMaxListeners(100);
    if (opts.contentLimit) this.limitContentCreation(opts.contentLimit);
    if (opts.intercept === false) return;
    this.scope = nock(baseUrl).persist();
    // nock 15 hands a one-argument reply function the fetch Request.
    const reply = async (req: Request): Promise<Reply> => {
      const text = await req.text();
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      return this.respond(req.method, req.url, text, headers);
    };
    for (const method of ["GET", "POST", "PATCH", "PUT", "DELETE"]) {
      this.scope.intercept(/.*/, method).reply(reply as unknown as () => Reply);
    }
  }

  /** Resolves with the first call (already made or still to come) that matches. */
  waitFor(pred: (c: RecordedCall) => boolean, what = "a matching GitHub API call", timeoutMs = 45_000): Promise<RecordedCall> {
    const hit = this.calls.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.events.off("call", on);
        reject(new Error(`timed out waiting for ${what}; calls so far:\n${this.calls.map((c) => `${c.method} ${c.path}`).join("\n")}`));
      }, timeoutMs);
      const on = (c: RecordedCall) => {
        if (!pred(c)) return;
        clearTimeout(timer);
        this.events.off("call", on);
        resolve(c);
      };
      this.events.on("call", on);
    });
  }

  find(method: string, pathRe: RegExp): RecordedCall[] {
    return this.calls.filter((c) => c.method === method && pathRe.test(c.path));
  }

  stop(): void {
    if (this.scope) nock.cleanAll();
  }

  /**
   * Turns on GitHub's secondary content-creation limit (ContentLimitOptions: 80 writes a minute
   * per installation by default); `null` turns it off. Writes past it get 403 with
   * `retry-after`, are recorded in `limitedCalls` (see `limited`), and change nothing.
   */
  limitContentCreation(opts: ContentLimitOptions | null = {}): void {
    this.contentLimiter = opts ? new ContentLimiter(opts) : null;
  }

  /** How many writes the content-creation limit refused. */
  get limited(): number {
    return this.limitedCalls.length;
  }

  /**
   * Answers one request (absolute URL, or a path under `baseUrl`'s host) and records it. The
   * nock interceptor and the HTTP stand-in (github-server.ts) both call this.
   */
  /**
   * The next call `match` accepts is answered `status` instead of being handled (recorded in
   * `failed`, not in `calls`): a handler that dies at that step.
   */
  failOnce(match: (c: Pick<RecordedCall, "method" | "path">) => boolean, status = 500): void {
    this.faults.push({ match, status });
  }
  readonly failed: RecordedCall[] = [];
  private readonly faults: Array<{ match: (c: Pick<RecordedCall, "method" | "path">) => boolean; status: number }> = [];

  respond(method: string, uri: string, rawBody: string, headers: Record<string, string>): Reply {
    const url = new URL(uri, this.baseUrl);
    let path = url.pathname;
    const apiPrefix = new URL(this.baseUrl).pathname.replace(/\/$/, "");
    if (apiPrefix && path.startsWith(apiPrefix)) path = path.slice(apiPrefix.length);
    const body = rawBody ? (JSON.parse(rawBody) as Record<string, unknown>) : null;
    const call: RecordedCall = { method, path, query: url.searchParams, body, headers, at: this.contentLimiter?.now() ?? Date.now() };
    const fault = this.faults.findIndex((f) => f.match(call));
    if (fault >= 0) {
      const [f] = this.faults.splice(fault, 1);
      this.failed.push(call);
      return [f!.status, { message: "injected fault" }];
    }
    if (this.contentLimiter && isContentCreating(call)) {
      const retryAfter = this.contentLimiter.check(call);
      if (retryAfter !== null) {
        this.limitedCalls.push(call);
        this.events.emit("limited", call);
        return [403, { ...SECONDARY_LIMIT_BODY }, { "retry-after": String(retryAfter) }];
      }
    }
    const reply = this.route(call);
    if (reply) {
      this.calls.push(call);
      this.events.emit("call", call);
      return reply;
    }
    this.unexpected.push(call);
    this.calls.push(call);
    this.events.emit("call", call);
    return [404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" }];
  }

  private route(c: RecordedCall): Reply | null {
    const repo = this.repo.replace("/", "\\/");
    const m = (re: string) => new RegExp(`^${re}$`).exec(c.path);
    let r: RegExpExecArray | null;
    const now = new Date().toISOString();

    if (c.method === "POST" && (r = m("/app/installations/(\\d+)/access_tokens"))) {
      return [201, { token: this.token, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: { checks: "write", contents: "read", issues: "write", pull_requests: "write" }, repository_selection: "selected" }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/collaborators/([^/]+)/permission`))) {
      const login = decodeURIComponent(r[1]!);
      const role = this.permissions.get(login) ?? "read";
      const permission = role === "maintain" ? "write" : role === "triage" ? "read" : role;
      return [200, { permission, role_name: role, user: { login, id: 1, type: "User" } }];
    }
    if (c.method === "POST" && (r = m(`/repos/${repo}/issues/comments/(\\d+)/reactions`))) {
      return [201, { id: this.nextId++, content: c.body?.content, user: { login: "pr-infra-agent[bot]", type: "Bot" }, created_at: now }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/pulls/(\\d+)/reviews`))) {
      return [200, this.reviews.get(Number(r[1])) ?? []];
    }
    if (c.method === "PUT" && (r = m(`/repos/${repo}/pulls/(\\d+)/merge`))) {
      const pull = this.pulls.get(Number(r[1]));
      if (!pull) return [404, { message: "Not Found" }];
      // GitHub refuses when `sha` is given and the head moved since.
      if (c.body?.sha && c.body.sha !== pull.headSha) return [409, { message: "Head branch was modified. Review and try the merge again." }];
      if (pull.merged) return [405, { message: "Pull Request is not mergeable" }];
      pull.merged = true;
      pull.state = "closed";
      return [200, { sha: pull.mergeSha ?? "f".repeat(40), merged: true, message: "Pull Request successfully merged" }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/environments/([^/]+)/deployment-branch-policies`))) {
      const env = this.environments.get(decodeURIComponent(r[1]!));
      if (!env) return [404, { message: "Not Found" }];
      const list = (env.branch_policies ?? []).map((b, i) => ({ id: i + 1, name: b.name, type: b.type ?? "branch" }));
      return [200, { total_count: list.length, branch_policies: list }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/environments/([^/]+)`))) {
      const name = decodeURIComponent(r[1]!);
      const env = this.environments.get(name);
      if (!env) return [404, { message: "Not Found" }];
      return [200, { id: 1, name, protection_rules: env.protection_rules, deployment_branch_policy: env.deployment_branch_policy }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/branches/([^/]+)`))) {
      const name = decodeURIComponent(r[1]!);
      return [200, { name, protected: this.protectedBranches.has(name), commit: { sha: this.branchHeads.get(name) ?? "0".repeat(40) } }];
    }
    if (c.method === "POST" && m(`/repos/${repo}/issues`)) {
      const number = this.nextId++;
      this.issues.set(number, { title: String(c.body?.title), body: String(c.body?.body ?? ""), state: "open", labels: (c.body?.labels as string[] | undefined) ?? [] });
      return [201, { number, id: number, title: c.body?.title, state: "open", created_at: now }];
    }
    if (c.method === "PATCH" && (r = m(`/repos/${repo}/issues/(\\d+)`))) {
      const issue = this.issues.get(Number(r[1]));
      if (!issue) return [404, { message: "Not Found" }];
      if (c.body?.title !== undefined) issue.title = String(c.body.title);
      if (c.body?.body !== undefined) issue.body = String(c.body.body);
      if (c.body?.state !== undefined) issue.state = c.body.state as "open" | "closed";
      return [200, { number: Number(r[1]), ...issue }];
    }
    if (c.method === "POST" && (r = m(`/repos/${repo}/actions/runs/(\\d+)/deployment_protection_rule`))) {
      return [204, ""];
    }
    if (c.method === "GET" && m("/app/installations")) {
      if (Number(c.query.get("page") ?? "1") > 1) return [200, []];
      return [200, this.appInstallations.map((i) => ({ id: i.id, account: { login: this.repo.split("/")[0], type: "Organization" }, app_id: 12345, target_type: "Organization", permissions: {}, events: [] }))];
    }
    if (c.method === "GET" && m("/installation/repositories")) {
      if (Number(c.query.get("page") ?? "1") > 1) return [200, { total_count: this.installationRepos.length, repositories: [] }];
      return [200, { total_count: this.installationRepos.length, repository_selection: "selected", repositories: this.installationRepos.map((r, i) => ({ id: 700 + i, name: r.full_name.split("/")[1], full_name: r.full_name, clone_url: r.clone_url, default_branch: r.default_branch, archived: false, owner: { login: r.full_name.split("/")[0] } })) }];
    }
    if (c.method === "POST" && m("/graphql")) {
      // Only the merge-queue query is asked (src/connectors/github.ts listMergeQueue).
      if (!/mergeQueue\(branch:/.test(String(c.body?.query))) return null;
      const nodes = this.mergeQueue.map((e) => ({ position: e.position, state: "AWAITING_CHECKS", headCommit: { oid: e.headSha }, pullRequest: { number: e.prNumber } }));
      return [200, { data: { repository: { mergeQueue: { entries: { nodes } } } } }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/compare/([0-9a-f]{40})\\.\\.\\.([0-9a-f]{40})`)) && this.compares.has(`${r[1]}...${r[2]}`)) {
      const files = this.compares.get(`${r[1]}...${r[2]}`)!;
      return [200, { status: "ahead", ahead_by: 1, behind_by: 0, total_commits: 1, commits: [], files: files.map((filename) => ({ filename, status: "modified", additions: 1, deletions: 0, changes: 1 })) }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/compare/([^/]+)\\.\\.\\.([0-9a-f]{40})`))) {
      const pull = [...this.pulls.values()].find((p) => p.headSha === r![2]);
      return [200, { status: pull?.behindBy ? "diverged" : "ahead", ahead_by: 1, behind_by: pull?.behindBy ?? 0, total_commits: 1, commits: [], files: [] }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/commits/([0-9a-f]{40})/check-runs`))) {
      const runs = [...this.checkRuns.entries()].filter(([, cr]) => cr.head_sha === r![1]).map(([id, cr]) => ({ id, name: cr.name, head_sha: cr.head_sha, status: cr.status ?? "queued", conclusion: cr.conclusion ?? null }));
      // `filter=latest` (the default): the newest run of each name.
      const latest = new Map<string, (typeof runs)[number]>();
      for (const run of runs) latest.set(String(run.name), run);
      return [200, { total_count: latest.size, check_runs: [...latest.values()] }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/commits/([0-9a-f]{40})/status`))) {
      return [200, { state: "success", sha: r[1], total_count: 0, statuses: [] }];
    }
    if (c.method === "GET" && (r = m(`/orgs/([^/]+)/teams/([^/]+)/memberships/([^/]+)`))) {
      if (this.membershipFailure) return [this.membershipFailure, { message: "Server Error" }];
      const member = this.teams.get(decodeURIComponent(r[2]!))?.some((l) => l.toLowerCase() === decodeURIComponent(r![3]!).toLowerCase());
      return member ? [200, { url: `https://api.github.com/teams/1/memberships/${r[3]}`, role: "member", state: "active" }] : [404, { message: "Not Found" }];
    }
    if (c.method === "GET" && (r = m(`/orgs/([^/]+)/teams/([^/]+)/members`))) {
      const members = this.teams.get(decodeURIComponent(r[2]!));
      if (!members) return [404, { message: "Not Found" }];
      return [200, members.map((login, i) => ({ login, id: 100 + i, type: "User" }))];
    }
    if (c.method === "POST" && m(`/repos/${repo}/deployments`)) {
      const id = this.nextId++;
      this.deployments.set(id, { ref: String(c.body?.ref), environment: String(c.body?.environment), statuses: [] });
      return [201, { id, ref: c.body?.ref, environment: c.body?.environment, payload: c.body?.payload, created_at: now }];
    }
    if (c.method === "POST" && (r = m(`/repos/${repo}/deployments/(\\d+)/statuses`))) {
      const d = this.deployments.get(Number(r[1]));
      if (!d) return [404, { message: "Not Found" }];
      d.statuses.push(String(c.body?.state));
      return [201, { id: this.nextId++, state: c.body?.state, created_at: now }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/pulls/(\\d+)/commits`))) {
      const pull = this.pulls.get(Number(r[1]));
      if (!pull) return [404, { message: "Not Found" }];
      // One page holds them all (no Link header): pagination stops after it.
      if (Number(c.query.get("page") ?? "1") > 1) return [200, []];
      const author = pull.author ?? "octocat";
      const commits = pull.commits ?? [{ sha: pull.headSha, author, committer: author }];
      const person = (login: string | null) => (login ? { login, id: 100, type: "User" } : null);
      return [200, commits.map((cm, i) => ({ sha: cm.sha ?? (i === commits.length - 1 ? pull.headSha : String(i).padStart(40, "c")), commit: { message: "change", author: { name: cm.author ?? "someone", date: now }, committer: { name: cm.committer ?? "someone", date: now } }, author: person(cm.author), committer: person(cm.committer) }))];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/pulls/(\\d+)/files`))) {
      const pull = this.pulls.get(Number(r[1]));
      if (!pull) return [404, { message: "Not Found" }];
      return [200, (pull.files ?? []).map((filename) => ({ filename, status: "modified", additions: 1, deletions: 0, changes: 1 }))];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/pulls/(\\d+)`))) {
      const pull = this.pulls.get(Number(r[1]));
      if (!pull) return [404, { message: "Not Found" }];
      const [owner] = this.repo.split("/");
      return [
        200,
        {
          number: Number(r[1]),
          state: pull.state ?? "open",
          draft: pull.draft ?? false,
          mergeable: pull.mergeable === undefined ? true : pull.mergeable,
          merged: pull.merged ?? false,
          head: { sha: pull.headSha, ref: "feature", repo: { full_name: pull.headRepo ?? this.repo } },
          base: { sha: "0".repeat(40), ref: "main", repo: { full_name: this.repo, owner: { login: owner } } },
          user: { login: pull.author ?? "octocat", type: "User" },
        },
      ];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/contents/(.+)`))) {
      const path = decodeURIComponent(r[1]!).replace(/\/+$/, "");
      for (const ref of refCandidates(c.query.get("ref") ?? "main")) {
        const content = this.files.get(`${ref}:${path}`);
        if (content !== undefined) return [200, content, { "content-type": "text/plain; charset=utf-8" }];
        // A folder: its immediate children, as the contents API lists them.
        const prefix = `${ref}:${path}/`;
        const children = new Map<string, { type: "file" | "dir"; size: number }>();
        for (const [key, text] of this.files) {
          if (!key.startsWith(prefix)) continue;
          const [first, ...rest] = key.slice(prefix.length).split("/");
          children.set(first!, rest.length ? { type: "dir", size: 0 } : { type: "file", size: Buffer.byteLength(text) });
        }
        if (children.size > 0) return [200, [...children].map(([name, e]) => ({ type: e.type, name, path: `${path}/${name}`, size: e.size, sha: "0".repeat(40) }))];
      }
      return [404, { message: "Not Found" }];
    }
    if (c.method === "POST" && (r = m(`/repos/${repo}/issues/(\\d+)/reactions`))) {
      return [201, { id: this.nextId++, content: c.body?.content, user: { login: "pr-infra-agent[bot]", type: "Bot" }, created_at: now }];
    }
    if (c.method === "GET" && (r = m(`/repos/${repo}/issues/(\\d+)/comments`))) {
      const issue = Number(r[1]);
      const list = [...this.comments.entries()].filter(([, cm]) => cm.issue === issue);
      return [200, list.map(([id, cm]) => ({ id, body: cm.body, user: cm.login ? { login: cm.login, type: "User" } : { login: "pr-infra-agent[bot]", type: "Bot" }, created_at: now }))];
    }
    if (c.method === "POST" && m(`/repos/${repo}/check-runs`)) {
      const id = this.nextId++;
      this.checkRuns.set(id, { ...c.body });
      return [201, { id, ...c.body, html_url: `https://github.com/${this.repo}/runs/${id}` }];
    }
    if (c.method === "PATCH" && (r = m(`/repos/${repo}/check-runs/(\\d+)`))) {
      const id = Number(r[1]);
      if (!this.checkRuns.has(id)) return [404, { message: "Not Found" }];
      this.checkRuns.set(id, { ...this.checkRuns.get(id), ...c.body });
      return [200, { id, ...this.checkRuns.get(id) }];
    }
    if (c.method === "POST" && (r = m(`/repos/${repo}/issues/(\\d+)/comments`))) {
      const id = this.nextId++;
      this.comments.set(id, { body: String(c.body?.body), issue: Number(r[1]) });
      return [201, { id, body: c.body?.body, user: { login: "pr-infra-agent[bot]", type: "Bot" }, created_at: now }];
    }
    if (c.method === "PATCH" && (r = m(`/repos/${repo}/issues/comments/(\\d+)`))) {
      const id = Number(r[1]);
      const existing = this.comments.get(id);
      if (!existing) return [404, { message: "Not Found" }];
      this.comments.set(id, { ...existing, body: String(c.body?.body) });
      return [200, { id, body: c.body?.body }];
    }
    if (c.method === "DELETE" && (r = m(`/repos/${repo}/issues/comments/(\\d+)`))) {
      const id = Number(r[1]);
      if (!this.comments.delete(id)) return [404, { message: "Not Found" }];
      return [204, ""];
    }
    return null;
  }
}
