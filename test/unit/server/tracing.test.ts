import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { FastifyInstance } from 'fastify';
import type { RouterServices } from '../../../src/server/services.js';
import { type ScriptedUpstream, startScriptedUpstream } from '../../support/scripted-upstream.js';
import { remoteTierConfig } from '../../support/server-config.js';
import { buildTestApp } from '../../support/test-app.js';

/**
 * OpenTelemetry spans of a routed request, collected with an in-memory exporter: the request, the
 * decision with the encoder pass inside it, and each tier attempt (with retries and cost), and the
 * W3C traceparent that reaches the upstream joins the client's trace.
 */
const exporter = new InMemorySpanExporter();
new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).register();

describe('tracing', () => {
  let dir: string;
  let app: FastifyInstance;
  let services: RouterServices;
  let upstream: ScriptedUpstream;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-tracing-'));
    upstream = await startScriptedUpstream({ failCalls: [1] });
    const deployments = [{ base_url: upstream.url }];
    ({ app, services } = await buildTestApp(dir, {
      tiers: [
        remoteTierConfig('mixtral-8x7b-instruct', deployments, { max_retries: 1 }),
        remoteTierConfig('gpt-4-1106-preview', deployments),
      ],
    }));
  });
  after(async () => {
    await app?.close();
    await services?.close();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('spans the request, the decision, the encoder and each tier attempt, and propagates traceparent', async () => {
    const clientTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const response = await app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { traceparent: `00-${clientTrace}-00f067aa0ba902b7-01` },
      payload: {
        model: 'mechroute',
        messages: [{ role: 'user', content: 'What is 2 + 2?' }],
        max_tokens: 4,
        mechroute: { threshold: 0 },
      },
    });
    assert.equal(response.statusCode, 200, response.body);
    const spans = exporter.getFinishedSpans();
    const byName = (name: string) => spans.filter((s) => s.name === name);
    const [request] = byName('mechroute.request');
    const [decision] = byName('mechroute.decision');
    const [encoder] = byName('mechroute.encoder');
    const attempts = byName('mechroute.tier_attempt');
    assert.ok(request && decision && encoder && attempts.length === 1, spans.map((s) => s.name).join());
    for (const span of spans) assert.equal(span.spanContext().traceId, clientTrace, span.name);
    assert.equal(decision.parentSpanContext?.spanId, request.spanContext().spanId);
    assert.equal(encoder.parentSpanContext?.spanId, decision.spanContext().spanId);
    assert.equal(attempts[0]!.parentSpanContext?.spanId, request.spanContext().spanId);
    const attempt = attempts[0]!.attributes;
    assert.equal(attempt['mechroute.tier'], 'mixtral-8x7b-instruct');
    assert.equal(attempt['mechroute.policy_version'], 'test');
    assert.equal(typeof attempt['mechroute.p_success'], 'number');
    assert.equal(attempt['mechroute.retries'], 1, 'one 503, then a retry');
    assert.ok((attempt['mechroute.cost_usd'] as number) > 0);
    assert.equal(decision.attributes['mechroute.tier'], 'mixtral-8x7b-instruct');
    // Both upstream calls carried the attempt span's context, in the client's trace.
    assert.equal(upstream.headers.length, 2);
    for (const h of upstream.headers) {
      assert.match(
        String(h.traceparent),
        new RegExp(`^00-${clientTrace}-${attempts[0]!.spanContext().spanId}-01$`),
      );
    }
  });
});
