import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  extractChoiceLetter,
  extractFinalNumber,
  gradeKindOf,
  gradeResponse,
} from '../../../training/grading.js';

describe('grading', () => {
  it('reads the final number of a worked solution', () => {
    assert.equal(extractFinalNumber('2 + 1 = 3 bolts.\n#### 3\n\n'), '3');
    assert.equal(extractFinalNumber('He made $70,000 profit.\n#### $70,000'), '70000');
    assert.equal(extractFinalNumber('So the answer is 18 dollars, not 20.'), '18');
    assert.equal(extractFinalNumber('First 5, then 12, finally 16.5'), '16.5');
    assert.equal(extractFinalNumber('The change is -4.'), '-4');
    assert.equal(extractFinalNumber('no digits here'), null);
  });

  it('reads an option letter', () => {
    assert.equal(extractChoiceLetter(' B'), 'B');
    assert.equal(extractChoiceLetter('B. Paris'), 'B');
    assert.equal(extractChoiceLetter('The answer is (C) because…'), 'C');
    assert.equal(extractChoiceLetter('Answer: d'), 'D');
    assert.equal(extractChoiceLetter('I think (A) is right'), 'A');
    assert.equal(extractChoiceLetter('Because of the assumptions'), null);
    assert.equal(extractChoiceLetter('A robe takes 2 bolts'), null);
    assert.equal(extractChoiceLetter('(F)', 'ABCDEFGHIJ'), 'F');
  });

  it('chooses the comparison from the reference', () => {
    assert.equal(gradeKindOf('70000'), 'numeric');
    assert.equal(gradeKindOf('1,250.5'), 'numeric');
    assert.equal(gradeKindOf('B'), 'choice');
    assert.equal(gradeKindOf('Paris'), 'exact');
  });

  it('grades numeric, choice and exact answers', () => {
    assert.deepEqual(gradeResponse('so 5/2 = 2.5, round up: 3\n#### 3', '3'), {
      kind: 'numeric',
      extracted: '3',
      correct: true,
    });
    assert.equal(gradeResponse('The total is 2.50', '2.5').correct, true);
    assert.equal(gradeResponse('The total is 4', '3').correct, false);
    assert.equal(gradeResponse('nothing', '3').correct, false);
    assert.equal(gradeResponse('Answer: B', 'B').correct, true);
    assert.equal(gradeResponse('Answer: C', 'B').correct, false);
    assert.equal(gradeResponse('  paris. ', 'Paris').correct, true);
  });
});
