/**
 * Every GitHub REST call the app makes, each a thin typed function over Probot's Octokit
 * (retries and throttling built in): pulls, reviews, checks, comments, reactions, deployments,
 * merges (sent once: refusals are not retried), files and teams. Long (about 470 lines) because
 * it is the whole GitHub boundary, which the tests fake at the HTTP level in one place.
 */
import { loadRepoConfig, type LoadResult } from "../config/repo/load.js";
import { branchRef } from "./branch-ref.js";
import type { EnvironmentRules } from "../approval/environment.js";
import Bottleneck from "bottleneck";
import type { ProbotOctokit } from "probot";
import { permissionFrom, type RepoPermission } from "../approval/permissions.js";

/** An authenticated installation client (Probot's Octokit: retries and throttling built in). */
export type GitHub = InstanceType<typeof ProbotOctokit>;

export interface RepoRef {
  owner: string;
  repo: string;
}

/** Secondary rate limits of a read wait at most this long before a retry; longer, the call fails. */
export const SECONDARY_LIMIT_MAX_WAIT_SECONDS = 60;
/** Retries of one read after secondary rate limits. */
export const SECONDARY_LIMIT_RETRIES = 2;

const isWrite = (method: string) => method !== "GET" && method !== "HEAD";

/**
 * Probot's throttle options, adjusted for the outbox (src/connectors/outbox/): writes are paced
 * and prioritised there, per installation, so the plugin's own write limiter is off; a rate
 * limit answering a write is handed back to the outbox at once (it pauses that installation's
 * sender and sends the write again) instead of holding the request. Reads keep the plugin's
 * retries: a secondary limit after `retry-after`, twice, when the wait is short (Probot's
 * default only logs and gives up).
 */
export function withGitHubPacing<C extends typeof ProbotOctokit>(Octokit: C, log: { warn(obj: object, msg: string): void }): C {
  return Octokit.defaults((options: { throttle?: Record<string, unknown>; auth?: unknown }) => {
    const installationId = (options.auth as { installationId?: unknown } | undefined)?.installationId;
    const inner = options.throttle?.onRateLimit as ((...a: unknown[]) => boolean | undefined) | undefined;
    return {
      ...options,
      // 429 is the throttling's (reads) or the outbox's (writes) to wait on, never resent blindly
      // by the retry plugin (its default list plus 429).
      retry: { doNotRetry: [400, 401, 403, 404, 410, 422, 429, 451], ...(options as { retry?: object }).retry },
      throttle: {
        ...options.throttle,
        // No limit: the outbox decides when a write goes (its budget also keeps content
        // creation under GitHub's 80 a minute, which the plugin's 3-second notifications gap did).
        write: new Bottleneck.Group({}),
        notifications: new Bottleneck.Group({}),
        // The limiters' key: one bucket per installation (the app-level client shares one).
        ...(typeof installationId === "number" ? { id: `installation-${installationId}` } : {}),
        onRateLimit: (retryAfter: number, request: { method: string; url: string }, ...rest: unknown[]) => {
          if (isWrite(request.method)) return false;
          return inner ? inner(retryAfter, request, ...rest) : false;
        },
        onSecondaryRateLimit: (retryAfter: number, request: { method: string; url: string }, _octokit: unknown, retryCount: number) => {
          const retry = !isWrite(request.method) && retryCount < SECONDARY_LIMIT_RETRIES && retryAfter <= SECONDARY_LIMIT_MAX_WAIT_SECONDS;
          log.warn({ method: request.method, url: request.url, retry_after: retryAfter, retry_count: retryCount, retry }, "Secondary quota detected");
          return retry;
        },
      },
    };
  }) as unknown as C;
}

/**
 * Installation tokens from the API the client talks to. Probot hands the app's auth a `request`
 * without the base URL, so a token fetched by `auth()` itself (installationToken, when no API
 * call has cached one in this process yet) went to api.github.com even on GitHub Enterprise
 * Server; tokens fetched on the way to an API call use the client's own request and were right.
 */
