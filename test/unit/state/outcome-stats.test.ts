import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type AnsweredRequest,
  applyDeltas,
  completionDeltas,
  emptyTotals,
  feedbackDeltas,
  statsSnapshot,
} from '../../../src/state/outcome-stats.js';

const answered = (id: string, fields: Partial<AnsweredRequest> = {}): AnsweredRequest => ({
  request_id: id,
  tier: 'cheap',
  cost_usd: 0.001,
  latency_ms: 10,
  escalations: 0,
  fallback: false,
  answered_at: 0,
  ...fields,
});

describe('outcome stats: a reducer over answered requests and outcomes', () => {
  test('rates, means and cost per success come from the summed counters', () => {
    const a = answered('a', { policy_version: 'v1', task_class: 'STEM' });
    const b = answered('b', { tier: 'dear', cost_usd: 0.03, latency_ms: 30, escalations: 2, fallback: true });
    const c = answered('c', { tier: 'dear', cost_usd: 0.02, latency_ms: 50, policy_version: 'v1' });
    const deltas = [
      ...completionDeltas(a),
      ...completionDeltas(b),
      ...completionDeltas(c),
      ...feedbackDeltas(a, true),
      ...feedbackDeltas(b, false),
      ...feedbackDeltas(c, true),
    ];
    const s = statsSnapshot(applyDeltas(emptyTotals(), deltas));
    assert.equal(s.requests, 3);
    assert.equal(s.escalation_rate, 1 / 3);
    assert.equal(s.fallback_rate, 1 / 3);
    assert.equal(s.tiers.dear!.requests, 2);
    assert.equal(s.tiers.dear!.escalations, 2);
    assert.equal(s.tiers.dear!.mean_latency_ms, 40);
    assert.equal(s.tiers.dear!.success_rate, 0.5);
    assert.ok(Math.abs(s.tiers.dear!.cost_per_success_usd! - 0.05) < 1e-12);
    assert.ok(Math.abs(s.overall.cost_usd - 0.051) < 1e-12);
    assert.deepEqual([s.overall.feedback, s.overall.successes], [3, 2]);
    assert.ok(Math.abs(s.overall.cost_per_success_usd! - 0.051 / 2) < 1e-12);
    // b had no policy version and no class: it counts for its tier only.
    assert.deepEqual(Object.keys(s.policies), ['v1']);
    assert.equal(s.policies.v1!.feedback, 2);
    assert.ok(Math.abs(s.policies.v1!.cost_per_correct_usd! - 0.021 / 2) < 1e-12);
    assert.deepEqual(s.task_classes.STEM, {
      feedback: 1,
      successes: 1,
      cost_usd: 0.001,
      cost_per_correct_usd: 0.001,
      success_rate: 1,
    });
  });

  test('unrated requests add cost but not cost per success; empty totals give nulls, not NaN', () => {
    const empty = statsSnapshot(emptyTotals());
    assert.deepEqual(
      [empty.requests, empty.escalation_rate, empty.fallback_rate, empty.overall.cost_per_success_usd],
      [0, 0, 0, null],
    );
    const s = statsSnapshot(applyDeltas(emptyTotals(), completionDeltas(answered('x', { cost_usd: 0.5 }))));
    assert.equal(s.tiers.cheap!.cost_usd, 0.5);
    assert.equal(s.tiers.cheap!.cost_per_success_usd, null);
    assert.equal(s.tiers.cheap!.success_rate, null);
  });

  test('deltas add in any order and leave the input totals untouched', () => {
    const r = answered('r', { policy_version: 'v2' });
    const deltas = [...completionDeltas(r), ...feedbackDeltas(r, true)];
    const start = emptyTotals();
    const forward = applyDeltas(start, deltas);
    const backward = applyDeltas(start, [...deltas].reverse());
    assert.deepEqual(forward, backward);
    assert.deepEqual(start, emptyTotals());
    // Applying in two steps equals applying at once: how the store's rows and the memory agree.
    assert.deepEqual(applyDeltas(applyDeltas(start, deltas.slice(0, 1)), deltas.slice(1)), forward);
  });
});
