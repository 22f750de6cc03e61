import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { escalationPath, nextTier, shouldEscalate } from '../../../src/policy/cascade.js';
import { route } from '../../../src/policy/route.js';
import { input, NOW, policy, TIERS, without } from './fixtures.js';

describe('cascade policy', () => {
  const cascade = (fields: Record<string, unknown> = {}) =>
    policy({ kind: 'cascade', cascade: { max_depth: 2, ...fields } });

  test('starts where the inner threshold policy says and plans the escalation path', () => {
    const decision = route(input({ local: 0.6, mixtral: 0.8, gpt4: 0.9 }), cascade(), NOW);
    assert.equal(decision.policy_kind, 'cascade');
    assert.equal(decision.tier, 'local');
    assert.deepEqual(decision.escalation_path, ['mixtral', 'gpt4']);
    assert.match(decision.reasons[0]!, /cascade: starting tier chosen by threshold/);
  });

  test('the depth cap shortens the path; the frontier has nowhere to go', () => {
    const one = route(input({ local: 0.6 }), policy({ kind: 'cascade' }), NOW);
    assert.deepEqual(one.escalation_path, ['mixtral']);
    const top = route(input({ local: 0.1, mixtral: 0.1, gpt4: 0.1 }), cascade(), NOW);
    assert.equal(top.tier, 'gpt4');
    assert.deepEqual(top.escalation_path, []);
  });

  test('the inner policy can be utility', () => {
    const prediction = input({ local: 0.4, mixtral: 0.7, gpt4: 0.9 });
    const decision = route(prediction, cascade({ start: 'utility' }), NOW);
    assert.equal(decision.tier, 'mixtral');
    assert.deepEqual(decision.escalation_path, ['gpt4']);
    const free = route(prediction, { ...cascade({ start: 'utility' }), utility: { lambda: 0 } }, NOW);
    assert.equal(free.tier, 'gpt4');
  });

  test('escalation skips unavailable tiers and stays under the cost ceiling', () => {
    const tiers = without('mixtral');
    assert.deepEqual(route(input({ local: 0.6 }, { tiers }), cascade(), NOW).escalation_path, ['gpt4']);
    const capped = route(
      input({ local: 0.6 }),
      policy({ kind: 'cascade', budget: { max_cost_usd: 0.001 } }),
      NOW,
    );
    assert.deepEqual(capped.escalation_path, ['mixtral']);
  });

  test('nextTier is one tier up in price order, skipping unavailable ones', () => {
    assert.equal(nextTier({ tier: 'local' }, TIERS), 'mixtral');
    assert.equal(nextTier({ tier: 'local' }, without('mixtral')), 'gpt4');
    assert.equal(nextTier({ tier: 'gpt4' }, TIERS), undefined);
    assert.equal(nextTier({ tier: 'unknown' }, TIERS), undefined);
    assert.equal(nextTier({ tier: 'local' }, [...TIERS].reverse()), 'mixtral');
    assert.deepEqual(escalationPath('local', TIERS, 5), ['mixtral', 'gpt4']);
    assert.deepEqual(escalationPath('local', TIERS, 0), []);
  });

  test('shouldEscalate: a logprob gate or a probe gate, with the depth cap', () => {
    const logprob = { kind: 'logprob', min_mean_logprob: -0.5 } as const;
    const probe = { kind: 'probe', min_p_success: 0.6 } as const;
    assert.equal(shouldEscalate(-0.2, logprob, 0, 2).escalate, false);
    const low = shouldEscalate(-1.3, logprob, 0, 2);
    assert.equal(low.escalate, true);
    assert.match(low.reason, /mean logprob -1\.300 < -0\.5: escalate \(1 of at most 2\)/);
    assert.equal(shouldEscalate(0.59, probe, 1, 2).escalate, true);
    assert.equal(shouldEscalate(0.6, probe, 1, 2).escalate, false);
    const capped = shouldEscalate(0.1, probe, 2, 2);
    assert.equal(capped.escalate, false);
    assert.match(capped.reason, /depth cap \(2\) is reached/);
    assert.equal(shouldEscalate(Number.NaN, logprob, 0, 2).escalate, true);
  });
});
