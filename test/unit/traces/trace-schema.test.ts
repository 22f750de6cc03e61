import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { promptText, scoreOf, successOf, TraceSchema } from '../../../src/traces/trace-schema.js';

const issuesOf = (value: unknown): string[] => {
  const result = TraceSchema.safeParse(value);
  assert.equal(result.success, false, 'expected the record to be rejected');
  return result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('TraceSchema', () => {
  test('keeps unknown keys and all optional fields', () => {
    const record = {
      id: 'x/1',
      prompt: 'What is 2+2?',
      outcomes: { small: true, big: { success: false, score: 0.4, grader: 'exact' } },
      tokens: { small: { input: 7, output: 3 } },
      cost: { small: 0.0001 },
      latency_ms: { small: 120.5 },
      steps: { small: ['2+2', { text: '=4', success: true }] },
      responses: { small: '4' },
      dataset: 'toy',
      class: 'arithmetic',
      difficulty_estimate: 0.1,
      nested: { keep: [1, 2] },
    };
    const parsed = TraceSchema.parse(record);
    assert.deepEqual(parsed, record);
  });

  test('accepts chat messages with text parts and null content', () => {
    const parsed = TraceSchema.parse({
      id: 'chat/1',
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Hi' },
            { type: 'image_url', image_url: { url: 'x' } },
          ],
        },
        { role: 'assistant', content: null, tool_calls: [] },
      ],
      outcomes: {},
    });
    assert.equal(promptText(parsed), 'system: Be brief.\n\nuser: Hi\n\nassistant: ');
  });

  test('requires exactly one of prompt and messages', () => {
    assert.match(issuesOf({ id: 'a', outcomes: {} }).join(), /one of `prompt`/);
    assert.match(
      issuesOf({ id: 'a', prompt: 'p', messages: [{ role: 'user', content: 'p' }], outcomes: {} }).join(),
      /not both/,
    );
  });

  test('reports the path of a bad field', () => {
    assert.deepEqual(
      issuesOf({ id: 'a', prompt: 'p', outcomes: { t: { score: 1.5 } } }).map((i) => i.split(':')[0]),
      ['outcomes.t.score'],
    );
    assert.match(
      issuesOf({ id: 'a', prompt: 'p', outcomes: { t: {} } }).join(),
      /outcomes\.t: .*success.*score/,
    );
    assert.match(
      issuesOf({ id: 'a', prompt: 'p', outcomes: { t: 'yes' } }).join(),
      /outcomes\.t: an outcome is/,
    );
    assert.match(issuesOf({ prompt: 'p', outcomes: {} }).join(), /^id:/);
    assert.match(
      issuesOf({ id: 'a', prompt: 'p', outcomes: { t: true }, tokens: { t: { input: -1 } } }).join(),
      /tokens\.t\.input/,
    );
    assert.match(
      issuesOf({ id: 'a', prompt: 'p', outcomes: { t: true }, cost: { t: -0.1 } }).join(),
      /cost\.t/,
    );
  });
});

describe('outcome helpers', () => {
  test('successOf: explicit success wins, a score alone counts from 0.5', () => {
    assert.equal(successOf(true), true);
    assert.equal(successOf({ success: false, score: 0.9 }), false);
    assert.equal(successOf({ score: 0.5 }), true);
    assert.equal(successOf({ score: 0.49 }), false);
    assert.throws(() => successOf({}));
  });

  test('scoreOf: the score when given, else 0 or 1', () => {
    assert.equal(scoreOf({ success: true, score: 0.7 }), 0.7);
    assert.equal(scoreOf({ success: true }), 1);
    assert.equal(scoreOf(false), 0);
  });

  test('promptText returns a plain prompt unchanged', () => {
    assert.equal(promptText({ prompt: 'Q?\nA.' }), 'Q?\nA.');
  });
});
