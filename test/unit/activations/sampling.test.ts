import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stratifiedSample } from '../../../src/activations/sampling.js';
import { createRng } from '../../../src/seeded-rng.js';

const mulberry32 = (seed: number) => createRng(seed).next;

describe('seeded sampling', () => {
  it('the seeded generator is deterministic per seed and in [0, 1)', () => {
    const a = mulberry32(1);
    const b = mulberry32(1);
    const c = mulberry32(2);
    const xs = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(
      xs,
      Array.from({ length: 1000 }, () => b()),
    );
    assert.notDeepEqual(
      xs.slice(0, 5),
      Array.from({ length: 5 }, () => c()),
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05);
  });

  it('picks the same subset for the same seed, in input order, without repeats', () => {
    const items = Array.from({ length: 500 }, (_, i) => i);
    const a = stratifiedSample(items, 50, 7);
    assert.deepEqual(a, stratifiedSample(items, 50, 7));
    assert.notDeepEqual(a, stratifiedSample(items, 50, 8));
    assert.equal(new Set(a).size, 50);
    assert.deepEqual(
      a,
      [...a].sort((x, y) => x - y),
    );
    assert.deepEqual(stratifiedSample(items, 600, 1), items);
    assert.deepEqual(stratifiedSample(items, 0, 1), []);
  });

  it('keeps each stratum’s share', () => {
    const items = [
      ...Array.from({ length: 900 }, (_, i) => ({ id: i, dataset: 'big' })),
      ...Array.from({ length: 90 }, (_, i) => ({ id: 900 + i, dataset: 'small' })),
      ...Array.from({ length: 10 }, (_, i) => ({ id: 990 + i, dataset: 'tiny' })),
    ];
    const picked = stratifiedSample(items, 100, 3, (item) => item.dataset);
    const count = (name: string) => picked.filter((p) => p.dataset === name).length;
    assert.equal(picked.length, 100);
    assert.deepEqual([count('big'), count('small'), count('tiny')], [90, 9, 1]);
    // Shares that do not divide evenly still add up to the requested size.
    assert.equal(stratifiedSample(items, 37, 3, (item) => item.dataset).length, 37);
  });
});
