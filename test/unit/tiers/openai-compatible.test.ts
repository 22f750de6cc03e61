import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, test } from 'node:test';
import { createOpenAICompatibleModel } from '../../../src/tiers/providers/openai-compatible/openai-compatible-model.js';
import {
  MissingCredentialsError,
  TierError,
  UpstreamAbortedError,
  UpstreamProtocolError,
  UpstreamTimeoutError,
} from '../../../src/tiers/tier-model.js';
import {
  chunk,
  collect,
  completion,
  goodStream,
  hangingFetch,
  jsonResponse,
  request,
  sseResponse,
} from './wire-fixtures.js';

const base = { tier: 't', deployment: '0', baseUrl: 'http://up.test/v1/', model: 'm' };

describe('openai-compatible provider', () => {
  test('sends the OpenAI body and reads a JSON answer', async () => {
    let sent: { url: string; body: Record<string, unknown> } | undefined;
    const model = createOpenAICompatibleModel(base, {
      fetch: async (url, init) => {
        sent = { url: String(url), body: JSON.parse(String(init?.body)) };
        return jsonResponse(completion('Hi'));
      },
    });
    const result = await model.generate({
      ...request,
      temperature: 0,
      stop: ['\n'],
      seed: 3,
      logprobs: true,
    });
    assert.equal(sent?.url, 'http://up.test/v1/chat/completions');
    assert.deepEqual(sent?.body, {
      model: 'm',
      messages: request.messages,
      max_tokens: 8,
      temperature: 0,
      stop: ['\n'],
      seed: 3,
      logprobs: true,
      stream: false,
    });
    assert.equal(result.text, 'Hi');
    assert.deepEqual(result.usage, { input_tokens: 5, output_tokens: 2 });
    assert.match(result.warnings.join(), /no logprobs/);
  });

  test('holds nothing through the signal it gives fetch once a call is over', async () => {
    // undici keeps that signal until the Request is finalized: whatever listens on it stays on the
    // heap with it (issue 16, #11: a call's answer was kept for GC cycles after it ended).
    const signals: AbortSignal[] = [];
    const model = createOpenAICompatibleModel(base, {
      fetch: async (_url, init) => {
        signals.push(init!.signal!);
        return String(init?.body).includes('"stream":true')
          ? sseResponse([goodStream])
          : jsonResponse(completion('Hi'));
      },
    });
    const caller = new AbortController();
    await model.generate(request, { signal: caller.signal });
    await collect(model.stream(request, { signal: caller.signal }));
    assert.equal(signals.length, 2);
    for (const signal of signals) assert.equal(getEventListeners(signal, 'abort').length, 0);
    assert.equal(getEventListeners(caller.signal, 'abort').length, 0);
  });

  test('reads cached prompt tokens (prompt_tokens_details.cached_tokens) into the usage', async () => {
    let cached: number | null = 3;
    const model = createOpenAICompatibleModel(base, {
      fetch: async () => {
        const body = completion('Hi');
        return jsonResponse({
          ...body,
          usage: { ...body.usage, prompt_tokens_details: { cached_tokens: cached } },
        });
      },
    });
    const result = await model.generate(request);
    assert.deepEqual(result.usage, { input_tokens: 5, output_tokens: 2, cached_input_tokens: 3 });
    // A null detail (some servers send it) is no cache information, not zero.
    cached = null;
    assert.deepEqual((await model.generate(request)).usage, { input_tokens: 5, output_tokens: 2 });
  });

  test('streams with include_usage', async () => {
    let body: Record<string, unknown> = {};
    const model = createOpenAICompatibleModel(base, {
      fetch: async (_url, init) => {
        body = JSON.parse(String(init?.body));
        return sseResponse([goodStream]);
      },
    });
    const parts = await collect(model.stream(request));
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.deepEqual(parts[0], { type: 'start', tier: 't', deployment: 't/0', warnings: [] });
    assert.equal(parts.at(-1)!.type, 'finish');
  });

  test('the limit keeps the name the client gave it; stream options are merged, usage always asked for', async () => {
    const bodies: Record<string, unknown>[] = [];
    const model = createOpenAICompatibleModel(base, {
      fetch: async (_url, init) => {
        bodies.push(JSON.parse(String(init?.body)));
        return bodies.length === 1 ? jsonResponse(completion('Hi')) : sseResponse([goodStream]);
      },
    });
    await model.generate({ ...request, max_tokens_name: 'max_completion_tokens', user: 'u', n: 1 });
    await collect(model.stream({ ...request, stream_options: { include_obfuscation: false } }));
    assert.deepEqual(bodies[0], {
      model: 'm',
      messages: request.messages,
      max_completion_tokens: 8,
      user: 'u',
      n: 1,
      stream: false,
    });
    assert.deepEqual(bodies[1]!.stream_options, { include_obfuscation: false, include_usage: true });
  });

  test('a request that cannot be serialised is its own fault: a 400, never retried, nothing sent', async () => {
    let called = false;
    const model = createOpenAICompatibleModel(base, {
      fetch: async () => {
        called = true;
        return jsonResponse(completion(''));
      },
    });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad = { ...request, metadata: cyclic as unknown as Record<string, string> };
    await assert.rejects(
      model.generate(bad),
      (e) => e instanceof TierError && e.status === 400 && !e.isRetryable,
    );
    const parts = await collect(model.stream(bad));
    assert.ok(parts[0]!.type === 'error' && parts[0]!.error.status === 400);
    assert.equal(called, false);
  });

  test('a JSON body of the wrong shape is a protocol error', async () => {
    const model = createOpenAICompatibleModel(base, { fetch: async () => jsonResponse({ choices: [] }) });
    await assert.rejects(model.generate(request), UpstreamProtocolError);
  });

  test('first-byte timeout on a hung stream; a JSON call is bounded by the total timeout', async () => {
    const model = createOpenAICompatibleModel(
      { ...base, timeoutMs: 200, firstByteTimeoutMs: 30 },
      { fetch: hangingFetch },
    );
    const started = Date.now();
    const parts = await collect(model.stream(request));
    assert.ok(parts[0]!.type === 'error' && parts[0]!.error instanceof UpstreamTimeoutError);
    assert.match(parts[0]!.error.message, /first byte within 30 ms/);
    assert.ok(Date.now() - started < 150);
    await assert.rejects(
      model.generate(request),
      (e) => e instanceof UpstreamTimeoutError && /complete answer within 200 ms/.test(e.message),
    );
  });

  test('total timeout on a stream that stalls after its first bytes', async () => {
    const stalled = () =>
      new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(`data: ${chunk('a')}\n\n`));
          },
        }),
        { headers: { 'content-type': 'text/event-stream' } },
      );
    const model = createOpenAICompatibleModel({ ...base, timeoutMs: 50 }, { fetch: async () => stalled() });
    const parts = await collect(model.stream(request));
    const last = parts.at(-1)!;
    assert.ok(last.type === 'error' && last.error instanceof UpstreamTimeoutError, JSON.stringify(last));
    assert.match(last.error.message, /complete answer within 50 ms/);
  });

  test('a caller abort is reported as such, not as a timeout', async () => {
    const model = createOpenAICompatibleModel(base, { fetch: hangingFetch });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 10);
    await assert.rejects(model.generate(request, { signal: controller.signal }), UpstreamAbortedError);
  });

  test('an unset key variable fails before any request, naming the variable', async () => {
    let called = false;
    const model = createOpenAICompatibleModel(
      { ...base, apiKeyEnv: 'NOPE_KEY' },
      {
        env: {},
        fetch: async () => {
          called = true;
          return jsonResponse(completion(''));
        },
      },
    );
    assert.equal(model.hasCredentials(), false);
    await assert.rejects(
      model.generate(request),
      (e) => e instanceof MissingCredentialsError && /NOPE_KEY/.test(e.message),
    );
    assert.equal(called, false);
  });
});
