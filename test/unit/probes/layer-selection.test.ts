import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  fisherSeparability,
  type LayerScore,
  participationRatio,
  scoreLayers,
  shallowestWithinOneSe,
} from '../../../src/probes/layer-selection.js';
import { createMatrix } from '../../../src/probes/matrix.js';
import { kFold } from '../../../src/probes/splits.js';
import { createRng, type Rng } from '../../../src/seeded-rng.js';
import { gaussianClasses } from './synthetic.js';

/** n rows spread over k orthonormal directions of d with equal variance (a random rotation of eᵢ). */
function kDirections(rng: Rng, n: number, d: number, k: number) {
  // Gram–Schmidt on random vectors gives k orthonormal directions.
  const basis: Float64Array[] = [];
  while (basis.length < k) {
    const v = Float64Array.from({ length: d }, () => rng.normal());
    for (const b of basis) {
      const p = v.reduce((s, x, j) => s + x * b[j]!, 0);
      for (let j = 0; j < d; j += 1) v[j]! -= p * b[j]!;
    }
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    basis.push(v.map((x) => x / norm));
  }
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i += 1) {
    for (const b of basis) {
      const c = 3 * rng.normal();
      for (let j = 0; j < d; j += 1) data[i * d + j]! += c * b[j]!;
    }
  }
  return createMatrix(data, n, d);
}

/** Direct J = π₀π₁ Δμᵀ((1 − α)S_w + α(tr S_w/d)I)⁻¹Δμ by Gaussian elimination, for checking. */
function fisherDirect(data: Float32Array, labels: boolean[], n: number, d: number, alpha: number): number {
  const mean = [new Array<number>(d).fill(0), new Array<number>(d).fill(0)];
  const count = [0, 0];
  for (let i = 0; i < n; i += 1) {
    const c = labels[i] ? 1 : 0;
    count[c]! += 1;
    for (let j = 0; j < d; j += 1) mean[c]![j]! += data[i * d + j]!;
  }
  for (const c of [0, 1]) for (let j = 0; j < d; j += 1) mean[c]![j]! /= count[c]!;
  const s = Array.from({ length: d }, () => new Array<number>(d + 1).fill(0));
  let trace = 0;
  for (let i = 0; i < n; i += 1) {
    const mu = mean[labels[i] ? 1 : 0]!;
    for (let a = 0; a < d; a += 1) {
      for (let b = 0; b < d; b += 1)
        s[a]![b]! += ((data[i * d + a]! - mu[a]!) * (data[i * d + b]! - mu[b]!)) / n;
    }
  }
  for (let a = 0; a < d; a += 1) trace += s[a]![a]!;
  const delta = mean[1]!.map((m, j) => m - mean[0]![j]!);
  for (let a = 0; a < d; a += 1) {
    for (let b = 0; b < d; b += 1) s[a]![b]! *= 1 - alpha;
    s[a]![a]! += (alpha * trace) / d;
    s[a]![d] = delta[a]!;
  }
  for (let p = 0; p < d; p += 1) {
    for (let r = p + 1; r < d; r += 1) {
      const f = s[r]![p]! / s[p]![p]!;
      for (let c = p; c <= d; c += 1) s[r]![c]! -= f * s[p]![c]!;
    }
  }
  const v = new Array<number>(d).fill(0);
  for (let r = d - 1; r >= 0; r -= 1) {
    let t = s[r]![d]!;
    for (let c = r + 1; c < d; c += 1) t -= s[r]![c]! * v[c]!;
    v[r] = t / s[r]![r]!;
  }
  return (count[0]! / n) * (count[1]! / n) * delta.reduce((acc, x, j) => acc + x * v[j]!, 0);
}

