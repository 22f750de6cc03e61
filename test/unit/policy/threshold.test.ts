import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { route } from '../../../src/policy/route.js';
import { COST, input, NOW, policy, TIERS, without } from './fixtures.js';

describe('threshold policy', () => {
  test('picks the cheapest tier whose P(success) reaches the threshold', () => {
    const decision = route(input({ local: 0.3, mixtral: 0.62, gpt4: 0.95 }), policy(), NOW);
    assert.equal(decision.tier, 'mixtral');
    assert.equal(decision.policy_version, 'test-1');
    assert.equal(decision.policy_kind, 'threshold');
    assert.equal(decision.fallback, undefined);
    assert.equal(decision.error, undefined);
    assert.ok(Math.abs(decision.expected_cost_usd - COST.mixtral) < 1e-12);
    assert.deepEqual(decision.p_success, { local: 0.3, mixtral: 0.62, gpt4: 0.95 });
    assert.equal(decision.difficulty, 0.4);
    assert.match(decision.reasons.join('\n'), /local: P\(success\) 0\.300 < threshold 0\.500/);
    assert.match(decision.reasons.join('\n'), /mixtral: .* cheapest passing tier/);
  });

  test('a threshold exactly met passes; the tiers may come in any order', () => {
    const shuffled = { ...input({ local: 0.5, mixtral: 0.9, gpt4: 0.99 }), tiers: [...TIERS].reverse() };
    assert.equal(route(shuffled, policy(), NOW).tier, 'local');
  });

  test('per-tier thresholds override the default', () => {
    const p = policy({ threshold: { default: 0.5, tiers: { local: 0.9 } } });
    assert.equal(route(input({ local: 0.8, mixtral: 0.6, gpt4: 0.9 }), p, NOW).tier, 'mixtral');
    assert.equal(route(input({ local: 0.95, mixtral: 0.6, gpt4: 0.9 }), p, NOW).tier, 'local');
  });

  test('falls back to the frontier tier when no tier passes, even if it is predicted to fail too', () => {
    const decision = route(input({ local: 0.1, mixtral: 0.2, gpt4: 0.4 }), policy(), NOW);
    assert.equal(decision.tier, 'gpt4');
    assert.equal(decision.fallback, true);
    assert.ok(Math.abs(decision.expected_cost_usd - COST.gpt4) < 1e-12);
    assert.match(decision.reasons.at(-1)!, /no available tier passes its threshold: frontier tier gpt4/);
  });

  test('a tier without a probe prediction is never chosen on its prediction', () => {
    const decision = route(input({ mixtral: 0.7, gpt4: 0.9 }), policy(), NOW);
    assert.equal(decision.tier, 'mixtral');
    assert.match(decision.reasons[0]!, /local: no probe prediction/);
    assert.equal(route(input({ local: Number.NaN, mixtral: 0.7 }), policy(), NOW).tier, 'mixtral');
  });

  test('a passing tier that is unavailable is skipped for the next passing one', () => {
    const decision = route(
      input({ local: 0.2, mixtral: 0.7, gpt4: 0.9 }, { tiers: without('mixtral') }),
      policy(),
      NOW,
    );
    assert.equal(decision.tier, 'gpt4');
    assert.equal(decision.fallback, undefined);
    assert.match(
      decision.reasons.join('\n'),
      /mixtral: .* but mixtral is unavailable \(MIXTRAL_API_KEY is not set\), skipped/,
    );
  });
});

describe('on_unavailable', () => {
  const prediction = { local: 0.2, mixtral: 0.3, gpt4: 0.8 };

  test('error: a decision that carries MR_ERR_TIER_UNAVAILABLE and names the missing variable', () => {
    const decision = route(input(prediction, { tiers: without('gpt4') }), policy(), NOW);
    assert.equal(decision.tier, 'gpt4');
    assert.equal(decision.error?.code, 'MR_ERR_TIER_UNAVAILABLE');
    assert.match(decision.error.message, /gpt4 is unavailable \(GPT4_API_KEY is not set\)/);
    assert.match(decision.error.message, /on_unavailable: best_available/);
  });

  test('best_available: the same rule over the available tiers, recorded as a fallback', () => {
    const p = policy({ on_unavailable: 'best_available' });
    const decision = route(input(prediction, { tiers: without('gpt4') }), p, NOW);
    assert.equal(decision.tier, 'mixtral');
    assert.equal(decision.fallback, true);
    assert.equal(decision.error, undefined);
    assert.ok(Math.abs(decision.expected_cost_usd - COST.mixtral) < 1e-12);
    assert.match(decision.reasons.at(-1)!, /gpt4 is unavailable .*; best available tier: mixtral/);
  });

  test('best_available with only a local tier without probes (no remote credentials at all)', () => {
    const tiers = without('mixtral', 'gpt4');
    const onlyRemote = { mixtral: 0.3, gpt4: 0.8 };
    assert.equal(route(input(onlyRemote, { tiers }), policy(), NOW).error?.code, 'MR_ERR_TIER_UNAVAILABLE');
    const best = route(input(onlyRemote, { tiers }), policy({ on_unavailable: 'best_available' }), NOW);
    assert.equal(best.tier, 'local');
    assert.equal(best.fallback, true);
  });

  test('best_available with nothing available is still an error', () => {
    const tiers = TIERS.map((t) => ({ ...t, available: false }));
    const decision = route(input(prediction, { tiers }), policy({ on_unavailable: 'best_available' }), NOW);
    assert.equal(decision.error?.code, 'MR_ERR_TIER_UNAVAILABLE');
    assert.match(decision.error.message, /no tier is available/);
  });

  test('no tiers at all', () => {
    assert.equal(route(input(prediction, { tiers: [] }), policy(), NOW).error?.code, 'MR_ERR_NO_TIERS');
  });
});
