import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { unknownTierIssues } from '../../../src/config/config-schema.js';
import { applyOverrides } from '../../../src/policy/overrides.js';
import { route } from '../../../src/policy/route.js';
import { thresholdFor } from '../../../src/policy/threshold.js';
import { input, NOW, policy } from './fixtures.js';

const classed = policy({
  threshold: {
    default: 1,
    tiers: { mixtral: 0.7 },
    classes: { STEM: { default: 1, tiers: { mixtral: 0.9 } }, humanities: { tiers: { mixtral: 0.5 } } },
  },
});
const withClass = (name: string | undefined, p: Record<string, number>) => {
  const base = input(p);
  return name === undefined
    ? base
    : { ...base, prediction: { ...base.prediction, task_class: { name, p: 0.8 } } };
};

describe('per-class thresholds', () => {
  test("a class's thresholds replace the policy-wide ones; unknown or missing classes use those", () => {
    assert.equal(thresholdFor(classed, 'mixtral', 'STEM'), 0.9);
    assert.equal(thresholdFor(classed, 'mixtral', 'humanities'), 0.5);
    assert.equal(
      thresholdFor(classed, 'local', 'humanities'),
      1,
      'a class without its own default uses the policy default',
    );
    assert.equal(thresholdFor(classed, 'mixtral', 'law'), 0.7);
    assert.equal(thresholdFor(classed, 'mixtral'), 0.7);
  });

  test('route(): the same P(success) goes to different tiers by class, and the decision names the class', () => {
    const p = { local: 0.1, mixtral: 0.8, gpt4: 0.95 };
    const stem = route(withClass('STEM', p), classed, NOW);
    assert.equal(stem.tier, 'gpt4');
    assert.deepEqual(stem.task_class, { name: 'STEM', p: 0.8 });
    assert.match(stem.reasons.join('\n'), /thresholds of task class STEM/);
    assert.equal(route(withClass('humanities', p), classed, NOW).tier, 'mixtral');
    assert.equal(route(withClass(undefined, p), classed, NOW).tier, 'mixtral');
    assert.equal(route(withClass(undefined, p), classed, NOW).task_class, undefined);
  });

  test('a threshold override replaces the class thresholds too', () => {
    const { policy: next } = applyOverrides(classed, { threshold: 0.85 });
    assert.equal(route({ ...withClass('humanities', { mixtral: 0.8, gpt4: 0.9 }) }, next, NOW).tier, 'gpt4');
  });

  test('tiers named under a class are checked against the config', () => {
    const typo = policy({ threshold: { classes: { STEM: { tiers: { mixtrall: 0.5 } } } } });
    const issues = unknownTierIssues(typo, ['local', 'mixtral', 'gpt4']);
    assert.equal(issues.length, 1);
    assert.deepEqual(issues[0]!.path, ['threshold', 'classes', 'STEM', 'tiers', 'mixtrall']);
  });
});
