import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidOverridesError } from '../../../src/errors.js';
import { applyOverrides, parseOverrides } from '../../../src/policy/overrides.js';
import { route } from '../../../src/policy/route.js';
import { input, NOW, policy } from './fixtures.js';

describe('parseOverrides', () => {
  test('reads headers and the body’s mechroute object', () => {
    assert.deepEqual(
      parseOverrides(
        { 'x-mechroute-policy': 'Utility', 'x-mechroute-lambda': '12.5', 'content-type': 'application/json' },
        { model: 'mechroute', mechroute: { threshold: 0.7, max_cost_usd: 0.02 } },
      ),
      { ok: true, overrides: { policy: 'utility', lambda: 12.5, threshold: 0.7, max_cost_usd: 0.02 } },
    );
    assert.deepEqual(parseOverrides({ 'X-Mechroute-Max-Cost': ['1e-3'] }, null), {
      ok: true,
      overrides: { max_cost_usd: 0.001 },
    });
    assert.deepEqual(parseOverrides({}, { messages: [] }), { ok: true, overrides: {} });
  });

  test('lists every problem with the header or body field it came from', () => {
    const result = parseOverrides(
      {
        'x-mechroute-policy': 'cheapest',
        'x-mechroute-lambda': 'abc',
        'x-mechroute-max-cost': '-1',
        'x-mechroute-threshold': ['0.5', '0.6'],
      },
      { mechroute: { lambda: '3', threshold: 2, tier: 'gpt4' } },
    );
    assert.equal(result.ok, false);
    const errors = result.ok ? [] : result.errors;
    const expected = [
      /^header x-mechroute-threshold: given 2 times, expected once$/,
      /^header x-mechroute-lambda: expected a number, got "abc"$/,
      /^header x-mechroute-policy: Invalid option: expected one of "threshold"\|"utility"\|"budget"\|"cascade"$/,
      /^header x-mechroute-max-cost: Too small/,
      /^body mechroute: unknown field tier/,
      /^body mechroute\.lambda: Invalid input: expected number, received string$/,
      /^body mechroute\.threshold: Too big/,
    ];
    for (const re of expected)
      assert.ok(
        errors.some((e) => re.test(e)),
        `${re} in\n${errors.join('\n')}`,
      );
    assert.equal(errors.length, expected.length, errors.join('\n'));
    assert.match(new InvalidOverridesError(errors).message, /invalid routing overrides:\n {2}- header/);
  });

  test('empty or hexadecimal numbers are not numbers; a body mechroute that is not an object is refused', () => {
    for (const value of ['', '0x10', '1,5', 'Infinity']) {
      const result = parseOverrides({ 'x-mechroute-lambda': value }, {});
      assert.equal(result.ok, false, value);
    }
    const body = parseOverrides({}, { mechroute: 'utility' });
    assert.ok(!body.ok && /^body mechroute: Invalid input: expected object/.test(body.errors[0]!));
  });

  test('header and body must agree when both are given', () => {
    const result = parseOverrides({ 'x-mechroute-lambda': '3' }, { mechroute: { lambda: 4 } });
    assert.deepEqual(result, {
      ok: false,
      errors: ['header x-mechroute-lambda (3) and body mechroute.lambda (4) disagree'],
    });
    assert.equal(parseOverrides({ 'x-mechroute-lambda': '3' }, { mechroute: { lambda: 3 } }).ok, true);
  });
});

describe('applyOverrides', () => {
  test('switches kind and replaces every per-tier threshold', () => {
    const base = policy({ threshold: { default: 0.5, tiers: { local: 0.9 } } });
    const { policy: next, reasons } = applyOverrides(base, { policy: 'utility', threshold: 0.3 });
    assert.equal(next.kind, 'utility');
    assert.deepEqual(next.threshold, { default: 0.3, tiers: {}, classes: {} });
    assert.equal(reasons.length, 2);
    assert.equal(base.kind, 'threshold', 'the configured policy is not mutated');
  });

  test('x-mechroute-policy switches the kind of one decision, version unchanged', () => {
    const decision = route(
      input({ local: 0.4, mixtral: 0.7, gpt4: 0.9 }, { overrides: { policy: 'cascade' } }),
      policy(),
      NOW,
    );
    assert.equal(decision.policy_kind, 'cascade');
    assert.equal(decision.policy_version, 'test-1');
    assert.deepEqual(decision.escalation_path, ['gpt4']);
  });

  test('a policy may refuse overrides', () => {
    const locked = policy({ allow_overrides: false });
    const decision = route(input({ local: 0.6 }, { overrides: { threshold: 0.9 } }), locked, NOW);
    assert.equal(decision.tier, 'local');
    assert.match(decision.reasons[0]!, /request overrides ignored \(threshold\): not allowed by the policy/);
  });
});
