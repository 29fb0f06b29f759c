import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { Worker, type Job } from "bullmq";
import Docker from "dockerode";
import { pino, type Logger } from "pino";
import { Probot, ProbotOctokit } from "probot";
import { isRegistered, type ServerConfig } from "./config/server-config.js";
import { credentialsConfigFromEnv, GITHUB_APP_KEY_MANUAL, GITHUB_APP_KEY_SECRET } from "./config/credentials-config.js";
import { noCredentials, type CredentialSource } from "./connectors/credentials.js";
import { credentialSourceFromConfig, type CredentialsRuntime, type VaultHealth } from "./connectors/vault/index.js";
import { readGithubPrivateKey } from "./connectors/vault/github-key.js";
import { appKey, AppKeyRing, withAppKeyRing } from "./connectors/github-app-key.js";
import { GithubKeyWatch, identifyWith, noticeGithubKey } from "./ops/github-app-key.js";
import { EgressProxy } from "./connectors/egress-proxy.js";
import { newOwnerId, reapOrphanSandboxes, SandboxProvider } from "./connectors/sandbox.js";
import { createDb, ensureDatabase, migrate } from "./connectors/store/db.js";
import type { AppDeps } from "./deps.js";
import { registerHandlers } from "./handlers/index.js";
import { TaskCancellation, publishTaskCancel } from "./connectors/cancellation.js";
import { WorkerHeartbeat } from "./jobs/heartbeat.js";
import { processPreviewTask } from "./jobs/preview-task.js";
import { processDeployTask } from "./jobs/deploy-task.js";
import { createQueues, createRedis, DIAGNOSE_QUEUE, DRIFT_QUEUE, REVIEW_QUEUE, ROTATION_QUEUE, TASK_QUEUE, WEBHOOK_QUEUE, type DiagnoseJobData, type DriftJobData, type ReviewJobData, type TaskJobData, type WebhookJobData } from "./connectors/queues.js";
import { startDriftCheck, syncAllDriftSchedules } from "./deploys/drift.js";
import { reapReviewOrphans, scheduleReviewSweep } from "./deploys/review.js";
import { processReviewJob } from "./jobs/review-destroy.js";
import { defaultGenerator, rotateDueSecrets, rotateSecret } from "./ops/rotation.js";
import { RotationInputError } from "./web/routes/admin.js";
import { processDiagnose } from "./jobs/diagnose.js";
import { runTaskInSpan } from "./jobs/task-span.js";
import { withSpan } from "./ops/tracing.js";
import { createMetricsServer, createWebServer, SLACK_CLICK_JOB, type ReadinessCheck } from "./web/server.js";
import { createMetrics } from "./web/metrics.js";
import { forOutboxWrites, installationClientOf, withRateLimitReport, withGitHubPacing, withTokensFromBaseUrl } from "./connectors/github.js";
import { DEFAULT_PACING } from "./connectors/outbox/pacer.js";
import { OutboxSender } from "./connectors/outbox/sender.js";
import { outboxDepth, pruneDone, recoverAbandoned } from "./connectors/outbox/store.js";
import { GitHubWrites } from "./connectors/outbox/writes.js";
import { SlackNotifier } from "./connectors/slack/client.js";
import { processSlackClick, type SlackClick } from "./jobs/slack.js";
import { sweepExpired } from "./jobs/expiry.js";
import { startLockQueue } from "./jobs/lock-queue.js";
import { breakGlass } from "./ops/break-glass.js";

/** Sent and failed GitHub writes are kept this long (their idempotency keys with them). */
const OUTBOX_KEEP_DAYS = 7;

export interface AppOptions {
  /** Octokit class for the worker's Probot (tests turn retries off to keep nock simple). */
  Octokit?: typeof ProbotOctokit;
  docker?: Docker;
  log?: Logger;
  /** Where task credentials come from (default: CREDENTIALS_CONFIG — Vault or env — else none). */
  credentials?: CredentialSource;
  /** Where CREDENTIALS_CONFIG and secret-id variables are read (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** How often to retry Vault while waiting for the GitHub App key (default 5 s). */
  vaultRetryMs?: number;
  /** Slack Web API retries (tests turn them off). */
  slackRetry?: { retries: number };
}

