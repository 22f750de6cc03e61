import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compareGates,
  type Gate,
  gateDials,
  gateOutcome,
  pointWithin,
  sweepGate,
} from '../../../src/steps/cascade-simulation.js';
import { type PolicyPoint, simulatePolicy } from '../../../src/steps/step-simulation.js';
import { PRICES, fiveTraces as traces } from './five-traces.js';

// The five hand-made traces (five-traces.ts): strong alone A 2500, B 1700, C 4000, D 2600, E 1100 (11,900);
// cheap whole answers A 140, B 80, C 180, D 160, E 80 (640). Cheap right on A, D; strong right on A, B, C.
const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} ≠ ${expected}`);

test('a gate that reads the prompt escalates for the strong answer only; one that reads the answer pays both', async () => {
  const [a, b] = await traces();
  assert.deepEqual(gateOutcome(b!, 'prompt', 0.3, 0.5, PRICES), {
    correct: true,
    cost: 1700,
    escalatedAt: 0,
  });
  // B's whole cheap answer (50 + 2·15 = 80) is paid before the gate reads it; K = 2 steps.
  assert.deepEqual(gateOutcome(b!, 'answer', 0.3, 0.5, PRICES), {
    correct: true,
    cost: 80 + 1700,
    escalatedAt: 2,
  });
  assert.deepEqual(gateOutcome(a!, 'answer', 0.5, 0.5, PRICES), {
    correct: true,
    cost: 140,
    escalatedAt: null,
  });
  // A reading that is not a number escalates, as the live gate does.
  assert.equal(gateOutcome(a!, 'answer', Number.NaN, 0, PRICES).escalatedAt, 2);
});

test('a prompt gate on the k = 0 scores is request-level routing; an answer gate is the k = K check alone', async () => {
  const all = await traces();
  const taus = [0, 0.25, 0.5, 0.75, 0.9, 1.01];
  const prompt: Gate = { name: 'prompt', stage: 'prompt', readings: all.map((t) => t.cheap_scores[0]!) };
  sweepGate(all, prompt, PRICES, taus).forEach((point, i) => {
    assert.deepEqual(point, simulatePolicy(all, taus[i]!, PRICES, 'request'));
  });
  // Per-step routing with every score but the last set to 1 checks only the finished answer. E's last
  // check (k = 0, its scores were capped) is not an answer check, so it is left out here.
  const scored = all.filter((t) => t.cheap_scores.length === t.cheap_tokens_after.length);
  const onlyLast = scored.map((t) => ({
    ...t,
    cheap_scores: t.cheap_scores.map((s, k, all) => (k === all.length - 1 ? s : 1)),
  }));
  const answer: Gate = {
    name: 'answer',
    stage: 'answer',
    readings: scored.map((t) => t.cheap_scores.at(-1)!),
  };
  const probabilities = taus.filter((tau) => tau <= 1); // past 1 the stand-in 1s would fail too
  sweepGate(scored, answer, PRICES, probabilities).forEach((point, i) => {
    assert.deepEqual(point, simulatePolicy(onlyLast, probabilities[i]!, PRICES, 'steps'));
  });
});

test('dials run from escalating nothing readable to escalating everything', async () => {
  const readings = [0.2, Number.NaN, 0.9, 0.5, 0.5];
  const dials = gateDials(readings, 5);
  assert.deepEqual(dials, [0.2, 0.5, 0.9, Number.POSITIVE_INFINITY]);
  const all = await traces();
  const points = sweepGate(all, { name: 'g', stage: 'answer', readings }, PRICES, dials);
  assert.deepEqual(
    points.map((p) => p.escalation_rate),
    [1 / 5, 2 / 5, 4 / 5, 1],
  );
});

test('weights count a trace that many times', async () => {
  const all = await traces();
  const gate: Gate = { name: 'g', stage: 'answer', readings: [0.9, 0.1, 0.6, 0.4, 0.7] };
  const dials = [0.5, 0.65];
  const weighted = sweepGate(all, gate, PRICES, dials, [2, 0, 1, 1, 3]);
  const pick = [0, 0, 2, 3, 4, 4, 4];
  const repeated = sweepGate(
    pick.map((i) => all[i]!),
    { ...gate, readings: pick.map((i) => gate.readings[i]!) },
    PRICES,
    dials,
  );
  weighted.forEach((p, i) => {
    const r = repeated[i]!;
    close(p.accuracy, r.accuracy);
    close(p.cost_share, r.cost_share);
    close(p.escalation_rate, r.escalation_rate);
    close(p.mean_escalation_step!, r.mean_escalation_step!);
  });
});

test('a budget buys the point that spends most within it, chosen without outcomes', () => {
  const point = (cost_share: number, accuracy: number): PolicyPoint => ({
    tau: cost_share,
    accuracy,
    cost_usd: cost_share,
    cost_share,
    escalation_rate: cost_share,
    mean_escalation_step: null,
  });
  const points = [point(0.1, 0.7), point(0.25, 0.9), point(0.3, 0.75), point(0.5, 0.8)];
  // The more accurate point at 0.25 is not picked: the budget, not the label, decides.
  assert.equal(pointWithin(points, 0.4)!.cost_share, 0.3);
  assert.equal(pointWithin(points, 0.05), null);
});

test('compareGates: a gate that knows the answer beats one that guesses, with paired intervals', async () => {
  const base = await traces();
  // 40 requests: the five traces eight times over, so the bootstrap has something to resample.
  const all = Array.from({ length: 40 }, (_, i) => base[i % 5]!);
  const knows: Gate = { name: 'knows', stage: 'answer', readings: all.map((t) => (t.cheap_correct ? 1 : 0)) };
  const guesses: Gate = {
    name: 'guesses',
    stage: 'answer',
    readings: all.map((_, i) => ((i * 7) % 11) / 10),
  };
  const options = { budgets: [0.65, 1.1], reference: 'knows', resamples: 200, seed: 3, confidence: 0.9 };
  const report = compareGates(all, [knows, guesses], PRICES, options);
  assert.deepEqual(report, compareGates(all, [knows, guesses], PRICES, options), 'seeded: the same twice');
  assert.equal(report.n, 40);
  close(report.cheap_only.accuracy, 2 / 5);
  close(report.strong_only.accuracy, 3 / 5);
  close(report.strong_only.cost_share, 1);
  const [k, g] = report.gates;
  assert.equal(k!.auroc, 1);
  assert.ok(g!.auroc < 0.9);
  // At 0.65 the knowing gate escalates exactly the cheap tier's wrong answers (B, C, E: (7,140 + 300) /
  // 11,900 = 0.625 of the strong tier's cost): the oracle's 32 of 40. The guessing gate cannot match it.
  const [fits, rich] = k!.at_budget;
  close(fits!.point!.cost_share, 7440 / 11900);
  close(fits!.point!.accuracy, 32 / 40);
  assert.deepEqual(fits!.vs_reference, { diff: 0, ci: [0, 0] });
  const loss = g!.at_budget[0]!.vs_reference!;
  assert.ok(loss.diff < 0, 'guessing loses accuracy at the same budget');
  assert.ok(
    loss.ci[0] < 0 && loss.ci[0] <= loss.diff && loss.diff <= loss.ci[1],
    'inside its paired interval',
  );
  // A budget past everything buys escalating everything, whatever the gate: no label picks the point.
  close(rich!.point!.escalation_rate, 1);
  close(rich!.point!.accuracy, 3 / 5);
  assert.equal(g!.at_budget[1]!.vs_reference!.diff, 0);
  for (const at of [...k!.at_budget, ...g!.at_budget]) {
    assert.ok(at.point && at.accuracy_ci, `budget ${at.budget}: a point and an interval`);
    assert.ok(at.accuracy_ci[0] <= at.point.accuracy + 1e-9 && at.point.accuracy <= at.accuracy_ci[1] + 1e-9);
    assert.ok(at.point.cost_share <= at.budget + 1e-9);
  }
  assert.throws(
    () => compareGates(all, [knows], PRICES, { ...options, reference: 'nobody' }),
    /no gate named/,
  );
});
