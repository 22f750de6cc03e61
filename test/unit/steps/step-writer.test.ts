import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstLineEnd, writeStep } from '../../../src/steps/step-writer.js';
import type { FinishReason, StreamPart, TierRequest } from '../../../src/tiers/tier-model.js';
import { UpstreamStatusError } from '../../../src/tiers/tier-model.js';

/** Cutting a tier's stream at the step delimiter, and telling a step's end from the answer's. */
const request: TierRequest = { messages: [{ role: 'user', content: 'two words' }] };

function tierStreaming(deltas: string[], finish: FinishReason = 'stop') {
  const state = { cancelled: false, emitted: 0 };
  return {
    state,
    deps: {
      stream: (): AsyncIterable<StreamPart> => ({
        async *[Symbol.asyncIterator]() {
          try {
            yield { type: 'start', tier: 't', deployment: 't/0', warnings: [] };
            for (const text of deltas) {
              state.emitted += 1;
              yield { type: 'text-delta', text };
            }
            yield { type: 'finish', finish_reason: finish, usage: { input_tokens: 7, output_tokens: 9 } };
          } finally {
            state.cancelled = state.emitted < deltas.length;
          }
        },
      }),
      countTokens: (text: string) => text.split(/\s+/).filter(Boolean).length,
    },
  };
}

test('firstLineEnd skips leading blank lines and waits for a line break after content', () => {
  assert.equal(firstLineEnd('abc'), -1);
  assert.equal(firstLineEnd('\n\n  '), -1);
  assert.equal(firstLineEnd('\n\nab\ncd'), 4);
  assert.equal(firstLineEnd('x = 1\n'), 5);
});

test('one step: cut at the first line break, the rest of the generation cancelled, usage counted', async () => {
  const tier = tierStreaming(['\n Step one', ' is here.\nStep', ' two\n']);
  const step = await writeStep(tier.deps, 't', request, { oneStep: true });
  assert.equal(step.text, 'Step one is here.');
  assert.equal(step.ended, false);
  assert.equal(step.usage_estimated, true);
  assert.deepEqual(step.usage, { input_tokens: 2, output_tokens: 4 });
  assert.equal(tier.state.cancelled, true);
});

test('a finish before any line break is the end of the answer; "length" is not', async () => {
  const ended = await writeStep(tierStreaming(['#### 42']).deps, 't', request, { oneStep: true });
  assert.deepEqual(
    [ended.text, ended.ended, ended.usage_estimated, ended.usage.output_tokens],
    ['#### 42', true, false, 9],
  );
  const long = await writeStep(tierStreaming(['a very long line'], 'length').deps, 't', request, {
    oneStep: true,
  });
  assert.equal(long.ended, false);
  const rest = await writeStep(tierStreaming(['\nline a\nline b\n']).deps, 't', request, { oneStep: false });
  assert.equal(rest.text, 'line a\nline b');
  assert.equal(rest.ended, true);
});

test('an error part is thrown', async () => {
  const failing = {
    stream: (): AsyncIterable<StreamPart> => ({
      async *[Symbol.asyncIterator]() {
        yield { type: 'error', error: new UpstreamStatusError(500, 't/0', 'boom') };
      },
    }),
    countTokens: () => 0,
  };
  await assert.rejects(writeStep(failing, 't', request, { oneStep: true }), UpstreamStatusError);
});
