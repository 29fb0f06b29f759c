import type { ChecksGroup } from "./checks.js";
import type { ResolvedStack } from "./repo/resolve.js";

/** What a workflow runs, fixed when the command is accepted (from the default branch). */
export interface WorkflowConfig {
  image: string;
  /** `repository.clone_url` from the webhook payload; the task fetches the head SHA from it. */
  cloneUrl: string;
  defaultBranch: string;
  stacks: ResolvedStack[];
  /** Lint/test shared by several of the stacks, run once as `checks` tasks (the DAG's first layer). */
  checks?: ChecksGroup[];
  /**
   * The head branch is in a fork: its code is untrusted. Its tasks get no credentials and no
   * egress, and run under the server's untrusted runtime (gVisor). Absent: not a fork.
   */
  fork?: boolean;
  /**
   * A mainline workflow (stored as kind `branch`, as is this field's name): why a commit of the
   * default branch is previewed and applied, and how many approvals it needs.
   */
  branch?: MainlineApply;
  /** A deploy run's stacks in dependency order (`/agent deploy a b c`), for its summary. */
  runOrder?: string[];
  /** A deploy run: how many of its independent stacks apply at once (`parallel_applies`). */
  runParallelism?: number;
}

export interface MainlineApply {
  /**
   * `rollback`: `/agent rollback`; `merge-commit`: a merge-first deploy whose merge commit
   * planned differently; `merge-queue`: a merge group's commit (src/deploys/merge-queue.ts);
   * `act`: a merged pull request's merge commit in a repository in the `act` phase, applied
   * without an approval when its plan qualifies (src/approval/phase.ts), else like `merge-commit`.
   */
  purpose: "rollback" | "merge-commit" | "merge-queue" | "drift" | "drift-fix" | "act";
  /** `drift`: preview with `--refresh` (the stack's `drift.refresh`). */
  refresh?: boolean;
  /**
   * A multi-stack `/agent rollback a b c`: its stacks. They are applied together by the command
   * (downstream first), never one by one as each preview ends.
   */
  together?: string[];
  /** `merge-queue`: the merge_groups row this preview or apply belongs to. */
  group?: string;
  /** `merge-queue`: the pull requests the commit holds (told of the apply's outcome). */
  prs?: number[];
  /** Approvals the apply needs (the stack's policy at request time, with the server's floor). */
  approvals: number;
  /** The command that applies it once approved. */
  command: string;
  /**
   * Who may not approve it besides the requester, with why: for a merge commit, the pull
   * request's author and everyone who pushed to it or wrote its commits (src/approval/mainline-gate.ts).
   */
  exclude?: Array<{ login: string; why: string }>;
}
