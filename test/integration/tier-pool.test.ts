import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { TierConfigSchema } from '../../src/config/config-schema.js';
import type { LocalLlamaModel } from '../../src/tiers/providers/local-llama/local-llama-model.js';
import { type StreamPart, TierError, type TierRequest } from '../../src/tiers/tier-model.js';
import { createTierPool, type TierPool, type TierPoolDeps } from '../../src/tiers/tier-pool.js';
import { defaultEncoderPath } from '../support/default-encoder.js';
import { createUpstreamModel, type OpenAIUpstream, startOpenAIUpstream } from '../support/openai-upstream.js';

/**
 * The tier pool against real HTTP and a real model: two fastify upstreams on 127.0.0.1 serve the
 * default GGUF through the local provider, and faults are switched on at the first one. Generations are
 * kept to a few tokens; every call is bounded by the pool's timeouts.
 */

const env = { UP_KEY_A: 'sk-test-aaaaaaaaaaaaaaaa', UP_KEY_B: 'sk-test-bbbbbbbbbbbbbbbb' };
const ask = (max_tokens = 8): TierRequest => ({
  messages: [{ role: 'user', content: 'Name three colours.' }],
  max_tokens,
});

let local: LocalLlamaModel;
let a: OpenAIUpstream;
let b: OpenAIUpstream;

before(async () => {
  local = await createUpstreamModel();
  a = await startOpenAIUpstream({ model: local, apiKey: env.UP_KEY_A });
  b = await startOpenAIUpstream({ model: local, apiKey: env.UP_KEY_B });
});

after(async () => {
  await a?.close();
  await b?.close();
  await local?.dispose();
});

function remoteTier(
  overrides: {
    timeout_ms?: number;
    max_retries?: number;
    cooldown?: { failures: number; seconds: number };
  } = {},
) {
  return TierConfigSchema.parse({
    id: 'remote',
    provider: 'openai',
    model: 'gemma-upstream',
    price: { input_per_mtok: 1, output_per_mtok: 2 },
    context_window: 512,
    deployments: [
      { base_url: a.baseUrl, api_key_env: 'UP_KEY_A' },
      { base_url: b.baseUrl, api_key_env: 'UP_KEY_B' },
    ],
    timeout_ms: overrides.timeout_ms ?? 30_000,
    max_retries: overrides.max_retries ?? 1,
    cooldown: overrides.cooldown ?? { failures: 2, seconds: 2 },
  });
}

const deps = (extra: Partial<TierPoolDeps> = {}): TierPoolDeps => ({
  env,
  backoff: { baseMs: 50, maxMs: 200 },
  ...extra,
});

async function collect(parts: AsyncIterable<StreamPart>) {
  const out: StreamPart[] = [];
  for await (const part of parts) out.push(part);
  return out;
}

function freshUpstreams() {
  a.setFault(undefined);
  b.setFault(undefined);
}

const countA = () => a.requests.length;

