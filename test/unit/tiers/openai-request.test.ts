import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChatCompletionRequest } from '../../../src/server/api-schema.js';
import {
  composedAnswerRefusal,
  localRefusal,
  remoteRefusal,
  responseOptionsOf,
  toTierRequest,
} from '../../../src/tiers/openai-request.js';
import type { TierRequest } from '../../../src/tiers/tier-model.js';
import { EVERY_PARAMETER } from '../../support/openai-params.js';

/** A client's parameters → the tier request, and which parameters each kind of tier refuses. */
const parse = (body: Record<string, unknown>) =>
  parseChatCompletionRequest({ model: 'mechroute', messages: [{ role: 'user', content: 'hi' }], ...body });

test('every parameter reaches the tier request as sent, but model, stream and the extension', () => {
  const { model: _model, messages, max_completion_tokens, ...rest } = EVERY_PARAMETER;
  const request = toTierRequest(
    parseChatCompletionRequest({ ...EVERY_PARAMETER, mechroute: { threshold: 1 } }),
  );
  assert.deepEqual(request, {
    messages,
    ...rest,
    max_tokens: max_completion_tokens,
    max_tokens_name: 'max_completion_tokens',
  });
});

test('null means the default: such fields are left out; max_tokens keeps its name', () => {
  const request = toTierRequest(parse({ temperature: null, seed: null, stop: null, max_tokens: 9 }));
  assert.deepEqual(request, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 9 });
});

test('a cascade asks the tier for logprobs; the client sees them only if it asked', () => {
  const body = parse({});
  assert.equal(toTierRequest(body, { logprobs: true }).logprobs, true);
  assert.deepEqual(responseOptionsOf(body), { includeUsage: false, obfuscate: false, logprobs: false });
  const streaming = parse({
    stream: true,
    stream_options: { include_usage: true, include_obfuscation: true },
  });
  assert.deepEqual(responseOptionsOf(streaming), { includeUsage: true, obfuscate: true, logprobs: false });
});

const hi: TierRequest = { messages: [{ role: 'user', content: 'hi' }] };

test('the local tier refuses, by name, what it cannot do', () => {
  const cases: Array<[Partial<TierRequest>, string]> = [
    [{ audio: { format: 'mp3', voice: 'alloy' } }, 'audio'],
    [{ modalities: ['text', 'audio'] }, 'modalities'],
    [{ functions: [{ name: 'f' }] }, 'functions'],
    [{ function_call: 'auto' }, 'function_call'],
    [{ moderation: { model: 'omni-moderation-latest' } }, 'moderation'],
    [{ web_search_options: {} }, 'web_search_options'],
    [{ prediction: { type: 'content', content: 'x' } }, 'prediction'],
    [{ verbosity: 'low' }, 'verbosity'],
    [{ reasoning_effort: 'high' }, 'reasoning_effort'],
    [{ service_tier: 'flex' }, 'service_tier'],
    [{ store: true }, 'store'],
    [{ tools: [{ type: 'custom', custom: { name: 'sql' } }] }, 'tools'],
    [{ messages: [{ role: 'user', content: 'hi', name: 'ann' }] }, 'messages[0].name'],
    [{ messages: [{ role: 'function', name: 'f', content: 'x' }] }, 'messages[0].role'],
    [
      {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'x' },
              { type: 'image_url', image_url: { url: 'u' } },
            ],
          },
        ],
      },
      'messages[0].content[1]',
    ],
  ];
  for (const [extra, param] of cases) {
    assert.equal(localRefusal({ ...hi, ...extra } as TierRequest)?.param, param, JSON.stringify(extra));
  }
});

test('the local tier takes the rest: sampling, penalties, formats, tools, n, logprobs, ids and hints', () => {
  const request: TierRequest = {
    ...hi,
    temperature: 0.5,
    top_p: 0.9,
    seed: 1,
    stop: ['x'],
    n: 3,
    logprobs: true,
    top_logprobs: 2,
    frequency_penalty: 1,
    presence_penalty: -1,
    logit_bias: { '10': 1 },
    response_format: { type: 'json_object' },
    tools: [{ type: 'function', function: { name: 'f' } }],
    tool_choice: 'required',
    parallel_tool_calls: false,
    user: 'u',
    safety_identifier: 's',
    metadata: { a: 'b' },
    store: false,
    prompt_cache_key: 'k',
    service_tier: 'default',
    reasoning_effort: 'none',
    modalities: ['text'],
  };
  assert.equal(localRefusal(request), undefined);
});

test('a remote tier forwards everything, but cannot relay streamed audio', () => {
  const audio: TierRequest = {
    ...hi,
    modalities: ['text', 'audio'],
    audio: { format: 'wav', voice: 'alloy' },
  };
  assert.equal(remoteRefusal(audio, false), undefined);
  assert.equal(remoteRefusal(audio, true)?.param, 'audio');
});

test('answers put together from several calls refuse what needs one call', () => {
  const cases: Array<[Partial<TierRequest>, string]> = [
    [{ n: 2 }, 'n'],
    [{ logprobs: true }, 'logprobs'],
    [{ tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools'],
    [{ response_format: { type: 'json_object' } }, 'response_format'],
    [{ stream_options: { include_obfuscation: true } }, 'stream_options.include_obfuscation'],
  ];
  for (const [extra, param] of cases) {
    assert.equal(composedAnswerRefusal({ ...hi, ...extra } as TierRequest, 'steps')?.param, param);
  }
  assert.equal(composedAnswerRefusal({ ...hi, n: 1, response_format: { type: 'text' } }, 'steps'), undefined);
});
