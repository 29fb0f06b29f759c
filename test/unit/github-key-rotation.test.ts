/**
 * The GitHub App key's rotation, pure parts: when the issue is opened and closed, which
 * routes are signed with the app's JWT (a refusal there asks for another key), and the
 * credentials config's rules for `rotation.github_app_key`.
 */
import { describe, expect, it } from "vitest";
import { githubKeyNoticeAction } from "../../src/approval/rotation.js";
import { parseCredentialsConfig } from "../../src/config/credentials-config.js";
import { isAppJwtRoute } from "../../src/connectors/github-app-key.js";
import { appSettingsUrl, vaultPatchCommand } from "../../src/render/github-key.js";

const DAY = 86_400_000;
const now = new Date("2026-12-06T00:00:00Z");
const ago = (days: number) => new Date(now.getTime() - days * DAY);
const base = { everyDays: 90, noticeDays: 14, now };

describe("githubKeyNoticeAction", () => {
  it("opens an issue only once the key in use is within notice_days of due", () => {
    expect(githubKeyNoticeAction({ ...base, inUseVersion: 3, inUseCreatedAt: ago(75), lastNotice: null })).toEqual({ kind: "none" });
    expect(githubKeyNoticeAction({ ...base, inUseVersion: 3, inUseCreatedAt: ago(76), lastNotice: null })).toEqual({ kind: "open", version: 3, dueAt: new Date(ago(76).getTime() + 90 * DAY) });
    // Overdue: still opened.
    expect(githubKeyNoticeAction({ ...base, inUseVersion: 3, inUseCreatedAt: ago(200), lastNotice: null })).toMatchObject({ kind: "open", version: 3 });
  });

  it("one issue per key: none while the issue for this version is open or was closed by hand", () => {
    expect(githubKeyNoticeAction({ ...base, inUseVersion: 3, inUseCreatedAt: ago(80), lastNotice: { version: 3, issue: 7, closed: false } })).toEqual({ kind: "none" });
    expect(githubKeyNoticeAction({ ...base, inUseVersion: 3, inUseCreatedAt: ago(80), lastNotice: { version: 3, issue: 7, closed: true } })).toEqual({ kind: "none" });
  });

  it("closes the open issue once a newer key is in use; the next key's issue comes when it is due", () => {
    expect(githubKeyNoticeAction({ ...base, inUseVersion: 4, inUseCreatedAt: ago(0), lastNotice: { version: 3, issue: 7, closed: false } })).toEqual({ kind: "close", issue: 7, replaced: 3, by: 4 });
    expect(githubKeyNoticeAction({ ...base, inUseVersion: 4, inUseCreatedAt: ago(0), lastNotice: { version: 3, issue: 7, closed: true } })).toEqual({ kind: "none" });
    expect(githubKeyNoticeAction({ ...base, inUseVersion: 4, inUseCreatedAt: ago(80), lastNotice: { version: 3, issue: 7, closed: true } })).toMatchObject({ kind: "open", version: 4 });
  });

  it("an older key back in use (the new one was refused) does not close the issue", () => {
    expect(githubKeyNoticeAction({ ...base, inUseVersion: 3, inUseCreatedAt: ago(85), lastNotice: { version: 3, issue: 7, closed: false } })).toEqual({ kind: "none" });
  });
});

describe("isAppJwtRoute", () => {
  it.each([
    ["https://api.github.com/app", true],
    ["https://api.github.com/app/installations/77/access_tokens", true],
    ["https://ghe.example/api/v3/app/installations/77/access_tokens", true],
    ["https://api.github.com/repos/o/r/installation", true],
    ["https://api.github.com/orgs/o/installation", true],
    ["https://api.github.com/users/u/installation", true],
    ["https://api.github.com/repos/o/r", false],
    ["https://api.github.com/repos/o/app/issues", false],
    ["https://api.github.com/installation/repositories", false],
    ["not a url", false],
  ])("%s → %s", (url, expected) => expect(isAppJwtRoute(url)).toBe(expected));
});

describe("the rotation issue's steps", () => {
  it("links the owner's settings page and gives the KV v2 patch command", () => {
    expect(appSettingsUrl({ slug: "infra-agent", htmlUrl: "https://github.com/apps/infra-agent", owner: { login: "octo-org", type: "Organization" } })).toBe("https://github.com/organizations/octo-org/settings/apps/infra-agent");
    expect(appSettingsUrl({ slug: "infra-agent", htmlUrl: "https://ghe.example/github-apps/infra-agent", owner: { login: "alice", type: "User" } })).toBe("https://ghe.example/settings/apps/infra-agent");
    expect(vaultPatchCommand("kv/team/data/apps/github", "pem")).toBe("vault kv patch -mount=kv/team apps/github pem=@app-private-key.pem");
  });
});

describe("rotation.github_app_key in the credentials config", () => {
  const vault = { address: "https://vault.example:8200", approle: { role_id: "r", secret_id_env: "SID" } };
  it("needs the key in Vault, a repository, and notice before due", () => {
    expect(() => parseCredentialsConfig({ vault, rotation: { github_app_key: { issue_repo: "o/r" } } }, "t")).toThrow("rotation.github_app_key needs the key in Vault: set vault.github_private_key");
    const withKey = { ...vault, github_private_key: { kv: "secret/data/github-app", key: "private_key" } };
    expect(() => parseCredentialsConfig({ vault: withKey, rotation: { github_app_key: { issue_repo: "not a repo" } } }, "t")).toThrow("must be owner/name");
    expect(() => parseCredentialsConfig({ vault: withKey, rotation: { github_app_key: { issue_repo: "o/r", every_days: 30, notice_days: 30 } } }, "t")).toThrow("notice_days must be fewer than every_days");
    expect(parseCredentialsConfig({ vault: withKey, rotation: { github_app_key: { issue_repo: "o/r" } } }, "t").rotation?.github_app_key).toEqual({ issue_repo: "o/r", every_days: 90, notice_days: 14 });
  });
  it("keeps the name github-app-key for the app's key", () => {
    expect(() => parseCredentialsConfig({ vault, rotation: { secrets: [{ name: "github-app-key", kv: "secret/data/x", key: "k" }] } }, "t")).toThrow('"github-app-key" names the GitHub App key');
  });
});
