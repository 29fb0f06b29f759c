/**
 * A repository's `diagnose:` settings, read from `.github/agent.yml` at a ref: the default
 * branch by its full ref (`refs/heads/<name>`, see branchRef: never a bare name a tag could
 * shadow), or the pushed commit's SHA. A missing or invalid file gives the defaults: a broken
 * config may be the very incident being diagnosed.
 */
import { loadRepoConfig } from "../config/repo/load.js";
import { DEFAULT_DIAGNOSE_SETTINGS, type RepoDiagnoseSettings } from "../config/repo/schema.js";
import { getFileText, REPO_CONFIG_PATH, type GitHub, type RepoRef } from "../connectors/github.js";

export async function loadDiagnoseSettings(gh: GitHub, repo: RepoRef, ref: string): Promise<{ settings: RepoDiagnoseSettings; problem: string | null }> {
  const text = await getFileText(gh, repo, REPO_CONFIG_PATH, ref);
  if (text === null) return { settings: DEFAULT_DIAGNOSE_SETTINGS, problem: null };
  const loaded = loadRepoConfig(text);
  if (!loaded.ok) {
    return { settings: DEFAULT_DIAGNOSE_SETTINGS, problem: `${REPO_CONFIG_PATH} on ${ref} is not valid (see \`/agent help\`); the default diagnose settings were used.` };
  }
  return { settings: loaded.config.diagnose ?? DEFAULT_DIAGNOSE_SETTINGS, problem: null };
}
