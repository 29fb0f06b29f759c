/**
 * OpenTelemetry traces across web → queue → worker → sandbox, only when an OTLP endpoint is
 * configured (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
 *
 * Without it nothing of the SDK is loaded: this module imports only `@opentelemetry/api`,
 * whose global tracer is then the no-op one, so `withSpan` costs a function call and
 * `injectTraceContext()` returns undefined (job data stays as it was).
 *
 * With it, `startTracing` loads the SDK (dynamic imports), registers a tracer provider with a
 * BatchSpanProcessor and the OTLP/HTTP exporter (JSON), an AsyncLocalStorage context manager
 * and the W3C trace-context propagator. The exporter reads its endpoint, headers, timeout and
 * compression from the standard OTEL_EXPORTER_OTLP_* variables itself.
 *
 * The trace context crosses the queue as a W3C carrier (`traceparent`, maybe `tracestate`)
 * in the job data: ids only, never a secret. Span attributes are identifiers, names, counts
 * and outcomes; exception messages are scrubbed of URL credentials and token-shaped strings.
 */
import { randomUUID } from "node:crypto";
import {
  context,
  propagation,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from "@opentelemetry/api";

export const TRACER_NAME = "pr-infra-agent";
export const DEFAULT_SERVICE_NAME = "pr-infra-agent";
/** The resource attribute naming the process role (web, worker, all). */
export const ROLE_ATTRIBUTE = "deployment.role";

/** A W3C trace-context carrier (`traceparent`, maybe `tracestate`), as stored in job data. */
export type TraceCarrier = Record<string, string>;

export interface TracingOptions {
  /** service.name; default OTEL_SERVICE_NAME, else `pr-infra-agent`. */
  serviceName?: string | undefined;
  /** The process role, recorded as the resource attribute `deployment.role`. */
  role: string;
  /** Where OTEL_* variables are read (default process.env). */
  env?: NodeJS.ProcessEnv | undefined;
}

export interface TracingHandle {
  /** Exports the spans ended so far (tests; before a process exits on its own). */
  forceFlush(): Promise<void>;
  /** Flushes and stops the exporter, then unregisters the globals. Idempotent. */
  shutdown(): Promise<void>;
}

/** Whether tracing is configured: an OTLP endpoint is set and the SDK is not disabled. */
export function tracingEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/** The traces URL from the variables, as the exporter derives it (only for a non-default env). */
function tracesUrl(env: NodeJS.ProcessEnv): string | undefined {
  const specific = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (specific) return specific;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!base) return undefined;
  return `${base.replace(/\/+$/, "")}/v1/traces`;
}

/**
 * Starts tracing for this process, or returns null when no endpoint is configured (nothing
 * loaded, nothing registered). The SDK packages are imported here only.
 */
export async function startTracing(opts: TracingOptions): Promise<TracingHandle | null> {
  const env = opts.env ?? process.env;
  if (!tracingEnabled(env)) return null;
  const [{ TracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes, detectResources, envDetector }, { W3CTraceContextPropagator }, { AsyncLocalStorageContextManager }, semconv] =
    await Promise.all([
      import("@opentelemetry/sdk-trace"),
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("@opentelemetry/resources"),
      import("@opentelemetry/core"),
      import("@opentelemetry/context-async-hooks"),
      import("@opentelemetry/semantic-conventions"),
    ]);

  // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (the env detector) first; ours win.
  const fromEnv = env === process.env ? detectResources({ detectors: [envDetector] }) : resourceFromAttributes({});
  const resource = fromEnv.merge(
    resourceFromAttributes({
      [semconv.ATTR_SERVICE_NAME]: opts.serviceName ?? env.OTEL_SERVICE_NAME ?? DEFAULT_SERVICE_NAME,
      [semconv.ATTR_SERVICE_INSTANCE_ID]: randomUUID(),
      [ROLE_ATTRIBUTE]: opts.role,
    }),
  );
  // The exporter reads endpoint, headers, timeout and compression from process.env itself;
  // an explicit env (tests, embedding) gives the URL here.
  const url = env === process.env ? undefined : tracesUrl(env);
  const exporter = new OTLPTraceExporter(url ? { url } : {});
  const provider = new TracerProvider({ resource, spanProcessors: [new BatchSpanProcessor({ exporter })] });

  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);

  let stopped: Promise<void> | null = null;
  return {
    forceFlush: () => provider.forceFlush(),
    shutdown: () =>
      (stopped ??= (async () => {
        try {
          await provider.shutdown();
        } finally {
          trace.disable();
          propagation.disable();
          context.disable();
        }
      })()),
  };
}

/** The tracer: the SDK's once `startTracing` registered one, else the API's no-op tracer. */
export function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/**
 * The current context as a W3C carrier for job data, or undefined when there is no recording
 * span (tracing off, or no span active): the job data then stays exactly as before.
 */
export function injectTraceContext(ctx: Context = context.active()): TraceCarrier | undefined {
  const span = trace.getSpan(ctx);
  if (!span || !span.spanContext().traceId || !span.isRecording()) return undefined;
  const carrier: TraceCarrier = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent ? carrier : undefined;
}

/** `{ trace: carrier }` to spread into job data, or `{}` when there is nothing to carry. */
export function traceField(): { trace?: TraceCarrier } {
  const carrier = injectTraceContext();
  return carrier ? { trace: carrier } : {};
}

/** Only the W3C fields are read back from a job's carrier, each bounded. */
function parentContext(carrier: TraceCarrier | undefined): Context {
  if (!carrier || typeof carrier !== "object") return context.active();
  const clean: TraceCarrier = {};
  for (const key of ["traceparent", "tracestate"]) {
    const v = carrier[key];
    if (typeof v === "string" && v.length <= 512) clean[key] = v;
  }
  return propagation.extract(context.active(), clean);
}

/** URL credentials, bearer tokens and GitHub/Vault token shapes never reach an exported span. */
export function scrubSecrets(text: string): string {
  return text
    .replace(/(\/\/)[^/@\s:]*:[^/@\s]*@/g, "$1[redacted]@")
    .replace(/\b(Bearer|Basic|token)\s+[A-Za-z0-9._~+/=-]{8,}/gi, "$1 [redacted]")
    .replace(/\b(gh[opsur]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}|hv[sbr]\.[A-Za-z0-9_-]{16,})\b/g, "[redacted]");
}

export interface WithSpanOptions {
  /** A carrier from job data: the span becomes a child of that remote span. */
  parent?: TraceCarrier | undefined;
}

/**
 * Runs `fn` in a new active span and ends it. A throw is recorded as an exception (message
 * scrubbed, no stack) with status ERROR and rethrown. With tracing off, the span is the
 * no-op one and `fn` just runs.
 */
export async function withSpan<T>(name: string, attrs: Attributes, fn: (span: Span) => Promise<T> | T, opts: WithSpanOptions = {}): Promise<T> {
  const parent = opts.parent ? parentContext(opts.parent) : context.active();
  return tracer().startActiveSpan(name, { attributes: attrs }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Marks the span failed with the error's name and scrubbed message. */
export function recordError(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  const e = err instanceof Error ? err : new Error(String(err));
  const message = scrubSecrets(e.message).slice(0, 500);
  span.recordException({ name: e.name, message });
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}
