import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { GenerateResult, TierModel, TierRequest } from '../../../src/tiers/tier-model.js';
import { labelRequest, labelTraces } from '../../../training/label-traces.js';

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

describe('labelTraces', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-label-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('asks for the GSM8K answer format and a letter for multiple choice', () => {
    const numeric = labelRequest({ id: 'a', prompt: 'How many?', outcomes: {}, reference_answer: '3' }, 64);
    assert.match(String(numeric.messages[0]!.content), /#### <number>/);
    assert.equal(numeric.temperature, 0);
    const choice = labelRequest(
      { id: 'b', prompt: 'Pick.\nA. x\nB. y', outcomes: {}, reference_answer: 'B' },
      8,
    );
    assert.match(String(choice.messages[0]!.content), /letter of the correct option/);
  });

  it('grades, records tokens and latency, keeps other tiers, and resumes without rerunning', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out.jsonl');
    const traces = [
      { id: 'q1', prompt: 'Q one', outcomes: { big: true }, reference_answer: '12' },
      { id: 'q2', prompt: 'Q two', outcomes: { big: false }, reference_answer: '7' },
      { id: 'q3', prompt: 'Q three', outcomes: {} },
      { id: 'q4', prompt: 'Q four', outcomes: {}, reference_answer: '1,000' },
    ];
    await writeFile(input, `${traces.map((t) => JSON.stringify(t)).join('\n')}\n`);
    const tier = scriptedTier({
      'Q one': 'so 12\n#### 12',
      'Q two': 'it is 8',
      'Q four': 'The answer is 1000.',
    });
    const first = await labelTraces({
      tracesFile: input,
      outFile: out,
      tier: 'small',
      model: tier,
      maxTokens: 16,
      limit: 2,
    });
    assert.equal(first.labelled, 2);
    assert.equal(first.correct, 1);
    const second = await labelTraces({
      tracesFile: input,
      outFile: out,
      tier: 'small',
      model: tier,
      maxTokens: 16,
    });
    assert.equal(second.skipped_done, 2);
    assert.equal(second.labelled, 1);
    assert.equal(second.without_reference, 1);
    assert.deepEqual(tier.calls, ['Q one', 'Q two', 'Q four']);
    const written = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      written.map((t) => [t.id, t.outcomes.small]),
      [
        ['q1', true],
        ['q2', false],
        ['q3', undefined],
        ['q4', true],
      ],
    );
    assert.equal(written[0].outcomes.big, true);
    assert.deepEqual(written[0].tokens.small, { input: 10, output: 4 });
    assert.ok(written[0].latency_ms.small >= 0);
    assert.equal(written[1].responses.small, 'it is 8');
  });
});
