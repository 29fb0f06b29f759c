/** zod fields shared by the server-side config files (credentials, diagnose: probes, embedder). */
import { z } from "zod";

export const ENV_VAR_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The name of an environment variable: config files name secrets, never hold them. */
export const EnvVarName = z.string().regex(ENV_VAR_NAME_RE, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");

/** An http(s) URL without user:password (credentials belong in an env var); a trailing slash is removed. */
export const HttpUrl = z
  .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
  .refine((u) => {
    const parsed = new URL(u);
    return parsed.username === "" && parsed.password === "";
  }, "must not contain credentials (name an env var instead)")
  .transform((u) => u.replace(/\/+$/, ""));
