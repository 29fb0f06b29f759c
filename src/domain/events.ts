/**
 * The webhook events the web tier enqueues; every other event is recorded and dropped.
 * src/handlers/index.ts registers the handlers for these.
 */
export const HANDLED_EVENTS: ReadonlySet<string> = new Set(["issue_comment", "pull_request", "check_run", "issues", "push", "merge_group", "deployment_protection_rule"]);
