import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InvalidProbeInputError } from '../../../src/errors.js';
import { clusterQuotas, selectAnchors } from '../../../src/probes/anchor-selection.js';
import { kMeans } from '../../../src/probes/kmeans.js';
import {
  mlpHead,
  type ProbeBundle,
  parseProbeBundle,
  saveProbeBundle,
} from '../../../src/probes/probe-bundle.js';
import { predictProbes } from '../../../src/probes/probe-predict.js';
import { addTierHead, removeTierHead, tierSummaries, withClusters } from '../../../src/probes/tier-edit.js';
import { createRng } from '../../../src/seeded-rng.js';
import { plantedClusters, trainedHead } from './planted-clusters.js';

const D = 12;
const SHA = 'd'.repeat(64);
const rng = createRng(11);
const pool = plantedClusters(rng, 1200, D);
const { centroids, sizes } = kMeans(pool.x, 4, createRng(2));

function baseBundle(): ProbeBundle {
  const head = (labels: boolean[]) => {
    const m = trainedHead(pool.x, labels);
    return { weights: Array.from(m.weights), bias: m.bias, lambda: m.lambda };
  };
  return {
    format: 'mechroute-probes',
    version: 1,
    encoder: { name: 'test-encoder', sha256: SHA, layers: 2, embedding_width: D },
    features: { layers: [1], pooling: 'last' },
    standardizer: { mean: new Array(D).fill(0.5), std: new Array(D).fill(2) },
    tiers: [
      { id: 'a', kind: 'linear', ...head(pool.outcomes.a!), calibration: { kind: 'platt', a: 1.1, b: -0.2 } },
      { id: 'b', kind: 'linear', ...head(pool.outcomes.b!), calibration: { kind: 'none' } },
    ],
    mlp: mlpHead(
      {
        inputDim: D,
        hidden: 3,
        outputs: 2,
        activation: 'relu',
        w1: new Array(3 * D).fill(0.1),
        b1: [0, 0.1, 0.2],
        w2: [1, 2, 3, 4, 5, 6],
        b2: [0.5, -0.5],
      },
      ['a', 'b'],
      [{ kind: 'none' }, { kind: 'platt', a: 1, b: 0 }],
    ),
    difficulty: { kind: 'tier-failure', tier: 'a' },
    metrics: { splits: {} },
    trained_at: '2026-01-01T00:00:00.000Z',
    traces_sha256: SHA,
  };
}

/** A cluster head over the four planted clusters. */
const clusterHead = (id: string, rates = [0.5, 0.5, 0.5, 0.5]) => ({
  id,
  kind: 'cluster' as const,
  rates,
  base_rate: 0.5,
  prior_strength: 2,
});

const clusters = {
  centroids: centroids.map((c) => Array.from(c)),
  temperature: 3,
  sizes,
  seed: 2,
  pool_sha256: SHA,
  pool_rows: pool.x.rows,
};

