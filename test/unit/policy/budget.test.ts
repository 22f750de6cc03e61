import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chooseWithinBudget, knapsackThreshold } from '../../../src/policy/budget.js';
import { createBudgetLedger } from '../../../src/policy/budget-ledger.js';
import { route } from '../../../src/policy/route.js';
import { COST, input, NOW, policy } from './fixtures.js';

const bounds = { min: 1, max: 10_000 };

describe('knapsack threshold ψ(z)', () => {
  test('L until z = 1/(1 + ln(U/L)), then rises continuously to U at a spent budget', () => {
    const c = 1 / (1 + Math.log(bounds.max / bounds.min));
    assert.equal(knapsackThreshold(0, bounds), 1);
    assert.equal(knapsackThreshold(c / 2, bounds), 1);
    assert.ok(Math.abs(knapsackThreshold(c, bounds) - 1) < 1e-9);
    assert.ok(Math.abs(knapsackThreshold(1, bounds) - 10_000) < 1e-6);
    assert.equal(knapsackThreshold(7, bounds), knapsackThreshold(1, bounds));
    let last = 0;
    for (let z = 0; z <= 1; z += 0.05) {
      const psi = knapsackThreshold(z, bounds);
      assert.ok(psi >= last);
      last = psi;
    }
  });
});

describe('chooseWithinBudget', () => {
  const options = [
    { id: 'gpt4', p: 0.9, cost_usd: COST.gpt4 },
    { id: 'local', p: 0.4, cost_usd: 0 },
    { id: 'mixtral', p: 0.7, cost_usd: COST.mixtral },
  ];
  const at = (used_fraction: number, allowance_usd = 1) =>
    chooseWithinBudget(options, { allowance_usd, used_fraction, efficiency: bounds });

  test('upgrades while the budget is fresh and grows stricter as it drains', () => {
    assert.equal(at(0).id, 'gpt4');
    assert.equal(at(0.5).id, 'mixtral');
    assert.equal(at(0.9).id, 'local');
    assert.match(at(0.9).reasons.join('\n'), /no upgrade worth its cost/);
  });

  test('never exceeds the allowance', () => {
    assert.equal(at(0, COST.gpt4 / 2).id, 'mixtral');
    assert.equal(at(0, 0).id, 'local');
    const none = chooseWithinBudget(options.slice(0, 1), {
      allowance_usd: 0.001,
      used_fraction: 0,
      efficiency: bounds,
    });
    assert.equal(none.id, undefined);
  });

  test('an upgrade without a gain is never taken', () => {
    const choice = chooseWithinBudget(
      [
        { id: 'a', p: 0.8, cost_usd: 0 },
        { id: 'b', p: 0.7, cost_usd: 0.01 },
      ],
      { allowance_usd: 1, used_fraction: 0, efficiency: bounds },
    );
    assert.equal(choice.id, 'a');
  });
});

