import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSentenceEncoder, type SentenceEncoder } from '../../src/baselines/sentence-encoder.js';

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);

/** The shipped ONNX all-MiniLM-L6-v2 (pulled by `npm test`'s pretest step), run for real. */
describe('sentence encoder (onnxruntime-node + tokenizers)', () => {
  let encoder: SentenceEncoder;
  before(async () => {
    encoder = await createSentenceEncoder();
  });
  after(async () => {
    await encoder.dispose();
  });

  it('gives unit vectors where paraphrases are closer than unrelated prompts', async () => {
    const [a, b, c] = await encoder.embed([
      'What is the capital city of France?',
      'Which city is the capital of France?',
      'Compute the derivative of x squared times sin x.',
    ]);
    assert.equal(a!.length, 384);
    for (const v of [a!, b!, c!]) assert.ok(Math.abs(Math.sqrt(dot(v, v)) - 1) < 1e-4);
    assert.ok(dot(a!, b!) > 0.8, `paraphrases ${dot(a!, b!)}`);
    assert.ok(dot(a!, c!) < 0.3, `unrelated ${dot(a!, c!)}`);
  });

  it('does not depend on batching (padding is masked out) and truncates long prompts', async () => {
    const texts = [
      'short one',
      'a much longer prompt with many more words in it than the first',
      'x '.repeat(2000),
    ];
    const batched = await encoder.embed(texts);
    for (const [i, text] of texts.entries()) {
      const [alone] = await encoder.embed([text]);
      assert.ok(dot(alone!, batched[i]!) > 0.9999, `row ${i}`);
    }
  });

  it('keeps the head of a long prompt by default and its tail when asked', async () => {
    // Two few-shot prompts: the same 300-word preamble, different final questions.
    const preamble = 'Example question and its answer about rocks and minerals. '.repeat(40);
    const texts = [
      `${preamble}\nWhat is the capital of France?`,
      `${preamble}\nHow do I sort a list in Python?`,
    ];
    const [h1, h2] = await encoder.embed(texts);
    assert.ok(dot(h1!, h2!) > 0.9999, 'the head alone cannot tell them apart');
    const [t1, t2] = await encoder.embed(texts, { keep: 'tail' });
    assert.ok(dot(t1!, t2!) < 0.99, `the tail reads the question: ${dot(t1!, t2!)}`);
  });
});