export function withTokensFromBaseUrl<C extends typeof ProbotOctokit>(Octokit: C): C {
  return Octokit.defaults((options: { baseUrl?: string; auth?: { request?: { defaults(o: object): unknown } } & Record<string, unknown> }) => {
    const request = options.auth?.request;
    if (!options.baseUrl || !request || typeof request.defaults !== "function") return options;
    return { ...options, auth: { ...options.auth, request: request.defaults({ baseUrl: options.baseUrl }) } };
  }) as unknown as C;
}

/**
 * The Octokit the outbox sends writes with: the throttling plugin off (the outbox is the write
 * throttle: it paces, orders and pauses per installation, and its claims already serialise an
 * installation's writes, so the plugin's limiters would only add a scheduling hop to every
 * acknowledgement), retries kept for 5xx and network errors, never for 429.
 */
export function forOutboxWrites<C extends typeof ProbotOctokit>(Octokit: C): C {
  return Octokit.defaults((options: { throttle?: Record<string, unknown>; retry?: object }) => ({
    ...options,
    retry: { doNotRetry: [400, 401, 403, 404, 410, 422, 429, 451], ...options.retry },
    throttle: { ...options.throttle, enabled: false },
  })) as unknown as C;
}

/**
 * An installation client of class `Octokit` made through `app`'s (the app-level client's) auth,
 * so both classes share one installation-token cache: a second client class costs no second
 * token. The other class's throttle and retry options are its own, not `app`'s.
 */
export async function installationClientOf<C extends typeof ProbotOctokit>(app: GitHub, Octokit: C, installationId: number): Promise<InstanceType<C>> {
  type Options = { throttle?: unknown; retry?: unknown; auth?: object } & Record<string, unknown>;
  return (await app.auth({
    type: "installation",
    installationId,
    factory: ({ octokitOptions }: { octokitOptions: Options }) => {
      const { throttle: _throttle, retry: _retry, ...shared } = octokitOptions;
      return new Octokit({ ...shared, auth: { ...shared.auth, installationId } });
    },
  })) as InstanceType<C>;
}

/**
 * The Octokit class with one more hook per installation client: every response's
 * `x-ratelimit-remaining` (failed responses too: a 403 for the rate limit carries it) is
 * handed to `report` with the client's installation id. Installation clients are made by
 * Probot's `auth(installationId)` (deps.github and each event's `context.octokit`) and by
 * installationClientOf (the outbox's), all with
 * `auth.installationId` in their options; the app-level client (no installation) is left alone.
 * Reading one header per response: no extra requests.
 */
export function withRateLimitReport<C extends typeof ProbotOctokit>(Octokit: C, report: (installationId: number, remaining: number) => void): C {
  return Octokit.plugin((octokit: { hook: GitHub["hook"] }, options: { auth?: unknown }) => {
    const installationId = (options.auth as { installationId?: unknown } | undefined)?.installationId;
    if (typeof installationId !== "number") return {};
    const read = (headers: Record<string, unknown> | undefined) => {
      const value = headers?.["x-ratelimit-remaining"];
      if (value === undefined || value === null || value === "") return;
      const remaining = Number(value);
      if (Number.isFinite(remaining)) report(installationId, remaining);
    };
    octokit.hook.after("request", (response) => read(response.headers as Record<string, unknown>));
    octokit.hook.error("request", (error) => {
      read((error as { response?: { headers?: Record<string, unknown> } }).response?.headers);
      throw error;
    });
    return {};
  }) as unknown as C;
}

export const REPO_CONFIG_PATH = ".github/agent.yml";
/** GitHub limits: check-run output fields and issue comment bodies. */
export const CHECK_RUN_TEXT_LIMIT = 65_535;
export const COMMENT_BODY_LIMIT = 65_536;

