/**
 * A pull request's conversation with the app, for end-to-end tests: comment as someone (and
 * wait until the app handled it), the app's last reply, and a check run's completion.
 */
import { GitHubFake, isCheckRunCompleted, type RecordedCall } from "./github-fake.js";
import { deliver, issueCommentPayload, type AppFixture } from "./harness.js";

/** `fixture` and `gh` are read on each call (tests assign them in beforeAll). */
export function prConversation(fixture: () => AppFixture, gh: () => GitHubFake, repo: string) {
  const checkRunOf = (c: RecordedCall) => gh().checkRuns.get(Number(c.path.split("/").pop()));
  return {
    async say(number: number, body: string, login: string): Promise<void> {
      const f = fixture();
      const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo, cloneUrl: f.git.cloneUrl(repo), prNumber: number, body, login }));
      await f.watcher.handled(res.id);
    },
    /** The app's last reply on the PR (its sticky comment left out). */
    lastReply: (number: number): string =>
      gh()
        .find("POST", new RegExp(`/issues/${number}/comments$`))
        .map((c) => String(c.body!.body))
        .filter((b) => !b.startsWith("<!-- pr-infra-agent"))
        .at(-1) ?? "",
    checkRunOf,
    completed: (name: string, sha: string) => gh().waitFor((c) => isCheckRunCompleted(c) && checkRunOf(c)?.name === name && checkRunOf(c)?.head_sha === sha, name, 60_000),
  };
}
