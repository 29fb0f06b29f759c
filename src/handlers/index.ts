import type { Probot } from "probot";
import type { AppDeps } from "../deps.js";
import { onIssueComment } from "./issue-comment.js";
import { onCheckRunAction } from "./check-run.js";
import { onPullRequestClosed, onPullRequestUpdated } from "./pull-request.js";
import { onIssueClosed, onIssueLabeled, onIssueOpened } from "./issues.js";
import { onPush } from "./push.js";
import { onMergeGroupChecksRequested, onMergeGroupDestroyed } from "./merge-group.js";
import { onDeploymentProtectionRule } from "./deployment-protection-rule.js";

export function registerHandlers(app: Probot, deps: AppDeps): void {
  app.on("issue_comment.created", (context) => onIssueComment(context, deps));
  app.on("pull_request.closed", (context) => onPullRequestClosed(context, deps));
  app.on(["pull_request.opened", "pull_request.reopened", "pull_request.synchronize"], (context) => onPullRequestUpdated(context, deps));
  app.on("check_run.requested_action", (context) => onCheckRunAction(context, deps));
  app.on("issues.labeled", (context) => onIssueLabeled(context, deps));
  app.on("issues.opened", (context) => onIssueOpened(context, deps));
  app.on("issues.closed", (context) => onIssueClosed(context, deps));
  app.on("push", (context) => onPush(context, deps));
  app.on("merge_group.checks_requested", (context) => onMergeGroupChecksRequested(context, deps));
  app.on("merge_group.destroyed", (context) => onMergeGroupDestroyed(context, deps));
  app.on("deployment_protection_rule.requested", (context) => onDeploymentProtectionRule(context, deps));
}

