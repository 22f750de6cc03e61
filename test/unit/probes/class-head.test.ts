import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { classProbabilities, fitClassHead, topClass } from '../../../src/probes/class-head.js';
import { fitLogistic } from '../../../src/probes/logistic-regression.js';
import { createMatrix } from '../../../src/probes/matrix.js';
import {
  linearTier,
  loadProbeBundle,
  type ProbeBundle,
  saveProbeBundle,
} from '../../../src/probes/probe-bundle.js';
import { predictProbes } from '../../../src/probes/probe-predict.js';
import { applyStandardizer, fitStandardizer } from '../../../src/probes/standardizer.js';
import { createRng } from '../../../src/seeded-rng.js';
import { mmluGroup, taskClassOf } from '../../../src/traces/task-class.js';

const D = 8;
const NAMES = ['alpha', 'beta', 'gamma'];

/** Three Gaussian blobs in 8 dimensions, centred 3 apart on different axes, with an offset and scale. */
function blobs(n: number, seed: number) {
  const rng = createRng(seed);
  const labels: string[] = [];
  const data = new Float32Array(n * D);
  for (let i = 0; i < n; i += 1) {
    const k = i % 3;
    labels.push(NAMES[k]!);
    for (let j = 0; j < D; j += 1) data[i * D + j] = 50 + 7 * (rng.normal() + (j === k ? 3 : 0));
  }
  return { x: createMatrix(data, n, D), labels };
}

describe('task-class head', () => {
  test('separable classes are recovered almost perfectly on held-out rows, probabilities sum to 1', () => {
    const train = blobs(600, 1);
    const stats = fitStandardizer(train.x);
    const head = fitClassHead(applyStandardizer(stats, train.x), train.labels, { lambda: 1e-3 });
    assert.deepEqual(head.names, NAMES);
    const test = blobs(300, 2);
    const z = applyStandardizer(stats, test.x);
    let right = 0;
    for (let i = 0; i < 300; i += 1) {
      const p = classProbabilities(head, z.data, i * D);
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
      if (topClass(head, z.data, i * D).name === test.labels[i]) right += 1;
    }
    assert.ok(right / 300 > 0.95, `accuracy ${right / 300}`);
  });

  test('one class is refused', () => {
    const { x } = blobs(30, 3);
    assert.throws(
      () => fitClassHead(x, new Array<string>(30).fill('only'), { lambda: 1 }),
      /at least 2 classes/,
    );
  });

  test('stored in a bundle: round-trips, and predictProbes reports the class of raw features', async () => {
    const { x, labels } = blobs(600, 4);
    const stats = fitStandardizer(x);
    const z = applyStandardizer(stats, x);
    const head = fitClassHead(z, labels, { lambda: 1e-3 });
    const tier = fitLogistic(
      z,
      labels.map((l) => l === 'alpha'),
      { lambda: 1e-2 },
    ).model;
    const bundle: ProbeBundle = {
      format: 'mechroute-probes',
      version: 1,
      encoder: { name: 'test-encoder', sha256: 'a'.repeat(64), layers: 4, embedding_width: D },
      features: { layers: [2], pooling: 'mean' },
      standardizer: stats,
      tiers: [linearTier('cheap', tier, { kind: 'none' })],
      difficulty: { kind: 'tier-failure', tier: 'cheap' },
      classes: { source: 'class', ...head, metrics: { held_out_accuracy: 0.99 } },
      metrics: { splits: {} },
      trained_at: '2026-01-01T00:00:00.000Z',
      traces_sha256: 'b'.repeat(64),
    };
    const dir = await mkdtemp(join(tmpdir(), 'mechroute-classes-'));
    try {
      const file = join(dir, 'bundle.json');
      await saveProbeBundle(file, bundle);
      const loaded = await loadProbeBundle(file, { sha256: 'a'.repeat(64) });
      assert.deepEqual(loaded.classes!.names, NAMES);
      for (let i = 0; i < 30; i += 1) {
        const raw = x.data.subarray(i * D, (i + 1) * D);
        const predicted = predictProbes(loaded, raw).task_class!;
        const reference = topClass(head, z.data, i * D);
        assert.equal(predicted.name, reference.name);
        assert.ok(Math.abs(predicted.p - reference.p) < 1e-5);
      }
      const broken = { ...bundle, classes: { ...bundle.classes!, heads: bundle.classes!.heads.slice(1) } };
      await assert.rejects(
        saveProbeBundle(join(dir, 'bad.json'), broken),
        /classes\.heads: 2 heads for 3 classes/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('task classes of traces', () => {
  test('MMLU subjects map to the four groups; class field and dataset sources', () => {
    assert.equal(mmluGroup('abstract_algebra'), 'STEM');
    assert.equal(mmluGroup('professional_law'), 'humanities');
    assert.equal(mmluGroup('high_school_macroeconomics'), 'social sciences');
    assert.equal(mmluGroup('virology'), 'other');
    assert.equal(mmluGroup('cooking'), undefined);
    const t = { dataset: 'mmlu', subject: 'college_physics' };
    assert.equal(taskClassOf(t, 'mmlu-group'), 'STEM');
    assert.equal(taskClassOf(t, 'dataset'), 'mmlu');
    assert.equal(taskClassOf(t, 'class'), undefined);
    assert.equal(taskClassOf({ ...t, class: 'physics' }, 'auto'), 'physics');
    assert.equal(taskClassOf({ dataset: 'gsm8k' }, 'auto'), 'gsm8k');
  });
});
