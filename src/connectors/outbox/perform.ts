/**
 * One outbox row made into the GitHub call it stands for. An object the call creates (a check
 * run, a sticky comment part) is returned with its key, so later writes update it in place.
 */
import {
  addIssueReaction,
  addReaction,
  createCheckRun,
  createComment,
  createDeployment,
  deleteComment,
  mergePull,
  setDeploymentStatus,
  updateCheckRun,
  updateComment,
  type CheckRunUpdate,
  type GitHub,
  type RepoRef,
} from "../github.js";
import type { Queryable } from "../store/db.js";
import { createHash } from "node:crypto";
import { objectId, objectOf, type OutboxRow } from "./store.js";

export interface Performed {
  result: Record<string, unknown>;
  /** The object's id (and the digest of what it now says) to remember under its key. */
  created?: { key: string; githubId: number; digest?: string };
  /** The object is gone from GitHub: its key is forgotten. */
  forget?: string;
  /** Nothing was sent: there was nothing to change (e.g. an update of a check run never created). */
  skipped?: string;
}

/** Body fields of a check-run write: the run's identity (for a create) and the update. */
export interface CheckRunWrite extends CheckRunUpdate {
  name?: string;
  headSha?: string;
  externalId?: string;
}

function repoRef(full: string): RepoRef {
  const [owner, repo] = full.split("/") as [string, string];
  return { owner, repo };
}

export async function performWrite(db: Queryable, gh: GitHub, row: OutboxRow): Promise<Performed> {
  const r = repoRef(row.repo);
  const b = row.body;
  switch (row.kind) {
    case "reaction": {
      const content = b.content as "eyes" | "confused" | "-1";
      if (typeof b.commentId === "number") await addReaction(gh, r, b.commentId, content);
      else await addIssueReaction(gh, r, Number(b.issueNumber), content as "eyes" | "confused");
      return { result: {} };
    }
    case "comment": {
      const id = await createComment(gh, r, Number(b.issueNumber), String(b.body));
      return { result: { id } };
    }
    case "comment_upsert": {
      const key = row.object_key!;
      const existing = await objectOf(db, key);
      const digest = createHash("sha256").update(String(b.body)).digest("hex");
      // The same text again (a re-render with nothing new, a handler run twice): nothing to send.
      if (existing && existing.digest === digest) return { result: { id: existing.githubId, unchanged: true } };
      // A comment someone deleted is written anew (updateComment answers false on 404).
      if (existing && (await updateComment(gh, r, existing.githubId, String(b.body)))) return { result: { id: existing.githubId }, created: { key, githubId: existing.githubId, digest } };
      const id = await createComment(gh, r, Number(b.issueNumber), String(b.body));
      return { result: { id, created: true }, created: { key, githubId: id, digest } };
    }
    case "comment_delete": {
      const key = row.object_key!;
      const existing = await objectId(db, key);
      if (existing !== null) await deleteComment(gh, r, existing);
      return { result: { id: existing }, forget: key };
    }
    case "check_run": {
      const key = row.object_key!;
      const { name, headSha, externalId, ...update } = b as CheckRunWrite;
      const existing = await objectId(db, key);
      if (existing !== null) {
        await updateCheckRun(gh, r, existing, update);
        return { result: { id: existing } };
      }
      if (!name || !headSha) return { result: {}, skipped: "no check run was created for it" };
      const id = await createCheckRun(gh, r, name, headSha, externalId ?? "", update);
      return { result: { id, created: true }, created: { key, githubId: id } };
    }
    case "deployment_status": {
      await setDeploymentStatus(gh, r, Number(b.deploymentId), b.state as "in_progress" | "success" | "failure" | "error", {
        description: String(b.description ?? ""),
        logUrl: typeof b.logUrl === "string" ? b.logUrl : null,
      });
      return { result: {} };
    }
    case "deployment": {
      const id = await createDeployment(gh, r, {
        sha: String(b.sha),
        environment: String(b.environment),
        description: String(b.description ?? ""),
        payload: (b.payload ?? {}) as Record<string, unknown>,
      });
      return { result: { id } };
    }
    case "merge": {
      const outcome = await mergePull(gh, r, Number(b.number), String(b.sha), b.method as "merge" | "squash" | "rebase");
      return { result: outcome };
    }
  }
}
