import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createChunkPartStream,
  createSseEventStream,
  type SseEvent,
} from '../../../src/tiers/providers/openai-compatible/sse-parser.js';
import {
  type StreamPart,
  UpstreamProtocolError,
  UpstreamStatusError,
  UpstreamTruncatedError,
} from '../../../src/tiers/tier-model.js';
import { chunk, collect, goodStream, pieces, textOf } from './wire-fixtures.js';

async function events(parts: readonly string[]): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  const stream = ReadableStream.from(parts).pipeThrough(createSseEventStream());
  for await (const event of stream) out.push(event);
  return out;
}

function parse(parts: readonly string[], wantLogprobs = false): Promise<StreamPart[]> {
  const stream = ReadableStream.from(parts)
    .pipeThrough(createSseEventStream())
    .pipeThrough(
      createChunkPartStream({
        deployment: 't/0',
        wantLogprobs,
        estimateUsage: (text) => ({ input_tokens: 1, output_tokens: text.length }),
        redact: (text) => text.replaceAll('sk-secret', '[redacted]'),
      }),
    );
  return collect(stream);
}

describe('SSE event parsing', () => {
  test('data lines, comments, event names, multi-line data', async () => {
    const got = await events([
      ': ping\n\nevent: delta\ndata: a\ndata:b\n\ndata\n\nid: 7\nretry: 10\ndata: c\n\n',
    ]);
    assert.deepEqual(got, [
      { event: 'delta', data: 'a\nb' },
      { event: undefined, data: '' },
      { event: undefined, data: 'c' },
    ]);
  });

  test('CRLF and CR line ends, including a CRLF split between two chunks', async () => {
    assert.deepEqual(await events(['data: x\r', '\n\r', '\ndata: y\r\rdata: z\n\n']), [
      { event: undefined, data: 'x' },
      { event: undefined, data: 'y' },
      { event: undefined, data: 'z' },
    ]);
  });

  test('an unterminated last event is still read', async () => {
    assert.deepEqual(await events(['data: [DONE]']), [{ event: undefined, data: '[DONE]' }]);
  });
});

