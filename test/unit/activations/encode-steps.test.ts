import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostLimitsFor, nextStep, storeShape } from '../../../src/activations/encode-steps.js';

describe('extraction steps', () => {
  const tokens = [100, 200, 300, 50, 600, 10];
  const steps = (limits: { prompts: number; tokens: number }) => {
    const out: number[][] = [];
    for (let start = 0; start < tokens.length; ) {
      const end = nextStep(start, tokens.length, (i) => tokens[i]!, limits);
      out.push(tokens.slice(start, end));
      start = end;
    }
    return out;
  };

  it('cuts consecutive prompts up to the prompt and token limits, a long prompt alone', () => {
    assert.deepEqual(steps({ prompts: 8, tokens: 512 }), [[100, 200], [300, 50], [600], [10]]);
    assert.deepEqual(steps({ prompts: 2, tokens: 10_000 }), [
      [100, 200],
      [300, 50],
      [600, 10],
    ]);
    assert.deepEqual(
      steps({ prompts: 1, tokens: 512 }),
      tokens.map((t) => [t]),
    );
  });

  it('sizes the host so a step fits one decode (the host counts distinct prompts)', () => {
    assert.deepEqual(hostLimitsFor({ prompts: 8, tokens: 512 }, 2048), {
      maxBatchPrompts: 8,
      batchTokens: 2048,
    });
    assert.deepEqual(storeShape(18), { layers: 19, meanLayers: 17 });
  });
});
