/**
 * The GitHub App private key's rotation (issue 20; seed 000 §2.3). GitHub lets only a person
 * generate an app's key, so the app:
 * - tracks the age of the key in use (agent_secret_age_seconds{secret="github-app-key"});
 * - opens an issue with the steps before it is due (`noticeGithubKey`, the rotation job);
 * - picks a new version of `vault.github_private_key` up without a restart, once GitHub accepts
 *   it (`GithubKeyWatch.check`, every GITHUB_KEY_CHECK_SECONDS in every process), and keeps the
 *   old key as a fallback (`recover`, when GitHub refuses a JWT): old and new both work during
 *   the switch; a key GitHub refuses is never used.
 */
import type { Logger } from "pino";
import { githubKeyNoticeAction } from "../approval/rotation.js";
import { GITHUB_APP_KEY_SECRET, type GithubAppKeyRotationConfig } from "../config/credentials-config.js";
import { createComment, createIssue, updateIssue, type GitHub } from "../connectors/github.js";
import { appKey, signAppJwt, type AppKey, type AppKeyRing } from "../connectors/github-app-key.js";
import { appendAudit } from "../connectors/store/audit.js";
import type { Db } from "../connectors/store/db.js";
import { withAdvisoryLock } from "../connectors/store/workflows.js";
import { githubKeyFromKv } from "../connectors/vault/github-key.js";
import { GITHUB_KEY_LABEL, renderGithubKeyIssue, renderGithubKeyLoaded, renderGithubKeyTitle, type AppIdentity } from "../render/github-key.js";
import type { Metrics } from "../web/metrics.js";
import { kvMetadata, kvVersion, publishSecretAge, type KvApi } from "./rotation.js";

/** GET /app with a JWT signed by `pem`: the app GitHub says the key belongs to; throws when GitHub refuses it. */
export type IdentifyApp = (pem: string) => Promise<AppIdentity & { id: number }>;

/** `identify` through an Octokit class of the app's (its base URL, retries), signing with the key under test only. */
export function identifyWith(Octokit: new (o: object) => GitHub, appId: string, baseUrl: string | undefined): IdentifyApp {
  return async (pem) => {
    const octokit = new Octokit({ ...(baseUrl ? { baseUrl } : {}), auth: { appId, createJwt: (id: string | number, diff?: number) => signAppJwt(id, pem, diff ?? 0) } });
    const { data } = await octokit.rest.apps.getAuthenticated();
    const owner = (data?.owner ?? {}) as { login?: string; type?: string };
    return { id: Number(data?.id), slug: String(data?.slug ?? ""), htmlUrl: String(data?.html_url ?? ""), owner: { login: String(owner.login ?? ""), type: String(owner.type ?? "") } };
  };
}

export interface GithubKeyDeps {
  vault: KvApi;
  db: Db;
  ring: AppKeyRing;
  ref: { kv: string; key: string };
  appId: string;
  identify: IdentifyApp;
  /** Days the key may be used (the alert's threshold; `rotation.github_app_key.every_days`, else 90). */
  everyDays: number;
  /** This process (audit rows of a pickup say which process switched). */
  owner: string;
  metrics?: Metrics;
  log: Logger;
}

export type KeyCheck =
  | { kind: "unchanged"; version: number }
  | { kind: "loaded"; from: number; to: number }
  /** The version in Vault was refused by GitHub (or belongs to another app): the key in use stays. */
  | { kind: "refused"; version: number; error: string }
  /** Vault or GitHub could not be asked: tried again at the next check. */
  | { kind: "error"; error: string };

/** Recoveries closer together than this, after one found nothing, are not tried again (a refused key must not cost a Vault and a GitHub call per request). */
const RECOVERY_COOLDOWN_MS = 30_000;

export class GithubKeyWatch {
  readonly #d: GithubKeyDeps;
  /** Fingerprints GitHub refused: not asked about again (and not audited again) by this process. */
  readonly #refused = new Set<string>();
  #checking: Promise<KeyCheck> | null = null;
  #lastFruitlessRecovery = 0;
  /** When the key in use was written (Vault metadata), for the rotation issue. */
  inUseCreatedAt: Date | null = null;
  /** Called after a new key from Vault is taken into use (the rotation issue is closed then, not at the next job tick). */
  onLoaded: (() => void) | null = null;

  constructor(deps: GithubKeyDeps) {
    this.#d = deps;
  }

