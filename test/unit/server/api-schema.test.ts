import assert from 'node:assert/strict';
import { test } from 'node:test';
import type {
  ChatCompletionAllowedToolChoice,
  ChatCompletionCreateParamsBase,
} from 'openai/resources/chat/completions';
import type { z } from 'zod';
import { ApiError } from '../../../src/errors.js';
import {
  type ChatCompletionRequestSchema,
  parseChatCompletionRequest,
} from '../../../src/server/api-schema.js';
import { httpStatusOf } from '../../../src/server/http-errors.js';
import { EVERY_PARAMETER } from '../../support/openai-params.js';

/**
 * The chat request schema against OpenAI's: it knows every parameter of the `openai` SDK (checked at
 * compile time below), types each one, and answers an unknown field, top-level or nested, with a 400
 * instead of passing it on.
 */
type Ours = z.input<typeof ChatCompletionRequestSchema>;
type Theirs = ChatCompletionCreateParamsBase;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// Every parameter the SDK sends is one the schema knows, and the schema knows nothing else but
// mechroute's own extension object.
const keysAgree: Same<keyof Theirs, Exclude<keyof Ours, 'mechroute'>> = true;
// Whatever the SDK's types allow, the schema's type allows; `allowed_tools.tools` is the one place the
// SDK types entries loosely ({[key]: unknown}) where the schema takes the documented tool references.
const acceptsWhatTheSdkSends = (params: Omit<Theirs, 'tool_choice'>): Omit<Ours, 'tool_choice'> => params;
const acceptsToolChoices = (
  choice: Exclude<Theirs['tool_choice'], ChatCompletionAllowedToolChoice>,
): Ours['tool_choice'] => choice;
void [keysAgree, acceptsWhatTheSdkSends, acceptsToolChoices];

const base = { model: 'mechroute', messages: [{ role: 'user', content: 'hi' }] };

function refusal(body: unknown): string {
  try {
    parseChatCompletionRequest(body);
  } catch (error) {
    assert.ok(error instanceof ApiError);
    assert.equal(httpStatusOf(error), 400);
    return error.message;
  }
  assert.fail(`accepted ${JSON.stringify(body).slice(0, 200)}`);
}

test('a request setting every OpenAI parameter parses, values kept as sent', () => {
  const parsed = parseChatCompletionRequest({ ...EVERY_PARAMETER, mechroute: { threshold: 0.5 } });
  const { mechroute, ...rest } = parsed;
  assert.deepEqual(mechroute, { threshold: 0.5 });
  assert.deepEqual(rest, EVERY_PARAMETER);
  const streaming = {
    ...base,
    stream: true,
    stream_options: { include_usage: true, include_obfuscation: true },
  };
  assert.deepEqual(parseChatCompletionRequest(streaming).stream_options, streaming.stream_options);
});

test("an unknown top-level field gets OpenAI's own message", () => {
  assert.equal(refusal({ ...base, foo: 1 }), 'Unrecognized request argument supplied: foo');
  assert.equal(refusal({ ...base, foo: 1, bar: 2 }), 'Unrecognized request arguments supplied: foo, bar');
});

test('unknown nested fields are refused, named by their path', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ ...base, messages: [{ role: 'user', content: 'hi', extra: 1 }] }, /messages\.0.*extra/s],
    [
      { ...base, messages: [{ role: 'user', content: [{ type: 'text', text: 'x', style: 'bold' }] }] },
      /messages\.0\.content/,
    ],
    [
      { ...base, tools: [{ type: 'function', function: { name: 'f', returns: 'int' } }] },
      /tools\.0\.function.*returns/s,
    ],
    [
      {
        ...base,
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {}, extra: true } },
      },
      /response_format\.json_schema.*extra/s,
    ],
    [{ ...base, stream: true, stream_options: { include_usage: true, batch: 2 } }, /stream_options.*batch/s],
  ];
  for (const [body, expected] of cases) assert.match(refusal(body), expected);
});