describe('local provider and upstream', () => {
  test('the local model generates with its chat template, logprobs and usage', async (t) => {
    const started = performance.now();
    const result = await local.generate({ ...ask(16), logprobs: true });
    const seconds = (performance.now() - started) / 1000;
    assert.ok(result.usage.input_tokens > 5);
    assert.ok(result.usage.output_tokens > 0 && result.usage.output_tokens <= 16);
    assert.ok(
      result.logprobs && result.logprobs.mean_logprob <= 0 && Number.isFinite(result.logprobs.mean_logprob),
    );
    assert.equal(result.logprobs?.tokens?.length, result.usage.output_tokens);
    t.diagnostic(
      `chat template: ${local.chatTemplate}; ${result.usage.output_tokens} tokens in ${seconds.toFixed(2)} s = ${(result.usage.output_tokens / seconds).toFixed(1)} tok/s (prefill included); mean logprob ${result.logprobs?.mean_logprob.toFixed(3)}`,
    );
  });

  test('reuses the KV cache of a shared prompt prefix, reports it as cached tokens, answers the same', async () => {
    const system = 'You are a careful math tutor. Solve the problem step by step, one short step per line.';
    const request = (question: string): TierRequest => ({
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: question },
      ],
      max_tokens: 12,
    });
    const first = await local.generate(request('A train travels 60 km in 1.5 hours. What is its speed?'));
    const other = await local.generate(request('What is 15% of 80?'));
    // The system prompt's tokens (and the template around them) come from the cache, the question not.
    assert.ok(
      other.usage.cached_input_tokens! > 10 &&
        other.usage.cached_input_tokens! < other.usage.input_tokens - 5,
      JSON.stringify(other.usage),
    );
    const again = await local.generate(request('A train travels 60 km in 1.5 hours. What is its speed?'));
    assert.equal(again.usage.cached_input_tokens, other.usage.cached_input_tokens);
    assert.equal(again.text, first.text, 'greedy answers do not change with the cache');
    const repeat = await local.generate(request('A train travels 60 km in 1.5 hours. What is its speed?'));
    // All but the last prompt token (re-evaluated for its logits); the generated tail is dropped.
    assert.equal(repeat.usage.cached_input_tokens, repeat.usage.input_tokens - 1);
    assert.equal(repeat.text, first.text);
    // OpenAI clients see it as prompt_tokens_details.cached_tokens, and the remote provider reads it back.
    const client = new OpenAI({ baseURL: a.baseUrl, apiKey: env.UP_KEY_A, maxRetries: 0, timeout: 30_000 });
    const body = {
      model: 'gemma',
      messages: [
        { role: 'system' as const, content: system },
        { role: 'user' as const, content: 'What is 15% of 80?' },
      ],
      max_tokens: 4,
    };
    await client.chat.completions.create(body);
    const completion = await client.chat.completions.create(body);
    assert.ok(
      (completion.usage?.prompt_tokens_details?.cached_tokens ?? 0) > 10,
      JSON.stringify(completion.usage),
    );
  });

  test('the official openai client works unchanged against the upstream, normal and streaming', async () => {
    const client = new OpenAI({ baseURL: a.baseUrl, apiKey: env.UP_KEY_A, maxRetries: 0, timeout: 30_000 });
    const completion = await client.chat.completions.create({
      model: 'gemma',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 8,
    });
    assert.equal(typeof completion.choices[0]?.message.content, 'string');
    assert.ok(
      completion.choices[0]?.finish_reason === 'stop' || completion.choices[0]?.finish_reason === 'length',
    );
    assert.ok((completion.usage?.completion_tokens ?? 0) > 0);

    const stream = await client.chat.completions.create({
      model: 'gemma',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.ok(finish === 'stop' || finish === 'length');
    assert.ok((usage?.completion_tokens ?? 0) > 0);
    await assert.rejects(
      new OpenAI({ baseURL: a.baseUrl, apiKey: 'wrong', maxRetries: 0 }).models.list(),
      OpenAI.APIError,
    );
  });
});

test('a local tier in the pool loads the GGUF through the shared llama instance and streams', async () => {
  const tier = TierConfigSchema.parse({
    id: 'worker',
    provider: 'local',
    model: defaultEncoderPath(),
    context_window: 512,
  });
  const pool = await createTierPool([tier], deps({ local: { sequences: 2 } }));
  try {
    assert.deepEqual(pool.availability().worker, { available: true, reason: '1 of 1 deployments ready' });
    const parts = await collect(pool.stream('worker', { ...ask(6), logprobs: true, stop: ['\n\n'] }));
    assert.equal(parts[0]?.type === 'start' && parts[0].deployment, 'worker/local');
    const last = parts.at(-1)!;
    assert.ok(last.type === 'finish' && last.logprobs !== undefined, JSON.stringify(last));
  } finally {
    await pool.close();
  }
});

