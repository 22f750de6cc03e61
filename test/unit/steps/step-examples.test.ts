import assert from 'node:assert/strict';
import { test } from 'node:test';
import { examplesByTrajectory, stepExamples } from '../../../src/steps/step-examples.js';
import { TraceSchema } from '../../../src/traces/trace-schema.js';
import { stepAurocByK } from '../../../training/step-scores.js';

const trace = TraceSchema.parse({
  id: 'p1',
  prompt: 'Q?',
  outcomes: { cheap: false, strong: true, silent: true },
  responses: { cheap: 'First step here.\nSecond step here.\n#### 4', strong: 'Only one step, 4.' },
});

test('every prefix k = 0 … K of every tier with a response and an outcome, labelled by its outcome', () => {
  const rows = stepExamples([trace], { segmentation: { min_chars: 8 } });
  assert.deepEqual(
    rows.map((r) => [r.tier, r.k, r.steps, r.label]),
    [
      ['cheap', 0, 2, false],
      ['cheap', 1, 2, false],
      ['cheap', 2, 2, false],
      ['strong', 0, 1, true],
      ['strong', 1, 1, true],
    ],
  );
  // k = 0 is the prompt alone for every tier: one text, one activation record.
  assert.equal(rows[0]!.text, 'Q?');
  assert.equal(rows[0]!.hash, rows[3]!.hash);
  // The short "#### 4" joins the step before it.
  assert.equal(rows[2]!.text, 'Q?\n\nFirst step here.\nSecond step here.\n#### 4');
  assert.deepEqual(
    stepExamples([trace], { maxK: 1, tiers: ['cheap'] }).map((r) => r.k),
    [0, 1],
  );
});

test('examples cut back into their trajectories: chains of texts, each a string prefix of the next', () => {
  const other = TraceSchema.parse({ ...trace, id: 'p2', responses: { cheap: 'A single step.' } });
  const chains = [...examplesByTrajectory(stepExamples([trace, other], { segmentation: { min_chars: 8 } }))];
  assert.deepEqual(
    chains.map(([, rows]) => rows.map((r) => `${r.problem}/${r.tier}/${r.k}`)),
    [
      ['p1/cheap/0', 'p1/cheap/1', 'p1/cheap/2'],
      ['p1/strong/0', 'p1/strong/1'],
      ['p2/cheap/0', 'p2/cheap/1'],
    ],
  );
  // What extraction reads out of one decode per chain relies on this.
  for (const [, rows] of chains) {
    for (let k = 1; k < rows.length; k += 1) assert.ok(rows[k]!.text.startsWith(rows[k - 1]!.text));
  }
  assert.equal(new Set(chains.map(([key]) => key)).size, 3);
});

test('step AUROC by k, next to the AUROC of the same trajectories’ k = 0 scores', () => {
  const row = (problem: string, k: number, label: boolean) => ({
    problem,
    tier: 't',
    k,
    steps: 1,
    text: '',
    hash: '',
    label,
  });
  const rows = [row('a', 0, true), row('a', 1, true), row('b', 0, false), row('b', 1, false)];
  // At k = 0 the scores rank b above a (AUROC 0); after one step they rank a above b (AUROC 1).
  const byK = stepAurocByK(rows, [0.4, 0.9, 0.6, 0.1]);
  assert.deepEqual(
    byK.map((r) => [r.k, r.n, r.auroc, r.request_auroc, r.base_rate]),
    [
      [0, 2, 0, 0, 0.5],
      [1, 2, 1, 0, 0.5],
    ],
  );
});
