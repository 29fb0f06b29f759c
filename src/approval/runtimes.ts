/**
 * Which OCI runtime runs a task's sandbox. Pure policy, no I/O. Untrusted code (a fork's pull
 * request, run after a maintainer's ok) always gets the server's untrusted runtime (gVisor by
 * default), whatever the repository asks for; the repository's own code gets the runtime its
 * stack names on the default branch, if the server allows it, else the server's default.
 */
export type RuntimeDecision = { ok: true; runtime: string | undefined } | { ok: false; message: string };

export interface RuntimeSettings {
  /** Trusted code (undefined: the Docker engine's default). */
  runtime: string | undefined;
  untrustedRuntime: string;
  /** What a stack may ask for. */
  allowedRuntimes: readonly string[];
}

export function decideRuntime(input: { untrusted: boolean; requested: string | null | undefined }, server: RuntimeSettings): RuntimeDecision {
  if (input.untrusted) return { ok: true, runtime: server.untrustedRuntime };
  const requested = input.requested ?? undefined;
  if (requested === undefined || requested === server.runtime) return { ok: true, runtime: server.runtime };
  if (server.allowedRuntimes.includes(requested)) return { ok: true, runtime: requested };
  const allowed = server.allowedRuntimes.length ? server.allowedRuntimes.map((r) => `\`${r}\``).join(", ") : "none";
  return {
    ok: false,
    message: `the sandbox runtime \`${requested}\` is not allowed on this server (allowed: ${allowed}); ask the app's operators to add it to SANDBOX_RUNTIMES`,
  };
}
