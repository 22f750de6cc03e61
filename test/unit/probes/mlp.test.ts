import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { auroc } from '../../../src/metrics/classification.js';
import { fitLogistic, logisticLogits } from '../../../src/probes/logistic-regression.js';
import { createMatrix, type FeatureMatrix } from '../../../src/probes/matrix.js';
import { mlpLogits, mlpLogitsOne, trainMlp } from '../../../src/probes/mlp.js';
import { createRng, type Rng } from '../../../src/seeded-rng.js';
import { range } from './synthetic.js';

/** Two informative coordinates and four noise ones; "XOR" = the first two have the same sign. */
function xorData(rng: Rng, n: number): { x: FeatureMatrix; xor: boolean[]; firstPositive: boolean[] } {
  const d = 6;
  const data = Float32Array.from({ length: n * d }, () => rng.normal());
  const xor = range(n).map((i) => data[i * d]! * data[i * d + 1]! > 0);
  const firstPositive = range(n).map((i) => data[i * d]! > 0);
  return { x: createMatrix(data, n, d), xor, firstPositive };
}

describe('trainMlp', () => {
  const rng = createRng(21);
  const train = xorData(rng, 2000);
  const test_ = xorData(rng, 1000);
  const options = { hidden: 32, learningRate: 0.01, maxEpochs: 150, patience: 10 };

  test('learns an XOR-like task that a linear probe cannot', () => {
    const linear = fitLogistic(train.x, train.xor, { lambda: 1e-3 });
    const linearAuroc = auroc(Array.from(logisticLogits(linear.model, test_.x)), test_.xor);
    const mlp = trainMlp(train.x, [train.xor], { ...options, rng: createRng(1) });
    const mlpAuroc = auroc(Array.from(mlpLogits(mlp.model, test_.x)), test_.xor);
    assert.ok(linearAuroc < 0.6, `linear AUROC ${linearAuroc}`);
    assert.ok(mlpAuroc > 0.95, `MLP AUROC ${mlpAuroc} after ${mlp.history.length} epochs`);
    assert.ok(mlp.bestEpoch > 0 && mlp.bestEpoch <= mlp.history.length);
  });

  test('a missing outcome is masked out, not read as a failure', () => {
    // Tier B's label is known only where it succeeded: masked, its head should learn "always succeeds";
    // were missing labels counted as failures it would learn P ≈ 0.5.
    const tierB = train.firstPositive.map((v) => (v ? true : null));
    // Some rows have no label at all; they are skipped (their NaN features would poison every weight).
    const data = Float32Array.from(train.x.data);
    const unlabeled = [0, 1, 2];
    for (const i of unlabeled) data.fill(Number.NaN, i * 6, (i + 1) * 6);
    const tierA = train.xor.map((v, i) => (unlabeled.includes(i) ? undefined : v));
    for (const i of unlabeled) tierB[i] = null;
    const mlp = trainMlp(createMatrix(data, 2000, 6), [tierA, tierB], { ...options, rng: createRng(2) });
    const logits = mlpLogits(mlp.model, test_.x);
    let meanB = 0;
    const scoresA: number[] = [];
    for (let i = 0; i < test_.x.rows; i += 1) {
      scoresA.push(logits[i * 2]!);
      meanB += 1 / (1 + Math.exp(-logits[i * 2 + 1]!)) / test_.x.rows;
    }
    assert.ok(mlp.model.w1.every(Number.isFinite));
    assert.ok(meanB > 0.9, `mean P(tier B) ${meanB}`);
    assert.ok(auroc(scoresA, test_.xor) > 0.9);
  });

  test('deterministic from the seed; one-row and batch logits agree', () => {
    const small = { ...options, maxEpochs: 3 };
    const a = trainMlp(train.x, [train.xor], { ...small, rng: createRng(7) });
    const b = trainMlp(train.x, [train.xor], { ...small, rng: createRng(7) });
    assert.deepEqual(a.model, b.model);
    const batch = mlpLogits(a.model, test_.x, [5]);
    const one = mlpLogitsOne(a.model, Float64Array.from(test_.x.data.subarray(30, 36)));
    assert.ok(Math.abs(batch[0]! - one[0]!) < 1e-12);
  });
});
