import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readGgufFileInfo } from 'node-llama-cpp';
import OpenAI from 'openai';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
} from 'openai/resources/chat/completions';
import { z } from 'zod';
import { type RunningServer, startServer } from '../../src/server/server.js';
import type { LocalLlamaModel } from '../../src/tiers/providers/local-llama/local-llama-model.js';
import { defaultEncoderPath } from '../support/default-encoder.js';
import { EVERY_PARAMETER } from '../support/openai-params.js';
import { createUpstreamModel, type OpenAIUpstream, startOpenAIUpstream } from '../support/openai-upstream.js';
import { localTierConfig, remoteTierConfig, writeServerConfig } from '../support/server-config.js';

/**
 * mechroute as a drop-in OpenAI endpoint, through the official `openai` client: with a remote tier,
 * every chat parameter reaches the upstream as the client sent it and everything the upstream answers
 * (n choices, tool calls, refusals, citations, audio, logprobs) comes back; with the local tier (the
 * real Gemma 3 270M through node-llama-cpp) each parameter is honoured or refused with a 400 naming
 * it. Model-dependent answers are kept to a few tokens.
 */
const REMOTE = 'gpt-4-1106-preview';
const LOCAL = 'gemma-3-270m';

let dir: string;
let model: LocalLlamaModel;
let upstream: OpenAIUpstream;
let server: RunningServer;
/** What the upstream answers instead of generating, while a test sets it. */
let scripted: unknown;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-wire-'));
  model = await createUpstreamModel(2);
  upstream = await startOpenAIUpstream({ model, apiKey: 'sk-wire-test-0000', script: () => scripted });
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    tiers: [
      localTierConfig(),
      remoteTierConfig(REMOTE, [{ base_url: upstream.baseUrl, api_key_env: 'WIRE_KEY' }], { max_retries: 0 }),
    ],
    policy: { version: 'wire', kind: 'threshold', threshold: {} },
  };
  server = await startServer({
    configPath: await writeServerConfig(dir, config),
    port: 0,
    env: { WIRE_KEY: 'sk-wire-test-0000' },
    logLevel: 'silent',
    watchPolicy: false,
  });
});

