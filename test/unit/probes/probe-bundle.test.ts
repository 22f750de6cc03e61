import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { predictHybrid } from '../../../src/baselines/hybrid-predict.js';
import {
  FileUnreadableError,
  InvalidFileError,
  InvalidProbeInputError,
  ProbeEncoderMismatchError,
} from '../../../src/errors.js';
import { applyCalibration, fitIsotonic, fitPlatt } from '../../../src/probes/calibration.js';
import { fitLogistic, logisticLogits } from '../../../src/probes/logistic-regression.js';
import { createMatrix } from '../../../src/probes/matrix.js';
import { mlpLogits, trainMlp } from '../../../src/probes/mlp.js';
import {
  checkPromptWindow,
  linearTier,
  loadProbeBundle,
  mlpHead,
  type ProbeBundle,
  saveProbeBundle,
} from '../../../src/probes/probe-bundle.js';
import { predictProbes, predictProbesBatch } from '../../../src/probes/probe-predict.js';
import { applyStandardizer, fitStandardizer } from '../../../src/probes/standardizer.js';
import { createRng } from '../../../src/seeded-rng.js';
import { fitTfidf } from '../../../src/text/tfidf.js';
import { gaussianClasses, range } from './synthetic.js';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const D = 16; // 2 layers × width 8

/** A small but complete bundle, trained for real on synthetic features with a large offset and scale. */
function buildBundle() {
  const rng = createRng(41);
  const { x: base, labels: cheap } = gaussianClasses(rng, 600, D, { shift: 2, informative: 6, scale: 4 });
  const x = createMatrix(
    base.data.map((v, p) => v + (p % D) * 10),
    600,
    D,
  );
  const strong = cheap.map((l) => l || rng.next() < 0.5);
  const train = range(400);
  const calibration = range(200).map((i) => i + 400);
  const stats = fitStandardizer(x, { rows: train });
  const z = applyStandardizer(stats, x);
  const cheapFit = fitLogistic(z, cheap, { lambda: 1e-2, rows: train }).model;
  const strongFit = fitLogistic(z, strong, { lambda: 1e-2, rows: train }).model;
  const cheapCal = fitPlatt(
    logisticLogits(cheapFit, z, calibration),
    calibration.map((i) => cheap[i]!),
  );
  const strongCal = fitIsotonic(
    logisticLogits(strongFit, z, calibration),
    calibration.map((i) => strong[i]!),
  );
  const mlp = trainMlp(z, [cheap, strong], { rng, hidden: 8, maxEpochs: 5, rows: train });
  const bundle: ProbeBundle = {
    format: 'mechroute-probes',
    version: 1,
    encoder: { name: 'test-encoder', sha256: SHA_A, layers: 4, embedding_width: 8 },
    features: { layers: [3, 1], pooling: 'mean' },
    standardizer: stats,
    tiers: [
      linearTier('cheap', cheapFit, cheapCal, { input_usd_per_mtok: 0.24, output_usd_per_mtok: 0.24 }),
      linearTier('strong', strongFit, strongCal),
    ],
    mlp: mlpHead(mlp.model, ['cheap', 'strong'], [{ kind: 'none' }, { kind: 'platt', a: 0.9, b: 0.1 }]),
    difficulty: { kind: 'tier-failure', tier: 'cheap' },
    metrics: {
      splits: {
        'random-test': {
          n: 200,
          linear: {
            cheap: { auroc: 0.9, brier: 0.1, ece: 0.02 },
            strong: { auroc: Number.NaN, brier: 0.2, ece: 0.05 },
          },
        },
      },
    },
    trained_at: '2025-01-01T00:00:00.000Z',
    traces_sha256: SHA_B,
    notes: 'synthetic [1, 2] — arrays in strings stay as written',
  };
  return { bundle, x, z, cheapFit, strongFit, mlp: mlp.model };
}

