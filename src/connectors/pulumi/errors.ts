/**
 * Turns what the Pulumi CLI printed on a failure into one clear sentence a PR author can act
 * on. The patterns are the CLI's own messages (pkg/backend, pkg/cmd/pulumi); anything else is
 * an `unknown` failure whose last error line is quoted.
 */

export type PulumiFailureKind =
  | "locked"
  | "pending-operations"
  | "missing-stack"
  | "missing-passphrase"
  | "missing-token"
  | "no-project"
  | "program-error"
  | "plan-violation"
  | "unknown";

export interface PulumiFailure {
  kind: PulumiFailureKind;
  message: string;
}

interface Rule {
  kind: Exclude<PulumiFailureKind, "unknown">;
  test: RegExp;
  message: (m: RegExpExecArray, stack: string) => string;
}

const RULES: Rule[] = [
  {
    kind: "locked",
    test: /the stack is currently locked by (\d+) lock\(s\)|\[409\] Conflict: Another update is currently in progress/,
    message: (_m, stack) =>
      `the Pulumi stack \`${stack}\` is locked by another update. Wait for it to finish, or, if it was interrupted, run \`pulumi cancel\` on the stack; then preview again`,
  },
  {
    kind: "pending-operations",
    test: /the current deployment has (\d+) resource\(s\) with pending operations/,
    message: (m, stack) =>
      `the Pulumi stack \`${stack}\` has ${m[1]} resource(s) with pending operations from an interrupted update. Check those resources with the provider, then run \`pulumi refresh\` (or \`pulumi stack export\`/\`import\` to clear them) before previewing again`,
  },
  {
    kind: "missing-stack",
    test: /no stack named '([^']{1,200})' found/,
    message: (m) => `the Pulumi stack \`${m[1]}\` does not exist in the backend and could not be created`,
  },
  {
    kind: "missing-passphrase",
    test: /passphrase must be set with PULUMI_CONFIG_PASSPHRASE|incorrect passphrase/,
    message: (_m, stack) =>
      `no usable secrets passphrase for the Pulumi stack \`${stack}\`: the server must provide \`PULUMI_CONFIG_PASSPHRASE\` (or \`PULUMI_CONFIG_PASSPHRASE_FILE\`) for this stack's self-managed backend`,
  },
  {
    kind: "missing-token",
    test: /PULUMI_ACCESS_TOKEN must be set for login/,
    message: () =>
      "no Pulumi Cloud access token: the server must provide `PULUMI_ACCESS_TOKEN` for this stack, or a self-managed `PULUMI_BACKEND_URL`",
  },
  {
    kind: "no-project",
    test: /no Pulumi\.yaml project file found/,
    message: () => "no `Pulumi.yaml` in the stack's directory: set the stack's `dir` to the Pulumi project",
  },
  {
    kind: "plan-violation",
    test: /violates plan|is not allowed by the plan|expected resource operations for .{1,300} but none were seen/,
    message: () => "the update no longer matches the previewed plan: preview again and get the new plan approved",
  },
];

const PROGRAM_ERROR = /Running program '[^']*' failed|an unhandled error occurred|Program exited with non-zero exit code|preview failed/;

/** Classifies a failed `pulumi` run from its stderr (and the diagnostics of its JSON, if any). */
export function classifyPulumiFailure(stderr: string, stack: string, errorDiagnostics: string[] = []): PulumiFailure {
  for (const rule of RULES) {
    const m = rule.test.exec(stderr);
    if (m) return { kind: rule.kind, message: rule.message(m, stack) };
  }
  if (errorDiagnostics.length > 0 || PROGRAM_ERROR.test(stderr)) {
    const first = (errorDiagnostics[0] ?? lastErrorLine(stderr) ?? "").split("\n")[0]!.slice(0, 300);
    return { kind: "program-error", message: `the Pulumi program failed${first ? `: ${first}` : ""}` };
  }
  const last = lastErrorLine(stderr);
  return { kind: "unknown", message: last ? `pulumi failed: ${last.slice(0, 300)}` : "pulumi failed without an error message" };
}

function lastErrorLine(text: string): string | null {
  const lines = text.split("\n").filter((l) => l.startsWith("error: "));
  const last = lines.at(-1);
  return last ? last.slice("error: ".length).trim() : null;
}
