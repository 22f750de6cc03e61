import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type AnswerScorer, createAnswerScorer } from '../../bench/answer-logprob.js';
import { packageRoot } from '../../src/paths.js';
import { readTraces } from '../../src/traces/jsonl-reader.js';
import { promptText, type Trace } from '../../src/traces/trace-schema.js';
import { defaultEncoderPath } from '../support/default-encoder.js';

/**
 * The logprob gate's offline proxy (bench/answer-logprob.ts) with the real local model: Mixtral's answer
 * to a real GSM8K problem, teacher-forced after the prompt. The filtered pass the benchmark runs must
 * give the unfiltered mean, and the reading must be of the answer's own tokens in order.
 */
const TRACES = join(packageRoot, 'test', 'integration', 'fixtures', 'gsm8k-steps-10.jsonl');
const answerOf = (t: Trace) => t.responses!['mixtral-8x7b-instruct']!;

describe('answer logprobs under the local model', () => {
  let scorer: AnswerScorer;
  let trace: Trace;
  before(async () => {
    scorer = await createAnswerScorer(defaultEncoderPath(), { contextSize: 512 });
    const { traces } = await readTraces(TRACES, { throwOnError: true });
    trace = [...traces].sort((a, b) => answerOf(a).length - answerOf(b).length)[0]!;
  });
  after(async () => {
    await scorer?.dispose();
  });

  it('the min-p filtered pass gives the full-vocabulary mean', async () => {
    // The shortest answer's first line: the unfiltered pass hands all 262k probabilities a token to JS.
    const answer = answerOf(trace).split('\n')[0]!;
    const filtered = await scorer.score(promptText(trace), answer);
    const exact = await scorer.score(promptText(trace), answer, { exact: true });
    assert.equal(filtered.tokens, exact.tokens);
    assert.ok(filtered.tokens >= 8, `${filtered.tokens} answer tokens`);
    assert.ok(exact.mean_logprob < 0);
    assert.ok(
      Math.abs(filtered.mean_logprob - exact.mean_logprob) < 1e-4,
      `${filtered.mean_logprob} vs ${exact.mean_logprob}`,
    );
  });

  it("reads the answer's tokens in order: the same words backwards score far lower", async () => {
    const answer = answerOf(trace).trim();
    const backwards = answer.split(/\s+/).reverse().join(' ');
    const fluent = await scorer.score(promptText(trace), answer);
    const garbled = await scorer.score(promptText(trace), backwards);
    assert.ok(
      fluent.mean_logprob > garbled.mean_logprob + 0.5,
      `fluent ${fluent.mean_logprob} vs backwards ${garbled.mean_logprob}`,
    );
  });

  it('refuses an empty answer', async () => {
    await assert.rejects(scorer.score(promptText(trace), '   '), /no tokens to score/);
  });
});
