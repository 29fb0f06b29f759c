/**
 * Local development: forwards webhooks from a smee.io channel (WEBHOOK_PROXY_URL, as in every
 * Probot app) to this process's own webhook route, so a laptop without a public URL gets
 * GitHub's deliveries. smee-client is a development dependency, loaded only when asked for.
 */
import type { Logger } from "pino";
import { WEBHOOK_PATH } from "./routes/webhooks.js";

export interface WebhookProxy {
  stop(): Promise<void>;
}

export async function startWebhookProxy(source: string, port: number, log: Logger): Promise<WebhookProxy | null> {
  let SmeeClient: typeof import("smee-client").default;
  try {
    ({ default: SmeeClient } = await import("smee-client"));
  } catch {
    log.warn("WEBHOOK_PROXY_URL is set but smee-client is not installed (a development dependency: npm install --include=dev)");
    return null;
  }
  const target = `http://127.0.0.1:${port}${WEBHOOK_PATH}`;
  const smee = new SmeeClient({
    source,
    target,
    logger: { info: (...a: unknown[]) => log.info({ proxy: source }, a.map(String).join(" ")), error: (...a: unknown[]) => log.warn({ proxy: source }, a.map(String).join(" ")) },
  });
  await smee.start();
  log.info({ source, target }, "forwarding webhooks from the proxy channel");
  return { stop: () => smee.stop() };
}
