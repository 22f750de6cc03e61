import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type GenerateResult,
  type TierModel,
  type TierRequest,
  TierUnavailableError,
} from '../../../src/tiers/tier-model.js';
import { labelRequest, labelTraces, planOf } from '../../../training/label-traces.js';

/** A worker double that answers from a table, so grading and resumption are checked exactly. */
function scriptedTier(answers: Record<string, string>): TierModel & { calls: string[] } {
  const calls: string[] = [];
  return {
    specificationVersion: 'v1',
    id: 'scripted',
    provider: 'local',
    calls,
    async generate(request: TierRequest): Promise<GenerateResult> {
      const text = String(request.messages[0]!.content);
      const key = Object.keys(answers).find((k) => text.includes(k))!;
      calls.push(key);
      return {
        text: answers[key]!,
        finish_reason: 'stop',
        usage: { input_tokens: 10, output_tokens: 4 },
        warnings: [],
        tier: 'scripted',
        deployment: 'scripted/0',
      };
    },
    stream() {
      throw new Error('not used');
    },
  };
}

/** A tier that fails the prompts in `failing` (a set the test may clear) and answers the rest "#### 1". */
function failingTier(failing: Set<string>): TierModel & { failing: Set<string> } {
  return {
    ...scriptedTier({ P: '#### 1' }),
    failing,
    async generate(request: TierRequest): Promise<GenerateResult> {
      const text = String(request.messages[0]!.content).split('\n')[0]!;
      if (failing.has(text)) throw new Error('upstream down');
      return scriptedTier({ P: '#### 1' }).generate(request);
    },
  };
}