export async function getPermission(gh: GitHub, r: RepoRef, username: string): Promise<RepoPermission> {
  try {
    const { data } = await gh.rest.repos.getCollaboratorPermissionLevel({ ...r, username });
    return permissionFrom(data as { permission?: string; role_name?: string });
  } catch (err) {
    // 404: not a collaborator at all.
    if ((err as { status?: number }).status === 404) return "none";
    throw err;
  }
}

export async function addReaction(gh: GitHub, r: RepoRef, commentId: number, content: "eyes" | "confused" | "-1"): Promise<void> {
  await gh.rest.reactions.createForIssueComment({ ...r, comment_id: commentId, content });
}

/** A reaction on the issue itself (a label or template started something, not a comment). */
export async function addIssueReaction(gh: GitHub, r: RepoRef, issueNumber: number, content: "eyes" | "confused"): Promise<void> {
  await gh.rest.reactions.createForIssue({ ...r, issue_number: issueNumber, content });
}

/** The newest comments of an issue, oldest first (at most `count`, at most 100). */
export async function latestIssueComments(gh: GitHub, r: RepoRef, issueNumber: number, count: number): Promise<Array<{ body: string; login: string; type: string; createdAt: string }>> {
  const first = await gh.rest.issues.listComments({ ...r, issue_number: issueNumber, per_page: 100 });
  let page = first.data;
  // The Link header's `last` page holds the newest comments.
  const last = /<[^>]*[?&]page=(\d+)[^>]*>;\s*rel="last"/.exec(first.headers.link ?? "");
  if (last) page = (await gh.rest.issues.listComments({ ...r, issue_number: issueNumber, per_page: 100, page: Number(last[1]) })).data;
  return page.slice(-count).map((c) => ({ body: c.body ?? "", login: c.user?.login ?? "ghost", type: c.user?.type ?? "User", createdAt: c.created_at }));
}

/**
 * Paths and texts of the files under a folder at a ref (contents API, depth-first), bounded:
 * at most `maxFiles` files of at most `maxBytes` each, `maxDepth` folders deep. A missing
 * folder is an empty list.
 */
export async function filesUnder(
  gh: GitHub,
  r: RepoRef,
  dir: string,
  ref: string,
  opts: { match: RegExp; maxFiles: number; maxBytes: number; maxDepth: number },
): Promise<Array<{ path: string; text: string }>> {
  const out: Array<{ path: string; text: string }> = [];
  const walk = async (path: string, depth: number): Promise<void> => {
    let entries: Array<{ type: string; path: string; size: number }>;
    try {
      const { data } = await gh.rest.repos.getContent({ ...r, path, ref });
      if (!Array.isArray(data)) return;
      entries = data.map((e) => ({ type: e.type, path: e.path, size: e.size })).sort((a, b) => a.path.localeCompare(b.path));
    } catch (err) {
      if ((err as { status?: number }).status === 404) return;
      throw err;
    }
    for (const e of entries) {
      if (out.length >= opts.maxFiles) return;
      if (e.type === "file" && opts.match.test(e.path) && e.size <= opts.maxBytes) {
        const text = await getFileText(gh, r, e.path, ref);
        if (text !== null) out.push({ path: e.path, text });
      } else if (e.type === "dir" && depth < opts.maxDepth) {
        await walk(e.path, depth + 1);
      }
    }
  };
  await walk(dir.replace(/\/+$/, ""), 0);
  return out;
}

export interface PullInfo {
  number: number;
  state: string;
  draft: boolean;
  headSha: string;
  headRepoFullName: string | null;
  baseRepoFullName: string;
  author: string;
  /** null while GitHub is still computing it. */
  mergeable: boolean | null;
  baseRef: string;
  /** The head branch (its name in the head repository). */
  headRef: string;
  merged: boolean;
  mergeCommitSha: string | null;
}

