import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadProbeBundle, type ProbeBundle } from '../../../src/probes/probe-bundle.js';
import { predictProbes } from '../../../src/probes/probe-predict.js';
import { evaluateBundle } from '../../../training/evaluate-bundle.js';
import { type TrainReport, trainProbes } from '../../../training/train-probes.js';
import { createSyntheticData, SIGNAL_LAYER, type SyntheticData, WIDTH } from './synthetic-store.js';

const inUnit = (v: number | null | undefined) => typeof v === 'number' && v >= 0 && v <= 1;

describe('trainProbes on synthetic activations with a planted signal', () => {
  let synthetic: SyntheticData;
  let report: TrainReport;
  let bundle: ProbeBundle;
  let out: string;

  before(async () => {
    synthetic = await createSyntheticData();
    out = join(synthetic.dir, 'probes', 'synthetic.json');
    ({ report, bundle } = await trainProbes({
      tracesFile: synthetic.tracesFile,
      storeDir: synthetic.storeDir,
      out,
      seed: 3,
      costs: { prices: { cheap: { input_usd_per_mtok: 0.2, output_usd_per_mtok: 0.2 } } },
      // A small, fast-learning MLP: 190 training rows are few epochs' worth of steps at the default rate.
      fit: { mlp: { hidden: 16, maxEpochs: 100, patience: 10, learningRate: 1e-2 }, layerRows: 400 },
    }));
  });
  after(async () => {
    await rm(synthetic.dir, { recursive: true, force: true });
  });

  it('reports the prompts without activations instead of dropping them silently', () => {
    assert.equal(report.rows, 300);
    assert.equal(report.missing_activations, synthetic.missing.length);
    assert.deepEqual(report.missing_activation_ids, synthetic.missing);
  });

  it('orders tiers cheapest first, pricing an unknown tier as a free local one', () => {
    // "dear" has no price given and none by default: it is taken as local (0/0), so it is the cheapest.
    assert.deepEqual(
      report.tiers.map((t) => [t.id, t.price_assumed_local]),
      [
        ['dear', true],
        ['cheap', false],
      ],
    );
    assert.equal(report.tiers[1]!.assumed_output_tokens, 1);
    assert.equal(report.tiers[1]!.cost_sources.encoder_tokens, 300);
  });

  it('finds the layer that carries the signal and scores every candidate', () => {
    assert.equal(report.layer_table.length, 5 + 3);
    assert.deepEqual([report.layer_table[0]!.layer, report.layer_table[0]!.pooling], [SIGNAL_LAYER, 'last']);
    assert.ok(report.chosen.layers.includes(SIGNAL_LAYER));
    assert.equal(report.chosen.pooling, 'last');
    for (const choice of [...report.splits.random!.choices, ...report.splits.group!.choices]) {
      assert.ok(choice.layers.includes(SIGNAL_LAYER), `a fold chose ${choice.layers}`);
    }
  });

  it('reaches a high AUROC on both splits, with every metric present, and beats the baselines', () => {
    for (const kind of ['random', 'group'] as const) {
      const cv = report.splits[kind]!;
      for (const tier of ['dear', 'cheap']) {
        const m = cv.linear.tiers[tier]!;
        assert.ok(m.auroc > 0.85, `${kind} ${tier} AUROC ${m.auroc}`);
        assert.ok(inUnit(m.brier) && inUnit(m.ece) && inUnit(m.accuracy), `${kind} ${tier}`);
        assert.ok(cv.mlp!.tiers[tier]!.auroc > 0.75, `${kind} ${tier} MLP AUROC`);
      }
      const r = cv.linear.routing!;
      assert.ok(r.apgr > 0.6, `${kind} APGR ${r.apgr}`);
      for (const v of [r.cpt50, r.cpt80, r.cost_saving, r.strong_share]) assert.ok(inUnit(v), `${kind}`);
      assert.ok(Number.isFinite(r.oracle_gap_closed) && Number.isFinite(r.cost_per_correct));
      assert.ok(cv.baselines.random!.tiers.dear!.auroc < 0.7);
      assert.ok(cv.baselines['subject-prior']!.tiers.dear!.auroc < cv.linear.tiers.dear!.auroc);
    }
    // On whole held-out subjects the prior is one constant per fold: it ranks nothing.
    assert.equal(report.splits.group!.baselines['subject-prior']!.tiers.dear!.auroc, 0.5);
  });

  it('writes a bundle that loads, carries the CV metrics, and predicts', async () => {
    const loaded = await loadProbeBundle(out, { sha256: synthetic.encoder.sha256 });
    assert.deepEqual(loaded.features, bundle.features);
    assert.deepEqual(
      loaded.tiers.map((t) => t.id),
      ['dear', 'cheap'],
    );
    assert.deepEqual(loaded.difficulty, { kind: 'tier-failure', tier: 'dear' });
    assert.ok(loaded.mlp);
    assert.ok(['linear', 'mlp'].includes(loaded.prefer!));
    assert.deepEqual(Object.keys(loaded.metrics.splits).sort(), ['random-cv', 'subject-cv']);
    assert.ok(loaded.metrics.splits['subject-cv']!.routing!.apgr! > 0.6);
    assert.equal(loaded.metrics.layers!.length, 8);
    const dim = loaded.features.layers.length * WIDTH;
    const at = (z: number) => {
      const v = new Float32Array(dim);
      const offset = loaded.features.layers.indexOf(SIGNAL_LAYER) * WIDTH;
      for (let j = 0; j < 4; j += 1) v[offset + j] = z;
      return predictProbes(loaded, v);
    };
    const easy = at(-2);
    const hard = at(2);
    assert.ok(easy.tiers.cheap! > 0.8 && hard.tiers.cheap! < 0.2, JSON.stringify({ easy, hard }));
    assert.ok(hard.difficulty > easy.difficulty);
  });

  it('evaluates the bundle from the store, with every field in range', async () => {
    const text = await readFile(synthetic.tracesFile, 'utf8');
    const stored = join(synthetic.dir, 'stored.jsonl');
    await writeFile(stored, `${text.trim().split('\n').slice(0, 300).join('\n')}\n`);
    const result = await evaluateBundle({ probes: out, tracesFile: stored, storeDir: synthetic.storeDir });
    assert.equal(result.n, 300);
    assert.deepEqual(result.features.from_store, 300);
    for (const tier of ['dear', 'cheap']) {
      assert.ok(result.auroc[tier]! > 0.85, `${tier} ${result.auroc[tier]}`);
      assert.ok(inUnit(result.brier[tier]) && inUnit(result.ece[tier]) && inUnit(result.accuracy[tier]));
    }
    for (const v of [result.apgr, result.cpt50, result.cpt80, result.cost_saving]) assert.ok(inUnit(v));
    assert.ok(typeof result.oracle_gap_closed === 'number' && typeof result.cost_per_correct === 'number');
  });

  it('encodes only the prompts missing from the store, at the bundle’s layers only', async () => {
    const requests: { count: number; layers: number[]; pooling: string }[] = [];
    const stub = {
      // The prompt window the store was read with, which the bundle records.
      info: { maxPromptTokens: bundle.features.max_prompt_tokens },
      encode: async (prompts: string[], options: { layers: number[]; pooling: 'last' | 'mean' }) => {
        requests.push({ count: prompts.length, ...options });
        return prompts.map(() => ({
          tokens: 10,
          truncated: false,
          layers: options.layers,
          [options.pooling]: options.layers.map(() => new Float32Array(WIDTH)),
        }));
      },
    };
    const result = await evaluateBundle({
      probes: out,
      tracesFile: synthetic.tracesFile,
      storeDir: synthetic.storeDir,
      encoder: stub as never,
    });
    assert.deepEqual(result.features, {
      layers: bundle.features.layers,
      pooling: bundle.features.pooling,
      from_store: 300,
      encoded: 3,
    });
    assert.deepEqual(requests, [
      { count: 3, layers: bundle.features.layers, pooling: bundle.features.pooling },
    ]);
  });
});
