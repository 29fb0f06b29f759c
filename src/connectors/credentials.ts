/**
 * Where a task's credentials come from: Vault (src/connectors/vault/), environment variables
 * in development, or nothing. Values are injected into the step's exec environment only and
 * registered for redaction before the first step runs (invariant 8).
 */
import { CredentialError } from "./vault/errors.js";
export type CredentialKind = "preview" | "deploy" | "diagnose";

export interface CredentialRequest {
  repo: string;
  stack: string;
  /**
   * `preview` gets read-only credentials; `deploy` only after the gate, for that one task;
   * `diagnose` what the service probes of an issue diagnosis need (src/jobs/diagnose.ts).
   */
  kind: CredentialKind;
  /** The task the credentials are issued to: their leases are recorded against it. */
  taskId: string;
  /** The task runs a fork's code (untrusted): every source refuses it (invariant 3). */
  fork?: boolean;
  /** A review stack's task: the base stack it is made from (credentials `review:<base>`, never the base's own). */
  reviewOf?: string;
  /** The longest the credentials may live (the task's trust tier): with `vault.task_tokens`, Vault ends its dynamic secrets then. */
  ttlSeconds?: number;
}

/** A fork's code never receives credentials: thrown by every source, whatever it holds. */
export class UntrustedCredentialRequestError extends CredentialError {
  override name = "UntrustedCredentialRequestError";
  constructor(req: CredentialRequest) {
    super(`credentials refused: task ${req.taskId} (${req.repo}, stack ${req.stack}) runs code from a fork, which never receives credentials`, null, null);
  }
}

/** Called first by every CredentialSource.forTask. */
export function refuseUntrusted(req: CredentialRequest): void {
  if (req.fork) throw new UntrustedCredentialRequestError(req);
}

export interface IssuedCredentials {
  /** Environment variable name → value, for the task's execs only. */
  env: Record<string, string>;
  /** Revokes the dynamic leases issued for the task. Idempotent; never throws. */
  release(): Promise<void>;
}

export interface CredentialSource {
  forTask(req: CredentialRequest): Promise<IssuedCredentials>;
}

/** Credentials from a fixed mapping (tests, and sources without leases). */
export function staticCredentials(envFor: (req: CredentialRequest) => Record<string, string> | Promise<Record<string, string>>): CredentialSource {
  return {
    forTask: async (req) => {
      refuseUntrusted(req);
      return { env: await envFor(req), release: async () => {} };
    },
  };
}

export const noCredentials: CredentialSource = staticCredentials(() => ({}));
