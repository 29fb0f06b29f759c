/**
 * The GitHub App key's rotation issue: GitHub lets only a person generate an app's private key,
 * so before the key in use is due the app asks for one, with the exact steps, and says when it
 * has picked the new key up (after which the old one can be deleted).
 */
import { code } from "./markdown.js";

export const GITHUB_KEY_LABEL = "agent:key-rotation";

export interface AppIdentity {
  slug: string;
  /** The app's page on GitHub (`https://github.com/apps/<slug>`), whose origin is the web UI's. */
  htmlUrl: string;
  owner: { login: string; type: string };
}

/** The settings page where the app's private keys are generated and deleted. */
export function appSettingsUrl(app: AppIdentity): string {
  const origin = new URL(app.htmlUrl).origin;
  return app.owner.type === "Organization" ? `${origin}/organizations/${app.owner.login}/settings/apps/${app.slug}` : `${origin}/settings/apps/${app.slug}`;
}

/** `secret/data/github-app` → `vault kv patch -mount=secret github-app` (KV v2's CLI takes the mount and the path apart). */
export function vaultPatchCommand(kv: string, field: string): string {
  const parts = kv.split("/");
  const i = parts.indexOf("data");
  return `vault kv patch -mount=${parts.slice(0, i).join("/")} ${parts.slice(i + 1).join("/")} ${field}=@app-private-key.pem`;
}

export function renderGithubKeyTitle(slug: string, dueAt: Date): string {
  return `Rotate the GitHub App private key of ${slug} before ${dueAt.toISOString().slice(0, 10)}`;
}

export function renderGithubKeyIssue(i: {
  app: AppIdentity;
  kv: string;
  field: string;
  version: number;
  fingerprint: string;
  createdAt: Date;
  dueAt: Date;
  everyDays: number;
  checkSeconds: number;
}): string {
  return [
    `The private key of the GitHub App \`${i.app.slug}\` is due for rotation on **${i.dueAt.toISOString()}** (every ${i.everyDays} days). GitHub lets only a person generate an app's key, so this app cannot rotate it by itself.`,
    "",
    `- Key in use: ${code(i.fingerprint)}, version ${i.version} of ${code(i.kv)} (field ${code(i.field)}), written ${i.createdAt.toISOString()}`,
    "",
    "**Steps**",
    `1. Open the app's settings: ${appSettingsUrl(i.app)} (Settings → Developer settings → GitHub Apps → ${i.app.slug}). You need to own the app or be an app manager.`,
    "2. Under **Private keys**, choose **Generate a private key**. A `.pem` file downloads. **Do not delete the current key yet**: until every instance of this app has the new one, the old one keeps them working.",
    `3. Write the new key to Vault as the next version of the secret (other fields are kept):\n   \`\`\`\n   ${vaultPatchCommand(i.kv, i.field)}\n   \`\`\``,
    `4. Within ${i.checkSeconds} s every instance of the app checks that GitHub accepts the new key and switches to it without a restart (audited as \`rotation.github_key_loaded\`). This issue then gets a comment and closes. A key GitHub refuses is never used; the old one stays in use and the alert \`AgentSecretRotationFailed\` fires.`,
    `5. After that comment, delete the old key ${code(i.fingerprint)} in the app's settings, and shred the downloaded file.`,
  ].join("\n");
}

export function renderGithubKeyLoaded(i: { replaced: { version: number; fingerprint: string | null }; by: { version: number; fingerprint: string } }): string {
  return [
    `The app now signs with the new key ${code(i.by.fingerprint)} (version ${i.by.version} in Vault), after GitHub accepted it.`,
    "",
    `You can now delete the old key${i.replaced.fingerprint ? ` ${code(i.replaced.fingerprint)}` : ""} (version ${i.replaced.version}) in the app's settings. Closing this issue.`,
  ].join("\n");
}