describe('layer selection', () => {
  test('Fisher J is larger for a separable layer than for a random one', () => {
    const rng = createRng(31);
    const { x, labels } = gaussianClasses(rng, 600, 30, { shift: 3, informative: 5 });
    const random = gaussianClasses(rng, 600, 30, { shift: 0 }).x;
    const separable = fisherSeparability(x, labels, { rng });
    const noise = fisherSeparability(random, labels, { rng });
    assert.ok(separable > 10 * noise, `J ${separable} vs ${noise}`);
    // With unit noise and a mean gap of 3, π₀π₁·D² ≈ ¼·9 (shrinkage lowers it a little).
    assert.ok(separable > 1.5 && separable < 2.5, `J ${separable}`);
  });

  test('Fisher J matches the direct formula, with more features than rows (Woodbury path)', () => {
    const rng = createRng(32);
    const { x, labels } = gaussianClasses(rng, 40, 60, { shift: 2, informative: 4 });
    const viaWoodbury = fisherSeparability(x, labels, { rng, shrinkage: 0.3 });
    const direct = fisherDirect(x.data as Float32Array, labels, 40, 60, 0.3);
    assert.ok(Math.abs(viaWoodbury - direct) < 1e-6 * Math.abs(direct), `${viaWoodbury} vs ${direct}`);
    const primal = gaussianClasses(rng, 80, 10, { shift: 2 });
    const j = fisherSeparability(primal.x, primal.labels, { rng, shrinkage: 0.3 });
    assert.ok(
      Math.abs(j - fisherDirect(primal.x.data as Float32Array, primal.labels, 80, 10, 0.3)) < 1e-6 * j,
    );
    // Scaling a layer by a constant does not change J.
    const scaled = createMatrix(
      primal.x.data.map((v) => 100 * v),
      80,
      10,
    );
    assert.ok(Math.abs(fisherSeparability(scaled, primal.labels, { rng, shrinkage: 0.3 }) - j) < 1e-6 * j);
  });

  test('participation ratio ≈ k for data on k equal-variance directions', () => {
    const rng = createRng(33);
    for (const [k, d, n] of [
      [1, 40, 800],
      [5, 40, 800],
      [8, 300, 500], // d > rows: the Gram-matrix path
    ] as const) {
      const pr = participationRatio(kDirections(rng, n, d, k), { rng, maxRows: 1000 });
      assert.ok(Math.abs(pr - k) < 0.1 * k + 0.05, `k = ${k}: PR ${pr}`);
    }
  });

  test('scoreLayers reports every candidate and picks the informative one', () => {
    const rng = createRng(34);
    const n = 500;
    const good = gaussianClasses(rng, n, 20, { shift: 2.5, informative: 4 });
    const labels = good.labels;
    const noise = gaussianClasses(rng, n, 20, { shift: 0 }).x;
    const weak = createMatrix(
      good.x.data.map((v, p) => (p % 20 === 0 ? 0.3 * v + noise.data[p]! : noise.data[p]!)),
      n,
      20,
    );
    const { table, best } = scoreLayers(
      [
        { layer: 2, pooling: 'last', features: noise },
        { layer: 9, pooling: 'mean', features: good.x },
        { layer: 5, pooling: 'last', features: weak },
      ],
      labels,
      { folds: kFold(n, 4, rng, labels), rng },
    );
    assert.equal(table.length, 3);
    assert.deepEqual(
      table.map((s) => s.layer),
      [9, 5, 2],
    );
    assert.equal(best, table[0]);
    assert.ok(best.cvAuroc > 0.9 && table[2]!.cvAuroc < 0.65);
    assert.ok(best.fisherJ > table[2]!.fisherJ);
    for (const s of table) assert.ok(s.participationRatio > 1 && s.dim === 20 && s.lambda > 0);
  });

  test('the shallowest layer within one standard error of the best, else the best', () => {
    const score = (layer: number, cvAuroc: number, cvAurocStd = 0.012): LayerScore => ({
      layer,
      pooling: 'mean',
      dim: 640,
      fisherJ: 1,
      participationRatio: 8,
      cvAuroc,
      cvAurocStd,
      lambda: 1,
    });
    // Best 0.639 ± 0.012 over 3 folds: the floor is 0.639 − 0.012/√3 ≈ 0.632.
    const table = [score(9, 0.639), score(6, 0.638), score(10, 0.635), score(5, 0.6315), score(3, 0.62)];
    assert.equal(shallowestWithinOneSe(table, 3).layer, 6);
    // A tight best leaves nothing else within reach.
    assert.equal(shallowestWithinOneSe([score(9, 0.639, 0.001), score(6, 0.636)], 3).layer, 9);
    // The best is already the shallowest.
    assert.equal(shallowestWithinOneSe([score(4, 0.7), score(8, 0.69)], 3).layer, 4);
  });
});