after(async () => {
  await server?.close();
  await upstream?.close();
  await model?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const client = () => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const lastReceived = () => upstream.requests.at(-1)!.body as Record<string, unknown>;

/** The 400 a request gets, as the official client raises it. */
async function badRequest(
  params: Record<string, unknown>,
): Promise<InstanceType<typeof OpenAI.BadRequestError>> {
  try {
    await client().chat.completions.create(params as unknown as ChatCompletionCreateParamsNonStreaming);
  } catch (error) {
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    return error;
  }
  assert.fail(`accepted ${JSON.stringify(params).slice(0, 200)}`);
}

const scriptedAnswer = {
  id: 'chatcmpl-scripted',
  object: 'chat.completion',
  created: 1,
  model: REMOTE,
  choices: [
    {
      index: 0,
      message: {
        role: 'assistant',
        content: '{"temp": 21}',
        refusal: null,
        annotations: [
          {
            type: 'url_citation',
            url_citation: { start_index: 0, end_index: 5, title: 'Meteo', url: 'https://meteo.example' },
          },
        ],
        audio: { id: 'audio_1', data: 'UklGRg==', expires_at: 1, transcript: 'twenty-one' },
      },
      logprobs: {
        content: [
          {
            token: '{"',
            logprob: -0.1,
            bytes: [123, 34],
            top_logprobs: [
              { token: '{"', logprob: -0.1, bytes: [123, 34] },
              { token: '{', logprob: -2.5, bytes: [123] },
            ],
          },
        ],
        refusal: null,
      },
      finish_reason: 'stop',
    },
    {
      index: 1,
      message: {
        role: 'assistant',
        content: null,
        refusal: null,
        tool_calls: [
          {
            id: 'call_9',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
          },
        ],
      },
      logprobs: null,
      finish_reason: 'tool_calls',
    },
  ],
  usage: { prompt_tokens: 50, completion_tokens: 12, total_tokens: 62 },
} satisfies ChatCompletion;

describe('a remote (OpenAI-compatible) tier', () => {
  it('forwards every OpenAI parameter as sent and relays every choice with all it holds', async () => {
    scripted = scriptedAnswer;
    try {
      const answer = await client().chat.completions.create({ ...EVERY_PARAMETER, model: REMOTE });
      // Each parameter, one by one, then the whole body: the tier's model name and `stream` are the only additions.
      const received = lastReceived();
      for (const [param, value] of Object.entries(EVERY_PARAMETER)) {
        if (param !== 'model') assert.deepEqual(received[param], value, param);
      }
      assert.deepEqual(received, { ...EVERY_PARAMETER, model: REMOTE, stream: false });
      assert.deepEqual(answer.choices, scriptedAnswer.choices);
      assert.deepEqual(answer.usage, scriptedAnswer.usage);
    } finally {
      scripted = undefined;
    }
  });

  it('forwards the streaming parameters, and streamed choices and tool calls reassemble', async () => {
    const { audio: _audio, modalities: _modalities, ...params } = EVERY_PARAMETER;
    const chunk = (
      index: number,
      delta: object,
      finish: string | null = null,
      logprobs: object | null = null,
    ) => ({
      id: 'chatcmpl-s',
      object: 'chat.completion.chunk',
      created: 1,
      model: REMOTE,
      choices: [{ index, delta, logprobs, finish_reason: finish }],
    });
    const token = { token: 'Sun', logprob: -0.2, bytes: [83, 117, 110], top_logprobs: [] };
    scripted = {
      chunks: [
        chunk(0, { role: 'assistant', content: '' }),
        chunk(0, { content: 'Sun' }, null, { content: [token], refusal: null }),
        chunk(1, { role: 'assistant', content: '' }),
        chunk(1, {
          tool_calls: [
            { index: 0, id: 'call_7', type: 'function', function: { name: 'get_weather', arguments: '' } },
          ],
        }),
        chunk(1, { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
        chunk(1, { tool_calls: [{ index: 0, function: { arguments: '"Rome"}' } }] }),
        chunk(0, {}, 'stop'),
        chunk(1, {}, 'tool_calls'),
        { ...chunk(0, {}), choices: [], usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 } },
      ],
    };
    try {
      const stream_options = { include_usage: true, include_obfuscation: true };
      const runner = client().chat.completions.stream({ ...params, model: REMOTE, stream_options });
      const chunks: ChatCompletionChunk[] = [];
      runner.on('chunk', (c) => chunks.push(c));
      const final = await runner.finalChatCompletion();
      assert.deepEqual(lastReceived(), { ...params, model: REMOTE, stream: true, stream_options });
      assert.equal(final.choices[0]!.message.content, 'Sun');
      assert.deepEqual(final.choices[0]!.logprobs?.content, [token]);
      assert.equal(final.choices[1]!.finish_reason, 'tool_calls');
      assert.deepEqual(final.choices[1]!.message.tool_calls, [
        { id: 'call_7', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } },
      ]);
      assert.equal(final.usage?.total_tokens, 13);
      // include_obfuscation is honoured on mechroute's own stream.
      assert.ok(chunks.every((c) => typeof (c as { obfuscation?: unknown }).obfuscation === 'string'));
    } finally {
      scripted = undefined;
    }
  });

  it('refuses streamed audio, which it could not relay, naming the parameter', async () => {
    const error = await badRequest({
      model: REMOTE,
      messages: [{ role: 'user', content: 'hi' }],
      modalities: ['text', 'audio'],
      audio: { format: 'wav', voice: 'alloy' },
      stream: true,
    });
    assert.equal(error.param, 'audio');
  });

  it("relays the upstream's own n answers and tool calls, streamed deltas reassembling into the same call", async () => {
    const two = await client().chat.completions.create({
      model: REMOTE,
      messages: [{ role: 'user', content: 'Name a color.' }],
      max_tokens: 4,
      n: 2,
      temperature: 1,
      seed: 3,
    });
    assert.deepEqual(
      two.choices.map((c) => c.index),
      [0, 1],
    );
    const request = {
      model: REMOTE,
      messages: [{ role: 'user' as const, content: 'What is the weather in Paris?' }],
      max_tokens: 20,
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'function' as const, function: { name: 'get_weather' } },
    };
    const whole = await client().chat.completions.create(request);
    const streamed = await client().chat.completions.stream(request).finalChatCompletion();
    assert.equal(whole.choices[0]!.finish_reason, 'tool_calls');
    assert.equal(streamed.choices[0]!.finish_reason, 'tool_calls');
    assert.deepEqual(callOf(streamed), callOf(whole));
    assert.equal(callOf(whole).arguments.city, 'Paris');
  });

  it('answers unknown fields, top-level or nested, with a 400 instead of forwarding them', async () => {
    const count = upstream.requests.length;
    const unknown = await badRequest({ model: REMOTE, messages: [{ role: 'user', content: 'hi' }], foo: 1 });
    assert.match(unknown.message, /Unrecognized request argument supplied: foo/);
    const nested = await badRequest({ model: REMOTE, messages: [{ role: 'user', content: 'hi', foo: 1 }] });
    assert.match(nested.message, /messages\.0/);
    assert.equal(upstream.requests.length, count, 'nothing reached the upstream');
  });
});

const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] } },
      required: ['city'],
      additionalProperties: false,
    },
    strict: true,
  },
};
const WeatherArgs = z.strictObject({ city: z.enum(['Paris', 'Rome', 'Oslo']) });

