import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadProbeBundle } from '../../../src/probes/probe-bundle.js';
import { trainProbes } from '../../../training/train-probes.js';
import { referenceTierIndex } from '../../../training/training-data.js';
import { createSyntheticData, SIGNAL_LAYER, type SyntheticData } from './synthetic-store.js';

const prices = {
  cheap: { input_usd_per_mtok: 0.2, output_usd_per_mtok: 0.2 },
  dear: { input_usd_per_mtok: 10, output_usd_per_mtok: 30 },
};

describe('referenceTierIndex', () => {
  it('takes the cheapest tier with an outcome on every row', () => {
    assert.equal(
      referenceTierIndex([
        [true, null],
        [true, false],
      ]),
      1,
    );
    assert.equal(
      referenceTierIndex([
        [true, false],
        [false, true],
      ]),
      0,
    );
  });
  it('falls back to the tier with the most outcomes, the cheaper on ties', () => {
    assert.equal(
      referenceTierIndex([
        [true, null, null],
        [null, true, false],
        [false, null, true],
      ]),
      1,
    );
  });
});

describe('trainProbes when the cheapest tier has outcomes on only some traces', () => {
  let synthetic: SyntheticData;
  let tracesFile: string;
  const partial = 60;

  before(async () => {
    synthetic = await createSyntheticData();
    // A free local tier ("tiny", no price: cheapest) labelled on the first traces only.
    const lines = (await readFile(synthetic.tracesFile, 'utf8')).trim().split('\n');
    const withTiny = lines.map((line, i) => {
      if (i >= partial) return line;
      const trace = JSON.parse(line) as { outcomes: Record<string, boolean> };
      trace.outcomes.tiny = i % 4 === 0;
      return JSON.stringify(trace);
    });
    tracesFile = join(synthetic.dir, 'with-tiny.jsonl');
    await writeFile(tracesFile, `${withTiny.join('\n')}\n`);
  });
  after(async () => {
    await rm(synthetic.dir, { recursive: true, force: true });
  });

  it('uses the next tier as the reference and still fits a probe for the partial tier', async () => {
    const out = join(synthetic.dir, 'probes', 'tiny.json');
    const { report, bundle } = await trainProbes({
      tracesFile,
      storeDir: synthetic.storeDir,
      out,
      seed: 3,
      costs: { prices },
      fit: { mlp: false, layerRows: 400 },
    });
    assert.deepEqual(
      report.tiers.map((t) => [t.id, t.n]),
      [
        ['tiny', partial],
        ['cheap', 300],
        ['dear', 300],
      ],
    );
    assert.equal(report.reference_tier, 'cheap');
    assert.equal(report.layer_selection_tier, 'cheap');
    assert.deepEqual([report.layer_table[0]!.layer, report.layer_table[0]!.pooling], [SIGNAL_LAYER, 'last']);
    for (const kind of ['random', 'group'] as const) {
      const cv = report.splits[kind]!;
      assert.equal(cv.linear.routing?.weak_tier, 'cheap', kind);
      assert.equal(cv.linear.routing?.strong_tier, 'dear', kind);
      assert.ok(cv.difficulty.n === 300, `${kind}: difficulty scored on the reference tier's rows`);
      assert.ok(cv.difficulty.auroc > 0.8, `${kind} difficulty AUROC ${cv.difficulty.auroc}`);
      assert.equal(cv.linear.tiers.tiny!.n, partial);
    }
    assert.deepEqual(
      bundle.tiers.map((t) => t.id),
      ['tiny', 'cheap', 'dear'],
    );
    assert.deepEqual(bundle.difficulty, { kind: 'tier-failure', tier: 'cheap' });
    assert.equal(bundle.metrics?.layer_selection_tier, 'cheap');
    assert.match(bundle.notes ?? '', /Reference tier: cheap/);
    assert.match(bundle.notes ?? '', /tiny 60 of 300/);
    const loaded = await loadProbeBundle(out, { sha256: synthetic.encoder.sha256 });
    assert.equal(loaded.tiers.length, 3);
  });

  it('takes --reference-tier over the default', async () => {
    const { report, bundle } = await trainProbes({
      tracesFile,
      storeDir: synthetic.storeDir,
      out: join(synthetic.dir, 'probes', 'dear-reference.json'),
      seed: 3,
      costs: { prices },
      referenceTier: 'dear',
      skipCv: true,
      fit: { mlp: false, layerRows: 400 },
    });
    assert.equal(report.reference_tier, 'dear');
    assert.equal(report.reference_reason, '--reference-tier');
    assert.deepEqual(bundle.difficulty, { kind: 'tier-failure', tier: 'dear' });
    assert.equal(bundle.metrics?.layer_selection_tier, 'dear');
  });

  it('refuses a reference tier that is not trained', async () => {
    await assert.rejects(
      trainProbes({
        tracesFile,
        storeDir: synthetic.storeDir,
        out: join(synthetic.dir, 'probes', 'none.json'),
        costs: { prices },
        referenceTier: 'nope',
        skipCv: true,
        fit: { mlp: false },
      }),
      /--reference-tier nope/,
    );
  });
});