export interface RunningApp {
  /** Port the web tier listens on (role web or all). */
  port: number | null;
  deps: AppDeps;
  /** Vault's `sys/health` probe (null without Vault): `probeNow()` runs a round at once. */
  vaultHealth: { probeNow(): Promise<VaultHealth> } | null;
  /** The GitHub App key from Vault (null with PRIVATE_KEY): the ring signing now, its watch, and the rotation issue's tick. */
  githubKey: { ring: AppKeyRing; watch: GithubKeyWatch; notice: (() => Promise<unknown>) | null } | null;
  /** Graceful: stop taking webhooks, let running jobs finish within the grace period, then hand back the rest. */
  stop(): Promise<void>;
}

export async function startApp(config: ServerConfig, options: AppOptions = {}): Promise<RunningApp> {
  const log = options.log ?? pino({ level: config.logLevel, base: { role: config.role } });
  const { appId, webhookSecret, apiBaseUrl } = config.github;
  // Vault (or the development env fallback) from CREDENTIALS_CONFIG; tests may pass their own.
  const credentialsConfig = options.credentials ? null : credentialsConfigFromEnv(options.env);
  const keyInVault = credentialsConfig?.vault?.github_private_key ?? null;
  if (!appId || !webhookSecret || (!config.github.privateKey && !keyInVault)) {
    throw new Error("APP_ID, PRIVATE_KEY (or vault.github_private_key in CREDENTIALS_CONFIG) and WEBHOOK_SECRET are required");
  }

  await ensureDatabase(config.databaseUrl);
  await migrate(config.databaseUrl);
  const db = createDb(config.databaseUrl);
  const redis = createRedis(config.redisUrl);
  const queues = createQueues(redis, config.queuePrefix);
  const docker = options.docker ?? new Docker();
  const owner = newOwnerId();
  const heartbeat = new WorkerHeartbeat(redis, config.queuePrefix, owner);
  const sandboxes = new SandboxProvider(
    docker,
    {
      image: config.sandbox.defaultImage,
      limits: {
        memoryMb: config.sandbox.memoryMb,
        cpus: config.sandbox.cpus,
        pids: config.sandbox.pids,
        outputLimitBytes: config.sandbox.outputLimitBytes,
        workspaceMb: config.sandbox.workspaceMb,
      },
      workspaceRoot: config.sandbox.workspaceRoot,
      owner,
      runtime: config.sandbox.runtime,
      poolSize: config.sandbox.poolSize,
    },
    (err) => log.warn({ err }, "could not fill the sandbox pool"),
  );

  let credentialsRuntime: CredentialsRuntime | null = null;
  if (credentialsConfig) {
    credentialsRuntime = await credentialSourceFromConfig(credentialsConfig, {
      db,
      log: log.child({ name: "credentials" }),
      ...(options.env ? { env: options.env } : {}),
      // /readyz and agent_vault_up notice an outage without waiting for a task to need Vault.
      healthIntervalSeconds: config.vault.healthIntervalSeconds,
    });
  } else if (!options.credentials) {
    log.warn("CREDENTIALS_CONFIG is not set: tasks run without credentials");
  }
  // PRIVATE_KEY wins; otherwise the key comes from Vault and nothing starts before it does. A key
  // from Vault is held in a ring: a new version is picked up without a restart (ops/github-app-key).
  const keyFromVault = config.github.privateKey
    ? null
    : await readGithubPrivateKey(credentialsRuntime!.session!, keyInVault!, { log, ...(options.vaultRetryMs !== undefined ? { retryMs: options.vaultRetryMs } : {}) });
  const privateKey = config.github.privateKey ?? keyFromVault!.pem;
  const keyRing = keyFromVault ? new AppKeyRing(appKey(keyFromVault.pem, keyFromVault.version)) : null;
  const signing = <C extends typeof ProbotOctokit>(Octokit: C): C => (keyRing ? withAppKeyRing(Octokit, keyRing) : Octokit);

  // One registry per app instance (several apps share a test process).
  const session = credentialsRuntime?.session;
  const metrics = createMetrics({
    queues: [queues.webhooks, queues.tasks, queues.diagnostics],
    sandboxIdle: () => sandboxes.idleIds.length,
    ...(session ? { vaultUp: () => session.reachable } : {}),
    oldestRunningTaskSeconds: async () => {
      const { rows } = await db.query<{ age: number | null }>("SELECT EXTRACT(EPOCH FROM now() - min(started_at))::float8 AS age FROM tasks WHERE state = 'RUNNING'");
      return rows[0]?.age ?? null;
    },
    taskTimeoutSeconds: config.sandbox.timeoutSeconds,
    githubOutbox: () => outboxDepth(db),
    log,
  });

  // Every installation client reports GitHub's rate limit.
  const reportRateLimit = <C extends typeof ProbotOctokit>(Octokit: C) =>
    withRateLimitReport(Octokit, (installation, remaining) => metrics.githubRateLimitRemaining.set({ installation: String(installation) }, remaining));
  // Handlers (context.octokit) and deps.github: reads, with Octokit's retries and throttling.
  const probot = new Probot({
    appId,
    privateKey,
    secret: webhookSecret,
    baseUrl: apiBaseUrl,
    log: log.child({ name: "probot" }),
    Octokit: reportRateLimit(withGitHubPacing(signing(withTokensFromBaseUrl(options.Octokit ?? ProbotOctokit)), log.child({ name: "github" }))),
  });
  // Every GitHub write goes through the outbox; this process's sender drains it (workers only),
  // with clients of their own class (Octokit's throttling off: the outbox paces) that share the
  // handlers' installation tokens.
  const OutboxOctokit = reportRateLimit(forOutboxWrites(signing(withTokensFromBaseUrl(options.Octokit ?? ProbotOctokit))));
  const outboxSender = new OutboxSender({
    db,
    clientFor: async (installationId) => installationClientOf(await probot.auth(), OutboxOctokit, installationId),
    owner,
    pacing: config.github.writePacing ? { ...DEFAULT_PACING, ...config.github.writePacing } : null,
    log: log.child({ name: "outbox" }),
  });
  const deps: AppDeps = {
    config,
    writes: new GitHubWrites(db, outboxSender, { progressMs: config.worker.checkRunUpdateIntervalMs }),
    db,
    queues,
    sandboxes,
    credentials: options.credentials ?? credentialsRuntime?.source ?? noCredentials,
    egress: null,
    cancellation: null,
    log,
    github: (installationId) => probot.auth(installationId),
    metrics,
    slack: config.slack ? { notifier: SlackNotifier.fromConfig(config.slack, { log: log.child({ name: "slack" }), ...(options.slackRetry ? { retryConfig: options.slackRetry } : {}) }), config: config.slack } : null,
  };

  // Secret rotation (credentials config `rotation`, with Vault): scheduled by workers, on demand by operators.
  const rotated = credentialsConfig?.rotation?.secrets ?? [];
  const rotation = session && rotated.length ? { deps: { vault: session, db, generate: defaultGenerator(options.env ?? process.env), metrics }, secrets: rotated } : null;
  const rotateNow = async (r: { secret: string | null; actor: string }) => {
    if (r.secret === GITHUB_APP_KEY_SECRET) throw new RotationInputError(GITHUB_APP_KEY_MANUAL);
    if (!rotation) throw new RotationInputError("no secret rotation is configured");
    const specs = r.secret === null ? rotation.secrets : rotation.secrets.filter((x) => x.name === r.secret);
    if (!specs.length) throw new RotationInputError(`no rotated secret is named ${JSON.stringify(r.secret).slice(0, 70)} (configured: ${rotation.secrets.map((x) => x.name).join(", ")})`);
    const outcomes = [];
    for (const spec of specs) outcomes.push(await rotateSecret(rotation.deps, spec, { actor: r.actor, reason: "emergency" }));
    return outcomes;
  };

  // The GitHub App key from Vault: every process checks for a new version; workers open the rotation issue.
  const keyRotation = credentialsConfig?.rotation?.github_app_key ?? null;
  const identifyApp = identifyWith(options.Octokit ?? ProbotOctokit, appId, apiBaseUrl);
  const keyWatch =
    keyRing && session && keyInVault
      ? new GithubKeyWatch({ vault: session, db, ring: keyRing, ref: keyInVault, appId, identify: identifyApp, everyDays: keyRotation?.every_days ?? 90, owner, metrics, log: log.child({ name: "github-key" }) })
      : null;
  if (keyWatch) keyRing!.onRefused(() => keyWatch.recover());
  const keyTimer = keyWatch ? setInterval(() => void keyWatch.check(), config.githubKeyCheckSeconds * 1000).unref() : null;
  if (keyWatch) void keyWatch.check();
  const keyNotice =
    keyWatch && keyRotation
      ? () =>
          noticeGithubKey({
            watch: keyWatch,
            ring: keyRing!,
            db,
            ref: keyInVault!,
            config: keyRotation,
            checkSeconds: config.githubKeyCheckSeconds,
            identify: identifyApp,
            repoClient: async (o, r) => probot.auth((await (await probot.auth()).rest.apps.getRepoInstallation({ owner: o, repo: r })).data.id),
          })
      : null;
  // A new key in use: its issue is answered now (the lock keeps it to one process), not at the next rotation tick.
  if (keyWatch && keyNotice) keyWatch.onLoaded = () => void keyNotice().catch((err) => log.warn({ err }, "could not update the GitHub App key's rotation issue"));

  let server: Server | null = null;
  let port: number | null = null;
  if (config.role === "web" || config.role === "all") {
    const source = options.credentials ?? credentialsRuntime?.source ?? {};
    const admin = config.adminToken
      ? {
          token: config.adminToken,
          queues: [queues.webhooks, queues.tasks, queues.diagnostics],
          breakGlass: (r: { stack?: string; actor: string }) =>
            breakGlass({ db, log, credentials: source, stopRunning: (ids) => publishTaskCancel(redis, config.queuePrefix, ids) }, { ...r, via: "http" }),
          ...(rotation || credentialsConfig?.rotation?.github_app_key ? { rotate: rotateNow } : {}),
        }
      : undefined;
    const readinessChecks: ReadinessCheck[] = [
      { name: "postgres", check: async () => void (await db.query("SELECT 1")) },
      { name: "redis", check: async () => void (await redis.ping()) },
    ];
    if (config.role === "all") readinessChecks.push({ name: "docker", check: async () => void (await docker.ping()) });
    if (session) {
      readinessChecks.push({
        name: "vault",
        check: async () => {
          if (!session.reachable) throw new Error(session.unreachableReason ?? `Vault at ${session.address} is unreachable`);
        },
      });
    }
    server = createWebServer({
      db,
      queues,
      webhookSecret,
      log,
      readiness: readinessChecks,
      metrics,
      metricsToken: config.metrics.token,
      ...(admin ? { admin } : {}),
      ...(config.slack ? { slack: { signingSecret: config.slack.signingSecret, users: config.slack.users } } : {}),
    });
    await new Promise<void>((resolve) => server!.listen(config.port, config.host, resolve));
    port = (server.address() as AddressInfo).port;
    log.info({ port }, "web tier listening");
  }

  const workers: Worker[] = [];
  const shutdown = new AbortController();
  let reaper: NodeJS.Timeout | null = null;
  let workerConnection: ReturnType<typeof createRedis> | null = null;
  if (config.role === "worker" || config.role === "all") {
    // Loaded by workers only: the knowledge base's stores (Qdrant's client) stay out of the web tier.
    const { createDiagnoseRuntime } = await import("./diagnose/runtime.js");
    deps.diagnose = await createDiagnoseRuntime(config.diagnose, { db, redis, log: log.child({ name: "diagnose" }), webBaseUrl: config.github.webBaseUrl, ...(options.env ? { env: options.env } : {}) });
    registerHandlers(probot, deps);
    await heartbeat.start();
    outboxSender.start();
    deps.cancellation = await TaskCancellation.start(redis, config.queuePrefix);
    const egress = config.sandbox.egress;
    if (egress.allowlist.length > 0) {
      deps.egress = await EgressProxy.start({
        host: egress.proxyListen,
        port: egress.proxyPort,
        ...(egress.proxyHost ? { advertiseHost: egress.proxyHost } : {}),
        log: log.child({ name: "egress" }),
      });
      log.info({ port: deps.egress.port, network: egress.network }, "egress proxy listening");
    }
    const reap = async () => {
      // Docker being down must not stop the sweeps below (expiry, credential leases).
      try {
        const reaped = await reapOrphanSandboxes(docker, {
          self: owner,
          isOwnerAlive: (o) => heartbeat.isAlive(o),
          maxAgeSeconds: config.sandbox.timeoutSeconds + 600,
          workspaceRoot: config.sandbox.workspaceRoot,
        });
        if (reaped) log.warn({ reaped }, "removed orphaned sandbox containers");
      } catch (err) {
        log.warn({ err: (err as Error).message }, "could not reap sandboxes (is the Docker engine up?); will retry");
      }
      try {
        const { freed, ...expired } = await sweepExpired(deps);
        if (expired.locks || expired.approvals) log.info(expired, "announced expired locks and approval requests");
        for (const f of freed) await startLockQueue(deps, f.repo, [f.stack]);
      } catch (err) {
        log.warn({ err: (err as Error).message }, "expiry sweep failed; will retry");
      }
      // GitHub writes a dead process was sending: sent again (send-once ones marked unknown).
      try {
        const recovered = await recoverAbandoned(db, (o) => heartbeat.isAlive(o), owner);
        if (recovered.requeued || recovered.unknown) log.warn(recovered, "recovered GitHub writes of a stopped process");
        await pruneDone(db, OUTBOX_KEEP_DAYS);
      } catch (err) {
        log.warn({ err: (err as Error).message }, "could not recover the outbox; will retry");
      }
      // Leases of tasks that ended without releasing them (a crashed worker): revoke now.
      try {
        const recovered = await credentialsRuntime?.source.recoverLeases?.();
        if (recovered && (recovered.revoked || recovered.failed)) log.warn(recovered, "revoked leftover credential leases");
      } catch (err) {
        log.warn({ err: (err as Error).message }, "could not recover credential leases; will retry");
      }
    };
    await reap();
    reaper = setInterval(() => void reap().catch((err) => log.warn({ err }, "reaper failed")), config.sandbox.reapIntervalSeconds * 1000);
    reaper.unref();
    void sandboxes.start();
    workerConnection = createRedis(config.redisUrl);
    workers.push(
      new Worker<WebhookJobData>(
        WEBHOOK_QUEUE,
        async (job: Job<WebhookJobData>) => {
          // Slack clicks ride the same queue: verified by the web tier, handled here.
          if (job.name === SLACK_CLICK_JOB)
            return withSpan("slack.click", { "job.attempt": job.attemptsMade + 1 }, () => processSlackClick(deps, job.data as unknown as SlackClick), { parent: job.data.trace });
          // A child of the web tier's webhook.receive; task jobs enqueued by handlers carry this span.
          await withSpan("webhook.handle", { "github.event": job.data.name, "github.delivery": job.data.id, "job.attempt": job.attemptsMade + 1 }, () =>
            probot.receive({ id: job.data.id, name: job.data.name, payload: job.data.payload } as Parameters<Probot["receive"]>[0]),
            { parent: job.data.trace },
          );
        },
        { connection: workerConnection, prefix: config.queuePrefix, concurrency: 8 },
      ),
      new Worker<TaskJobData>(
        TASK_QUEUE,
        (job: Job<TaskJobData>, token?: string) =>
          runTaskInSpan(db, job, () => (job.name === "deploy" ? processDeployTask : processPreviewTask)(job, deps, { token, shutdown: shutdown.signal })),
        {
        connection: workerConnection,
        prefix: config.queuePrefix,
        concurrency: config.worker.concurrency,
          // A task can run for many minutes; the lock is renewed while the worker is alive. A
          // killed worker's job is stalled once its lock lapses and goes back to the queue at the
          // next stalled check (WORKER_LOCK_SECONDS, WORKER_STALLED_INTERVAL_SECONDS).
          lockDuration: config.worker.lockSeconds * 1000,
          stalledInterval: config.worker.stalledIntervalSeconds * 1000,
        },
      ),
    );
    // A drift scheduler's tick: start that stack's check (the preview itself is a task).
    workers.push(
      new Worker<DriftJobData>(
        DRIFT_QUEUE,
        async (job: Job<DriftJobData>) => {
          const gh = await deps.github(job.data.installationId);
          const started = await startDriftCheck(deps, gh, { ...job.data, requestedBy: "drift-schedule", deliveryId: null });
          if (!started.ok) log.warn({ repo: job.data.repo, stack: job.data.stack, why: started.why }, "drift check not started");
        },
        { connection: workerConnection, prefix: config.queuePrefix, concurrency: 2 },
      ),
    );
    // Review stacks: destroys (a sandbox each) and the sweep's ticks (TTL warnings, expiry).
    workers.push(
      new Worker<ReviewJobData>(REVIEW_QUEUE, (job: Job<ReviewJobData>) => processReviewJob(deps, job), { connection: workerConnection, prefix: config.queuePrefix, concurrency: 2 }),
    );
    await scheduleReviewSweep(deps);
    // Rotation: a tick every ROTATION_CHECK_SECONDS publishes the secrets' ages and rotates the due
    // ones, and opens (or closes) the GitHub App key's issue.
    if (rotation || keyNotice) {
      const tick = async () => {
        if (rotation) await rotateDueSecrets(rotation.deps, rotation.secrets);
        if (keyNotice) await keyNotice();
      };
      workers.push(new Worker(ROTATION_QUEUE, tick, { connection: workerConnection, prefix: config.queuePrefix, concurrency: 1 }));
      await queues.rotation.upsertJobScheduler("rotation", { every: config.rotationCheckSeconds * 1000 }, { name: "rotation", data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } });
    }
    if (config.review.reapOnStart) {
      void reapReviewOrphans(deps).then(
        (r) => (r.reaped.length || r.resumed.length || r.failed ? log.warn(r, "review stacks reaped on start-up") : undefined),
        (err) => log.warn({ err }, "review stacks not reaped on start-up"),
      );
    }
    // Diagnoses are short (probes time out in seconds); two at a time keeps them off the tasks' back.
    workers.push(
      new Worker<DiagnoseJobData>(
        DIAGNOSE_QUEUE,
        (job: Job<DiagnoseJobData>) =>
          withSpan("diagnose.run", { "github.repository": job.data.repo, "issue.number": job.data.issueNumber, "diagnose.trigger": job.data.trigger, "job.attempt": job.attemptsMade + 1 }, () => processDiagnose(job, deps), {
            parent: job.data.trace,
          }),
        { connection: workerConnection, prefix: config.queuePrefix, concurrency: 2 },
      ),
    );
    for (const w of workers) {
      w.on("failed", (job, err) => log.warn({ err, job_id: job?.id, queue: w.name }, "job failed"));
      w.on("error", (err) => log.error({ err, queue: w.name }, "worker error"));
    }
    log.info({ concurrency: config.worker.concurrency }, "workers started");
    if (config.drift.syncOnStart && isRegistered(config)) {
      void (async () => syncAllDriftSchedules(deps, await probot.auth()))().then(
        (r) => log.info(r, "drift schedules synced"),
        (err) => log.warn({ err }, "drift schedules not synced on start-up"),
      );
    }
    // A worker-only process has no web tier: its task metrics are served on METRICS_PORT.
    if (config.role === "worker" && config.metrics.port !== null) {
      const s = createMetricsServer({ metrics, token: config.metrics.token, log });
      await new Promise<void>((resolve) => s.listen(config.metrics.port!, config.host, resolve));
      server = s;
      log.info({ port: (s.address() as AddressInfo).port }, "metrics listening");
    }
  }

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      log.info("shutting down");
      if (server) {
        const s = server;
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
      await Promise.all(
        workers.map(async (w) => {
          const graceful = w.close();
          const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), config.worker.shutdownGraceSeconds * 1000).unref());
          if ((await Promise.race([graceful.then(() => "closed" as const), timeout])) === "timeout") {
            // Kill the running steps and move their jobs back to waiting for another worker.
            log.warn({ queue: w.name }, "grace period over; handing running jobs back");
            shutdown.abort();
            await graceful;
          }
        }),
      );
      if (reaper) clearInterval(reaper);
      if (keyTimer) clearInterval(keyTimer);
      // What is due goes out now (a few seconds at most); the rest waits in the outbox for the next worker.
      if (config.role !== "web") await outboxSender.stop();
      await deps.egress?.close();
      await deps.cancellation?.close();
      await sandboxes.close();
      credentialsRuntime?.close();
      await heartbeat.stop();
      await queues.close();
      await redis.quit().catch(() => {});
      await workerConnection?.quit().catch(() => {});
      await db.end();
      log.info("stopped");
    })());

  return { port, deps, vaultHealth: credentialsRuntime?.health ?? null, githubKey: keyWatch ? { ring: keyRing!, watch: keyWatch, notice: keyNotice } : null, stop };
}