describe('tier pool over real HTTP', () => {
  test('a 500 fails over to the second deployment', async (t) => {
    freshUpstreams();
    const pool = await createTierPool([remoteTier()], deps());
    const healthyStart = performance.now();
    await collectFirstDelta(pool);
    const healthy = performance.now() - healthyStart;
    a.setFault({ kind: 'status', status: 500 });
    const before = countA();
    const started = performance.now();
    const first = await collectFirstDelta(pool);
    const failedOver = performance.now() - started;
    assert.equal(first.deployment, 'remote/1');
    assert.equal(countA() - before, 2, 'tried twice (max_retries 1) before failing over');
    t.diagnostic(
      `time to first delta: healthy ${healthy.toFixed(0)} ms, after two 500s and failover ${failedOver.toFixed(0)} ms`,
    );
    const result = await pool.generate('remote', ask());
    assert.equal(result.deployment, 'remote/1');
    a.setFault(undefined);
  });

  test('cooldown: a failing deployment is skipped, then probed and back after its cooldown', async () => {
    freshUpstreams();
    a.setFault({ kind: 'status', status: 503 });
    const pool = await createTierPool([remoteTier({ cooldown: { failures: 2, seconds: 1 } })], deps());
    assert.equal((await pool.generate('remote', ask(4))).deployment, 'remote/1');
    assert.equal(pool.deployments('remote')[0]!.state, 'open');
    const before = countA();
    assert.equal((await pool.generate('remote', ask(4))).deployment, 'remote/1');
    assert.equal(countA(), before, 'not contacted while cooling down');
    a.setFault(undefined);
    await new Promise((r) => setTimeout(r, 1_100));
    assert.equal(pool.deployments('remote')[0]!.state, 'half-open');
    assert.equal((await pool.generate('remote', ask(4))).deployment, 'remote/0');
    assert.equal(pool.deployments('remote')[0]!.state, 'closed');
  });

  test('a 429 with retry-after is waited out and retried on the same deployment', async () => {
    freshUpstreams();
    a.queueFaults({ kind: 'status', status: 429, retryAfterSeconds: 1 });
    const pool = await createTierPool([remoteTier()], deps());
    const started = performance.now();
    const result = await pool.generate('remote', ask(4));
    assert.equal(result.deployment, 'remote/0');
    assert.ok(performance.now() - started >= 1_000, 'waited for retry-after');
  });

  test('a hung upstream times out and fails over; so does a reset connection', async () => {
    freshUpstreams();
    const pool = await createTierPool([remoteTier({ timeout_ms: 1_500, max_retries: 0 })], deps());
    a.queueFaults({ kind: 'hang' });
    const hung = await pool.generate('remote', { ...ask(4) });
    assert.equal(hung.deployment, 'remote/1');
    a.queueFaults({ kind: 'reset' });
    const reset = await pool.generate('remote', ask(4));
    assert.equal(reset.deployment, 'remote/1');
  });

  test('slow first byte: over the limit fails over, under it is served', async () => {
    freshUpstreams();
    const pool = await createTierPool([remoteTier({ max_retries: 0 })], deps({ firstByteTimeoutMs: 800 }));
    a.queueFaults({ kind: 'slow-first-byte', delayMs: 3_000 });
    assert.equal((await collectFirstDelta(pool)).deployment, 'remote/1');
    a.queueFaults({ kind: 'slow-first-byte', delayMs: 200 });
    assert.equal((await collectFirstDelta(pool)).deployment, 'remote/0');
  });

  test('a drop mid-stream ends the stream with an error part after the deltas already sent', async () => {
    freshUpstreams();
    const pool = await createTierPool([remoteTier()], deps());
    const beforeB = b.requests.length;
    a.queueFaults({ kind: 'drop-mid-stream', afterDeltas: 1 });
    const parts = await collect(pool.stream('remote', ask(16)));
    const types = parts.map((p) => p.type);
    assert.equal(types[0], 'start');
    assert.ok(types.includes('text-delta'));
    assert.equal(types.at(-1), 'error');
    const last = parts.at(-1)!;
    assert.ok(
      last.type === 'error' && last.error.code === 'MR_ERR_UPSTREAM_NETWORK',
      last.type === 'error' ? last.error.message : '',
    );
    assert.equal(b.requests.length, beforeB, 'no failover once text has left');

    a.queueFaults({ kind: 'malformed-chunk', afterDeltas: 1 });
    const malformed = await collect(pool.stream('remote', ask(16)));
    const end = malformed.at(-1)!;
    assert.ok(end.type === 'error' && end.error.code === 'MR_ERR_UPSTREAM_PROTOCOL');
  });

  test('no request lost under mixed faults: each answered or failed with an explicit error', async (t) => {
    freshUpstreams();
    const pool = await createTierPool(
      [remoteTier({ timeout_ms: 4_000, max_retries: 1, cooldown: { failures: 50, seconds: 1 } })],
      deps(),
    );
    a.queueFaults(
      { kind: 'status', status: 500 },
      { kind: 'reset' },
      { kind: 'drop-mid-stream', afterDeltas: 1 },
      { kind: 'status', status: 429, retryAfterSeconds: 0 },
      { kind: 'hang' },
      { kind: 'malformed-chunk', afterDeltas: 1 },
    );
    b.queueFaults({ kind: 'status', status: 502 }, { kind: 'reset' });
    const calls = Array.from({ length: 10 }, (_, i) =>
      i % 2 === 0 ? streamOutcome(pool) : generateOutcome(pool),
    );
    const outcomes = await Promise.all(calls);
    const answered = outcomes.filter((o) => o === 'answered').length;
    const failed = outcomes.filter((o) => o.startsWith('MR_ERR_'));
    assert.equal(
      answered + failed.length,
      outcomes.length,
      `every request accounted for: ${outcomes.join(', ')}`,
    );
    assert.ok(answered >= 6, `most requests answered (${outcomes.join(', ')})`);
    t.diagnostic(`outcomes: ${outcomes.join(', ')}`);
  });
});

async function collectFirstDelta(pool: TierPool): Promise<{ deployment: string }> {
  let deployment = '';
  for await (const part of pool.stream('remote', ask(4))) {
    if (part.type === 'start') deployment = part.deployment;
    if (part.type === 'error') throw part.error;
    if (part.type === 'text-delta' || part.type === 'finish') break;
  }
  return { deployment };
}

async function streamOutcome(pool: TierPool): Promise<string> {
  const parts = await collect(pool.stream('remote', ask(6)));
  const last = parts.at(-1);
  if (last?.type === 'finish') return 'answered';
  if (last?.type === 'error') return last.error.code;
  return 'LOST';
}

async function generateOutcome(pool: TierPool): Promise<string> {
  try {
    await pool.generate('remote', ask(6));
    return 'answered';
  } catch (error) {
    return error instanceof TierError ? error.code : `LOST ${String(error)}`;
  }
}
