import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { route } from '../../../src/policy/route.js';
import { utilityOf } from '../../../src/policy/utility.js';
import { COST, input, NOW, policy, without } from './fixtures.js';

describe('utility policy', () => {
  const prediction = { local: 0.4, mixtral: 0.7, gpt4: 0.9 };
  // Between mixtral and gpt4 the choice flips where their utilities are equal.
  const flip = (0.9 - 0.7) / (COST.gpt4 - COST.mixtral);

  test('λ trades P(success) for cost and flips the choice at the computed λ', () => {
    const at = (lambda: number) =>
      route(input(prediction), policy({ kind: 'utility', utility: { lambda } }), NOW);
    assert.equal(at(0).tier, 'gpt4');
    assert.equal(at(flip * 0.99).tier, 'gpt4');
    assert.equal(at(flip * 1.01).tier, 'mixtral');
    // local takes over once λ makes mixtral's 0.3 gain not worth its cost.
    const localFlip = (0.7 - 0.4) / COST.mixtral;
    assert.equal(at(localFlip * 0.99).tier, 'mixtral');
    assert.equal(at(localFlip * 1.01).tier, 'local');
    const decision = at(flip * 1.01);
    assert.equal(decision.policy_kind, 'utility');
    assert.match(decision.reasons.at(-1)!, /mixtral: highest utility/);
  });

  test('λ from the request overrides the policy', () => {
    const p = policy({ kind: 'utility', utility: { lambda: flip * 2 } });
    assert.equal(route(input(prediction), p, NOW).tier, 'mixtral');
    const decision = route(input(prediction, { overrides: { lambda: flip / 2 } }), p, NOW);
    assert.equal(decision.tier, 'gpt4');
    assert.match(decision.reasons[0]!, /override: λ = /);
  });

  test('utility is p − λ·cost', () => {
    assert.equal(utilityOf(0.9, 0.01, 20), 0.9 - 0.2);
  });

  test('the best tier unavailable: error, or the best available by utility', () => {
    const p = policy({ kind: 'utility', utility: { lambda: 0 } });
    const tiers = without('gpt4');
    assert.equal(route(input(prediction, { tiers }), p, NOW).error?.code, 'MR_ERR_TIER_UNAVAILABLE');
    const best = route(input(prediction, { tiers }), { ...p, on_unavailable: 'best_available' }, NOW);
    assert.equal(best.tier, 'mixtral');
    assert.equal(best.fallback, true);
  });

  test('no predictions at all: frontier fallback', () => {
    const decision = route(input({}), policy({ kind: 'utility' }), NOW);
    assert.equal(decision.tier, 'gpt4');
    assert.equal(decision.fallback, true);
  });
});
