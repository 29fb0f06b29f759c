import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { trace } from "@opentelemetry/api";
import { Job, Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningApp } from "../../src/app.js";
import { createRedis, jobIdFrom, WEBHOOK_QUEUE } from "../../src/connectors/queues.js";
import { injectTraceContext, scrubSecrets, startTracing, tracingEnabled, withSpan, type TracingHandle } from "../../src/ops/tracing.js";
import { STICKY_MARKER } from "../../src/render/sticky-comment.js";
import { executable as exe, type GitHttpServer } from "../helpers/git-server.js";
import { GitHubFake, isCheckRunCompleted } from "../helpers/github-fake.js";
import { deliver, issueCommentPayload, startAppFixture, TEST_REDIS_URL, WEBHOOK_SECRET, type AppFixture, type TestEnv } from "../helpers/harness.js";

const REPO = "octo-org/infra-traced";
const TOKEN = "ghs_tracingInstallationToken0000000000001";
const HEADER = "x-otlp-test";

const AGENT_YML = `version: 1
default_stack: dev
stacks:
  - name: dev
    dir: infra
steps:
  lint: ["./lint.sh"]
  test: "./test.sh"
  preview: ["./preview.sh"]
`;
const TREE = {
  "infra/lint.sh": exe("#!/bin/sh\necho 'lint: 0 problems'\n"),
  "infra/test.sh": exe("#!/bin/sh\necho 'tests: 3 passed'\n"),
  "infra/preview.sh": exe("#!/bin/sh\necho \"preview of $AGENT_STACK\"\necho '+ 1 to create'\n"),
};