describe('labelTraces', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-label-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('asks for the GSM8K answer format and a letter for multiple choice', () => {
    const numeric = labelRequest(
      { id: 'a', prompt: 'How many?', outcomes: {}, reference_answer: '3' },
      64,
      'numeric',
    );
    assert.match(String(numeric.messages[0]!.content), /#### <number>/);
    assert.equal(numeric.temperature, 0);
    const choice = labelRequest(
      { id: 'b', prompt: 'Pick.\nA. x\nB. y', outcomes: {}, reference_answer: 'B' },
      8,
      'choice',
    );
    assert.match(String(choice.messages[0]!.content), /letter of the correct option/);
    const code = labelRequest({ id: 'c', prompt: 'Write f.', outcomes: {} }, 8, 'command');
    assert.equal(code.messages[0]!.content, 'Write f.');
  });

  it('plans how each trace is graded before spending a call on it', () => {
    const t = (reference_answer?: string) => ({
      id: 'x',
      prompt: 'p',
      outcomes: {},
      ...(reference_answer === undefined ? {} : { reference_answer }),
    });
    assert.deepEqual(planOf(t('42'), 'auto', false), { run: 'numeric' });
    assert.deepEqual(planOf(t('C'), 'auto', true), { run: 'choice' });
    assert.deepEqual(planOf(t('Paris'), 'auto', false), { copy: 'without_grader' });
    assert.deepEqual(planOf(t('Paris'), 'auto', true), { run: 'command' });
    assert.deepEqual(planOf(t(), 'auto', false), { copy: 'without_reference' });
    assert.deepEqual(planOf(t(), 'auto', true), { run: 'command' });
    assert.deepEqual(planOf(t('42'), 'command', true), { run: 'command' });
  });

  it('grades, records tokens, cost and latency, keeps other tiers, and resumes without rerunning', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    const traces = [
      { id: 'q1', prompt: 'Q one', outcomes: { big: true }, reference_answer: '12' },
      { id: 'q2', prompt: 'Q two', outcomes: { big: false }, reference_answer: '7' },
      { id: 'q3', prompt: 'Q three', outcomes: {} },
      { id: 'q4', prompt: 'Q four', outcomes: {}, reference_answer: '1,000' },
      { id: 'q5', prompt: 'Q five', outcomes: {}, reference_answer: 'B' },
      { id: 'q6', prompt: 'Q six', outcomes: {}, reference_answer: 'Paris' },
    ];
    await writeFile(input, `${traces.map((t) => JSON.stringify(t)).join('\n')}\n`);
    const tier = scriptedTier({
      'Q one': 'so 12\n#### 12',
      'Q two': 'it is 8',
      'Q four': 'The answer is 1000.',
      'Q five': 'Paris is the capital.',
    });
    const price = { input_per_mtok: 2, output_per_mtok: 10 };
    const run = (limit?: number) =>
      labelTraces({
        tracesFile: input,
        outFile: out,
        tier: 'small',
        model: tier,
        price,
        maxTokens: 16,
        ...(limit === undefined ? {} : { limit }),
      });
    const first = await run(2);
    assert.equal(first.labelled, 2);
    assert.equal(first.pass, 1);
    assert.equal(first.fail, 1);
    assert.deepEqual(first.by_method, { numeric: { pass: 1, fail: 1, ungradable: 0 } });
    const second = await run();
    assert.equal(second.skipped_done, 2);
    assert.equal(second.labelled, 2);
    assert.equal(second.pass, 1);
    assert.equal(second.ungradable, 1);
    assert.deepEqual(second.ungradable_reasons, { 'no option letter in the answer': 1 });
    assert.equal(second.without_reference, 1);
    assert.equal(second.without_grader, 1);
    // Cost is the tier's price times the tokens it reported: (2 × 10 + 10 × 4) / 1e6 per answer.
    assert.equal(second.cost_usd, 2 * 60e-6);
    assert.deepEqual(second.tokens, { input: 20, output: 8 });
    assert.deepEqual(tier.calls, ['Q one', 'Q two', 'Q four', 'Q five']);
    const third = await run();
    assert.equal(third.skipped_done, 6);
    assert.equal(third.labelled + third.without_reference + third.without_grader, 0);

    const written = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      written.map((t) => [t.id, t.outcomes.small, t.grading?.small.verdict]),
      [
        ['q1', true, 'pass'],
        ['q2', false, 'fail'],
        ['q3', undefined, undefined],
        ['q4', true, 'pass'],
        ['q5', undefined, 'ungradable'],
        ['q6', undefined, undefined],
      ],
    );
    assert.equal(written[0].outcomes.big, true);
    assert.deepEqual(written[0].tokens.small, { input: 10, output: 4 });
    assert.equal(written[0].cost.small, 60e-6);
    assert.ok(written[0].latency_ms.small >= 0);
    assert.deepEqual(written[0].grading.small, {
      method: 'numeric',
      verdict: 'pass',
      extracted: '12',
      how: '#### marker',
      finish_reason: 'stop',
      deployment: 'scripted/0',
      failed_attempts: 0,
    });
    assert.equal(written[1].responses.small, 'it is 8');
    assert.equal(written[4].grading.small.reason, 'no option letter in the answer');
  });

  it('leaves a trace whose call failed for the next run, and stops when the tier keeps failing', async () => {
    const input = join(dir, 'failing.jsonl');
    const out = join(dir, 'failing-out.jsonl');
    const ids = Array.from({ length: 8 }, (_, i) => `f${i}`);
    await writeFile(
      input,
      ids
        .map((id) => JSON.stringify({ id, prompt: `P ${id}`, outcomes: {}, reference_answer: '1' }))
        .join('\n'),
    );
    const down = failingTier(new Set(['P f1', 'P f2', 'P f3', 'P f4', 'P f5', 'P f6']));
    const run = () =>
      labelTraces({
        tracesFile: input,
        outFile: out,
        tier: 'small',
        model: down,
        price: { input_per_mtok: 0, output_per_mtok: 0 },
        maxTokens: 8,
      });
    const first = await run();
    assert.equal(first.labelled, 1);
    assert.equal(first.errors, 5);
    assert.match(first.stopped!, /failed 5 traces in a row \(last: f5: upstream down\)/);
    assert.equal(first.error_samples[0], 'f1: upstream down');
    down.failing.clear();
    const second = await run();
    assert.equal(second.skipped_done, 1);
    assert.equal(second.labelled, 7);
    assert.equal(second.errors, 0);
    const written = (await readFile(out, 'utf8')).trim().split('\n');
    assert.deepEqual(written.map((l) => JSON.parse(l).id).sort(), ids);
  });

  it('waits for a tier that says when to come back instead of giving up on the trace', async () => {
    const input = join(dir, 'limited.jsonl');
    const out = join(dir, 'limited-out.jsonl');
    await writeFile(input, JSON.stringify({ id: 'r1', prompt: 'P r1', outcomes: {}, reference_answer: '1' }));
    let refusals = 2;
    const limited: TierModel = {
      ...scriptedTier({ P: '#### 1' }),
      async generate(request) {
        if (refusals-- > 0) throw new TierUnavailableError('small', 'every deployment is cooling down', 20);
        return scriptedTier({ P: '#### 1' }).generate(request);
      },
    };
    const summary = await labelTraces({
      tracesFile: input,
      outFile: out,
      tier: 'small',
      model: limited,
      price: { input_per_mtok: 0, output_per_mtok: 0 },
      maxTokens: 8,
    });
    assert.equal(summary.waits, 2);
    assert.equal(summary.pass, 1);
    assert.equal(summary.errors, 0);
  });
});
