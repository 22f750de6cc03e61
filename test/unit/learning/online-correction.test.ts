import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  applyCorrections,
  correctionNorm,
  type LearningSettings,
  logit,
  sigmoid,
  type TierCorrection,
  updateCorrection,
} from '../../../src/learning/online-correction.js';
import { auroc } from '../../../src/metrics/classification.js';
import { createRng } from '../../../src/seeded-rng.js';

const settings: LearningSettings = { learning_rate: 0.05, l2: 0.001, max_step: 0.1 };

describe('online correction', () => {
  test('no step is longer than max_step, however wrong the prediction', () => {
    let c: TierCorrection | undefined;
    // P = 0.999 for a failure, with large logits on every head: an unclipped step would be ~1.
    const decided = { a: 0.999, b: 0.001, c: 0.999 };
    const big: LearningSettings = { learning_rate: 1, l2: 0, max_step: 0.1 };
    for (let i = 0; i < 20; i += 1) {
      const before = c ?? { weights: {}, bias: 0, updates: 0 };
      const r = updateCorrection(c, decided, 'a', false, big)!;
      assert.ok(r.step <= 0.1 + 1e-12, `step ${r.step}`);
      const delta = Math.sqrt(
        (r.correction.bias - before.bias) ** 2 +
          ['a', 'b', 'c'].reduce(
            (s, k) => s + ((r.correction.weights[k] ?? 0) - (before.weights[k] ?? 0)) ** 2,
            0,
          ),
      );
      assert.ok(Math.abs(delta - r.step) < 1e-12);
      c = r.correction;
    }
    assert.equal(c!.updates, 20);
    assert.ok(correctionNorm(c!) <= 20 * 0.1 + 1e-9);
  });

  test('a correct, confident prediction leaves only the L2 pull toward 0', () => {
    const start: TierCorrection = { weights: { a: 1, b: -2 }, bias: 0.5, updates: 3 };
    const l2: LearningSettings = { learning_rate: 0.1, l2: 0.5, max_step: 10 };
    // P(a) ≈ 1 and a succeeded: the loss gradient is ~0; the pull shrinks every parameter by lr·l2.
    const r = updateCorrection(start, { a: 1 - 1e-7, b: 0.5 }, 'a', true, l2)!;
    const shrink = 1 - 0.1 * 0.5;
    const gradientPart = (p: number) => 0.1 * (p - 1);
    assert.ok(Math.abs(r.correction.weights.b! - -2 * shrink) < 1e-3);
    assert.ok(Math.abs(r.correction.bias - (0.5 * shrink - gradientPart(r.p))) < 1e-6);
    assert.ok(correctionNorm(r.correction) < correctionNorm(start));
  });

  test('a tier without a finite P is not updated; applying leaves other tiers alone', () => {
    assert.equal(updateCorrection(undefined, { a: 0.5 }, 'b', true, settings), undefined);
    const corrected = applyCorrections({ a: 0.5, b: 0.3 }, { a: { weights: {}, bias: 1, updates: 1 } });
    assert.equal(corrected.b, 0.3);
    assert.ok(Math.abs(corrected.a! - sigmoid(1)) < 1e-12);
  });

  test('learns a planted pattern from a replayed stream of synthetic outcomes', () => {
    // The new tier succeeds when the strong tier's logit is high (a pattern its own weak head misses):
    // y ~ Bernoulli(σ(1.5·z_strong − 0.5)), while its head says 0.5 on every prompt.
    const rng = createRng(7);
    const draw = () => {
      const zStrong = 2 * rng.normal();
      const zNoise = 2 * rng.normal();
      const decided = { new: 0.5, strong: sigmoid(zStrong), noise: sigmoid(zNoise) };
      return { decided, success: rng.next() < sigmoid(1.5 * zStrong - 0.5) };
    };
    const evalSet = Array.from({ length: 2000 }, draw);
    const scoreWith = (c: TierCorrection | undefined) =>
      auroc(
        evalSet.map((e) => (c ? applyCorrections(e.decided, { new: c }).new! : e.decided.new)),
        evalSet.map((e) => e.success),
      );
    assert.equal(scoreWith(undefined), 0.5);
    let c: TierCorrection | undefined;
    for (let i = 0; i < 3000; i += 1) {
      const { decided, success } = draw();
      c = updateCorrection(c, decided, 'new', success, settings)!.correction;
    }
    assert.ok(scoreWith(c) > 0.8, `AUROC after learning ${scoreWith(c)}`);
    assert.ok(c!.weights.strong! > 0.8, `weight on the planted head ${c!.weights.strong}`);
    // Constant-step SGD keeps some noise in every weight; the planted head's stands far above it.
    assert.ok(
      Math.abs(c!.weights.noise!) < c!.weights.strong! / 3,
      `weights: noise ${c!.weights.noise}, planted ${c!.weights.strong}`,
    );
    assert.ok(c!.bias < 0, `bias ${c!.bias}`);
  });

  test('logit is clipped so P of 0 or 1 stays finite', () => {
    assert.equal(logit(1), 8);
    assert.equal(logit(0), -8);
  });
});
