/**
 * The plan policy end to end: a server policy (PLAN_POLICY_CONFIG) protects RDS instances and
 * holds a budget; a preview whose plan deletes the protected database shows DENY on the check
 * run and in the sticky comment, and `/agent deploy` stays blocked whatever the approvals. A
 * repository cannot relax it from its own `policy`. Real sandbox, stand-in `pulumi`.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../src/connectors/credentials.js";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, startAppFixture, type AppFixture } from "../helpers/harness.js";

const REPO = "octo-org/guarded";
const TOKEN = "ghs_planPolicyInstallationToken0000000050";
const POLICY_FILE = join(mkdtempSync(join(tmpdir(), "agent-policy-")), "plan-policy.yml");
writeFileSync(
  POLICY_FILE,
  `"*":
  protect:
    - name: databases
      types: ["aws:rds/*"]
  budget: { monthly_usd: 1000, current_monthly_usd: 700, cost_hints: { "aws:ec2/instance:Instance": 70 } }
`,
);
// The repository tries to relax the server's rules: it cannot.
const CONFIG = `version: 1
policy:
  max_deletes: 100
  budget: { monthly_usd: 100000, threshold: 0.99 }
stacks:
  - name: prod
    dir: infra
    engine: pulumi
    gate: { approvals: 1, require: { lock: false } }
`;
const TREE = {
  "infra/Pulumi.yaml": "name: shop\nruntime: nodejs\n",
  "infra/pulumi-standin.json": readFileSync(new URL("../fixtures/pulumi/protected.json", import.meta.url), "utf8"),
};

describe("the plan policy on a real preview", () => {
  let f: AppFixture;
  let gh: GitHubFake;

  beforeAll(async () => {
    f = await startAppFixture(TOKEN, {
      env: { PLAN_POLICY_CONFIG: POLICY_FILE },
      credentials: staticCredentials(() => ({ PULUMI_BACKEND_URL: "file:///tmp/pulumi-state", PULUMI_CONFIG_PASSPHRASE: "policy-test-passphrase-01" })),
    });
  });
  afterAll(async () => {
    gh?.stop();
    await f.stop();
  });

  const say = async (body: string, login: string) => {
    const res = await deliver(f.app.port!, "issue_comment", issueCommentPayload({ repo: REPO, cloneUrl: f.git.cloneUrl(REPO), prNumber: 3, body, login }));
    await f.watcher.handled(res.id);
  };
  const replies = () => gh.find("POST", /\/issues\/3\/comments$/).map((c) => String(c.body!.body));

  it("DENY on a protected delete: shown on the check run and the sticky comment, and the deploy stays blocked", async () => {
    gh = new GitHubFake(REPO, TOKEN);
    for (const [login, role] of [["alice", "write"], ["bob", "write"], ["carol", "write"]]) gh.permissions.set(login!, role!);
    gh.files.set("main:.github/agent.yml", CONFIG);
    const sha = await f.git.commit(REPO, TREE);
    gh.pulls.set(3, { headSha: sha, author: "alice" });

    await say("/agent preview prod", "alice");
    const done = await gh.waitFor((c) => isCheckRunCompleted(c), "the preview");
    // The plan itself is fine to run; the policy decides about deploying it.
    expect(done.body).toMatchObject({ conclusion: "success" });
    const summary = String((done.body!.output as { summary: string }).summary);
    expect(summary).toContain("⛔ Plan policy: **DENY** — this plan cannot be deployed · est. cost change +$140.00/month");
    expect(summary).toMatch(/- `databases` \(DENY\): .*aws:rds\/instance:Instance.*orders-db/);
    // The budget rule fired too: 700 + 140 > 80% of 1000 (the repo's 0.99 and 100000 were ignored).
    expect(summary).toMatch(/- `budget` \(NEEDS_APPROVAL\)/);
    const sticky = await gh.waitFor((c) => c.method === "PATCH" && /\/issues\/comments\/\d+$/.test(c.path) && String(c.body?.body).includes("Plan policy"), "the sticky comment");
    expect(String(sticky.body!.body)).toContain("⛔ Plan policy: **DENY**");

    await say("/approve", "bob");
    await say("/approve", "carol");
    await say("/agent deploy prod", "alice");
    const blocked = replies().at(-1)!;
    expect(blocked).toContain("is blocked");
    expect(blocked).toMatch(/- \[ \] Plan policy — DENY — databases: /);
    expect(blocked).toMatch(/- \[x\] Approvals — 2 of 2 approvals/);
    expect(gh.find("POST", /\/deployments$/)).toHaveLength(0);
    const { rows } = await f.db.query("SELECT policy->>'decision' AS decision FROM tasks WHERE kind = 'preview'");
    expect(rows).toEqual([{ decision: "DENY" }]);
    const { rows: audit } = await f.db.query("SELECT detail->'policy' AS policy FROM audit_log WHERE action = 'preview.succeeded'");
    expect(audit[0].policy).toMatchObject({ decision: "DENY", rules: ["databases", "budget"], cost_change_usd: 140 });
    if (process.env.SHOW_REPLIES) console.log(summary + "\n\n-----\n\n" + blocked);
  });
});