describe('budget policy and the cost ceiling', () => {
  const prediction = { local: 0.4, mixtral: 0.7, gpt4: 0.9 };
  const budgetPolicy = policy({ kind: 'budget', budget: { rolling: { period_s: 86_400, limit_usd: 1 } } });
  const state = (remaining_usd: number) => ({ remaining_usd, limit_usd: 1 });

  test('reads the key’s remaining budget from the input', () => {
    assert.equal(route(input(prediction, { budget: state(1) }), budgetPolicy, NOW).tier, 'gpt4');
    assert.equal(route(input(prediction, { budget: state(0.5) }), budgetPolicy, NOW).tier, 'mixtral');
    assert.equal(route(input(prediction, { budget: state(0.1) }), budgetPolicy, NOW).tier, 'local');
    assert.equal(route(input(prediction), budgetPolicy, NOW).tier, 'gpt4');
  });

  test('a tier dearer than the remaining budget is excluded', () => {
    const decision = route(
      input({ ...prediction, mixtral: 0.41 }, { budget: state(0.01) }),
      budgetPolicy,
      NOW,
    );
    assert.notEqual(decision.tier, 'gpt4');
    assert.match(
      decision.reasons.join('\n'),
      /gpt4: expected cost \$0\.0177 exceeds the remaining budget \$0\.0100/,
    );
  });

  test('the per-request ceiling applies to every kind: the frontier becomes the dearest affordable tier', () => {
    const capped = policy({ budget: { max_cost_usd: 0.001 } });
    const decision = route(input({ local: 0.1, mixtral: 0.2, gpt4: 0.9 }), capped, NOW);
    assert.equal(decision.tier, 'mixtral');
    assert.equal(decision.fallback, true);
    assert.match(decision.reasons.join('\n'), /exceeds the max cost per request/);
  });

  test('x-mechroute-max-cost tightens the ceiling but cannot raise it', () => {
    const p = policy({ budget: { max_cost_usd: 0.001 } });
    const tight = route(
      input({ local: 0.1, mixtral: 0.2, gpt4: 0.9 }, { overrides: { max_cost_usd: 0.0001 } }),
      p,
      NOW,
    );
    assert.equal(tight.tier, 'local');
    const loose = route(
      input({ local: 0.1, mixtral: 0.2, gpt4: 0.9 }, { overrides: { max_cost_usd: 5 } }),
      p,
      NOW,
    );
    assert.equal(loose.tier, 'mixtral');
    assert.match(loose.reasons[0]!, /ignored, above the policy's 0\.001/);
  });

  test('no tier fits at all: MR_ERR_BUDGET_EXCEEDED', () => {
    const tiers = [{ id: 'gpt4', price: { input_per_mtok: 10, output_per_mtok: 30 }, available: true }];
    const decision = route(input(prediction, { tiers, budget: state(0.001) }), budgetPolicy, NOW);
    assert.equal(decision.error?.code, 'MR_ERR_BUDGET_EXCEEDED');
    assert.match(decision.error.message, /cheapest: gpt4 at \$0\.0177/);
  });

  test('max_output_tokens caps the output estimate', () => {
    const decision = route(
      input(prediction, { max_output_tokens: 16 }),
      policy({ kind: 'utility', utility: { lambda: 0 } }),
      NOW,
    );
    assert.ok(Math.abs(decision.expected_cost_usd - (1000 * 10 + 16 * 30) / 1e6) < 1e-12);
  });
});

describe('budget ledger', () => {
  const day = 86_400;
  const midnight = Date.UTC(2025, 0, 2);

  test('charges per key and renews at the period boundary', () => {
    const ledger = createBudgetLedger({ period_s: day, limit_usd: 1 });
    assert.equal(ledger.remaining('a', midnight - 10_000), 1);
    assert.equal(ledger.charge('a', 0.25, midnight - 10_000), 0.75);
    ledger.charge('a', 0.5, midnight - 1);
    ledger.charge('b', 0.1, midnight - 1);
    assert.equal(ledger.remaining('a', midnight - 1), 0.25);
    assert.equal(ledger.remaining('b', midnight - 1), 0.9);
    assert.equal(ledger.size, 2);
    assert.deepEqual(ledger.state('a', midnight - 1), {
      remaining_usd: 0.25,
      limit_usd: 1,
      period_start_ms: midnight - day * 1000,
      period_end_ms: midnight,
    });
    // The period rolls over at midnight UTC: every key starts afresh and old entries are dropped.
    assert.equal(ledger.remaining('a', midnight), 1);
    assert.equal(ledger.size, 0);
    assert.equal(ledger.spent('a', midnight), 0);
  });

  test('overspending leaves nothing, refunds give back, a clock stepping back keeps the period', () => {
    const ledger = createBudgetLedger({ period_s: 60, limit_usd: 1 });
    assert.equal(ledger.charge('k', 1.5, NOW), 0);
    assert.equal(ledger.charge('k', -1, NOW), 0.5);
    assert.equal(ledger.charge('k', -5, NOW), 1);
    ledger.charge('k', 0.4, NOW + 60_000);
    assert.equal(ledger.remaining('k', NOW - 1_000), 0.6);
    assert.throws(() => ledger.charge('k', Number.NaN, NOW), RangeError);
    assert.throws(() => createBudgetLedger({ period_s: 0, limit_usd: 1 }), RangeError);
  });

  test('the ledger feeds the budget policy', () => {
    const ledger = createBudgetLedger({ period_s: day, limit_usd: 1 });
    const p = policy({ kind: 'budget' });
    const prediction = { local: 0.4, mixtral: 0.7, gpt4: 0.9 };
    const pick = () => route(input(prediction, { budget: ledger.state('key', NOW) }), p, NOW).tier;
    assert.equal(pick(), 'gpt4');
    ledger.charge('key', 0.6, NOW);
    assert.equal(pick(), 'mixtral');
    assert.equal(
      route(input(prediction, { budget: ledger.state('key', NOW + day * 1000) }), p, NOW).tier,
      'gpt4',
    );
  });
});
