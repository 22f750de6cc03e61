import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { route } from '../../../src/policy/route.js';
import { input, NOW, policy, without } from './fixtures.js';

/**
 * The plan a decision carries: the chosen tier, then the tiers that may take over — fixed with the
 * policy that decided, under the same cost ceiling and availability (issue 15: failover was decided
 * in the handler over every live tier, ignoring the ceiling).
 */
describe('the execution plan of a decision', () => {
  test('lists the chosen tier, then every available tier above it, with the deciding policy version', () => {
    const decision = route(input({ local: 0.2, mixtral: 0.8, gpt4: 0.9 }), policy(), NOW);
    assert.equal(decision.tier, 'mixtral');
    assert.deepEqual(decision.plan, {
      policy_version: decision.policy_version,
      tiers: ['mixtral', 'gpt4'],
      failover: true,
      max_escalations: 0,
    });
  });

  test('failover stays under the cost ceiling and skips unavailable tiers', () => {
    const capped = route(input({ local: 0.9 }), policy({ budget: { max_cost_usd: 0.001 } }), NOW);
    assert.equal(capped.tier, 'local');
    assert.deepEqual(capped.plan?.tiers, ['local', 'mixtral']);
    const gone = route(input({ local: 0.9 }, { tiers: without('mixtral') }), policy(), NOW);
    assert.deepEqual(gone.plan?.tiers, ['local', 'gpt4']);
  });

  test('a cascade carries its gate and at most max_depth escalations', () => {
    const logprob = route(
      input({ local: 0.6 }),
      policy({ kind: 'cascade', cascade: { max_depth: 1, gate: { min_mean_logprob: -0.7 } } }),
      NOW,
    );
    assert.deepEqual(logprob.plan?.gate, { kind: 'logprob', min_mean_logprob: -0.7 });
    assert.equal(logprob.plan?.max_escalations, 1);
    assert.deepEqual(logprob.plan?.tiers, ['local', 'mixtral', 'gpt4']);
    const probe = route(
      input({ local: 0.6 }),
      policy({ kind: 'cascade', cascade: { max_depth: 5, gate: { kind: 'probe', min_p_success: 0.7 } } }),
      NOW,
    );
    assert.deepEqual(probe.plan?.gate, { kind: 'probe', min_p_success: 0.7 });
    assert.equal(probe.plan?.max_escalations, 2, 'no more escalations than tiers above');
  });

  test('a refused decision has no plan', () => {
    const refused = route(
      input({ local: 0.9 }, { tiers: without('local', 'mixtral', 'gpt4') }),
      policy(),
      NOW,
    );
    assert.ok(refused.error);
    assert.equal(refused.plan, undefined);
  });
});
