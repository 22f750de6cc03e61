import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CONTINUE_INSTRUCTION,
  continuationMessages,
  nextWriter,
  runSteps,
  type StepRunnerDeps,
  type StepRunOptions,
} from '../../../src/steps/step-runner.js';
import type { WrittenStep } from '../../../src/steps/step-writer.js';
import { TierExhaustedError, type TierRequest } from '../../../src/tiers/tier-model.js';

/**
 * The step loop's decisions on scripted tiers and a scripted probe: who writes each step, when the
 * switch cap ends stepping, how continuation turns look, and how the token budget is kept.
 */
const TIERS = ['local', 'mid', 'top'];
const above = (tier: string) => TIERS[TIERS.indexOf(tier) + 1];

interface Call {
  tier: string;
  request: TierRequest;
  oneStep: boolean;
}

/** Each tier writes "<tier> step n" lines; `endAfter` calls in all, the last ends the answer. */
function scripted(scores: number[], endAfter = 99, failing: string[] = []) {
  const calls: Call[] = [];
  const scored: string[] = [];
  const deps: StepRunnerDeps = {
    async write(tier, request, options) {
      calls.push({ tier, request, oneStep: options.oneStep });
      if (failing.includes(tier)) throw new TierExhaustedError(tier, []);
      const ended = calls.length >= endAfter || !options.oneStep;
      const step: WrittenStep = {
        tier,
        text: options.oneStep ? `${tier} step ${calls.length}` : `${tier} rest a\n${tier} rest b`,
        ended,
        finish_reason: 'stop',
        usage: { input_tokens: 10, output_tokens: 5 },
        usage_estimated: options.oneStep && !ended,
      };
      return step;
    },
    async score(prefix) {
      scored.push(prefix);
      return scores[scored.length - 1] ?? 0.5;
    },
    tierAbove: above,
  };
  return { deps, calls, scored };
}

const options = (extra: Partial<StepRunOptions> = {}): StepRunOptions => ({
  request: { messages: [{ role: 'user', content: 'Q?' }], max_tokens: 1000 },
  worker: 'local',
  threshold: 0.5,
  maxSwitches: 2,
  maxSteps: 10,
  maxStepTokens: 20,
  minStepChars: 0,
  ...extra,
});

test('nextWriter: the worker while P ≥ τ, else one tier up from the current writer, capped at the top', () => {
  assert.equal(nextWriter(0.7, 0.5, 'mid', 'local', above), 'local');
  assert.equal(nextWriter(0.3, 0.5, 'local', 'local', above), 'mid');
  assert.equal(nextWriter(0.3, 0.5, 'mid', 'local', above), 'top');
  assert.equal(nextWriter(0.3, 0.5, 'top', 'local', above), 'top');
  assert.equal(nextWriter(0, 0, 'local', 'local', above), 'local');
  assert.equal(nextWriter(0.999, 1, 'local', 'local', above), 'mid');
});

test('continuationMessages: the steps so far as an assistant turn, then the instruction to go on', () => {
  const messages = [{ role: 'user' as const, content: 'Q?' }];
  assert.deepEqual(continuationMessages(messages, ''), messages);
  assert.deepEqual(continuationMessages(messages, 'a\nb'), [
    ...messages,
    { role: 'assistant', content: 'a\nb' },
    { role: 'user', content: CONTINUE_INSTRUCTION },
  ]);
});

test('τ = 0 never switches: the worker writes every step until it ends', async () => {
  const { deps, calls, scored } = scripted([0.1, 0.2, 0.3], 3);
  const run = await runSteps(deps, options({ threshold: 0 }));
  assert.deepEqual(
    run.steps.map((s) => s.tier),
    ['local', 'local', 'local'],
  );
  assert.deepEqual(run.switches, []);
  assert.equal(run.text, 'local step 1\nlocal step 2\nlocal step 3');
  // No decision after the step that ended the answer.
  assert.equal(scored.length, 2);
  assert.equal(scored[1], 'local step 1\nlocal step 2');
  assert.deepEqual(calls[1]!.request.messages.at(-2), { role: 'assistant', content: 'local step 1' });
  assert.equal(calls[0]!.request.max_tokens, 20);
});

test('τ = 1 climbs a tier per step; once the switch cap is spent the writer finishes in one call', async () => {
  const { deps, calls } = scripted([0.9, 0.9, 0.9]);
  const run = await runSteps(deps, options({ threshold: 1, maxSwitches: 2 }));
  assert.deepEqual(
    run.steps.map((s) => [s.tier, s.rest]),
    [
      ['local', false],
      ['mid', false],
      ['top', true],
    ],
  );
  assert.deepEqual(
    run.switches.map((s) => [s.from, s.to, s.reason, s.after_step]),
    [
      ['local', 'mid', 'probe', 0],
      ['mid', 'top', 'probe', 1],
    ],
  );
  assert.equal(calls[2]!.oneStep, false);
  assert.equal(calls[2]!.request.max_tokens, 1000 - 10);
  assert.equal(run.steps[2]!.p_success, null);
  assert.deepEqual(run.usage_by_tier, {
    local: { input_tokens: 10, output_tokens: 5 },
    mid: { input_tokens: 10, output_tokens: 5 },
    top: { input_tokens: 10, output_tokens: 5 },
  });
});

test('a trusted step hands back to the worker, and that counts as a switch', async () => {
  const { deps } = scripted([0.2, 0.8, 0.8], 4);
  const run = await runSteps(deps, options({ maxSwitches: 5 }));
  assert.deepEqual(
    run.steps.map((s) => s.tier),
    ['local', 'mid', 'local', 'local'],
  );
  assert.equal(run.switches.length, 2);
  assert.deepEqual(run.switches[1], {
    after_step: 1,
    from: 'mid',
    to: 'local',
    reason: 'probe',
    p_success: 0.8,
  });
});

test('max steps: past it the current writer writes the rest; max_tokens ends the answer with "length"', async () => {
  const capped = scripted([0.9, 0.9, 0.9, 0.9]);
  const run = await runSteps(capped.deps, options({ maxSteps: 2 }));
  assert.deepEqual(
    run.steps.map((s) => s.rest),
    [false, false, true],
  );
  const budget = scripted([0.9, 0.9, 0.9]);
  const short = await runSteps(
    budget.deps,
    options({ request: { messages: [{ role: 'user', content: 'Q?' }], max_tokens: 10 } }),
  );
  assert.equal(short.steps.length, 2);
  assert.equal(short.finish_reason, 'length');
  // No decision after the step that spent the budget: nothing could follow it.
  assert.equal(budget.scored.length, 1);
  assert.equal(short.steps[1]!.p_success, null);
  assert.equal(budget.calls[1]!.request.max_tokens, 5);
});

test('short lines are no decision points; a failing tier hands over to the one above', async () => {
  const { deps, scored } = scripted([0.1], 2);
  const run = await runSteps(deps, options({ minStepChars: 100 }));
  assert.equal(scored.length, 0);
  assert.deepEqual(run.switches, []);
  const failing = scripted([0.9], 2, ['local']);
  const failed = await runSteps(failing.deps, options());
  assert.equal(failed.steps[0]!.tier, 'mid');
  assert.equal(failed.switches[0]!.reason, 'failover');
  const dead = scripted([0.9], 2, ['local', 'mid', 'top']);
  await assert.rejects(runSteps(dead.deps, options()), TierExhaustedError);
});