  /** Reads Vault's current version; switches to it once GitHub accepts it. Never throws; concurrent calls share one check. */
  check(): Promise<KeyCheck> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = null;
    });
    return this.#checking;
  }

  async #check(): Promise<KeyCheck> {
    const { vault, ring, ref, metrics } = this.#d;
    let candidate: AppKey;
    try {
      const meta = await kvMetadata(vault, ref.kv);
      this.#publishAge(meta.versions.get(ring.current.version) ?? null);
      if (meta.currentVersion === ring.current.version) return { kind: "unchanged", version: meta.currentVersion };
      const read = githubKeyFromKv(await kvVersion(vault, ref.kv, meta.currentVersion), ref);
      candidate = appKey(read.pem, meta.currentVersion);
      if (candidate.fingerprint === ring.current.fingerprint) {
        // The same key written again (another field of the secret changed): nothing to verify.
        ring.install(candidate);
        this.#publishAge(meta.createdAt);
        return { kind: "unchanged", version: meta.currentVersion };
      }
      if (this.#refused.has(candidate.fingerprint)) return { kind: "refused", version: candidate.version, error: "refused before" };
      const accepted = await this.#accepted(candidate);
      if (accepted !== true) return accepted;
      const from = ring.current;
      ring.install(candidate);
      this.#publishAge(meta.createdAt);
      await this.#audit("rotation.github_key_loaded", { from: from.version, to: candidate.version, fingerprint_from: from.fingerprint, fingerprint_to: candidate.fingerprint, reason: "new version in Vault" });
      this.#d.log.info({ from: from.version, to: candidate.version, fingerprint: candidate.fingerprint }, "picked up a new GitHub App key from Vault");
      this.onLoaded?.();
      return { kind: "loaded", from: from.version, to: candidate.version };
    } catch (err) {
      metrics?.secretRotationFailures.inc({ secret: GITHUB_APP_KEY_SECRET });
      this.#d.log.warn({ err: (err as Error).message }, "could not check Vault for a new GitHub App key");
      return { kind: "error", error: (err as Error).message.slice(0, 300) };
    }
  }

  /**
   * GitHub refused a JWT of the key in use (someone deleted it in the app's settings): a newer
   * key in Vault that GitHub accepts, else the key it replaced if GitHub still accepts that one.
   * True when another key is now in use.
   */
  async recover(): Promise<boolean> {
    if (Date.now() - this.#lastFruitlessRecovery < RECOVERY_COOLDOWN_MS) return false;
    const checked = await this.check();
    if (checked.kind === "loaded") return true;
    const { ring } = this.#d;
    const held = ring.previous;
    if (held && !this.#refused.has(held.fingerprint)) {
      const accepted = await this.#accepted(held);
      if (accepted === true) {
        const from = ring.current;
        ring.install(held);
        await this.#audit("rotation.github_key_loaded", { from: from.version, to: held.version, fingerprint_from: from.fingerprint, fingerprint_to: held.fingerprint, reason: "GitHub refused the key in use; the key it replaced still works" });
        this.#d.log.warn({ refused: from.fingerprint, using: held.fingerprint }, "GitHub refused the GitHub App key in use: back on the key it replaced");
        return true;
      }
    }
    this.#lastFruitlessRecovery = Date.now();
    return false;
  }

  /** True when GitHub accepts a JWT of `key` as this app's; a refusal is remembered, audited and alerted. */
  async #accepted(key: AppKey): Promise<true | KeyCheck> {
    let identity;
    try {
      identity = await this.#d.identify(key.pem);
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status !== 401 && status !== 403) return { kind: "error", error: `GitHub could not be asked about the key: ${(err as Error).message.slice(0, 200)}` };
      return this.#refuse(key, `GitHub refused a JWT signed with it (${status})`);
    }
    if (identity.id !== Number(this.#d.appId)) return this.#refuse(key, `it is the key of app ${identity.id}, not of app ${this.#d.appId}`);
    return true;
  }

  async #refuse(key: AppKey, why: string): Promise<KeyCheck> {
    this.#refused.add(key.fingerprint);
    this.#d.metrics?.secretRotationFailures.inc({ secret: GITHUB_APP_KEY_SECRET });
    await this.#audit("rotation.failed", { step: "verify", version: key.version, fingerprint: key.fingerprint, error: why, kept: this.#d.ring.current.version });
    this.#d.log.error({ version: key.version, fingerprint: key.fingerprint, why }, "a GitHub App key in Vault was not taken into use");
    return { kind: "refused", version: key.version, error: why };
  }

  #publishAge(createdAt: Date | null): void {
    if (!createdAt) return;
    this.inUseCreatedAt = createdAt;
    publishSecretAge(this.#d.metrics, GITHUB_APP_KEY_SECRET, createdAt, this.#d.everyDays);
  }

  #audit(action: "rotation.github_key_loaded" | "rotation.failed", detail: Record<string, unknown>): Promise<void> {
    return appendAudit(this.#d.db, { actor: "agent", action, repo: null, detail: { secret: GITHUB_APP_KEY_SECRET, path: this.#d.ref.kv, process: this.#d.owner, ...detail } }).catch((err) =>
      this.#d.log.warn({ err }, "could not audit the GitHub App key check"),
    );
  }
}