/**
 * The first answer's call: its name and parsed arguments. Arguments are compared parsed: the grammar
 * leaves the model free in whitespace, and two runs of one prompt may differ there (a reused prompt
 * cache batches the prefill differently, which moves the logits a little).
 */
function callOf(completion: ChatCompletion) {
  const call = completion.choices[0]!.message.tool_calls?.[0];
  assert.ok(call?.type === 'function');
  return { name: call.function.name, arguments: WeatherArgs.parse(JSON.parse(call.function.arguments)) };
}

describe('the local tier (Gemma 3 270M through node-llama-cpp)', () => {
  const ask = (content: string, extra: Record<string, unknown> = {}) =>
    client().chat.completions.create({
      model: LOCAL,
      messages: [{ role: 'user', content }],
      max_tokens: 8,
      ...extra,
    } as ChatCompletionCreateParamsNonStreaming);

  it('holds a json_schema answer to its schema: it parses and validates', async () => {
    const schema = {
      type: 'object',
      properties: {
        capital: { type: 'string', enum: ['Paris', 'Rome', 'Berlin'] },
        sure: { type: 'boolean' },
      },
      required: ['capital', 'sure'],
      additionalProperties: false,
    };
    const answer = await ask('What is the capital of France?', {
      max_tokens: 30,
      response_format: { type: 'json_schema', json_schema: { name: 'capital', schema, strict: true } },
    });
    assert.equal(answer.choices[0]!.finish_reason, 'stop');
    const parsed = z
      .strictObject({ capital: z.enum(['Paris', 'Rome', 'Berlin']), sure: z.boolean() })
      .parse(JSON.parse(answer.choices[0]!.message.content!));
    assert.ok(parsed.capital);
  });

  it('holds a json_object answer to JSON', async () => {
    // One example turn, or the 270M model adds keys until max_tokens.
    const answer = await client().chat.completions.create({
      model: LOCAL,
      messages: [
        { role: 'user', content: 'Reply with the JSON object {"answer": 4}.' },
        { role: 'assistant', content: '{"answer": 4}' },
        { role: 'user', content: 'Reply with the JSON object {"answer": 5}.' },
      ],
      max_tokens: 24,
      response_format: { type: 'json_object' },
    });
    const content = answer.choices[0]!.message.content!;
    assert.equal(answer.choices[0]!.finish_reason, 'stop', content);
    assert.equal(typeof JSON.parse(content), 'object');
  });

  it('calls a tool in OpenAI shape when told to, and the streamed deltas reassemble into the same call', async () => {
    const params = {
      model: LOCAL,
      messages: [{ role: 'user' as const, content: 'What is the weather in Paris?' }],
      max_tokens: 20,
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'function' as const, function: { name: 'get_weather' } },
    };
    const whole = await client().chat.completions.create(params);
    const choice = whole.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    const call = choice.message.tool_calls?.[0];
    assert.ok(call?.type === 'function');
    assert.match(call.id, /^call_\w+$/);
    assert.equal(call.function.name, 'get_weather');
    WeatherArgs.parse(JSON.parse(call.function.arguments));

    const chunks: ChatCompletionChunk[] = [];
    const runner = client().chat.completions.stream(params);
    runner.on('chunk', (c) => chunks.push(c));
    const streamed = (await runner.finalChatCompletion()).choices[0]!;
    const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    assert.ok(deltas.length > 2, 'the arguments arrive in pieces');
    assert.deepEqual(Object.keys(deltas[0]!).sort(), ['function', 'id', 'index', 'type']);
    assert.ok(deltas.slice(1).every((d) => d.id === undefined && d.function?.name === undefined));
    assert.deepEqual(callOf({ ...whole, choices: [streamed] }), callOf(whole));
    assert.equal(streamed.finish_reason, 'tool_calls');
  });

  it('calls one of the tools with tool_choice "required"', async () => {
    const answer = await ask('What time is it?', {
      max_tokens: 20,
      tools: [
        WEATHER_TOOL,
        { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
      ],
      tool_choice: 'required',
    });
    const call = answer.choices[0]!.message.tool_calls?.[0];
    assert.ok(call?.type === 'function');
    assert.ok(['get_weather', 'get_time'].includes(call.function.name));
    assert.equal(typeof JSON.parse(call.function.arguments), 'object');
  });

  it('gives n answers, and n indexed streams of deltas when streaming', async () => {
    const answer = await ask('Name a color.', { max_tokens: 4, n: 2, temperature: 1, seed: 11 });
    assert.deepEqual(
      answer.choices.map((c) => c.index),
      [0, 1],
    );
    assert.ok(answer.usage!.completion_tokens <= 8);
    const stream = await client().chat.completions.create({
      model: LOCAL,
      messages: [{ role: 'user', content: 'Name a color.' }],
      max_tokens: 4,
      n: 2,
      temperature: 1,
      seed: 11,
      stream: true,
    });
    const texts = ['', ''];
    const finished = new Set<number>();
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        texts[c.index] += c.delta.content ?? '';
        if (c.finish_reason) finished.add(c.index);
      }
    }
    assert.deepEqual([...finished].sort(), [0, 1]);
    assert.ok(texts.every((text) => text.length > 0));
  });

  it('reports top_logprobs: the most likely tokens at each position, the chosen one first under greedy decoding', async () => {
    const answer = await ask('Name a color.', { max_tokens: 3, logprobs: true, top_logprobs: 3 });
    const content = answer.choices[0]!.logprobs?.content ?? [];
    assert.equal(content.length, answer.usage!.completion_tokens);
    for (const token of content) {
      assert.equal(token.top_logprobs.length, 3);
      assert.equal(token.top_logprobs[0]!.token, token.token);
      const lps = token.top_logprobs.map((t) => t.logprob);
      assert.deepEqual(
        lps,
        [...lps].sort((a, b) => b - a),
      );
    }
  });

  it('applies presence_penalty and logit_bias (token ids of its own vocabulary) in sampling', async () => {
    const prompt = 'List the numbers 1, 1, 1, 1, 1, 1, 1';
    const plain = (await ask(prompt, { max_tokens: 8 })).choices[0]!.message.content;
    const penalised = (await ask(prompt, { max_tokens: 8, presence_penalty: 2 })).choices[0]!.message.content;
    assert.notEqual(penalised, plain);
    const vocabulary = (await readGgufFileInfo(defaultEncoderPath())).metadata.tokenizer.ggml.tokens;
    const hello = vocabulary.indexOf('Hello');
    assert.ok(hello > 0);
    const biased = await ask('Name a color.', { max_tokens: 2, logit_bias: { [hello]: 100 } });
    assert.match(biased.choices[0]!.message.content!, /^Hello/);
    const eog = await badRequest({
      model: LOCAL,
      messages: [{ role: 'user', content: 'x' }],
      logit_bias: { '1': 5 },
    });
    assert.equal(eog.param, 'logit_bias');
  });

  it('takes identifiers and hints that ask nothing of the model', async () => {
    const answer = await ask('Hi', {
      max_tokens: 2,
      user: 'u-1',
      safety_identifier: 'hash',
      metadata: { k: 'v' },
      store: false,
      prompt_cache_key: 'k',
      service_tier: 'default',
      parallel_tool_calls: false,
      tools: [WEATHER_TOOL],
      tool_choice: 'none',
    });
    assert.equal(answer.choices[0]!.message.tool_calls, undefined);
  });

  it('refuses with a 400 naming the parameter what it cannot do', async () => {
    const hi = [{ role: 'user', content: 'hi' }];
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ audio: { format: 'wav', voice: 'alloy' }, modalities: ['text', 'audio'] }, 'audio'],
      [{ functions: [{ name: 'f' }] }, 'functions'],
      [{ moderation: { model: 'omni-moderation-latest' } }, 'moderation'],
      [{ web_search_options: {} }, 'web_search_options'],
      [{ prediction: { type: 'content', content: 'x' } }, 'prediction'],
      [{ verbosity: 'low' }, 'verbosity'],
      [{ reasoning_effort: 'high' }, 'reasoning_effort'],
      [{ service_tier: 'priority' }, 'service_tier'],
      [{ store: true }, 'store'],
      [{ tools: [{ type: 'custom', custom: { name: 'sql' } }] }, 'tools'],
      [{ messages: [{ role: 'user', content: 'hi', name: 'ann' }] }, 'messages[0].name'],
      [
        {
          messages: [
            { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] },
          ],
        },
        'messages[0].content[0]',
      ],
      [
        {
          response_format: {
            type: 'json_schema',
            json_schema: {
              name: 'n',
              strict: true,
              schema: { type: 'object', properties: { n: { type: 'integer', minimum: 3 } } },
            },
          },
        },
        'response_format',
      ],
      [{ tools: [WEATHER_TOOL], response_format: { type: 'json_object' } }, 'response_format'],
    ];
    for (const [extra, param] of cases) {
      const error = await badRequest({ model: LOCAL, messages: hi, ...extra });
      assert.equal(error.param, param, JSON.stringify(extra));
      assert.ok(error.message.includes(param), error.message);
    }
  });

  it('a routed request the local tier refuses is answered by the next tier up', async () => {
    scripted = scriptedAnswer;
    try {
      const answer = (await client().chat.completions.create(
        {
          model: 'mechroute',
          messages: [{ role: 'user', content: 'Who won the match yesterday?' }],
          web_search_options: { search_context_size: 'low' },
        },
        // Threshold 0 decides the cheapest tier: the local one, which cannot search the web.
        { headers: { 'x-mechroute-threshold': '0' } },
      )) as ChatCompletion & { mechroute: { decided_tier: string; answered_by: string } };
      assert.equal(answer.mechroute.decided_tier, LOCAL);
      assert.equal(answer.mechroute.answered_by, REMOTE);
      assert.deepEqual(lastReceived().web_search_options, { search_context_size: 'low' });
    } finally {
      scripted = undefined;
    }
  });

  it('answers put together from several calls refuse what needs one call', async () => {
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-mechroute-mode': 'advisor' },
      body: JSON.stringify({ model: LOCAL, messages: [{ role: 'user', content: 'hi' }], n: 2 }),
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: { param: string } }).error.param, 'n');
  });
});
