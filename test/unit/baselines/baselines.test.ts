import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type BaselineModel,
  loadBaselineModel,
  predictBaseline,
  saveBaselineModel,
} from '../../../src/baselines/baseline-model.js';
import { knnProbabilities } from '../../../src/baselines/knn.js';
import { baselineScorer } from '../../../src/baselines/tier-scorer.js';
import { auroc } from '../../../src/metrics/classification.js';
import { createMatrix } from '../../../src/probes/matrix.js';
import { createRng } from '../../../src/seeded-rng.js';
import { fitTfidf, tfidfVector } from '../../../src/text/tfidf.js';
import { fitKnnHead, fitLinearHead, stackRows } from '../../../training/fit-baselines.js';
import { range } from '../probes/synthetic.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Prompts whose success depends on their words: algebra fails the cheap tier, history passes it. */
function textTask(n: number, seed: number) {
  const rng = createRng(seed);
  const hard = ['eigenvalue', 'integral', 'homomorphism', 'topology', 'derivative', 'manifold'];
  const easy = ['capital', 'river', 'king', 'century', 'treaty', 'empire'];
  const filler = ['the', 'of', 'which', 'is', 'a', 'what', 'in', 'find'];
  const texts: string[] = [];
  const cheap: boolean[] = [];
  for (let i = 0; i < n; i += 1) {
    const isHard = rng.next() < 0.5;
    const pool = isHard ? hard : easy;
    const words = Array.from({ length: 8 }, (_, k) =>
      k % 3 === 0 ? pool[rng.int(pool.length)]! : filler[rng.int(filler.length)]!,
    );
    texts.push(`${words.join(' ')}?`);
    cheap.push(!isHard);
  }
  return { texts, labels: [cheap, cheap.map(() => true)] as boolean[][] };
}

describe('tfidf', () => {
  test('the vocabulary is deterministic and vectors are unit length', () => {
    const { texts } = textTask(100, 1);
    const a = fitTfidf(texts, { maxWordTerms: 50, maxCharTerms: 50 });
    const b = fitTfidf([...texts], { maxWordTerms: 50, maxCharTerms: 50 });
    assert.deepEqual(a, b);
    assert.equal(a.terms.length, 100);
    const v = tfidfVector(a, texts[0]!);
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-5);
    assert.ok(tfidfVector(a, 'zzzz qqqq').every((x) => x === 0));
  });

  test('counts word bigrams and padded character n-grams', () => {
    const model = fitTfidf(['Ab cd', 'ab cd'], { minDf: 1, charNgram: [3, 3] });
    assert.ok(model.terms.includes('w:ab cd'));
    assert.ok(model.terms.includes('c: ab'));
    assert.ok(model.terms.includes('c:ab '));
  });
});

describe('baselines learn a separable task', () => {
  const train = textTask(300, 2);
  const test_ = textTask(100, 3);
  const texts = [...train.texts, ...test_.texts];
  const labels = train.labels.map((l, t) => [...l, ...test_.labels[t]!]);
  const trainRows = range(300);
  const testRows = range(100).map((i) => 300 + i);
  const tfidf = fitTfidf(train.texts);
  const x = stackRows(
    texts.map((t) => tfidfVector(tfidf, t)),
    tfidf.terms.length,
  );

  test('TF-IDF → logistic regression reaches near-perfect AUROC on held-out prompts', () => {
    const fitted = fitLinearHead(x, labels, ['cheap', 'strong'], trainRows, { rng: createRng(4) });
    const p = fitted.predict(testRows)[0]!;
    assert.ok(auroc([...p], test_.labels[0]!) > 0.99);
    // The model file predicts what the fit predicts.
    const model: BaselineModel = {
      format: 'mechroute-baseline',
      version: 1,
      method: 'tfidf-lr',
      tiers: ['cheap', 'strong'],
      featurizer: { kind: 'tfidf', tfidf },
      head: fitted.head,
    };
    const again = predictBaseline(model, tfidfVector(tfidf, test_.texts[0]!));
    assert.ok(Math.abs(again.cheap! - p[0]!) < 1e-6);
  });

  test('kNN separates it too', () => {
    const fitted = fitKnnHead(x, labels, trainRows, { k: 5 });
    const p = fitted.predict(testRows)[0]!;
    assert.ok(auroc([...p], test_.labels[0]!) > 0.99);
  });
});

