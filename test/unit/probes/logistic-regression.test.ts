import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { auroc } from '../../../src/metrics/classification.js';
import {
  fitLogistic,
  fitLogisticCV,
  logisticLogits,
  selectLambda,
  sigmoid,
} from '../../../src/probes/logistic-regression.js';
import { createMatrix, selectRows } from '../../../src/probes/matrix.js';
import { kFold } from '../../../src/probes/splits.js';
import { applyStandardizer, fitStandardizer, standardizeVector } from '../../../src/probes/standardizer.js';
import { createRng } from '../../../src/seeded-rng.js';
import { gaussianClasses, range } from './synthetic.js';

const norm = (w: Float64Array) => Math.sqrt(w.reduce((s, v) => s + v * v, 0));

describe('standardizer', () => {
  test('zero mean, unit std on the fitted rows; constant features floored, not divided by zero', () => {
    const rng = createRng(1);
    const n = 500;
    const d = 5;
    const data = new Float32Array(n * d);
    for (let i = 0; i < n; i += 1) {
      data[i * d] = 1000 + 5 * rng.normal(); // a large offset: the two-pass variance must not cancel
      data[i * d + 1] = 0.01 * rng.normal();
      data[i * d + 2] = 7; // constant
      data[i * d + 3] = rng.normal();
      data[i * d + 4] = rng.normal();
    }
    const x = createMatrix(data, n, d);
    const stats = fitStandardizer(x);
    const z = applyStandardizer(stats, x);
    for (const j of [0, 1, 3, 4]) {
      let mean = 0;
      let sq = 0;
      for (let i = 0; i < n; i += 1) mean += z.data[i * d + j]! / n;
      for (let i = 0; i < n; i += 1) sq += (z.data[i * d + j]! - mean) ** 2 / n;
      assert.ok(Math.abs(mean) < 1e-4, `feature ${j} mean ${mean}`);
      assert.ok(Math.abs(Math.sqrt(sq) - 1) < 1e-4, `feature ${j} std ${Math.sqrt(sq)}`);
    }
    // Floored at 1e-3 × the median std (≈ 1), so a deviation of 1 at serving time becomes ≈ 1000, not ∞.
    assert.ok(Math.abs(stats.std[2]! - 1e-3) < 2e-4, `floored std ${stats.std[2]}`);
    assert.ok(Math.abs(standardizeVector(stats, [1000, 0, 8, 0, 0])[2]!) < 2000);
    const row = standardizeVector(stats, x.data.subarray(d, 2 * d));
    for (let j = 0; j < d; j += 1) assert.ok(Math.abs(row[j]! - z.data[d + j]!) < 1e-4);
  });
});