export async function getPull(gh: GitHub, r: RepoRef, number: number): Promise<PullInfo> {
  const { data } = await gh.rest.pulls.get({ ...r, pull_number: number });
  return {
    number: data.number,
    state: data.state,
    draft: Boolean(data.draft),
    headSha: data.head.sha,
    headRepoFullName: data.head.repo?.full_name ?? null,
    baseRepoFullName: data.base.repo.full_name,
    author: data.user?.login ?? "",
    mergeable: data.mergeable ?? null,
    baseRef: data.base.ref,
    headRef: data.head.ref,
    merged: Boolean(data.merged),
    mergeCommitSha: data.merge_commit_sha ?? null,
  };
}

/** How many commits the base branch has that the head does not (null when GitHub cannot compare). */
export async function behindBy(gh: GitHub, r: RepoRef, baseRef: string, headSha: string): Promise<number | null> {
  try {
    const { data } = await gh.rest.repos.compareCommitsWithBasehead({ ...r, basehead: `${baseRef}...${headSha}`, per_page: 1 });
    return data.behind_by;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return null;
    throw err;
  }
}

export interface Review {
  id: number;
  user: { login: string; type: string } | null;
  state: string;
  commit_id: string | null;
  submitted_at: string | null;
}

export async function listReviews(gh: GitHub, r: RepoRef, number: number): Promise<Review[]> {
  const reviews = await gh.paginate(gh.rest.pulls.listReviews, { ...r, pull_number: number, per_page: 100 });
  return reviews.map((v) => ({
    id: v.id,
    user: v.user ? { login: v.user.login, type: v.user.type } : null,
    state: v.state,
    commit_id: v.commit_id ?? null,
    submitted_at: v.submitted_at ?? null,
  }));
}

/** Check runs and commit statuses on a commit, as one list of named results. */
export async function listChecks(gh: GitHub, r: RepoRef, sha: string): Promise<Array<{ name: string; status: string; conclusion: string | null }>> {
  const runs = await gh.paginate(gh.rest.checks.listForRef, { ...r, ref: sha, per_page: 100 });
  const { data: combined } = await gh.rest.repos.getCombinedStatusForRef({ ...r, ref: sha, per_page: 100 });
  return [
    ...runs.map((c) => ({ name: c.name, status: c.status, conclusion: c.conclusion ?? null })),
    ...combined.statuses.map((st) => ({
      name: st.context,
      status: st.state === "pending" ? "in_progress" : "completed",
      conclusion: st.state === "pending" ? null : st.state === "success" ? "success" : "failure",
    })),
  ];
}

export async function listTeamMembers(gh: GitHub, org: string, teamSlug: string): Promise<string[]> {
  try {
    const members = await gh.paginate(gh.rest.teams.listMembersInOrg, { org, team_slug: teamSlug, per_page: 100 });
    return members.map((m) => m.login);
  } catch (err) {
    // An unknown team (or one the app may not read) has no members that count.
    if ((err as { status?: number }).status === 404) return [];
    throw err;
  }
}

/**
 * The teams among `slugs` of `org` that `login` is an active member of (a pending invitation
 * does not count), one `GET /orgs/{org}/teams/{slug}/memberships/{login}` each: 404 is "not a
 * member"; any other failure throws (the caller must not guess).
 */
export async function activeTeams(gh: GitHub, org: string, login: string, slugs: readonly string[]): Promise<string[]> {
  const member: string[] = [];
  for (const slug of slugs) {
    try {
      const { data } = await gh.rest.teams.getMembershipForUserInOrg({ org, team_slug: slug, username: login });
      if (data.state === "active") member.push(slug);
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
    }
  }
  return member;
}

/**
 * Per-request options for a write that must reach GitHub at most once. Octokit's retry plugin
 * (on in Probot's Octokit) resends any answer but 400/401/403/404/410/422/451, network errors
 * included (reported as status 500), reading `request.retries` per request. Which writes are
 * sent once, and why:
 *  - `mergePull`: a refused merge (405 not mergeable, 409 head moved) is a verdict, not a
 *    hiccup; and a merge whose answer was lost may have happened.
 *  - `createDeployment`: each POST creates another Deployment, and every one sends `deployment`
 *    webhooks that other systems act on.
 * Left to the plugin: reads; updates that set a state (check runs, comments, deployment
 * statuses: sending one twice says the same thing twice); comment, reaction and check-run
 * creation (a duplicate is visible but harmless, a dropped one loses what the user must see).
 * Rate-limit answers (403/429) are handed to the outbox, which waits and sends again: GitHub
 * refused those before doing anything.
 */
