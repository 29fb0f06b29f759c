import { existsSync } from "node:fs";
import { run } from "probot";
import { isRegistered, loadServerConfig, ServerConfigError } from "./config/server-config.js";
import { startApp } from "./app.js";
import { credentialsConfigFromEnv } from "./config/credentials-config.js";
import { startTracing } from "./ops/tracing.js";
import { startWebhookProxy } from "./web/webhook-proxy.js";

/**
 * One entry point, three roles: `web` (webhooks in), `worker` (handlers and tasks), `all`.
 * Without GitHub App credentials the web role starts Probot's manifest flow from app.yml,
 * which registers the app and writes `.env`; restart afterwards.
 */
async function main(): Promise<void> {
  // Probot's registration flow writes credentials to .env; pick them up on the next start.
  const envFile = process.env.ENV_FILE ?? ".env";
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  const roleArg = process.argv.find((a) => a.startsWith("--role="))?.slice("--role=".length);
  if (roleArg) process.env.ROLE = roleArg;
  const config = loadServerConfig();
  // The key may live in Vault instead (CREDENTIALS_CONFIG vault.github_private_key).
  const keyInVault = Boolean(credentialsConfigFromEnv()?.vault?.github_private_key);
  const registered = isRegistered(config) || Boolean(keyInVault && config.github.appId && config.github.webhookSecret);

  if (!registered) {
    if (config.role === "worker") {
      throw new ServerConfigError("the worker needs APP_ID, PRIVATE_KEY (or PRIVATE_KEY_PATH) and WEBHOOK_SECRET");
    }
    console.info(`No GitHub App credentials: starting the registration (manifest) flow on http://localhost:${config.port}`);
    await run(() => {}, { env: { ...process.env, PORT: String(config.port) } });
    return;
  }

  // OpenTelemetry only with an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); otherwise no SDK is loaded.
  const tracing = await startTracing({ role: config.role });
  const app = await startApp(config);
  // Development: deliveries through a smee.io channel to this web tier.
  const proxyUrl = process.env.WEBHOOK_PROXY_URL;
  const proxy = proxyUrl && app.port !== null ? await startWebhookProxy(proxyUrl, app.port, app.deps.log) : null;
  let signals = 0;
  const onSignal = (signal: string) => {
    signals++;
    if (signals > 1) process.exit(1); // a second signal: stop now
    app.deps.log.info({ signal }, "signal received");
    Promise.resolve(proxy?.stop())
      .catch(() => {})
      .then(() => app.stop())
      // Flush the spans still in the batch before the process exits.
      .then(() => tracing?.shutdown().catch((err: unknown) => app.deps.log.warn({ err }, "could not flush traces")))
      .then(
        () => process.exit(0),
        (err) => {
          app.deps.log.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
}

main().catch((err) => {
  console.error(err instanceof ServerConfigError ? err.message : err);
  process.exit(1);
});