describe('fitLogistic', () => {
  test('a probe on separable synthetic data reaches AUROC > 0.99 on held-out rows', () => {
    const rng = createRng(2);
    const { x, labels } = gaussianClasses(rng, 1200, 40, { shift: 6, informative: 10, scale: 3 });
    const train = range(800);
    const test = range(400).map((i) => i + 800);
    const stats = fitStandardizer(x, { rows: train });
    const z = applyStandardizer(stats, x);
    const fit = fitLogistic(z, labels, { lambda: 1e-3, rows: train });
    assert.ok(fit.converged);
    const a = auroc(
      Array.from(logisticLogits(fit.model, z, test)),
      test.map((i) => labels[i]!),
    );
    assert.ok(a > 0.99, `AUROC ${a}`);
  });

  test('the solution is a stationary point of the penalised loss (finite differences)', () => {
    const rng = createRng(3);
    const { x, labels } = gaussianClasses(rng, 300, 5, { shift: 1.5 });
    const lambda = 0.05;
    const { model, loss } = fitLogistic(x, labels, { lambda, gradientTolerance: 1e-9 });
    const objective = (w: Float64Array, b: number) => {
      let f = 0;
      for (let i = 0; i < x.rows; i += 1) {
        let zi = b;
        for (let j = 0; j < 5; j += 1) zi += w[j]! * x.data[i * 5 + j]!;
        const p = sigmoid(zi);
        f -= labels[i] ? Math.log(p) : Math.log(1 - p);
      }
      return f / x.rows + (lambda / 2) * w.reduce((s, v) => s + v * v, 0);
    };
    assert.ok(Math.abs(objective(model.weights, model.bias) - loss) < 1e-9);
    const h = 1e-5;
    for (let j = 0; j <= 5; j += 1) {
      const plus = Float64Array.from(model.weights);
      const minus = Float64Array.from(model.weights);
      let bPlus = model.bias;
      let bMinus = model.bias;
      if (j < 5) {
        plus[j]! += h;
        minus[j]! -= h;
      } else {
        bPlus += h;
        bMinus -= h;
      }
      const derivative = (objective(plus, bPlus) - objective(minus, bMinus)) / (2 * h);
      assert.ok(Math.abs(derivative) < 1e-6, `∂f/∂θ${j} = ${derivative}`);
    }
  });

  test('L2 shrinks the weights as λ grows', () => {
    const rng = createRng(4);
    const { x, labels } = gaussianClasses(rng, 400, 20, { shift: 2 });
    const norms = [1e-4, 1e-2, 1e-1, 1, 10].map((lambda) =>
      norm(fitLogistic(x, labels, { lambda }).model.weights),
    );
    for (let k = 1; k < norms.length; k += 1)
      assert.ok(norms[k]! < norms[k - 1]!, `norms ${norms.join(', ')}`);
    assert.ok(norms[4]! < 0.05 * norms[0]!);
  });

  test('a sample weight of 2 equals the row appearing twice', () => {
    const rng = createRng(5);
    const { x, labels } = gaussianClasses(rng, 100, 4, { shift: 1 });
    const weights = range(100).map((i) => (i < 10 ? 2 : 1));
    const doubled = [...range(100), ...range(10)];
    const weighted = fitLogistic(x, labels, {
      lambda: 0.01,
      sampleWeights: weights,
      gradientTolerance: 1e-9,
    });
    const copied = fitLogistic(
      selectRows(x, doubled),
      doubled.map((i) => labels[i]!),
      { lambda: 0.01, gradientTolerance: 1e-9 },
    );
    for (let j = 0; j < 4; j += 1) {
      assert.ok(Math.abs(weighted.model.weights[j]! - copied.model.weights[j]!) < 1e-6);
    }
  });
});

describe('selectLambda', () => {
  test('scores every λ by k-fold AUROC and refits on the folds’ rows only', () => {
    const rng = createRng(6);
    const { x, labels } = gaussianClasses(rng, 600, 60, { shift: 1.5, informative: 3 });
    // The last 100 rows are a "test split": their labels are flipped, so using them would show.
    const poisoned = labels.map((l, i) => (i >= 500 ? !l : l));
    const folds = kFold(500, 4, rng, poisoned.slice(0, 500));
    const lambdas = [1e-4, 1e-2, 1];
    const cv = fitLogisticCV(x, poisoned, { folds, lambdas });
    assert.deepEqual(
      cv.search.table.map((s) => s.lambda),
      [1, 1e-2, 1e-4],
    );
    assert.ok(lambdas.includes(cv.search.lambda));
    for (const s of cv.search.table) assert.ok(s.auroc > 0.6 && s.auroc <= 1 && s.logLoss > 0);
    const best = cv.search.table.find((s) => s.lambda === cv.search.lambda)!;
    assert.ok(cv.search.table.every((s) => s.auroc <= best.auroc));
    // Out-of-fold logits cover the 500 training rows and nothing else.
    assert.equal(cv.search.outOfFoldLogits.slice(0, 500).filter(Number.isNaN).length, 0);
    assert.equal(cv.search.outOfFoldLogits.slice(500).filter((v) => !Number.isNaN(v)).length, 0);
    const heldOut = range(100).map((i) => i + 500);
    const a = auroc(
      Array.from(logisticLogits(cv.model, x, heldOut)),
      heldOut.map((i) => labels[i]!),
    );
    assert.ok(a > 0.8, `the refit saw the poisoned rows (AUROC on them ${a})`);
    const byLogLoss = selectLambda(x, poisoned, { folds, lambdas, criterion: 'log-loss' });
    const minLoss = Math.min(...byLogLoss.table.map((s) => s.logLoss));
    assert.equal(byLogLoss.table.find((s) => s.lambda === byLogLoss.lambda)!.logLoss, minLoss);
  });
});
