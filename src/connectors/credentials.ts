/**
 * Where a task's credentials come from. The Vault connector (its own issue) implements this;
 * until then no task gets any. Values are injected into the step's exec environment only and
 * registered for redaction before the first step runs (invariant 7).
 */
export interface CredentialRequest {
  repo: string;
  stack: string;
  /** `preview` gets read-only credentials; `deploy` only after the gate (later). */
  kind: "preview" | "deploy";
}

export interface CredentialSource {
  forTask(req: CredentialRequest): Promise<Record<string, string>>;
}

export const noCredentials: CredentialSource = {
  forTask: async () => ({}),
};