export const SEND_ONCE = { request: { retries: 0 } } as const;

export async function createDeployment(
  gh: GitHub,
  r: RepoRef,
  d: { sha: string; environment: string; description: string; payload: Record<string, unknown> },
): Promise<number> {
  const res = await gh.rest.repos.createDeployment({
    ...SEND_ONCE,
    ...r,
    ref: d.sha,
    environment: d.environment,
    description: d.description.slice(0, 140),
    payload: d.payload,
    auto_merge: false,
    // The gate already checked the commit's checks; GitHub must not second-guess with its own.
    required_contexts: [],
    production_environment: false,
    transient_environment: false,
  });
  if (res.status !== 201 || !("id" in res.data)) throw new Error(`GitHub did not create the deployment: ${JSON.stringify(res.data).slice(0, 200)}`);
  return res.data.id;
}

export async function setDeploymentStatus(
  gh: GitHub,
  r: RepoRef,
  deploymentId: number,
  state: "in_progress" | "success" | "failure" | "error",
  opts: { description: string; logUrl?: string | null },
): Promise<void> {
  await gh.rest.repos.createDeploymentStatus({
    ...r,
    deployment_id: deploymentId,
    state,
    description: opts.description.slice(0, 140),
    ...(opts.logUrl ? { log_url: opts.logUrl } : {}),
  });
}

/**
 * Merges only if the head is still `sha` (GitHub refuses otherwise with 409): a push after the
 * approval makes the merge fail instead of merging code nobody approved. Sent once (SEND_ONCE).
 */
export async function mergePull(
  gh: GitHub,
  r: RepoRef,
  number: number,
  sha: string,
  method: "merge" | "squash" | "rebase",
): Promise<{ merged: true; sha: string } | { merged: false; status: number; message: string }> {
  try {
    const { data } = await gh.rest.pulls.merge({ ...SEND_ONCE, ...r, pull_number: number, sha, merge_method: method });
    return data.merged ? { merged: true, sha: data.sha } : { merged: false, status: 200, message: data.message };
  } catch (err) {
    const e = err as { status?: number; message?: string };
    if (e.status === 405 || e.status === 409 || e.status === 422) return { merged: false, status: e.status, message: e.message ?? "merge refused" };
    throw err;
  }
}

/** Files a pull request changes (renamed files count under both names); GitHub lists up to 3,000. */
export async function listPullFiles(gh: GitHub, r: RepoRef, number: number): Promise<string[]> {
  const files = await gh.paginate(gh.rest.pulls.listFiles, { ...r, pull_number: number, per_page: 100 });
  return files.flatMap((f) => (f.previous_filename ? [f.filename, f.previous_filename] : [f.filename]));
}

/**
 * Files changed between two commits (compare API; renamed files count under both names). GitHub
 * lists at most 300 files in a comparison: `complete` is false beyond that, and a caller that
 * must not miss a file treats the comparison as unknown.
 */
export async function compareFiles(gh: GitHub, r: RepoRef, base: string, head: string): Promise<{ files: string[]; complete: boolean }> {
  const { data } = await gh.rest.repos.compareCommitsWithBasehead({ ...r, basehead: `${base}...${head}` });
  const files = (data.files ?? []).flatMap((f) => (f.previous_filename ? [f.filename, f.previous_filename] : [f.filename]));
  return { files, complete: (data.files ?? []).length < 300 };
}

/**
 * A GitHub environment's protection rules (GET /repos/{o}/{r}/environments/{name}, and its
 * custom deployment branch policies); null when the repository has no such environment.
 */
