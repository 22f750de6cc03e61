import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { z } from 'zod';
import { buildChatCompletion, toOpenAISse } from '../../../src/tiers/openai-sse.js';
import { type StreamPart, UpstreamTruncatedError } from '../../../src/tiers/tier-model.js';

const meta = { id: 'chatcmpl-1', model: 'weak', created: 1_700_000_000 };

async function* partsOf(parts: StreamPart[]) {
  yield* parts;
}

const good: StreamPart[] = [
  { type: 'start', tier: 'weak', deployment: 'weak/0', warnings: [] },
  { type: 'text-delta', text: 'Hel' },
  { type: 'text-delta', text: 'lo' },
  { type: 'finish', finish_reason: 'length', usage: { input_tokens: 4, output_tokens: 2 } },
];

async function sseText(parts: StreamPart[], includeUsage?: boolean): Promise<string> {
  let out = '';
  for await (const line of toOpenAISse(partsOf(parts), {
    ...meta,
    ...(includeUsage === false ? { includeUsage } : {}),
  }))
    out += line;
  return out;
}

/** The official client, talking to nothing but our adapter's bytes. */
const clientOver = (body: string) =>
  new OpenAI({
    apiKey: 'test',
    baseURL: 'http://127.0.0.1:1/v1',
    maxRetries: 0,
    fetch: async () => new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
  });

// The subset of OpenAI's chunk type we promise, as a schema (strict about what we send).
const ChunkSchema = z.strictObject({
  id: z.string(),
  object: z.literal('chat.completion.chunk'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.strictObject({
      index: z.number().int(),
      delta: z.strictObject({ role: z.literal('assistant').optional(), content: z.string().optional() }),
      logprobs: z.null(),
      finish_reason: z.enum(['stop', 'length', 'content_filter', 'tool_calls']).nullable(),
    }),
  ),
  usage: z
    .strictObject({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() })
    .optional(),
});

describe('parts → OpenAI SSE', () => {
  test('role first, content deltas, finish chunk, usage chunk, [DONE]; every event parses', async () => {
    const text = await sseText(good);
    const events = text.split('\n\n').filter(Boolean);
    assert.ok(events.every((e) => e.startsWith('data: ')));
    assert.equal(events.at(-1), 'data: [DONE]');
    const chunks = events
      .slice(0, -1)
      .map((e) => ChunkSchema.parse(JSON.parse(e.slice(6))) as ChatCompletionChunk);
    assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '' });
    assert.deepEqual(
      chunks.slice(1, 3).map((c) => c.choices[0]!.delta.content),
      ['Hel', 'lo'],
    );
    assert.equal(chunks[3]!.choices[0]!.finish_reason, 'length');
    assert.deepEqual(chunks[4]!.choices, []);
    assert.deepEqual(chunks[4]!.usage, { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 });
  });

  test('the official openai client reads the stream unchanged', async () => {
    const client = clientOver(await sseText(good));
    const stream = await client.chat.completions.create({
      model: 'weak',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    let content = '';
    let finish: string | null = null;
    let usage: ChatCompletionChunk['usage'];
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.equal(content, 'Hello');
    assert.equal(finish, 'length');
    assert.equal(usage?.total_tokens, 6);
  });

  test('an error part after deltas is a final error event, which the official client raises', async () => {
    const parts: StreamPart[] = [
      ...good.slice(0, 2),
      { type: 'error', error: new UpstreamTruncatedError('weak/0', 1) },
    ];
    const text = await sseText(parts);
    const events = text.split('\n\n').filter(Boolean);
    const last = JSON.parse(events.at(-1)!.slice(6));
    assert.equal(last.error.code, 'MR_ERR_UPSTREAM_TRUNCATED');
    assert.ok(!text.includes('[DONE]'));

    const client = clientOver(text);
    const stream = await client.chat.completions.create({
      model: 'weak',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    let content = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
    }, OpenAI.APIError);
    assert.equal(content, 'Hel', 'the deltas before the error still arrived');
  });

  test('includeUsage: false leaves out the usage chunk', async () => {
    const text = await sseText(good, false);
    assert.ok(!text.includes('"usage"'));
  });
});

test('chat.completion builder: the official client parses it, logprobs in OpenAI shape', async () => {
  const body = buildChatCompletion(
    {
      text: 'Hi',
      finish_reason: 'stop',
      usage: { input_tokens: 3, output_tokens: 1 },
      logprobs: { mean_logprob: -0.5, tokens: [{ token: 'Hi', logprob: -0.5 }] },
      warnings: [],
      tier: 'weak',
      deployment: 'weak/local',
    },
    meta,
  );
  const typed: ChatCompletion = body;
  const client = new OpenAI({
    apiKey: 'test',
    baseURL: 'http://127.0.0.1:1/v1',
    fetch: async () => Response.json(typed),
  });
  const completion = await client.chat.completions.create({
    model: 'weak',
    messages: [{ role: 'user', content: 'x' }],
  });
  assert.equal(completion.choices[0]?.message.content, 'Hi');
  assert.equal(completion.choices[0]?.logprobs?.content?.[0]?.logprob, -0.5);
  assert.equal(completion.usage?.total_tokens, 4);
});