describe('editing a bundle’s tiers', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-tier-edit-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('adding a tier leaves the encoder, standardizer and every other head byte-identical', async () => {
    const before = withClusters(baseBundle(), clusters);
    await saveProbeBundle(join(dir, 'before.json'), before);
    const added = addTierHead(before, clusterHead('fresh', [0.9, 0.1, 0.3, 0.5]));
    await saveProbeBundle(join(dir, 'after.json'), added.bundle);
    const [old, next] = await Promise.all(
      ['before.json', 'after.json'].map(async (f) => JSON.parse(await readFile(join(dir, f), 'utf8'))),
    );
    for (const key of ['encoder', 'features', 'standardizer', 'mlp', 'clusters', 'difficulty'])
      assert.equal(JSON.stringify(next[key]), JSON.stringify(old[key]), key);
    for (const [k, tier] of old.tiers.entries())
      assert.equal(JSON.stringify(next.tiers[k]), JSON.stringify(tier));
    assert.equal(next.tiers.length, 3);
    // Scores of the old tiers do not move; the new one is read off the clusters.
    const x = pool.x.data.subarray(0, D);
    const [p0, p1] = [predictProbes(before, x), predictProbes(added.bundle, x)];
    assert.equal(p1.tiers.a, p0.tiers.a);
    assert.equal(p1.tiers.b, p0.tiers.b);
    assert.ok(p1.tiers.fresh! > 0.1 && p1.tiers.fresh! < 0.9);
  });

  test('a constant head loads, predicts its number, and old bundles without clusters still load', () => {
    const old = parseProbeBundle(JSON.parse(JSON.stringify(baseBundle())), 'old.json');
    const { bundle } = addTierHead(old, { id: 'c', kind: 'constant', p: 0.42 });
    const reparsed = parseProbeBundle(JSON.parse(JSON.stringify(bundle)), 'new.json');
    assert.equal(predictProbes(reparsed, pool.x.data.subarray(0, D)).tiers.c, 0.42);
  });

  test('a cluster head without clusters, or with the wrong number of rates, is refused', () => {
    const head = clusterHead('f');
    assert.throws(() => addTierHead(baseBundle(), head), /tiers clusters/);
    const value = JSON.parse(JSON.stringify({ ...baseBundle(), tiers: [...baseBundle().tiers, head] }));
    assert.throws(() => parseProbeBundle(value, 'x.json'), /cluster head but the bundle has no clusters/);
    value.clusters = { ...clusters, centroids: clusters.centroids.slice(0, 3), sizes: sizes.slice(0, 3) };
    assert.throws(() => parseProbeBundle(value, 'x.json'), /has 4 rates for 3 clusters/);
  });

  test('adding an existing tier is refused; removing keeps the others and their MLP outputs', () => {
    const bundle = baseBundle();
    assert.throws(() => addTierHead(bundle, { id: 'b', kind: 'constant', p: 0.5 }), InvalidProbeInputError);
    const x = pool.x.data.subarray(0, D);
    const before = predictProbes({ ...bundle, prefer: 'mlp' }, x);
    const removed = removeTierHead({ ...bundle, prefer: 'mlp' }, 'a');
    const after = predictProbes(parseProbeBundle(removed.bundle, 'r.json'), x);
    assert.deepEqual(Object.keys(after.tiers), ['b']);
    assert.ok(Math.abs(after.tiers.b! - before.tiers.b!) < 1e-12);
    assert.equal(removed.bundle.difficulty.kind, 'expected-failures');
    assert.match(removed.notices.join('\n'), /difficulty was 1 − P\("a" succeeds\)/);
    assert.throws(() => removeTierHead(removed.bundle, 'b'), /only tier/);
    assert.throws(() => removeTierHead(bundle, 'zz'), /no tier "zz" in the bundle \(it has a, b\)/);
  });

  test('clusters cannot be refitted under cluster heads; list says how each tier was made', () => {
    const { bundle } = addTierHead(withClusters(baseBundle(), clusters), {
      id: 'fresh',
      kind: 'constant',
      p: 0.3,
      fit: {
        method: 'constant',
        anchors: 40,
        anchor_success_rate: 0.3,
        criterion: 'log-loss',
        cv: {},
        reason: 'r',
        anchors_sha256: SHA,
        fitted_at: '2026-01-01T00:00:00.000Z',
      },
    });
    assert.deepEqual(
      tierSummaries(bundle).map((t) => [t.id, t.kind, t.method, t.anchors, t.in_mlp]),
      [
        ['a', 'linear', null, null, true],
        ['b', 'linear', null, null, true],
        ['fresh', 'constant', 'constant', 40, false],
      ],
    );
    const withCluster = addTierHead(bundle, clusterHead('g'));
    assert.throws(() => withClusters(withCluster.bundle, clusters), /read the bundle's clusters/);
  });
});

describe('choosing anchors', () => {
  test('every cluster gets anchors, in proportion to its size, and the choice is deterministic', () => {
    const picked = selectAnchors(pool.x, centroids, 40);
    assert.equal(picked.rows.length, 40);
    assert.equal(new Set(picked.rows).size, 40);
    assert.deepEqual(new Set(picked.clusters), new Set([0, 1, 2, 3]));
    for (const [c, q] of picked.quotas.entries()) assert.ok(Math.abs(q - (40 * sizes[c]!) / 1200) <= 1);
    assert.deepEqual(selectAnchors(pool.x, centroids, 40), picked);
    // Each cluster's first anchor is its most typical row; anchors of a cluster are its rows.
    const assignment = kMeans(pool.x, 4, createRng(2)).assignment;
    for (const [k, row] of picked.rows.entries()) assert.equal(assignment[row], picked.clusters[k]);
  });

  test('small clusters still get one anchor each when n allows', () => {
    assert.deepEqual(clusterQuotas([1000, 10, 5, 0], 10), [8, 1, 1, 0]);
    assert.deepEqual(clusterQuotas([3, 2], 10), [3, 2]);
    assert.equal(
      clusterQuotas([500, 300, 200], 200).reduce((s, v) => s + v, 0),
      200,
    );
  });
});
