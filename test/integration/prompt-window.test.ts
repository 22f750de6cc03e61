import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EncoderHost } from '../../src/encoder/encoder-host.js';
import { type Overflow, promptWindow, type WindowOptions } from '../../src/encoder/prompt-window.js';
import { PromptTooLongError } from '../../src/errors.js';
import { createEncoder, sharedEncoder } from '../support/default-encoder.js';

/**
 * The encoder's window on a long prompt comes from a piece of the text, not from tokenizing all of it
 * (issue 16: llama.cpp's tokenizer is quadratic on some inputs and blocks the event loop). With the real
 * tokenizer, the window must be exactly the one the whole prompt's tokens give, and a poison prompt
 * must not take minutes.
 */
const QUESTION =
  'Question: A 2.0 kg block slides down a frictionless incline of 30 degrees. What is its acceleration?\n' +
  'A. 4.9 m/s^2\nB. 9.8 m/s^2\nC. 2.5 m/s^2\nD. 19.6 m/s^2\nAnswer: ';
const texts = {
  english: Array.from({ length: 60 }, (_, i) => `${QUESTION} (variant ${i}) 😀 naïve café`).join('\n\n'),
  code: Array.from({ length: 200 }, (_, i) => `  if (x${i} >= ${i}) { return y[${i}] * 2; }\n`).join(''),
  newlines: 'a\n'.repeat(5_000),
  spaces: `start${' '.repeat(50_000)}end`,
};

/** What tokenizing the whole prompt and cutting it gives: the reference. */
function reference(encoder: EncoderHost, text: string, options: WindowOptions): Int32Array {
  const tokens = encoder.tokenize(text);
  if (tokens.length <= options.maxTokens) return tokens;
  const keep =
    options.overflow === 'head-tail'
      ? Math.min(options.headTokens, options.maxTokens - 1)
      : options.addsBos
        ? 1
        : 0;
  return Int32Array.from([
    ...tokens.subarray(0, keep),
    ...tokens.subarray(tokens.length - (options.maxTokens - keep)),
  ]);
}

describe('prompt window', () => {
  let encoder: EncoderHost;
  before(async () => {
    encoder = await sharedEncoder();
  });
  const tokenize = (text: string, special: boolean) => encoder.tokenize(text, special);

  it('keeps exactly the tokens that tokenizing the whole prompt and cutting it keeps', () => {
    for (const [name, text] of Object.entries(texts)) {
      for (const overflow of ['truncate-left', 'head-tail'] as Overflow[]) {
        for (const maxTokens of [64, 512]) {
          const options = { maxTokens, overflow, headTokens: 24, addsBos: true };
          const window = promptWindow(text, tokenize, options);
          const expected = reference(encoder, text, options);
          if (name === 'spaces') {
            // Sparser than MAX_CHARS_PER_TOKEN: the window may be shorter, never other tokens.
            assert.ok(window.tokens.length <= expected.length, `${name} ${overflow} ${maxTokens}`);
            continue;
          }
          assert.deepEqual([...window.tokens], [...expected], `${name} ${overflow} ${maxTokens}`);
          assert.equal(window.truncated, encoder.tokenize(text).length > maxTokens);
        }
      }
    }
  });

  it('leaves a prompt that fits untouched, and refuses one that does not with overflow: reject', () => {
    const options = { maxTokens: 4096, overflow: 'reject' as const, headTokens: 24, addsBos: true };
    const short = promptWindow(QUESTION, tokenize, options);
    assert.deepEqual([...short.tokens], [...encoder.tokenize(QUESTION)]);
    assert.equal(short.truncated, false);
    assert.throws(
      () => promptWindow(texts.english, tokenize, { ...options, maxTokens: 64 }),
      PromptTooLongError,
    );
  });

  it('encodes a 400 KB poison prompt without tokenizing all of it', { timeout: 120_000 }, async () => {
    // Tokenizing 400 KB of "a\n" whole takes about ten minutes on this machine (quadratic).
    const host = await createEncoder({ maxPromptTokens: 64 });
    after(() => host.dispose());
    const [result] = await host.encode(['a\n'.repeat(200_000)], { layers: [6], pooling: 'last' });
    assert.equal(result!.tokens, 64);
    assert.equal(result!.truncated, true);
  });
});
