import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TierPlan } from '../../../src/policy/policy-schema.js';
import {
  createExecutor,
  type ExecutionPart,
  type ExecutionPlan,
  type ExecutorDeps,
} from '../../../src/router/executor.js';
import {
  type CallOptions,
  type GenerateResult,
  type StreamPart,
  type TierRequest,
  UpstreamRequestError,
  UpstreamStatusError,
} from '../../../src/tiers/tier-model.js';

/**
 * The executor over scripted tiers (test doubles: this is about the order of attempts, not about any
 * provider). Each tier answers with its script: a text (with a mean logprob), or an error.
 */
type Script = { text: string; logprob?: number } | { fail: Error } | { failAfterDelta: Error };

function fakeDeps(scripts: Record<string, Script>, scoreResponse?: (text: string) => number) {
  const calls: { tier: string; request: TierRequest; options: CallOptions; stream: boolean }[] = [];
  const charged: string[] = [];
  const result = (tier: string, s: { text: string; logprob?: number }): GenerateResult => ({
    text: s.text,
    finish_reason: 'stop',
    usage: { input_tokens: 10, output_tokens: 5 },
    ...(s.logprob === undefined ? {} : { logprobs: { mean_logprob: s.logprob } }),
    warnings: [],
    tier,
    deployment: `${tier}/0`,
  });
  const deps: ExecutorDeps = {
    async generate(tier, request, options) {
      calls.push({ tier, request, options, stream: false });
      const s = scripts[tier]!;
      if ('fail' in s) throw s.fail;
      if ('failAfterDelta' in s) throw s.failAfterDelta;
      return result(tier, s);
    },
    async *stream(tier, request, options): AsyncGenerator<StreamPart> {
      calls.push({ tier, request, options, stream: true });
      const s = scripts[tier]!;
      yield { type: 'start', tier, deployment: `${tier}/0`, warnings: [] };
      if ('fail' in s) {
        yield { type: 'error', error: s.fail as UpstreamStatusError };
        return;
      }
      if ('failAfterDelta' in s) {
        yield { type: 'text-delta', text: 'partial' };
        yield { type: 'error', error: s.failAfterDelta as UpstreamStatusError };
        return;
      }
      yield { type: 'text-delta', text: s.text };
      yield { type: 'finish', finish_reason: 'stop', usage: { input_tokens: 10, output_tokens: 5 } };
    },
    charge(tier) {
      charged.push(tier);
      return tier === 'big' ? 0.01 : 0.001;
    },
    ...(scoreResponse ? { scoreResponse: async (text: string) => scoreResponse(text) } : {}),
    countTokens: (text) => text.length,
  };
  return { deps, calls, charged };
}

const plan = (fields: Partial<TierPlan> = {}): ExecutionPlan => ({
  mode: 'route',
  tiers: {
    policy_version: 'v1',
    tiers: ['small', 'mid', 'big'],
    failover: true,
    max_escalations: 0,
    ...fields,
  },
});
const request: TierRequest = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 };

async function run(deps: ExecutorDeps, p: ExecutionPlan, stream = false, remainingMs = 90_000) {
  const parts: ExecutionPart[] = [];
  for await (const part of createExecutor(deps).execute(p, request, {
    stream,
    signal: new AbortController().signal,
    remainingMs: () => remainingMs,
    prompt: 'hi',
  })) {
    parts.push(part);
  }
  return parts;
}
const kinds = (parts: ExecutionPart[]) => parts.map((p) => p.type);
const done = (parts: ExecutionPart[]) => {
  const last = parts.at(-1)!;
  assert.equal(last.type, 'done');
  return (last as Extract<ExecutionPart, { type: 'done' }>).summary;
};

