import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProbeBundle } from '../../../src/probes/probe-bundle.js';
import { type LiveConfig, missingHeads, replacedHeads } from '../../../src/server/config-reload.js';

/** Only the tier ids of the config and the heads of the bundle matter to these checks. */
function live(
  tiers: string[],
  heads: Record<string, number>,
  mlp?: { tiers: string[]; w: number },
): LiveConfig {
  return {
    config: { tiers: tiers.map((id) => ({ id })) },
    bundle: {
      tiers: Object.entries(heads).map(([id, p]) => ({ id, kind: 'constant', p })),
      ...(mlp ? { mlp: { tiers: mlp.tiers, weights: [mlp.w] } } : {}),
    } as unknown as ProbeBundle,
  } as unknown as LiveConfig;
}

describe('what a config reload changes for the tiers', () => {
  test('replaced heads: a removed tier and a tier whose head changed, not one left as it was', () => {
    const running = live(['a', 'b', 'c'], { a: 0.5, b: 0.6, c: 0.7 });
    const next = live(['a', 'b', 'd'], { a: 0.5, b: 0.65, c: 0.7, d: 0.2 });
    assert.deepEqual(replacedHeads(running, next), ['b', 'c']);
    assert.deepEqual(replacedHeads(running, running), []);
  });

  test('replaced heads: a new MLP replaces the head of every tier it predicts', () => {
    const running = live(['a', 'b'], { a: 0.5 }, { tiers: ['b'], w: 1 });
    assert.deepEqual(replacedHeads(running, live(['a', 'b'], { a: 0.5 }, { tiers: ['b'], w: 2 })), ['b']);
    assert.deepEqual(replacedHeads(running, live(['a', 'b'], { a: 0.5 }, { tiers: ['b'], w: 1 })), []);
  });

  test('missing heads: a new tier without one, but not a tier that already ran without one', () => {
    const running = live(['a', 'local'], { a: 0.5 });
    assert.deepEqual(missingHeads(running, live(['a', 'local', 'new'], { a: 0.5 })), ['new']);
    assert.deepEqual(missingHeads(running, live(['a', 'local', 'new'], { a: 0.5, new: 0.3 })), []);
  });
});
