import {
  type Attributes,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/**
 * OpenTelemetry traces: a span per request, with child spans for the routing decision, the encoder
 * pass and each tier attempt; W3C `traceparent` is read from the client and sent on to upstreams.
 * Exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set — the
 * exporter reads the standard OTEL_* variables itself; otherwise the API's no-op tracer makes every
 * span free. One provider per process, registered globally as the OpenTelemetry API expects.
 */
export const TRACER_NAME = 'mechroute';

let registered: NodeTracerProvider | undefined;

export function setupTracing(env: NodeJS.ProcessEnv = process.env): { shutdown(): Promise<void> } {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || registered) return { shutdown: async () => {} };
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? 'mechroute' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  registered = provider;
  return {
    async shutdown() {
      await provider.shutdown();
      registered = undefined;
    },
  };
}

const tracer = () => trace.getTracer(TRACER_NAME);

/** Runs `fn` in a new active span; its end, status and exception follow `fn`'s outcome. */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  options: { kind?: SpanKind; parent?: ReturnType<typeof context.active> } = {},
): Promise<T> {
  const parent = options.parent ?? context.active();
  return tracer().startActiveSpan(
    name,
    { attributes, kind: options.kind ?? SpanKind.INTERNAL },
    parent,
    async (span) => {
      try {
        return await fn(span);
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** An async iterable that lives inside a span, ended when the iteration ends (or fails, or is dropped). */
export async function* spannedIterable<T>(
  name: string,
  attributes: Attributes,
  start: (span: Span) => AsyncIterable<T>,
  onItem: (span: Span, item: T) => void,
): AsyncGenerator<T> {
  const span = tracer().startSpan(name, { attributes, kind: SpanKind.CLIENT });
  const ctx = trace.setSpan(context.active(), span);
  try {
    const iterator = context.with(ctx, () => start(span))[Symbol.asyncIterator]();
    while (true) {
      const next = await context.with(ctx, () => iterator.next());
      if (next.done) return;
      onItem(span, next.value);
      yield next.value;
    }
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}

/** The context a client's `traceparent` header names, so our spans join its trace. */
export function contextFromHeaders(headers: Record<string, string | string[] | undefined>) {
  return propagation.extract(context.active(), headers);
}

/** `traceparent` (and `tracestate`) for the active span, for an upstream call; empty without tracing. */
export function traceHeaders(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

export { type Span, SpanKind, SpanStatusCode };
