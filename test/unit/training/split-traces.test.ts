import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Trace } from '../../../src/traces/trace-schema.js';
import { splitTraces } from '../../../training/split-traces.js';

const traces: Trace[] = Array.from({ length: 100 }, (_, i) => ({
  id: `t${i}`,
  dataset: 'mmlu',
  subject: `s${i % 10}`,
  prompt: `question ${i}`,
  outcomes: { cheap: i % 3 === 0 },
}));

describe('splitTraces', () => {
  test('by subject: whole subjects on one side, seeded and reproducible', () => {
    const a = splitTraces(traces, { by: 'subject', seed: 3, testShare: 0.2 });
    const b = splitTraces(traces, { by: 'subject', seed: 3, testShare: 0.2 });
    assert.deepEqual(a, b);
    assert.equal(a.groups!.test.length, 2);
    assert.equal(a.test.length, 20);
    assert.equal(a.train.length + a.test.length, 100);
    const trainSubjects = new Set(a.train.map((t) => t.subject));
    assert.ok(a.test.every((t) => !trainSubjects.has(t.subject)));
    assert.notDeepEqual(splitTraces(traces, { by: 'subject', seed: 4, testShare: 0.2 }).groups, a.groups);
  });

  test('random: single traces held out; every trace lands exactly once', () => {
    const split = splitTraces(traces, { by: 'random', seed: 1, testShare: 0.25 });
    assert.equal(split.test.length, 25);
    assert.equal(split.groups, undefined);
    const ids = [...split.train, ...split.test].map((t) => t.id).sort();
    assert.deepEqual(ids, traces.map((t) => t.id).sort());
  });

  test('a stratified sample first keeps every subject', () => {
    const split = splitTraces(traces, { by: 'random', seed: 1, testShare: 0.5, sample: 30 });
    const all = [...split.train, ...split.test];
    assert.equal(all.length, 30);
    assert.equal(new Set(all.map((t) => t.subject)).size, 10);
  });

  test('refuses a share outside (0, 1) and a field with one value', () => {
    assert.throws(() => splitTraces(traces, { by: 'random', seed: 1, testShare: 1 }), /test-share/);
    assert.throws(() => splitTraces(traces, { by: 'dataset', seed: 1, testShare: 0.2 }), /fewer than two/);
  });
});