export async function getEnvironmentRules(gh: GitHub, r: RepoRef, name: string): Promise<EnvironmentRules | null> {
  let data;
  try {
    ({ data } = await gh.rest.repos.getEnvironment({ ...r, environment_name: name }));
  } catch (err) {
    if ((err as { status?: number }).status === 404) return null;
    throw err;
  }
  type Rule = { type: string; wait_timer?: number; prevent_self_review?: boolean; reviewers?: Array<{ type?: string; reviewer?: { login?: string; slug?: string } }> };
  const rules = (data.protection_rules ?? []) as Rule[];
  const reviewerRule = rules.find((x) => x.type === "required_reviewers");
  const reviewers = reviewerRule
    ? {
        users: (reviewerRule.reviewers ?? []).flatMap((x) => (x.type === "User" && x.reviewer?.login ? [x.reviewer.login] : [])),
        teams: (reviewerRule.reviewers ?? []).flatMap((x) => (x.type === "Team" && x.reviewer?.slug ? [x.reviewer.slug] : [])),
      }
    : null;
  const wait = rules.find((x) => x.type === "wait_timer")?.wait_timer ?? 0;
  const policy = data.deployment_branch_policy;
  let branchPolicy: EnvironmentRules["branchPolicy"] = null;
  if (policy?.protected_branches) branchPolicy = { protectedBranches: true };
  else if (policy?.custom_branch_policies) {
    const listed = await gh.paginate(gh.rest.repos.listDeploymentBranchPolicies, { ...r, environment_name: name, per_page: 100 });
    const entries = (Array.isArray(listed) ? listed : ((listed as { branch_policies?: unknown[] }).branch_policies ?? [])) as Array<{ name?: string; type?: string }>;
    branchPolicy = { protectedBranches: false, patterns: entries.flatMap((b) => (b.name && b.type !== "tag" ? [b.name] : [])) };
  }
  return { name, reviewers, preventSelfReview: Boolean(reviewerRule?.prevent_self_review), waitTimerMinutes: wait, branchPolicy };
}

/** Whether GitHub protects a branch (GET /repos/{o}/{r}/branches/{branch}); false when it does not exist. */
export async function isBranchProtected(gh: GitHub, r: RepoRef, branch: string): Promise<boolean> {
  try {
    const { data } = await gh.rest.repos.getBranch({ ...r, branch });
    return Boolean(data.protected);
  } catch (err) {
    if ((err as { status?: number }).status === 404) return false;
    throw err;
  }
}

/** Answers a custom deployment protection rule (POST /repos/{o}/{r}/actions/runs/{run_id}/deployment_protection_rule). */
export async function reviewCustomGate(gh: GitHub, r: RepoRef, runId: number, a: { environment: string; state: "approved" | "rejected"; comment: string }): Promise<void> {
  await gh.request("POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule", { ...r, run_id: runId, environment_name: a.environment, state: a.state, comment: a.comment });
}

/** One entry of a branch's merge queue, as GitHub's GraphQL API lists it. */
export interface MergeQueueEntryInfo {
  position: number;
  prNumber: number;
  headSha: string | null;
}

const MERGE_QUEUE_QUERY = `query($owner: String!, $name: String!, $branch: String!) {
  repository(owner: $owner, name: $name) {
    mergeQueue(branch: $branch) {
      entries(first: 100) { nodes { position state headCommit { oid } pullRequest { number } } }
    }
  }
}`;