describe('probe bundle', () => {
  let dir = '';
  const built = buildBundle();
  const { bundle, x } = built;
  const row = (i: number) => x.data.subarray(i * D, (i + 1) * D) as Float32Array;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-probes-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // Tolerances of 1e-6: the reference path stores standardised features as float32; the bundle folds
  // the standardizer into the weights in float64.
  test('predictions are the calibrated probes on standardised features', () => {
    const i = 450;
    const calibrationOf = (k: number) => {
      const tier = bundle.tiers[k]!;
      if (tier.kind !== 'linear') throw new Error(`tier ${k} is not linear`);
      return tier.calibration;
    };
    const p = predictProbes(bundle, row(i));
    const expected = applyCalibration(calibrationOf(0), logisticLogits(built.cheapFit, built.z, [i])[0]!);
    assert.ok(Math.abs(p.tiers.cheap! - expected) < 1e-6, `${p.tiers.cheap} vs ${expected}`);
    const strong = applyCalibration(calibrationOf(1), logisticLogits(built.strongFit, built.z, [i])[0]!);
    assert.ok(Math.abs(p.tiers.strong! - strong) < 1e-6);
    assert.equal(p.difficulty, 1 - p.tiers.cheap!);
    assert.deepEqual(predictProbesBatch(bundle, x)[i], p);
  });

  test('the MLP head answers when preferred; difficulty kinds', () => {
    const preferMlp: ProbeBundle = { ...bundle, prefer: 'mlp', difficulty: { kind: 'expected-failures' } };
    const p = predictProbes(preferMlp, row(3));
    const logits = mlpLogits(built.mlp, built.z, [3]);
    assert.ok(Math.abs(p.tiers.cheap! - 1 / (1 + Math.exp(-logits[0]!))) < 1e-6);
    assert.ok(
      Math.abs(p.tiers.strong! - applyCalibration({ kind: 'platt', a: 0.9, b: 0.1 }, logits[1]!)) < 1e-6,
    );
    assert.ok(Math.abs(p.difficulty - (2 - p.tiers.cheap! - p.tiers.strong!) / 2) < 1e-12);
  });

  test('save → load gives the same predictions; NaN metrics become null; arrays stay on one line', async () => {
    const file = join(dir, 'nested', 'bundle.json');
    await saveProbeBundle(file, bundle);
    assert.deepEqual(await readdir(join(dir, 'nested')), ['bundle.json']); // no temporary left behind
    const loaded = await loadProbeBundle(file, { sha256: SHA_A });
    for (const i of [0, 17, 599])
      assert.deepEqual(predictProbes(loaded, row(i)), predictProbes(bundle, row(i)));
    assert.equal(loaded.metrics.splits['random-test']!.linear.strong!.auroc, null);
    assert.equal(loaded.notes, bundle.notes);
    const text = await readFile(file, 'utf8');
    assert.ok(text.split('\n').length < 120, 'number arrays are written one per line');
  });

  test('a bundle for another encoder is refused, naming both models and shas', async () => {
    const file = join(dir, 'mismatch.json');
    await saveProbeBundle(file, bundle);
    await assert.rejects(loadProbeBundle(file, { sha256: SHA_B, name: 'other-encoder' }), (error) => {
      assert.ok(error instanceof ProbeEncoderMismatchError);
      assert.equal(error.code, 'MR_ERR_PROBE_ENCODER_MISMATCH');
      for (const part of [SHA_A, SHA_B, 'test-encoder', 'other-encoder', file])
        assert.ok(error.message.includes(part));
      return true;
    });
  });

  test('a bundle trained on a prompt window is refused for an encoder that reads another one', async () => {
    const file = join(dir, 'window.json');
    await saveProbeBundle(file, { ...bundle, features: { ...bundle.features, max_prompt_tokens: 128 } });
    await assert.rejects(
      loadProbeBundle(file, { sha256: SHA_A, maxPromptTokens: 2048 }),
      new RegExp(`${file}.* last 128 tokens .* reads up to 2048: set encoder.max_prompt_tokens to 128`),
    );
    assert.equal(
      (await loadProbeBundle(file, { sha256: SHA_A, maxPromptTokens: 128 })).features.max_prompt_tokens,
      128,
    );
    // Without a window to check against (training, eval), the bundle loads as it is.
    assert.equal((await loadProbeBundle(file, { sha256: SHA_A })).features.max_prompt_tokens, 128);
  });

  test('a malformed bundle fails with every problem and its path', async () => {
    const file = join(dir, 'bad.json');
    const bad = JSON.parse(JSON.stringify(bundle));
    bad.tiers[1].weights.pop();
    delete bad.encoder.sha256;
    bad.features.pooling = 'max';
    await writeFile(file, JSON.stringify(bad));
    await assert.rejects(loadProbeBundle(file, { sha256: SHA_A }), (error) => {
      assert.ok(error instanceof InvalidFileError);
      assert.match(error.message, /encoder\.sha256/);
      assert.match(error.message, /features\.pooling/);
      return true;
    });
    // Once the fields parse, the cross-field checks name the tier and both sizes.
    const wrongWidth = JSON.parse(JSON.stringify(bundle));
    wrongWidth.tiers[1].weights.pop();
    await writeFile(file, JSON.stringify(wrongWidth));
    await assert.rejects(
      loadProbeBundle(file, { sha256: SHA_A }),
      /tiers\.1\.weights: tier "strong" has 15 weights but the features have 16 dimensions \(2 layers × 8\)/,
    );
    await writeFile(file, '{"format": "mechroute-probes",');
    await assert.rejects(loadProbeBundle(file, { sha256: SHA_A }), /not JSON/);
    await assert.rejects(loadProbeBundle(join(dir, 'missing.json'), { sha256: SHA_A }), FileUnreadableError);
  });

  test('an invalid bundle is not written; a wrong-length feature vector is refused', async () => {
    const file = join(dir, 'never.json');
    const invalid = { ...bundle, difficulty: { kind: 'tier-failure' as const, tier: 'nope' } };
    await assert.rejects(saveProbeBundle(file, invalid), /difficulty\.tier: no probe for tier "nope"/);
    await assert.rejects(readFile(file));
    assert.throws(() => predictProbes(bundle, new Float32Array(D - 1)), InvalidProbeInputError);
  });

  test('a hybrid head: P from the features and the words; its stages must fit the bundle', async () => {
    const tfidf = fitTfidf(['short sum question', 'long proof question'], { minDf: 1 });
    const terms = tfidf.terms.length;
    const stage = (width: number, weight: (t: number, j: number) => number) => ({
      kind: 'linear' as const,
      standardizer: { mean: new Array(width).fill(0), std: new Array(width).fill(1) },
      tiers: ['cheap', 'strong'].map((id, t) => ({
        id,
        kind: 'linear' as const,
        weights: Array.from({ length: width }, (_, j) => weight(t, j)),
        bias: 0,
        lambda: 1,
        calibration: { kind: 'none' as const },
      })),
    });
    const proof = tfidf.terms.indexOf('w:proof');
    // Text stage: "proof" lowers P(cheap); the stacker reads only the text stage's log-odds.
    const hybrid: ProbeBundle = {
      ...bundle,
      hybrid: {
        probes: stage(D, () => 0),
        tfidf,
        text: stage(terms, (t, j) => (t === 0 && j === proof ? -5 : 0)),
        stacker: stage(4, (t, j) => (j === 2 + t ? 1 : 0)),
      },
    };
    const easy = predictHybrid(hybrid, row(0), 'a short sum question');
    const hard = predictHybrid(hybrid, row(0), 'a long proof question');
    assert.ok(hard.cheap! < easy.cheap!, `${hard.cheap} < ${easy.cheap}`);
    assert.ok(Math.abs(easy.strong! - 0.5) < 1e-12);
    const file = join(dir, 'hybrid.json');
    await saveProbeBundle(file, hybrid);
    assert.deepEqual(
      predictHybrid(await loadProbeBundle(file, { sha256: SHA_A }), row(0), 'proof'),
      predictHybrid(hybrid, row(0), 'proof'),
    );
    const narrow = { ...hybrid, hybrid: { ...hybrid.hybrid!, stacker: stage(3, () => 0) } };
    await assert.rejects(
      saveProbeBundle(file, narrow),
      /hybrid\.stacker\.tiers\.0\.weights: has 3 weights, expected 4/,
    );
    assert.throws(() => predictHybrid(bundle, row(0), 'x'), /no hybrid head/);
  });

  test('an encoder reading another window of the prompt is refused', () => {
    const windowed: ProbeBundle = { ...bundle, features: { ...bundle.features, max_prompt_tokens: 128 } };
    assert.doesNotThrow(() => checkPromptWindow(windowed, 128));
    assert.throws(
      () => checkPromptWindow(windowed, 2048),
      /last 128 tokens .* set encoder\.max_prompt_tokens to 128/,
    );
    assert.doesNotThrow(() => checkPromptWindow(bundle, 2048), 'older bundles record no window');
  });
});
