import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Telemetry } from '../../../src/server/telemetry.js';
import { openStateStore } from '../../../src/state/sqlite-state-store.js';
import type { StateStore } from '../../../src/state/state-store.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-telemetry-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const DAY = 86_400_000;
const retention = { feedback_days: 30, max_requests: 1000 };

function completer(t: Telemetry) {
  return (id: string, tier: string, costUsd: number, policyVersion: string, taskClass?: string) =>
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
}

describe('telemetry: cost per correct outcome from feedback', () => {
  test('is kept per policy version and per task class, over rated requests only, across a restart', async () => {
    const file = join(dir, 'cost.sqlite');
    let store: StateStore = openStateStore(file);
    let t = new Telemetry({ store, retention });
    const done = completer(t);
    done('a', 'cheap', 0.001, 'v1', 'STEM');
    done('b', 'dear', 0.03, 'v1', 'STEM');
    done('c', 'dear', 0.03, 'v2', 'humanities');
    done('d', 'cheap', 0.001, 'v2');
    done('e', 'cheap', 0.5, 'v2'); // never rated: not in cost per correct
    assert.equal(t.recordFeedback('a', true), 'recorded');
    assert.equal(t.recordFeedback('b', false), 'recorded');
    const before = t.snapshot();
    store.close();

    // A new process on the same file: the same totals, and the unrated requests can still be rated.
    store = openStateStore(file);
    t = new Telemetry({ store, retention });
    assert.deepEqual(t.snapshot(), before);
    assert.equal(t.recordFeedback('a', true), 'duplicate');
    assert.equal(t.recordFeedback('c', true), 'recorded');
    assert.equal(t.recordFeedback('d', true), 'recorded');
    assert.equal(t.recordFeedback('d', true), 'duplicate');
    assert.equal(t.recordFeedback('zzz', true), 'unknown');
    const s = t.snapshot();
    // v1: 0.031 USD for 1 correct; v2: 0.031 for 2 correct.
    assert.ok(Math.abs(s.policies.v1!.cost_per_correct_usd! - 0.031) < 1e-12);
    assert.ok(Math.abs(s.policies.v2!.cost_per_correct_usd! - 0.0155) < 1e-12);
    assert.equal(s.policies.v2!.feedback, 2);
    assert.equal(s.task_classes.STEM!.success_rate, 0.5);
    assert.equal(s.task_classes.humanities!.successes, 1);
    assert.equal(Object.keys(s.task_classes).length, 2);
    assert.equal(s.requests, 5);
    const metrics = await t.registry.metrics();
    assert.match(metrics, /mechroute_cost_per_correct_usd\{policy_version="v2"\} 0\.0155/);
    store.close();
  });

  test('the gauges start from the stored totals after a restart', async () => {
    const file = join(dir, 'gauges.sqlite');
    const first = openStateStore(file);
    const t = new Telemetry({ store: first, retention });
    completer(t)('g', 'dear', 0.02, 'v9');
    t.recordFeedback('g', true);
    first.close();
    const second = openStateStore(file);
    const metrics = await new Telemetry({ store: second, retention }).registry.metrics();
    assert.match(metrics, /mechroute_cost_per_correct_usd\{policy_version="v9"\} 0\.02/);
    assert.match(metrics, /mechroute_cost_per_success_usd\{tier="all"\} 0\.02/);
    second.close();
  });

  test('a request past the feedback window is unknown, and pruned by age and count; stats stay cumulative', () => {
    let now = 100 * DAY;
    const store = openStateStore(join(dir, 'window.sqlite'));
    const t = new Telemetry({ store, retention: { feedback_days: 7, max_requests: 2 }, now: () => now });
    const done = completer(t);
    done('old', 'cheap', 0.001, 'v1');
    now += 8 * DAY;
    assert.equal(t.recordFeedback('old', true), 'unknown');
    done('x', 'cheap', 0.001, 'v1');
    done('y', 'cheap', 0.001, 'v1');
    done('z', 'cheap', 0.001, 'v1');
    // A restart prunes at once: 'old' by age, 'x' by count.
    const again = new Telemetry({ store, retention: { feedback_days: 7, max_requests: 2 }, now: () => now });
    assert.equal(store.findAnswered('old'), undefined);
    assert.equal(store.findAnswered('x'), undefined);
    assert.equal(again.recordFeedback('y', true), 'recorded');
    assert.equal(again.snapshot().requests, 4);
    store.close();
  });

  test('a failed write is counted and logged, and the answer goes on', async () => {
    const store = openStateStore(join(dir, 'closed.sqlite'));
    const errors: string[] = [];
    const t = new Telemetry({ store, retention, logger: { error: (_o, msg = '') => errors.push(msg) } });
    store.close();
    assert.doesNotThrow(() => completer(t)('lost', 'cheap', 0.001, 'v1'));
    assert.deepEqual(errors, ['answered request not recorded in the state file']);
    assert.equal(t.snapshot().requests, 0);
    assert.match(await t.registry.metrics(), /mechroute_state_errors_total 1/);
  });
});