/** One span as OTLP/JSON encodes it (ids in hex, attributes as key/AnyValue pairs). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
  status?: { code?: number };
}
interface Collected {
  span: OtlpSpan;
  attrs: Record<string, unknown>;
  resource: Record<string, unknown>;
}

function anyValue(v: Record<string, unknown>): unknown {
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return Number(v.doubleValue);
  if ("boolValue" in v) return v.boolValue;
  return JSON.stringify(v);
}
function attrMap(list: Array<{ key: string; value: Record<string, unknown> }> | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, anyValue(a.value)]));
}

/** A local OTLP/HTTP receiver: POST /v1/traces with a JSON body. */
class OtlpReceiver {
  readonly bodies: string[] = [];
  readonly headers: Array<Record<string, string | string[] | undefined>> = [];
  readonly spans: Collected[] = [];
  private constructor(private readonly server: Server) {}
  static async start(): Promise<OtlpReceiver> {
    let self: OtlpReceiver;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.method !== "POST" || req.url !== "/v1/traces") {
          res.writeHead(404).end();
          return;
        }
        const body = Buffer.concat(chunks).toString("utf8");
        self.bodies.push(body);
        self.headers.push(req.headers);
        const json = JSON.parse(body) as { resourceSpans?: Array<{ resource?: { attributes?: [] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }> };
        for (const rs of json.resourceSpans ?? []) {
          const resource = attrMap(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) for (const span of ss.spans ?? []) self.spans.push({ span, attrs: attrMap(span.attributes), resource });
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    self = new OtlpReceiver(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return self;
  }
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }
  named(name: string): Collected[] {
    return this.spans.filter((s) => s.span.name === name);
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe("tracing off (no OTLP endpoint)", () => {
  it("loads no provider: the API's no-op tracer, and no carrier for job data", async () => {
    expect(tracingEnabled({})).toBe(false);
    expect(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "true" })).toBe(false);
    expect(await startTracing({ role: "all", env: {} })).toBeNull();
    const span = trace.getTracer("probe").startSpan("probe");
    expect(span.isRecording()).toBe(false);
    expect(span.spanContext().traceId).toBe("00000000000000000000000000000000");
    span.end();
    expect(injectTraceContext()).toBeUndefined();
    // Inside withSpan too: the span is the no-op one and nothing is carried.
    const inside = await withSpan("probe", { a: 1 }, (s) => ({ recording: s.isRecording(), carrier: injectTraceContext() }));
    expect(inside).toEqual({ recording: false, carrier: undefined });
    await expect(withSpan("probe", {}, () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
  });

  it("scrubs URL credentials and token shapes from exception messages", () => {
    expect(scrubSecrets("fetch https://x-access-token:ghs_abcdefghijklmnopqrstuvwx@github.com/o/r failed")).toBe("fetch https://[redacted]@github.com/o/r failed");
    expect(scrubSecrets("token ghs_abcdefghijklmnopqrstuvwx and Bearer abcdefgh12345678")).not.toMatch(/ghs_|abcdefgh12345678/);
  });
});

describe("tracing on: web → queue → worker → sandbox (real Redis, Postgres, Docker)", () => {
  let receiver: OtlpReceiver;
  let tracing: TracingHandle;
  let f: AppFixture;
  let app: RunningApp;
  let env: TestEnv;
  let git: GitHttpServer;
  let gh: GitHubFake;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    receiver = await OtlpReceiver.start();
    // The exporter reads the standard variables itself: endpoint (+ /v1/traces) and headers.
    for (const k of ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_SERVICE_NAME"]) saved[k] = process.env[k];
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${receiver.port}`;
    process.env.OTEL_EXPORTER_OTLP_HEADERS = `${HEADER}=yes`;
    delete process.env.OTEL_SERVICE_NAME;
    const handle = await startTracing({ role: "all" });
    expect(handle).not.toBeNull();
    tracing = handle!;
    f = await startAppFixture(TOKEN);
    ({ app, git, env } = f);
  });
  afterAll(async () => {
    gh?.stop();
    await f?.stop();
    await tracing?.shutdown();
    await receiver?.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it("exports webhook.receive → webhook.handle → task.run → sandbox.exec as one trace, without secrets", async () => {
    gh = new GitHubFake(REPO, TOKEN);
    gh.permissions.set("alice", "write");
    gh.files.set("main:.github/agent.yml", AGENT_YML);
    const sha = await git.commit(REPO, TREE);
    gh.pulls.set(7, { headSha: sha });

    const payload = issueCommentPayload({ repo: REPO, cloneUrl: git.cloneUrl(REPO), prNumber: 7, body: "/agent preview dev", login: "alice" });
    const res = await deliver(app.port!, "issue_comment", payload);
    expect(res.status).toBe(202);
    const done = await gh.waitFor(isCheckRunCompleted, "the completed check run");
    expect(done.body).toMatchObject({ conclusion: "success" });
    await gh.waitFor((c) => String(c.body?.body ?? "").includes(STICKY_MARKER) && String(c.body?.body).includes("✅ succeeded"), "the sticky comment update");

    // The webhook job carried only the W3C carrier, next to the delivery it always had.
    const queue = new Queue(WEBHOOK_QUEUE, { connection: createRedis(TEST_REDIS_URL), prefix: env.queuePrefix });
    const job = await Job.fromId(queue, jobIdFrom(["wh", res.id]));
    await queue.close();
    expect(Object.keys(job!.data.trace ?? {})).toEqual(["traceparent"]);
    expect(job!.data.trace.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

    // The task span ends once the processor returns (just after the last GitHub write): flush until it is in.
    const deadline = Date.now() + 30_000;
    for (;;) {
      await tracing.forceFlush();
      if (receiver.named("task.run").some((s) => s.attrs["task.outcome"] === "succeeded")) break;
      if (Date.now() > deadline) throw new Error(`spans seen: ${receiver.spans.map((s) => s.span.name).join(", ")}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    const [receive] = receiver.named("webhook.receive").filter((s) => s.attrs["github.delivery"] === res.id);
    expect(receive).toBeDefined();
    const traceId = receive!.span.traceId;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(job!.data.trace.traceparent).toBe(`00-${traceId}-${receive!.span.spanId}-01`);
    const inTrace = receiver.spans.filter((s) => s.span.traceId === traceId);
    const one = (name: string) => {
      const found = inTrace.filter((s) => s.span.name === name);
      expect(found, name).toHaveLength(1);
      return found[0]!;
    };
    const handle = one("webhook.handle");
    // One task.run per attempt (a retried attempt is a sibling); the one that succeeded ran the steps.
    const taskRuns = inTrace.filter((s) => s.span.name === "task.run");
    const task = taskRuns.find((t) => t.attrs["task.outcome"] === "succeeded");
    expect(task, JSON.stringify(taskRuns.map((t) => t.attrs))).toBeDefined();
    const execs = inTrace.filter((s) => s.span.name === "sandbox.exec" && s.span.parentSpanId === task!.span.spanId);

    // Parent links: receive (root) → handle → task.run → each sandbox.exec.
    expect(receive!.span.parentSpanId ?? "").toBe("");
    expect(handle.span.parentSpanId).toBe(receive!.span.spanId);
    for (const t of taskRuns) expect(t.span.parentSpanId).toBe(handle.span.spanId);
    expect(execs.map((e) => e.attrs["step.name"])).toEqual(["lint", "test", "preview"]);
    const taskIds = new Set(taskRuns.map((t) => t.span.spanId));
    for (const e of inTrace.filter((s) => s.span.name === "sandbox.exec")) expect(taskIds.has(e.span.parentSpanId!)).toBe(true);

    // Attributes.
    expect(receive!.attrs).toMatchObject({ "github.event": "issue_comment", "github.delivery": res.id, "webhook.outcome": "accepted", "http.response.status_code": 202 });
    expect(handle.attrs).toMatchObject({ "github.event": "issue_comment", "github.delivery": res.id });
    const { rows } = await f.db.query<{ id: string }>("SELECT t.id FROM tasks t JOIN workflows w ON w.id = t.workflow_id WHERE w.pr_number = 7");
    expect(task!.attrs).toMatchObject({ "task.id": rows[0]!.id, "task.kind": "preview", "task.stack": "dev", "task.state": "SUCCEEDED", "task.outcome": "succeeded" });
    for (const e of execs) {
      expect(e.attrs).toMatchObject({ "process.exit.code": 0, "sandbox.timed_out": false, "task.stack": "dev" });
      expect(typeof e.attrs["sandbox.duration_ms"]).toBe("number");
    }
    for (const s of [receive!, handle, task!, ...execs]) expect(s.span.status?.code ?? 0).not.toBe(2);
    // Resource: service name, instance id, role.
    expect(task!.resource).toMatchObject({ "service.name": "pr-infra-agent", "deployment.role": "all" });
    expect(String(task!.resource["service.instance.id"])).toMatch(/^[0-9a-f-]{36}$/);
    // The exporter sent the headers from OTEL_EXPORTER_OTLP_HEADERS.
    expect(receiver.headers.every((h) => h[HEADER] === "yes")).toBe(true);

    // No secret in any attribute, nor anywhere in what was exported.
    for (const s of receiver.spans) {
      for (const v of Object.values(s.attrs)) {
        expect(String(v)).not.toContain(TOKEN);
        expect(String(v)).not.toContain(WEBHOOK_SECRET);
        expect(String(v)).not.toMatch(/ghs_[A-Za-z0-9]{10,}/);
      }
    }
    for (const body of receiver.bodies) {
      expect(body).not.toContain(TOKEN);
      expect(body).not.toContain(WEBHOOK_SECRET);
    }
    expect(gh.unexpected).toEqual([]);
  });
});
