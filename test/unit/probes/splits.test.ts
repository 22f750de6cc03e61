import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Fold,
  groupKFold,
  kFold,
  mapFolds,
  trainCalibrationTestSplit,
} from '../../../src/probes/splits.js';
import { createRng } from '../../../src/seeded-rng.js';
import { range } from './synthetic.js';

function assertPartition(folds: Fold[], n: number): void {
  const seen = new Array<number>(n).fill(0);
  for (const fold of folds) {
    for (const i of fold.test) seen[i]! += 1;
    assert.equal(fold.train.length + fold.test.length, n);
    const test = new Set(fold.test);
    assert.ok(fold.train.every((i) => !test.has(i)));
  }
  assert.ok(
    seen.every((c) => c === 1),
    'every row is in exactly one test fold',
  );
}

describe('splits', () => {
  test('k-fold partitions the rows, with near-equal folds, the same for the same seed', () => {
    const folds = kFold(103, 5, createRng(1));
    assertPartition(folds, 103);
    for (const f of folds) assert.ok(f.test.length === 20 || f.test.length === 21);
    assert.deepEqual(kFold(103, 5, createRng(1)), folds);
    assert.notDeepEqual(kFold(103, 5, createRng(2)), folds);
  });

  test('stratified k-fold keeps the base rate in every fold', () => {
    const labels = range(1000).map((i) => i % 10 < 3); // 30 %
    const folds = kFold(1000, 4, createRng(3), labels);
    assertPartition(folds, 1000);
    for (const f of folds) {
      const rate = f.test.filter((i) => labels[i]).length / f.test.length;
      assert.ok(Math.abs(rate - 0.3) < 0.01, `rate ${rate}`);
    }
  });

  test('group k-fold never splits a group, and balances fold sizes', () => {
    const rng = createRng(4);
    const groups = range(2000).map(() => `subject-${Math.floor(rng.next() ** 2 * 40)}`);
    const folds = groupKFold(groups, 5, createRng(5));
    assertPartition(folds, 2000);
    for (const f of folds) {
      const testGroups = new Set(f.test.map((i) => groups[i]));
      assert.ok(
        f.train.every((i) => !testGroups.has(groups[i]!)),
        'a group is on both sides',
      );
    }
    const sizes = folds.map((f) => f.test.length);
    assert.ok(Math.max(...sizes) < 2 * Math.min(...sizes), `sizes ${sizes.join(', ')}`);
    assert.throws(() => groupKFold(['a', 'a', 'b'], 3, createRng(1)), /3 folds from 2 groups/);
  });

  test('train/calibration/test: disjoint, complete, whole groups', () => {
    const groups = range(600).map((i) => `g${i % 30}`);
    const split = trainCalibrationTestSplit(600, createRng(6), {
      groups,
      calibrationShare: 0.2,
      testShare: 0.2,
    });
    const all = [...split.train, ...split.calibration, ...split.test].sort((a, b) => a - b);
    assert.deepEqual(all, range(600));
    const groupsOf = (rows: number[]) => new Set(rows.map((i) => groups[i]));
    const [tr, ca, te] = [groupsOf(split.train), groupsOf(split.calibration), groupsOf(split.test)];
    assert.equal(te.size, 6);
    assert.equal(ca.size, 6);
    for (const g of te) assert.ok(!tr.has(g) && !ca.has(g));
    for (const g of ca) assert.ok(!tr.has(g));
    const random = trainCalibrationTestSplit(100, createRng(7));
    assert.equal(random.test.length, 15);
    assert.equal(random.calibration.length, 15);
  });

  test('folds over a subset map back to the full rows', () => {
    const rows = [10, 20, 30, 40];
    const folds = mapFolds(kFold(4, 2, createRng(8)), rows);
    for (const f of folds) assert.ok([...f.train, ...f.test].every((i) => rows.includes(i)));
  });
});
