import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TrainingDataError } from '../../../src/errors.js';
import { createRng } from '../../../src/seeded-rng.js';
import { groupPrior } from '../../../training/baselines.js';
import { outerFolds } from '../../../training/cross-validate.js';
import { holdOut, innerFolds } from '../../../training/fit-probes.js';
import { routingMetrics } from '../../../training/split-metrics.js';
import { costTable, orderByCost, parseOutputTokens, parsePrices } from '../../../training/tier-costs.js';

/** 40 rows over 8 subjects of unequal size. */
const groups = Array.from({ length: 40 }, (_, i) => `s${i % 3 === 0 ? 0 : i % 8}`);
const labels = groups.map((_, i) => i % 3 !== 1);

const subjectsOf = (rows: readonly number[]) => new Set(rows.map((i) => groups[i]!));
const disjoint = (a: Set<string>, b: Set<string>) => [...a].every((g) => !b.has(g));

describe('group splits never put a subject on both sides', () => {
  it('outer folds', () => {
    const data = { labels: [labels], groups, tiers: ['t'], groupBy: 'subject' } as never;
    const folds = outerFolds(data, 'group', 5, 1);
    assert.equal(folds.length, 5);
    const tested = folds.flatMap((f) => f.test).sort((a, b) => a - b);
    assert.deepEqual(
      tested,
      groups.map((_, i) => i),
    );
    for (const f of folds) assert.ok(disjoint(subjectsOf(f.train), subjectsOf(f.test)));
  });

  it('inner folds and the calibration hold-out, inside an outer training fold', () => {
    const rng = createRng(2);
    const train = groups.flatMap((g, i) => (g === 's5' ? [] : [i]));
    const { kept, held } = holdOut(train, 0.2, rng, groups);
    assert.deepEqual(
      [...kept, ...held].sort((a, b) => a - b),
      train,
    );
    assert.ok(held.length > 0 && kept.length > 0);
    assert.ok(disjoint(subjectsOf(kept), subjectsOf(held)));
    for (const f of innerFolds(kept, 3, rng, labels, groups)) {
      assert.ok(disjoint(subjectsOf(f.train), subjectsOf(f.test)));
      assert.ok([...f.train, ...f.test].every((i) => kept.includes(i)));
    }
  });

  it('the subject prior of an unseen subject is the overall training rate', () => {
    const train = [0, 1, 2, 3, 4, 5];
    const prior = groupPrior(
      [true, false, true, true, null, false, true],
      ['a', 'a', 'b', 'b', 'b', 'b', 'c'],
      train,
      [0, 6],
    );
    assert.deepEqual(Array.from(prior), [0.5, 3 / 5]);
  });
});

describe('tier costs', () => {
  it('parses prices and output tokens, and refuses malformed ones', () => {
    assert.deepEqual(parsePrices('a=0.5/1, b=10/30'), {
      a: { input_usd_per_mtok: 0.5, output_usd_per_mtok: 1 },
      b: { input_usd_per_mtok: 10, output_usd_per_mtok: 30 },
    });
    assert.throws(() => parsePrices('a=1'), TrainingDataError);
    assert.throws(() => parsePrices('a=x/1'), TrainingDataError);
    assert.deepEqual(parseOutputTokens('3'), { all: 3, byTier: {} });
    assert.deepEqual(parseOutputTokens('a=5'), { byTier: { a: 5 } });
  });

  it('uses a trace’s cost, then its tokens, then encoder tokens with the assumed output', () => {
    const traces = [
      { id: '1', prompt: 'x', outcomes: {}, cost: { 'gpt-4-1106-preview': 0.5 } },
      { id: '2', prompt: 'x', outcomes: {}, tokens: { 'gpt-4-1106-preview': { input: 100, output: 10 } } },
      { id: '3', prompt: 'x', outcomes: {} },
    ];
    const table = costTable(traces, [7, 7, 20], ['gpt-4-1106-preview', 'local'], {
      outputTokens: { byTier: { 'gpt-4-1106-preview': 2 } },
    });
    assert.deepEqual(table.costs['gpt-4-1106-preview'], [
      0.5,
      (100 * 10 + 10 * 30) / 1e6,
      (20 * 10 + 2 * 30) / 1e6,
    ]);
    assert.deepEqual(table.costs.local, [0, 0, 0]);
    assert.deepEqual(table.assumedLocal, ['local']);
    assert.deepEqual(orderByCost(['gpt-4-1106-preview', 'local'], table), ['local', 'gpt-4-1106-preview']);
  });
});

describe('routing metrics', () => {
  it('a perfect router reaches the oracle with only the needed strong calls', () => {
    // Rows 0–1: weak right; 2: only strong right; 3: both wrong.
    const r = routingMetrics({
      weakTier: 'w',
      strongTier: 's',
      pWeak: [0.9, 0.8, 0.1, 0.3],
      weakLabels: [true, true, false, false],
      strongLabels: [true, false, true, false],
      weakCosts: [1, 1, 1, 1],
      strongCosts: [10, 10, 10, 10],
      rows: [0, 1, 2, 3],
    })!;
    assert.equal(r.quality, 0.75);
    assert.equal(r.q_oracle, 0.75);
    assert.equal(r.oracle_gap_closed, 1);
    assert.equal(r.strong_share, 0.25);
    assert.equal(r.cost_saving, 1 - 13 / 40);
    assert.equal(r.strong_share_at_p50, 0.5);
  });
});