/** The entries of a branch's merge queue (the REST API has none: GraphQL `Repository.mergeQueue`). */
export async function listMergeQueue(gh: GitHub, r: RepoRef, branch: string): Promise<MergeQueueEntryInfo[]> {
  type Answer = { repository: { mergeQueue: { entries: { nodes: Array<{ position: number; headCommit: { oid: string } | null; pullRequest: { number: number } | null } | null> } } | null } | null };
  const data = await gh.graphql<Answer>(MERGE_QUEUE_QUERY, { owner: r.owner, name: r.repo, branch: branch.replace(/^refs\/heads\//, "") });
  return (data.repository?.mergeQueue?.entries.nodes ?? []).flatMap((n) => (n?.pullRequest ? [{ position: n.position, prNumber: n.pullRequest.number, headSha: n.headCommit?.oid ?? null }] : []));
}

/**
 * The GitHub accounts behind a pull request's commits (GET /pulls/{n}/commits, paginated;
 * GitHub lists at most 250): each commit's author and committer login, null when the commit's
 * e-mail is not linked to an account.
 */
export async function listPullCommitters(gh: GitHub, r: RepoRef, number: number): Promise<Array<{ sha: string; author: string | null; committer: string | null }>> {
  const commits = await gh.paginate(gh.rest.pulls.listCommits, { ...r, pull_number: number, per_page: 100 });
  return commits.map((c) => ({ sha: c.sha, author: c.author?.login ?? null, committer: c.committer?.login ?? null }));
}

/** The raw text of a file on a ref, or null when it does not exist there. */
export async function getFileText(gh: GitHub, r: RepoRef, path: string, ref: string): Promise<string | null> {
  try {
    const res = await gh.rest.repos.getContent({ ...r, path, ref, mediaType: { format: "raw" } });
    return typeof res.data === "string" ? res.data : Buffer.from(res.data as unknown as ArrayBuffer).toString("utf8");
  } catch (err) {
    if ((err as { status?: number }).status === 404) return null;
    throw err;
  }
}

export async function createComment(gh: GitHub, r: RepoRef, issueNumber: number, body: string): Promise<number> {
  const { data } = await gh.rest.issues.createComment({ ...r, issue_number: issueNumber, body: clip(body, COMMENT_BODY_LIMIT) });
  return data.id;
}

/**
 * The repository's configuration from the default branch (by its full ref, which a tag cannot
 * shadow): a pull request never picks its own gate. Null when there is no such file.
 */
export async function defaultBranchConfig(gh: GitHub, r: RepoRef, defaultBranch: string): Promise<LoadResult | null> {
  const text = await getFileText(gh, r, REPO_CONFIG_PATH, branchRef(defaultBranch));
  return text === null ? null : loadRepoConfig(text);
}

/** Opens an issue; its number. */
export async function createIssue(gh: GitHub, r: RepoRef, i: { title: string; body: string; labels: string[] }): Promise<number> {
  const { data } = await gh.rest.issues.create({ ...r, title: i.title, body: clip(i.body, COMMENT_BODY_LIMIT), labels: i.labels });
  return data.number;
}

/** Updates an issue's title, body and state (`open` reopens it; `closed` closes it as completed). */
export async function updateIssue(gh: GitHub, r: RepoRef, issueNumber: number, u: { title?: string; body?: string; state?: "open" | "closed" }): Promise<void> {
  await gh.rest.issues.update({
    ...r,
    issue_number: issueNumber,
    ...(u.title !== undefined ? { title: u.title } : {}),
    ...(u.body !== undefined ? { body: clip(u.body, COMMENT_BODY_LIMIT) } : {}),
    ...(u.state ? { state: u.state, ...(u.state === "closed" ? { state_reason: "completed" as const } : {}) } : {}),
  });
}

/** The commit a branch points at. */
export async function branchHead(gh: GitHub, r: RepoRef, branch: string): Promise<string> {
  const { data } = await gh.rest.repos.getBranch({ ...r, branch });
  return data.commit.sha;
}

/** Updates a comment; false when it no longer exists (someone deleted it). */
export async function updateComment(gh: GitHub, r: RepoRef, commentId: number, body: string): Promise<boolean> {
  try {
    await gh.rest.issues.updateComment({ ...r, comment_id: commentId, body: clip(body, COMMENT_BODY_LIMIT) });
    return true;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return false;
    throw err;
  }
}

/** Deletes a comment; a comment already gone counts as deleted. */
export async function deleteComment(gh: GitHub, r: RepoRef, commentId: number): Promise<void> {
  try {
    await gh.rest.issues.deleteComment({ ...r, comment_id: commentId });
  } catch (err) {
    if ((err as { status?: number }).status !== 404) throw err;
  }
}

/** One file/line note on a check run (GitHub accepts at most 50 per request). */
export interface CheckRunAnnotation {
  /** Path relative to the repository root. */
  path: string;
  startLine: number;
  endLine: number;
  level: "notice" | "warning" | "failure";
  message: string;
  title?: string;
}

export const MAX_ANNOTATIONS_PER_REQUEST = 50;

export interface CheckRunOutput {
  title: string;
  summary: string;
  text?: string;
  annotations?: CheckRunAnnotation[];
}

export interface CheckRunUpdate {
  status?: "queued" | "in_progress" | "completed";
  conclusion?: "success" | "failure" | "cancelled" | "neutral" | "action_required" | "timed_out";
  output?: CheckRunOutput;
  startedAt?: string;
  completedAt?: string;
  /** "Details" link on the check run (the full log). */
  detailsUrl?: string | null;
  /** Requested-action buttons (GitHub allows 3; label ≤ 20, description ≤ 40, identifier ≤ 20 characters). */
  actions?: Array<{ label: string; description: string; identifier: string }>;
}

function checkRunBody(u: CheckRunUpdate) {
  return {
    ...(u.status ? { status: u.status } : {}),
    ...(u.conclusion ? { conclusion: u.conclusion } : {}),
    ...(u.startedAt ? { started_at: u.startedAt } : {}),
    ...(u.completedAt ? { completed_at: u.completedAt } : {}),
    ...(u.detailsUrl ? { details_url: u.detailsUrl } : {}),
    ...(u.actions
      ? { actions: u.actions.slice(0, 3).map((a) => ({ label: a.label.slice(0, 20), description: a.description.slice(0, 40), identifier: a.identifier.slice(0, 20) })) }
      : {}),
    ...(u.output
      ? {
          output: {
            title: clip(u.output.title, 255),
            summary: clip(u.output.summary, CHECK_RUN_TEXT_LIMIT),
            ...(u.output.text ? { text: clip(u.output.text, CHECK_RUN_TEXT_LIMIT) } : {}),
            ...(u.output.annotations?.length
              ? {
                  annotations: u.output.annotations.slice(0, MAX_ANNOTATIONS_PER_REQUEST).map((a) => ({
                    path: a.path,
                    start_line: a.startLine,
                    end_line: a.endLine,
                    annotation_level: a.level,
                    message: clip(a.message, 64 * 1024),
                    ...(a.title ? { title: clip(a.title, 255) } : {}),
                  })),
                }
              : {}),
          },
        }
      : {}),
  };
}

export async function createCheckRun(
  gh: GitHub,
  r: RepoRef,
  name: string,
  headSha: string,
  externalId: string,
  u: CheckRunUpdate,
): Promise<number> {
  const { data } = await gh.rest.checks.create({ ...r, name, head_sha: headSha, external_id: externalId, ...checkRunBody(u) });
  return data.id;
}

export async function updateCheckRun(gh: GitHub, r: RepoRef, checkRunId: number, u: CheckRunUpdate): Promise<void> {
  await gh.rest.checks.update({ ...r, check_run_id: checkRunId, ...checkRunBody(u) });
}

/** The installation token, for git over HTTPS only; never stored or put into job data. */
export async function installationToken(gh: GitHub): Promise<string> {
  const auth = (await gh.auth({ type: "installation" })) as { token: string };
  return auth.token;
}

/** Cuts text to a platform limit (counted in UTF-16 units, as GitHub does), marking the cut. */
export function clip(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const marker = "\n…(truncated)";
  return text.slice(0, limit - marker.length) + marker;
}

/** `login`'s team memberships in the organisation of `repoFullName`, asked per team slug (store/tiers TeamMembership). */
export function membershipIn(gh: GitHub, repoFullName: string, login: string): (slugs: readonly string[]) => Promise<string[]> {
  return (slugs) => activeTeams(gh, repoFullName.split("/")[0]!, login, slugs);
}
