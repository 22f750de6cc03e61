import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyCutOffPolicy,
  builtInMethodOf,
  extractChoiceLetter,
  extractCode,
  extractFinalNumber,
  gradeChoice,
  gradeNumeric,
} from '../../../training/grading.js';

const value = (e: { value: string } | null) => e?.value ?? null;
const done = (text: string) => ({ text, truncated: false });
const cut = (text: string) => ({ text, truncated: true });

describe('grading', () => {
  it('reads the final number of a worked solution, and says how', () => {
    assert.deepEqual(extractFinalNumber('2 + 1 = 3 bolts.\n#### 3\n\n'), { value: '3', how: '#### marker' });
    assert.equal(value(extractFinalNumber('He made $70,000 profit.\n#### $70,000')), '70000');
    assert.equal(value(extractFinalNumber('#### **42**')), '42');
    assert.deepEqual(extractFinalNumber('So the answer is 18 dollars, not 20.'), {
      value: '18',
      how: 'answer phrase',
    });
    assert.deepEqual(extractFinalNumber('First 5, then 12, finally 16.5'), {
      value: '16.5',
      how: 'last number',
    });
    assert.equal(value(extractFinalNumber('The change is -4.')), '-4');
    assert.equal(extractFinalNumber('no digits here'), null);
  });

  it('reads an option letter', () => {
    assert.equal(value(extractChoiceLetter(' B')), 'B');
    assert.equal(value(extractChoiceLetter('B. Paris')), 'B');
    assert.equal(value(extractChoiceLetter('**B**')), 'B');
    assert.equal(value(extractChoiceLetter('The answer is (C) because…')), 'C');
    assert.deepEqual(extractChoiceLetter('Answer: d'), { value: 'D', how: 'answer phrase' });
    assert.equal(value(extractChoiceLetter('I think (A) is right')), 'A');
    assert.equal(extractChoiceLetter('Because of the assumptions'), null);
    assert.equal(extractChoiceLetter('A robe takes 2 bolts'), null);
    assert.equal(value(extractChoiceLetter('(F)', 'ABCDEFGHIJ')), 'F');
  });

  it('grades a number or a letter by itself; free text needs a command', () => {
    assert.equal(builtInMethodOf('70000'), 'numeric');
    assert.equal(builtInMethodOf('1,250.5'), 'numeric');
    assert.equal(builtInMethodOf('B'), 'choice');
    assert.equal(builtInMethodOf('Paris'), null);
    assert.equal(builtInMethodOf('def f(x): return x'), null);
  });

  it('passes and fails numeric answers it can read', () => {
    assert.deepEqual(gradeNumeric(done('so 5/2 = 2.5, round up: 3\n#### 3'), '3'), {
      method: 'numeric',
      verdict: 'pass',
      extracted: '3',
      how: '#### marker',
    });
    assert.equal(gradeNumeric(done('The total is 2.50'), '2.5').verdict, 'pass');
    assert.equal(gradeNumeric(done('The total is 4'), '3').verdict, 'fail');
    // A final line survives the cut: the answer was given before the limit.
    assert.equal(gradeNumeric(cut('#### 3\nAnd now let me'), '3').verdict, 'pass');
  });

  it('calls an answer ungradable when no answer can be read, not a failure', () => {
    assert.deepEqual(gradeNumeric(done('I cannot tell'), '3'), {
      method: 'numeric',
      verdict: 'ungradable',
      reason: 'no number in the answer',
    });
    // Cut off mid-reasoning, the last number is an intermediate value.
    const midway = gradeNumeric(cut('First, 4 apples plus 3 gives'), '7');
    assert.equal(midway.verdict, 'ungradable');
    assert.equal(midway.reason, 'cut off at the token limit before a final answer');
    assert.equal(midway.extracted, '3');
    assert.equal(gradeChoice(done('Paris, of course'), 'B').verdict, 'ungradable');
    assert.equal(
      gradeChoice(cut('Let us think'), 'B').reason,
      'cut off at the token limit before an option letter',
    );
  });

  it('counts a cut-off answer as a failure only when asked to', () => {
    const midway = gradeNumeric(cut('First, 4 apples plus 3 gives'), '7');
    assert.equal(applyCutOffPolicy(midway, 'ungradable').verdict, 'ungradable');
    assert.deepEqual(applyCutOffPolicy(midway, 'fail'), { ...midway, verdict: 'fail' });
    // An answer that is merely unreadable stays ungradable: the limit had nothing to do with it.
    const unreadable = gradeChoice(done('Paris'), 'B');
    assert.equal(applyCutOffPolicy(unreadable, 'fail').verdict, 'ungradable');
    assert.equal(applyCutOffPolicy(gradeChoice(cut('Well'), 'B'), 'fail').verdict, 'fail');
  });

  it('passes and fails option letters, with letters past D when the reference has them', () => {
    assert.equal(gradeChoice(done('Answer: B'), 'B').verdict, 'pass');
    assert.deepEqual(gradeChoice(done('Answer: C'), 'B'), {
      method: 'choice',
      verdict: 'fail',
      extracted: 'C',
      how: 'answer phrase',
    });
    assert.equal(gradeChoice(done('(G)'), 'G').verdict, 'pass');
    assert.equal(gradeChoice(done('(G)'), 'B').verdict, 'ungradable');
  });

  it('takes the first fenced block as the code, else the whole answer', () => {
    assert.equal(
      extractCode('Here:\n```python\ndef f(x):\n    return x\n```\nThen ```x```'),
      'def f(x):\n    return x',
    );
    assert.equal(extractCode('```js\nconst a = 1;\n'), 'const a = 1;');
    assert.equal(extractCode('  return a + b  '), 'return a + b');
  });
});
