/**
 * Typed errors of the Vault connector. Messages name addresses, paths and variables, never a
 * token or a secret value, so they can go to logs and check runs as they are.
 */

export class VaultError extends Error {
  override name = "VaultError";
  /** The HTTP status Vault answered with, when it answered. */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

/** Vault could not be reached, answered 5xx, is sealed or is rate-limiting: retrying later may work. */
export class VaultUnavailableError extends VaultError {
  override name = "VaultUnavailableError";
}

/** Vault refused the app's identity (AppRole login or unwrapping the secret id): configuration needed. */
export class VaultAuthError extends VaultError {
  override name = "VaultAuthError";
}

/** Vault answered a 4xx to an authenticated call (permission denied, no such secret...). */
export class VaultRequestError extends VaultError {
  override name = "VaultRequestError";
}

/** A task's credentials could not be issued: says which variable and which path, never the value. */
export class CredentialError extends Error {
  override name = "CredentialError";
  constructor(
    message: string,
    readonly variable: string | null,
    readonly path: string | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