describe('chunk stream → parts', () => {
  test('a good stream: deltas, then finish with the usage chunk that follows finish_reason', async () => {
    const parts = await parse([goodStream]);
    assert.deepEqual(parts, [
      { type: 'text-delta', text: 'Hello' },
      { type: 'text-delta', text: ' world' },
      { type: 'finish', finish_reason: 'stop', usage: { input_tokens: 5, output_tokens: 2 } },
    ]);
  });

  test('the same stream split at every size, down to one character per read, parses the same', async () => {
    const whole = await parse([goodStream]);
    for (const size of [1, 2, 3, 7, 16, 64]) {
      assert.deepEqual(await parse(pieces(goodStream, size)), whole, `pieces of ${size}`);
      const crlf = goodStream.replaceAll('\n', '\r\n');
      assert.deepEqual(await parse(pieces(crlf, size)), whole, `CRLF pieces of ${size}`);
    }
  });

  test('a malformed chunk after some text ends the stream with a protocol error, nothing after it', async () => {
    const parts = await parse([
      `data: ${chunk('Hel')}\n\n`,
      'data: {"choices": [{"delta": \n\n',
      `data: ${chunk('lo', 'stop')}\n\n`,
    ]);
    assert.equal(textOf(parts), 'Hel');
    assert.equal(parts.length, 2);
    const last = parts.at(-1)!;
    assert.ok(last.type === 'error' && last.error instanceof UpstreamProtocolError, JSON.stringify(last));
    assert.match(last.error.detail ?? '', /chunk 2 is not JSON/);
    assert.doesNotMatch(last.error.message, /chunk 2/);
    assert.equal(last.error.isRetryable, true);
  });

  test('valid JSON of the wrong shape is a protocol error naming the field', async () => {
    const parts = await parse(['data: {"choices": "nope"}\n\n']);
    const last = parts.at(-1)!;
    assert.ok(last.type === 'error' && last.error instanceof UpstreamProtocolError);
    assert.match(last.error.detail ?? '', /choices/);
  });

  test('a stream that ends with no finish is a truncation error, never a short answer', async () => {
    const parts = await parse([`data: ${chunk('Hello')}\n\n`, `data: ${chunk(' wor')}\n\n`]);
    assert.equal(textOf(parts), 'Hello wor');
    const last = parts.at(-1)!;
    assert.ok(last.type === 'error' && last.error instanceof UpstreamTruncatedError);
    assert.match(last.error.message, /after 2 text deltas/);
  });

  test('finish_reason then close without [DONE] is complete; missing usage is estimated, with a warning', async () => {
    const parts = await parse([`data: ${chunk('abc', 'length')}\n\n`]);
    const last = parts.at(-1)!;
    assert.ok(last.type === 'finish');
    assert.equal(last.finish_reason, 'length');
    assert.deepEqual(last.usage, { input_tokens: 1, output_tokens: 3 });
    assert.match(last.warnings?.join() ?? '', /estimated/);
  });

  test('an in-band error event becomes an error part with its status, redacted', async () => {
    const parts = await parse([
      `data: ${chunk('x')}\n\n`,
      'data: {"error": {"message": "overloaded for key sk-secret", "code": 529}}\n\n',
    ]);
    const last = parts.at(-1)!;
    assert.ok(last.type === 'error' && last.error instanceof UpstreamStatusError);
    assert.equal(last.error.status, 529);
    assert.ok(!last.error.message.includes('sk-secret'));
    // The upstream's words reach the log only, with our key redacted.
    assert.match(last.error.detail ?? '', /overloaded for key \[redacted\]/);
    assert.doesNotMatch(last.error.message, /overloaded/);
  });

  test('logprobs are averaged over the streamed tokens', async () => {
    const withLogprobs = (content: string, logprob: number, finish: string | null = null) =>
      JSON.stringify({
        choices: [
          {
            index: 0,
            delta: { content },
            finish_reason: finish,
            logprobs: { content: [{ token: content, logprob, bytes: null, top_logprobs: [] }] },
          },
        ],
      });
    const parts = await parse(
      [`data: ${withLogprobs('a', -1)}\n\ndata: ${withLogprobs('b', -3, 'stop')}\n\ndata: [DONE]\n\n`],
      true,
    );
    const last = parts.at(-1)!;
    assert.ok(last.type === 'finish');
    assert.equal(last.logprobs?.mean_logprob, -2);
    assert.equal(last.logprobs?.tokens?.length, 2);
  });

  test('every choice of n > 1 is read, told apart by its index', async () => {
    const of = (index: number, delta: object, finish: string | null = null) =>
      `data: ${JSON.stringify({ choices: [{ index, delta, finish_reason: finish }] })}\n\n`;
    const parts = await parse([
      of(0, { content: 'yes' }),
      of(1, { content: 'NO' }),
      of(1, {}, 'length'),
      of(0, {}, 'stop'),
      'data: [DONE]\n\n',
    ]);
    assert.deepEqual(parts.slice(0, 2), [
      { type: 'text-delta', text: 'yes' },
      { type: 'text-delta', text: 'NO', choice: 1 },
    ]);
    const last = parts.at(-1)!;
    assert.ok(last.type === 'finish');
    assert.equal(last.finish_reason, 'stop');
    assert.deepEqual(last.more_choices, [{ index: 1, finish_reason: 'length' }]);
  });

  test('tool-call deltas pass on as they come and add up to whole calls at the finish', async () => {
    const delta = (tool_calls: object[], finish: string | null = null) =>
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: { tool_calls }, finish_reason: finish }] })}\n\n`;
    const parts = await parse([
      delta([{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '' } }]),
      delta([{ index: 0, function: { arguments: '{"zone":' } }]),
      delta([{ index: 0, function: { arguments: '"UTC"}' } }]),
      delta([{ index: 1, id: 'call_2', type: 'function', function: { name: 'noop', arguments: '{}' } }]),
      delta([], 'tool_calls'),
      'data: [DONE]\n\n',
    ]);
    assert.deepEqual(parts.slice(0, 4), [
      { type: 'tool-call-delta', call: 0, id: 'call_1', name: 'get_time', arguments: '' },
      { type: 'tool-call-delta', call: 0, arguments: '{"zone":' },
      { type: 'tool-call-delta', call: 0, arguments: '"UTC"}' },
      { type: 'tool-call-delta', call: 1, id: 'call_2', name: 'noop', arguments: '{}' },
    ]);
    const last = parts.at(-1)!;
    assert.ok(last.type === 'finish');
    assert.equal(last.finish_reason, 'tool_calls');
    assert.deepEqual(last.tool_calls, [
      { id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{"zone":"UTC"}' } },
      { id: 'call_2', type: 'function', function: { name: 'noop', arguments: '{}' } },
    ]);
  });

  test('a refusal streams as refusal deltas; top_logprobs come with the text they belong to', async () => {
    const token = {
      token: 'No',
      logprob: -0.1,
      bytes: [78, 111],
      top_logprobs: [{ token: 'No', logprob: -0.1 }],
    };
    const parts = await parse(
      [
        `data: ${JSON.stringify({ choices: [{ index: 0, delta: { refusal: 'I cannot' } }] })}\n\n`,
        `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'No' }, logprobs: { content: [token] } }] })}\n\n`,
        `data: ${chunk(null, 'stop')}\n\n`,
        'data: [DONE]\n\n',
      ],
      true,
    );
    const tokens = [{ ...token, top_logprobs: [{ token: 'No', logprob: -0.1, bytes: null }] }];
    assert.deepEqual(parts.slice(0, 2), [
      { type: 'refusal-delta', text: 'I cannot' },
      { type: 'text-delta', text: 'No', logprobs: tokens },
    ]);
    const last = parts.at(-1)!;
    assert.ok(last.type === 'finish');
    assert.equal(last.refusal, 'I cannot');
    assert.deepEqual(last.logprobs?.tokens, tokens);
  });
});
