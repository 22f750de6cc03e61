import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Telemetry } from '../../../src/server/telemetry.js';

describe('telemetry: cost per correct outcome from feedback', () => {
  test('is kept per policy version and per task class, over rated requests only', async () => {
    const t = new Telemetry();
    const done = (id: string, tier: string, costUsd: number, policyVersion: string, taskClass?: string) =>
      t.recordCompletion({
        requestId: id,
        tier,
        costUsd,
        latencyMs: 5,
        escalations: 0,
        fallback: false,
        policyVersion,
        ...(taskClass ? { taskClass } : {}),
      });
    done('a', 'cheap', 0.001, 'v1', 'STEM');
    done('b', 'dear', 0.03, 'v1', 'STEM');
    done('c', 'dear', 0.03, 'v2', 'humanities');
    done('d', 'cheap', 0.001, 'v2');
    done('e', 'cheap', 0.5, 'v2'); // never rated: not in cost per correct
    assert.equal(t.recordFeedback('a', true), 'recorded');
    assert.equal(t.recordFeedback('b', false), 'recorded');
    assert.equal(t.recordFeedback('c', true), 'recorded');
    assert.equal(t.recordFeedback('d', true), 'recorded');
    assert.equal(t.recordFeedback('d', true), 'duplicate');
    const s = t.snapshot();
    // v1: 0.031 USD for 1 correct; v2: 0.031 for 2 correct.
    assert.ok(Math.abs(s.policies.v1!.cost_per_correct_usd! - 0.031) < 1e-12);
    assert.ok(Math.abs(s.policies.v2!.cost_per_correct_usd! - 0.0155) < 1e-12);
    assert.equal(s.policies.v2!.feedback, 2);
    assert.equal(s.task_classes.STEM!.success_rate, 0.5);
    assert.equal(s.task_classes.humanities!.successes, 1);
    assert.equal(Object.keys(s.task_classes).length, 2);
    const metrics = await t.registry.metrics();
    assert.match(metrics, /mechroute_cost_per_correct_usd\{policy_version="v2"\} 0\.0155/);
  });
});