describe('executor, route mode', () => {
  test('a failing tier hands over to the next of the plan; only the answering tier is charged', async () => {
    const { deps, calls, charged } = fakeDeps({
      small: { fail: new UpstreamStatusError(503, 'small/0', '') },
      mid: { text: 'from mid' },
      big: { text: 'from big' },
    });
    const parts = await run(deps, plan());
    assert.deepEqual(
      calls.map((c) => c.tier),
      ['small', 'mid'],
    );
    assert.deepEqual(charged, ['mid']);
    assert.deepEqual(kinds(parts), [
      'attempt-start',
      'attempt-failed',
      'attempt-start',
      'usage',
      'answer',
      'done',
    ]);
    const summary = done(parts);
    assert.equal(summary.answered_by, 'mid');
    assert.deepEqual(
      summary.attempts.map((a) => [a.tier, a.via, a.outcome]),
      [
        ['small', 'chosen', 'failed'],
        ['mid', 'failover', 'answered'],
      ],
    );
    assert.equal(summary.cost_usd, 0.001);
  });

  test('a refused request is not failed over (it would be refused again), nor a named tier', async () => {
    const refused = fakeDeps({
      small: { fail: new UpstreamStatusError(400, 'small/0', 'context length exceeded') },
      mid: { text: 'x' },
      big: { text: 'y' },
    });
    const parts = await run(refused.deps, plan());
    assert.deepEqual(
      refused.calls.map((c) => c.tier),
      ['small'],
    );
    assert.equal(parts.at(-1)!.type, 'error');
    const poisoned = fakeDeps({
      small: { fail: new UpstreamRequestError('small/0', 'stack') },
      mid: { text: 'x' },
    });
    await run(poisoned.deps, plan());
    assert.equal(poisoned.calls.length, 1);
    const named = fakeDeps({
      small: { fail: new UpstreamStatusError(503, 'small/0', '') },
      mid: { text: 'x' },
    });
    const namedParts = await run(named.deps, plan({ tiers: ['small'], failover: false }));
    assert.equal(named.calls.length, 1);
    assert.equal(namedParts.at(-1)!.type, 'error');
  });

  test('each tier call gets its share of the time left, so a hanging tier leaves the next one a turn', async () => {
    const { deps, calls } = fakeDeps({
      small: { fail: new UpstreamStatusError(504, 'small/0', '') },
      mid: { fail: new UpstreamStatusError(504, 'mid/0', '') },
      big: { text: 'ok' },
    });
    await run(deps, plan(), false, 90_000);
    assert.deepEqual(
      calls.map((c) => c.options.timeoutMs),
      [30_000, 45_000, 90_000],
    );
  });

  test('a logprob gate escalates a doubtful answer up the plan, at most max_escalations times', async () => {
    const { deps, calls, charged } = fakeDeps({
      small: { text: 'unsure', logprob: -2 },
      mid: { text: 'still unsure', logprob: -1.5 },
      big: { text: 'sure', logprob: -0.1 },
    });
    const gate = { kind: 'logprob' as const, min_mean_logprob: -0.5 };
    const once = await run(deps, plan({ max_escalations: 1, gate }));
    assert.ok(
      calls.every((c) => c.request.logprobs === true),
      'the gate asks for logprobs',
    );
    assert.deepEqual(charged, ['small', 'mid'], 'an escalated answer was still paid for');
    const summary = done(once);
    assert.equal(summary.answered_by, 'mid');
    assert.equal(summary.escalations, 1);
    assert.ok(kinds(once).includes('escalated'));
    const answer = once.find((p) => p.type === 'answer') as Extract<ExecutionPart, { type: 'answer' }>;
    assert.equal(answer.result.text, 'still unsure');
    assert.equal(answer.result.logprobs, undefined, 'logprobs the client did not ask for are not returned');
    const twice = fakeDeps({
      small: { text: 'unsure', logprob: -2 },
      mid: { text: 'still unsure', logprob: -1.5 },
      big: { text: 'sure', logprob: -0.1 },
    });
    assert.equal(done(await run(twice.deps, plan({ max_escalations: 2, gate }))).answered_by, 'big');
  });

  test('a probe gate reads the answer with the step probe', async () => {
    const { deps, calls } = fakeDeps(
      { small: { text: 'wrong' }, mid: { text: 'right' }, big: { text: 'x' } },
      (text) => (text === 'right' ? 0.9 : 0.2),
    );
    const parts = await run(deps, plan({ max_escalations: 2, gate: { kind: 'probe', min_p_success: 0.5 } }));
    assert.equal(done(parts).answered_by, 'mid');
    assert.ok(calls.every((c) => c.request.logprobs === undefined));
    const gates = parts.filter((p) => p.type === 'gate') as Extract<ExecutionPart, { type: 'gate' }>[];
    assert.deepEqual(
      gates.map((g) => [g.tier, g.value, g.escalate]),
      [
        ['small', 0.2, true],
        ['mid', 0.9, false],
      ],
    );
  });
});

describe('executor, route mode streaming', () => {
  test('fails over before the first content part, never after it', async () => {
    const before = fakeDeps({
      small: { fail: new UpstreamStatusError(502, 'small/0', '') },
      mid: { text: 'hello' },
    });
    const parts = await run(before.deps, plan(), true);
    assert.deepEqual(kinds(parts), [
      'attempt-start',
      'attempt-failed',
      'attempt-start',
      'text-delta',
      'usage',
      'finish',
      'done',
    ]);
    const after = fakeDeps({
      small: { failAfterDelta: new UpstreamStatusError(502, 'small/0', '') },
      mid: { text: 'hello' },
    });
    const cut = await run(after.deps, plan(), true);
    assert.deepEqual(
      after.calls.map((c) => c.tier),
      ['small'],
    );
    assert.deepEqual(kinds(cut), ['attempt-start', 'text-delta', 'attempt-failed', 'error']);
  });

  test('with a gate a streamed request is answered whole, then sent', async () => {
    const { deps, calls } = fakeDeps({
      small: { text: 'a', logprob: -3 },
      mid: { text: 'b', logprob: -0.1 },
    });
    const parts = await run(
      deps,
      plan({
        tiers: ['small', 'mid'],
        max_escalations: 1,
        gate: { kind: 'logprob', min_mean_logprob: -0.5 },
      }),
      true,
    );
    assert.ok(calls.every((c) => !c.stream));
    const deltas = parts.filter((p) => p.type === 'text-delta') as { text: string }[];
    assert.deepEqual(
      deltas.map((d) => d.text),
      ['b'],
    );
    assert.equal(done(parts).answered_by, 'mid');
  });
});
