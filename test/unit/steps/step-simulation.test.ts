import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  SimulationTraceSchema,
  simulatePolicy,
  simulateSweep,
  simulateTrace,
} from '../../../src/steps/step-simulation.js';
import { PRICES, fiveTraces as traces } from './five-traces.js';

const close = (actual: number | null, expected: number) =>
  assert.ok(actual !== null && Math.abs(actual - expected) < 1e-9, `${actual} ≠ ${expected}`);

test('one request: escalation at k = 0 costs the cheap tier nothing; later, its prompt and steps so far', async () => {
  const [a, b, c, d, e] = await traces();
  assert.deepEqual(simulateTrace(a!, 0.5, PRICES), { correct: true, cost: 140, escalatedAt: null });
  assert.deepEqual(simulateTrace(b!, 0.5, PRICES), { correct: true, cost: 1700, escalatedAt: 0 });
  // C: 0.8 at k = 0 passes, 0.4 after step 1 fails: 100 + 2·10 so far, then the strong answer.
  assert.deepEqual(simulateTrace(c!, 0.5, PRICES), { correct: true, cost: 120 + 4000, escalatedAt: 1 });
  // D at τ = 0.58: the finished answer (k = K = 2, 0.55) is checked too: the whole cheap answer is paid.
  assert.deepEqual(simulateTrace(d!, 0.58, PRICES), { correct: false, cost: 160 + 2600, escalatedAt: 2 });
  // E was scored at k = 0 only (capped): no checks past it, the cheap tier finishes.
  assert.deepEqual(simulateTrace(e!, 0.9, PRICES), { correct: false, cost: 80, escalatedAt: null });
  // Request-level: C's later low scores are never read.
  assert.deepEqual(simulateTrace(c!, 0.5, PRICES, 'request'), {
    correct: false,
    cost: 180,
    escalatedAt: null,
  });
});

test('per-step policy at τ = 0.5: accuracy, cost share, escalation rate and mean escalation step', async () => {
  const point = simulatePolicy(await traces(), 0.5, PRICES, 'steps');
  assert.equal(point.accuracy, 4 / 5);
  close(point.cost_usd, 6200 / 5);
  close(point.cost_share, 6200 / 11900);
  assert.equal(point.escalation_rate, 2 / 5);
  assert.equal(point.mean_escalation_step, 0.5);
});

test('request-level policy at τ = 0.5 only reads k = 0', async () => {
  const point = simulatePolicy(await traces(), 0.5, PRICES, 'request');
  assert.equal(point.accuracy, 3 / 5);
  close(point.cost_share, 2260 / 11900);
  assert.equal(point.escalation_rate, 1 / 5);
  assert.equal(point.mean_escalation_step, 0);
});

test('sweep: single tiers, the cheapest point reaching the strong tier, accuracy at equal cost', async () => {
  const report = simulateSweep(await traces(), PRICES, [0, 0.5, 0.58, 1]);
  assert.equal(report.n, 5);
  assert.equal(report.cheap_only.accuracy, 2 / 5);
  close(report.cheap_only.cost_share, 640 / 11900);
  assert.equal(report.cheap_only.mean_escalation_step, null);
  assert.equal(report.strong_only.accuracy, 3 / 5);
  assert.equal(report.strong_only.cost_share, 1);
  // τ = 1 escalates everything at k = 0: the strong tier alone.
  assert.equal(report.per_step[3]!.escalation_rate, 1);
  close(report.per_step[3]!.cost_share, 1);
  assert.equal(report.per_step_reaching_strong?.tau, 0.5);
  assert.equal(report.request_level_reaching_strong?.tau, 0.5);
  const at20 = report.equal_cost.find((e) => e.cost_share === 0.2)!;
  assert.deepEqual(
    { per_step: at20.per_step, request_level: at20.request_level },
    { per_step: 0.4, request_level: 0.6 },
  );
});

test('the schema refuses a trace whose token counts do not start at 0 or that has more scores than steps', () => {
  const good = {
    id: 'x',
    cheap_scores: [0.5],
    cheap_tokens_after: [0, 3],
    cheap_correct: true,
    strong_correct: true,
    prompt_tokens: 1,
    strong_output_tokens: 1,
  };
  assert.ok(SimulationTraceSchema.safeParse(good).success);
  assert.ok(!SimulationTraceSchema.safeParse({ ...good, cheap_tokens_after: [1, 3] }).success);
  assert.ok(!SimulationTraceSchema.safeParse({ ...good, cheap_scores: [0.5, 0.5, 0.5] }).success);
});