describe('kNN and logistic regression agree on trivial cases', () => {
  // Two tight clusters on the unit circle, one where the cheap tier always succeeds, one where it fails.
  const rng = createRng(5);
  const rows: number[][] = [];
  const cheap: boolean[] = [];
  for (let i = 0; i < 80; i += 1) {
    const good = i % 2 === 0;
    const angle = (good ? 0 : Math.PI / 2) + 0.05 * rng.normal();
    rows.push([Math.cos(angle), Math.sin(angle)]);
    cheap.push(good);
  }
  const x = createMatrix(Float32Array.from(rows.flat()), 80, 2);
  const labels = [cheap];
  const all = range(80);

  test('both say yes near the good cluster and no near the bad one', () => {
    const lr = fitLinearHead(x, labels, ['cheap'], all, { rng: createRng(6) });
    const knn = fitKnnHead(x, labels, all, { k: 7 });
    const queries = createMatrix(Float32Array.from([1, 0, 0, 1]), 2, 2);
    const lrModel: BaselineModel = {
      format: 'mechroute-baseline',
      version: 1,
      method: 'sentence-lr',
      tiers: ['cheap'],
      featurizer: { kind: 'sentence', model: 'synthetic', sha256: '0'.repeat(64), dim: 2 },
      head: lr.head,
    };
    const knnModel: BaselineModel = { ...lrModel, method: 'sentence-knn', head: knn.head };
    for (const [q, expected] of [
      [queries.data.subarray(0, 2), true],
      [queries.data.subarray(2, 4), false],
    ] as const) {
      const a = predictBaseline(lrModel, q).cheap!;
      const b = predictBaseline(knnModel, q).cheap!;
      assert.equal(a > 0.5, expected, `LR ${a}`);
      assert.equal(b > 0.5, expected, `kNN ${b}`);
    }
  });

  test('kNN smooths towards the base rate and skips rows without the tier', () => {
    const index = {
      vectors: Float32Array.from([1, 0, 1, 0, 0, 1]),
      dim: 2,
      labels: [[true, null, false]],
      k: 1,
      prior: 1,
    };
    // The nearest labelled row is row 0 (row 1 has no outcome): (1 + 1·rate) / (1 + 1), rate = 1.5/3.
    assert.ok(Math.abs(knnProbabilities(index, [1, 0])[0]! - 0.75) < 1e-12);
  });
});

describe('baseline model files', () => {
  test('round-trip, and a malformed file names the bad field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mr-baseline-'));
    dirs.push(dir);
    const tfidf = fitTfidf(['a b c', 'a b d'], { minDf: 1 });
    const dim = tfidf.terms.length;
    const tier = {
      id: 'cheap',
      kind: 'linear' as const,
      weights: new Array(dim).fill(0.5),
      bias: 0,
      lambda: 1,
      calibration: { kind: 'none' as const },
    };
    const model: BaselineModel = {
      format: 'mechroute-baseline',
      version: 1,
      method: 'tfidf-lr',
      tiers: ['cheap'],
      featurizer: { kind: 'tfidf', tfidf },
      head: {
        kind: 'linear',
        standardizer: { mean: new Array(dim).fill(0), std: new Array(dim).fill(1) },
        tiers: [tier],
      },
    };
    const file = join(dir, 'm.json');
    await saveBaselineModel(file, model);
    const loaded = await loadBaselineModel(file);
    assert.deepEqual(loaded, model);
    const scorer = baselineScorer(loaded, {});
    const score = await scorer.score('a b c');
    assert.ok(score.tiers.cheap! > 0.5);

    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({
        ...model,
        head: { ...model.head, tiers: [{ ...tier, weights: [1] }] },
      }),
    );
    await assert.rejects(loadBaselineModel(bad), /head\.tiers\.0\.weights/);
    assert.throws(
      () =>
        baselineScorer(
          {
            ...model,
            method: 'sentence-lr',
            featurizer: { kind: 'sentence', model: 'x', sha256: '0'.repeat(64), dim },
          },
          {},
        ),
      /needs the sentence encoder/,
    );
  });
});