test('every parameter is typed', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ n: 'two' }, /n:/],
    [{ n: 0 }, /n:/],
    [{ temperature: 3 }, /temperature:/],
    [{ logprobs: true, top_logprobs: 21 }, /top_logprobs:/],
    [{ presence_penalty: -3 }, /presence_penalty:/],
    [{ frequency_penalty: '1' }, /frequency_penalty:/],
    [{ logit_bias: { '50256': 101 } }, /logit_bias/],
    [{ logit_bias: { hello: 1 } }, /logit_bias/],
    [{ seed: 1.5 }, /seed:/],
    [{ stop: ['a', 'b', 'c', 'd', 'e'] }, /stop:/],
    [{ user: 7 }, /user:/],
    [
      { parallel_tool_calls: 'yes', tools: [{ type: 'function', function: { name: 'f' } }] },
      /parallel_tool_calls:/,
    ],
    [{ response_format: { type: 'yaml' } }, /response_format/],
    [{ tools: [{ type: 'function', function: { name: 'bad name!' } }] }, /tools\.0\.function\.name/],
    [{ reasoning_effort: 'extreme' }, /reasoning_effort:/],
    [{ service_tier: 'gold' }, /service_tier:/],
    [{ metadata: { k: 1 } }, /metadata/],
    [{ modalities: ['video'] }, /modalities/],
  ];
  for (const [extra, expected] of cases)
    assert.match(refusal({ ...base, ...extra }), expected, JSON.stringify(extra));
});

test("messages are checked per role in OpenAI's shapes", () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ role: 'tool', content: 'x' }, /tool_call_id/],
    [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'u' } }] }, /messages\.0\.content/],
    [{ role: 'user', content: [{ type: 'refusal', refusal: 'no' }] }, /messages\.0\.content/],
    [
      { role: 'assistant', content: [{ type: 'image_url', image_url: { url: 'u' } }] },
      /messages\.0\.content/,
    ],
    [
      { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f' } }] },
      /arguments/,
    ],
    [{ role: 'user' }, /content/],
    [{ role: 'function', content: 'x' }, /name/],
    [{ role: 'robot', content: 'x' }, /role/],
  ];
  for (const [message, expected] of cases) {
    assert.match(refusal({ ...base, messages: [message] }), expected, JSON.stringify(message));
  }
  // An assistant turn that only calls tools may leave content out.
  const parsed = parseChatCompletionRequest({
    ...base,
    messages: [
      {
        role: 'assistant',
        tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }],
      },
    ],
  });
  assert.equal(parsed.messages[0]!.content, null);
});

test('the rules OpenAI enforces across parameters, each reported at its parameter', () => {
  const tools = [{ type: 'function', function: { name: 'f' } }];
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ top_logprobs: 2 }, /top_logprobs: `logprobs` must be set/],
    [{ stream_options: { include_usage: true } }, /stream_options: .*only allowed when stream/],
    [{ tool_choice: 'required' }, /tool_choice: .*only allowed when tools/],
    [{ parallel_tool_calls: true }, /parallel_tool_calls: .*only allowed when tools/],
    [{ tools, tool_choice: { type: 'function', function: { name: 'g' } } }, /tool_choice: no tool named "g"/],
    [{ tools: [...tools, ...tools] }, /tools: tool names must be unique/],
    [{ max_tokens: 5, max_completion_tokens: 6 }, /max_completion_tokens/],
    [{ functions: [{ name: 'f' }], function_call: { name: 'g' } }, /function_call: no function named "g"/],
  ];
  for (const [extra, expected] of cases)
    assert.match(refusal({ ...base, ...extra }), expected, JSON.stringify(extra));
});

test('free-form JSON is bounded in depth, so a hostile body cannot overflow whoever serialises it', () => {
  let deep: unknown = { type: 'string' };
  for (let i = 0; i < 100; i++) deep = { type: 'object', properties: { a: deep } };
  assert.match(
    refusal({ ...base, tools: [{ type: 'function', function: { name: 'f', parameters: deep } }] }),
    /tools\.0\.function\.parameters: nested deeper than 64 levels/,
  );
  // The poison request of issue 16: an unknown field nested 6,000 arrays deep is refused at its name.
  let arrays: unknown = 'x';
  for (let i = 0; i < 6000; i++) arrays = [arrays];
  assert.match(refusal({ ...base, messages: [{ role: 'user', content: 'hi', poison: arrays }] }), /poison/);
});
