/**
 * One app process for bench/ack.ts and bench/pipeline.ts: `startApp` with the role in
 * `argv[2]` (web | worker | all), configured from the environment like `src/main.ts` (no .env,
 * no tracing), forked with an IPC channel; it sends `{ port, pid }` to the parent once ready and
 * stops gracefully on "stop" (or when the parent goes away).
 *
 * GitHub client: the app's Octokit as production runs it (retries, and throttling: writes paced
 * per installation, a burst of 10 then 1/s) unless BENCH_GITHUB_THROTTLE=off, which
 * turns the throttling plugin off (retries stay on): what is left is the app's own work.
 *
 * Logs: JSON lines at LOG_LEVEL to BENCH_LOG_FILE (default /dev/null).
 */
import { pino } from "pino";
import { ProbotOctokit } from "probot";
import { startApp } from "../src/app.js";
import { loadServerConfig } from "../src/config/server-config.js";

const role = process.argv[2];
if (role !== "web" && role !== "worker" && role !== "all") {
  console.error(`usage: app-target.ts web|worker|all (got ${JSON.stringify(role)})`);
  process.exit(2);
}

const level = (process.env.LOG_LEVEL ?? "info") as pino.Level;
const log = pino({ level }, pino.destination({ dest: process.env.BENCH_LOG_FILE ?? "/dev/null", sync: true, append: true }));

const Unthrottled = ProbotOctokit.defaults((o: Record<string, any>) => ({ ...o, throttle: { ...o.throttle, enabled: false } }));

startApp(loadServerConfig({ ...process.env, ROLE: role }), {
  log,
  ...(process.env.BENCH_GITHUB_THROTTLE === "off" ? { Octokit: Unthrottled as typeof ProbotOctokit } : {}),
}).then(
  (app) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      void app.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(err);
          process.exit(1);
        },
      );
    };
    process.on("message", (msg: unknown) => msg === "stop" && stop());
    process.on("disconnect", stop);
    process.on("SIGTERM", stop);
    process.send!({ port: app.port ?? null, pid: process.pid });
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