describe('n answers, tool calls and padding on the wire', () => {
  const call = {
    id: 'call_1',
    type: 'function' as const,
    function: { name: 'get_time', arguments: '{"zone":"UTC"}' },
  };
  const streamed: StreamPart[] = [
    { type: 'start', tier: 'weak', deployment: 'weak/0', warnings: [] },
    { type: 'text-delta', text: 'A' },
    { type: 'tool-call-delta', choice: 1, call: 0, id: 'call_1', name: 'get_time', arguments: '' },
    { type: 'tool-call-delta', choice: 1, call: 0, arguments: '{"zone":' },
    { type: 'tool-call-delta', choice: 1, call: 0, arguments: '"UTC"}' },
    {
      type: 'finish',
      finish_reason: 'stop',
      more_choices: [{ index: 1, finish_reason: 'tool_calls', tool_calls: [call] }],
      usage: { input_tokens: 4, output_tokens: 9 },
    },
  ];

  test("the official client's stream helper reassembles each answer, its tool call whole and once", async () => {
    const client = clientOver(await sseText(streamed));
    const runner = client.chat.completions.stream({
      model: 'weak',
      messages: [{ role: 'user', content: 'x' }],
      n: 2,
      tools: [{ type: 'function', function: { name: 'get_time' } }],
    });
    const completion = await runner.finalChatCompletion();
    assert.equal(completion.choices.length, 2);
    assert.equal(completion.choices[0]!.message.content, 'A');
    assert.equal(completion.choices[0]!.finish_reason, 'stop');
    assert.equal(completion.choices[1]!.finish_reason, 'tool_calls');
    assert.deepEqual(completion.choices[1]!.message.tool_calls, [call]);
  });

  test('a call a provider reports only in its finish goes out as one whole delta', async () => {
    const text = await sseText([
      { type: 'start', tier: 'weak', deployment: 'weak/0', warnings: [] },
      {
        type: 'finish',
        finish_reason: 'tool_calls',
        tool_calls: [call],
        usage: { input_tokens: 1, output_tokens: 1 },
      },
    ]);
    const deltas = text
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map((e) => JSON.parse(e.slice(6)) as ChatCompletionChunk)
      .flatMap((c) => c.choices.map((choice) => choice.delta));
    assert.deepEqual(
      deltas.flatMap((d) => d.tool_calls ?? []),
      [{ index: 0, ...call }],
    );
  });

  test('include_obfuscation pads every chunk with random text', async () => {
    let out = '';
    for await (const line of toOpenAISse(partsOf(good), { ...meta, obfuscate: true })) out += line;
    const chunks = out
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map((e) => JSON.parse(e.slice(6)) as { obfuscation?: string });
    assert.ok(
      chunks.length > 0 && chunks.every((c) => typeof c.obfuscation === 'string' && c.obfuscation.length > 0),
    );
  });

  test('chat.completion: one choice per answer, tool calls with null content, top logprobs', () => {
    const body: ChatCompletion = buildChatCompletion(
      {
        text: 'Hi',
        finish_reason: 'stop',
        logprobs: {
          mean_logprob: -0.5,
          tokens: [{ token: 'Hi', logprob: -0.5, top_logprobs: [{ token: 'Hi', logprob: -0.5 }] }],
        },
        more_choices: [{ index: 1, text: '', finish_reason: 'tool_calls', tool_calls: [call] }],
        usage: { input_tokens: 3, output_tokens: 5 },
        warnings: [],
        tier: 'weak',
        deployment: 'weak/local',
      },
      meta,
    );
    assert.deepEqual(
      body.choices.map((c) => [c.index, c.message.content, c.finish_reason]),
      [
        [0, 'Hi', 'stop'],
        [1, null, 'tool_calls'],
      ],
    );
    assert.deepEqual(body.choices[1]!.message.tool_calls, [call]);
    assert.deepEqual(body.choices[0]!.logprobs?.content?.[0]?.top_logprobs, [
      { token: 'Hi', logprob: -0.5, bytes: null },
    ]);
    // Logprobs a cascade asked for on its own account stay out of the client's answer.
    assert.equal(
      buildChatCompletion({ ...plainResult(), logprobs: { mean_logprob: -1 } }, { ...meta, logprobs: false })
        .choices[0]!.logprobs,
      null,
    );
  });
});

function plainResult() {
  return {
    text: 'x',
    finish_reason: 'stop' as const,
    usage: { input_tokens: 1, output_tokens: 1 },
    warnings: [],
    tier: 'weak',
    deployment: 'weak/local',
  };
}