export interface GithubKeyNoticeDeps {
  watch: GithubKeyWatch;
  ring: AppKeyRing;
  db: Db;
  ref: { kv: string; key: string };
  config: GithubAppKeyRotationConfig;
  checkSeconds: number;
  identify: IdentifyApp;
  /** The installation client of a repository the app is installed on. */
  repoClient: (owner: string, repo: string) => Promise<GitHub>;
}

export type NoticeOutcome = { kind: "none" } | { kind: "opened"; issue: number; version: number } | { kind: "closed"; issue: number; by: number };

/**
 * The rotation job's part for the GitHub App key: the issue before it is due, closed once a new
 * key is in use here. Also run right after a process takes a new key into use; one process at a
 * time (an advisory lock), so the issue is opened and closed once.
 */
export function noticeGithubKey(d: GithubKeyNoticeDeps, now: Date = new Date()): Promise<NoticeOutcome> {
  return withAdvisoryLock(d.db, "rotation:github-app-key", 0, () => notice(d, now));
}

async function notice(d: GithubKeyNoticeDeps, now: Date): Promise<NoticeOutcome> {
  await d.watch.check();
  const createdAt = d.watch.inUseCreatedAt;
  if (!createdAt) return { kind: "none" };
  const { rows } = await d.db.query<{ detail: { version: number; issue: number; fingerprint?: string } ; closed: boolean }>(
    `SELECT n.detail, EXISTS (SELECT 1 FROM audit_log c WHERE c.action = 'rotation.github_key_notice_closed' AND c.detail->>'issue' = n.detail->>'issue') AS closed
       FROM audit_log n WHERE n.action = 'rotation.github_key_notice' ORDER BY n.id DESC LIMIT 1`,
  );
  const last = rows[0] ? { version: Number(rows[0].detail.version), issue: Number(rows[0].detail.issue), closed: rows[0].closed, fingerprint: rows[0].detail.fingerprint ?? null } : null;
  const current = d.ring.current;
  const action = githubKeyNoticeAction({ inUseVersion: current.version, inUseCreatedAt: createdAt, everyDays: d.config.every_days, noticeDays: d.config.notice_days, lastNotice: last, now });
  if (action.kind === "none") return action;
  const [owner, repo] = d.config.issue_repo.split("/") as [string, string];
  const gh = await d.repoClient(owner, repo);
  const at = { owner, repo };
  if (action.kind === "close") {
    await createComment(gh, at, action.issue, renderGithubKeyLoaded({ replaced: { version: action.replaced, fingerprint: last?.fingerprint ?? null }, by: { version: current.version, fingerprint: current.fingerprint } }));
    await updateIssue(gh, at, action.issue, { state: "closed" });
    await appendAudit(d.db, { actor: "agent", action: "rotation.github_key_notice_closed", repo: d.config.issue_repo, detail: { secret: GITHUB_APP_KEY_SECRET, issue: action.issue, replaced: action.replaced, by: action.by } });
    return { kind: "closed", issue: action.issue, by: action.by };
  }
  const app = await d.identify(current.pem);
  const body = renderGithubKeyIssue({ app, kv: d.ref.kv, field: d.ref.key, version: current.version, fingerprint: current.fingerprint, createdAt, dueAt: action.dueAt, everyDays: d.config.every_days, checkSeconds: d.checkSeconds });
  const issue = await createIssue(gh, at, { title: renderGithubKeyTitle(app.slug, action.dueAt), body, labels: [GITHUB_KEY_LABEL] });
  await appendAudit(d.db, {
    actor: "agent",
    action: "rotation.github_key_notice",
    repo: d.config.issue_repo,
    idempotencyKey: `github-key-notice:${current.version}:${current.fingerprint}`,
    detail: { secret: GITHUB_APP_KEY_SECRET, version: current.version, fingerprint: current.fingerprint, issue, due_at: action.dueAt.toISOString() },
  });
  return { kind: "opened", issue, version: current.version };
}
