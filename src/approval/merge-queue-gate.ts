/**
 * The gate of one pull request in a merge group (`gate.mode: merge-queue`). Pure policy, no I/O.
 * The PR's approvals must bind to its latest successful preview of its head, as for any deploy;
 * what GitHub's merge queue itself guarantees (required checks on the group, mergeability, an
 * up-to-date base) and what it replaces (the stack lock: the queue orders the applies) is not
 * asked again. Whether the PR is still open is not asked either: by the apply it has merged.
 */
import type { GateFacts, GatePolicy } from "./gate.js";

export function mergeQueuePolicy(base: GatePolicy): GatePolicy {
  return { ...base, require: { ...base.require, previewSucceeded: true, statusChecks: false, mergeable: false, undiverged: false, lockHeld: false } };
}

export function mergeQueueFacts(facts: GateFacts): GateFacts {
  const { open: _open, ...pr } = facts.pr;
  return { ...facts, pr };
}

/** The PR numbers a merge group's head ref names (`refs/heads/gh-readonly-queue/<base>/pr-<n>-<sha>`): its last entry. */
export function prNumberOfQueueRef(headRef: string | null): number | null {
  const m = headRef ? /\/pr-(\d+)-[0-9a-f]{40}$/.exec(headRef) : null;
  return m ? Number(m[1]) : null;
}
