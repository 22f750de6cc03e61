import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DecodeCost } from '../../../src/encoder/decode-cost.js';

describe('DecodeCost', () => {
  test('knows nothing before the first decode', () => {
    assert.equal(new DecodeCost().estimateMs(1, 100), undefined);
  });

  test('recovers a fixed part and a part per token', () => {
    const cost = new DecodeCost();
    for (const tokens of [2, 40, 120, 300, 8, 200]) cost.observe(tokens, 400 + 5 * tokens);
    const fit = cost.fit()!;
    assert.ok(Math.abs(fit.fixedMs - 400) < 1e-6, `${fit.fixedMs}`);
    assert.ok(Math.abs(fit.msPerToken - 5) < 1e-9, `${fit.msPerToken}`);
    assert.ok(Math.abs(cost.estimateMs(3, 100)! - (3 * 400 + 500)) < 1e-6);
  });

  test('tiny decodes do not make a long prompt look minutes long', () => {
    const cost = new DecodeCost();
    cost.observe(150, 1_150);
    for (let i = 0; i < 5; i += 1) cost.observe(2, 1_000);
    // As a rate per token the last decodes say 500 ms/token: 100 s for 200 tokens.
    assert.ok(cost.estimateMs(1, 200)! < 2_000, `${cost.estimateMs(1, 200)}`);
  });

  test('decodes of one length are read through the origin, the cautious reading', () => {
    const cost = new DecodeCost();
    for (let i = 0; i < 3; i += 1) cost.observe(50, 1_000);
    assert.deepEqual(cost.fit(), { fixedMs: 0, msPerToken: 20 });
  });

  test('recent decodes weigh most: a slower machine shows within a few decodes', () => {
    const cost = new DecodeCost(0.5);
    for (const tokens of [10, 100, 10, 100]) cost.observe(tokens, 10 * tokens);
    for (const tokens of [10, 100, 10, 100, 10, 100]) cost.observe(tokens, 40 * tokens);
    assert.ok(cost.fit()!.msPerToken > 35, `${cost.fit()!.msPerToken}`);
  });

  test('ignores readings that are not decodes', () => {
    const cost = new DecodeCost();
    cost.observe(0, 100);
    cost.observe(10, Number.NaN);
    assert.equal(cost.fit(), undefined);
  });
});
