import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stepProbeText } from '../../../src/probes/step-probe-info.js';
import { segmentSteps, stepPrefix } from '../../../src/steps/segment-steps.js';

const gsm =
  ' A robe takes 2 bolts of blue fiber and 2/2 = 1 bolt of white fiber.\n' +
  'So in total, it takes 2 + 1 = <<2+1=3>>3 bolts.\n\n#### 3\n\n';

test('lines: one step per non-blank line, offsets point into the original text', () => {
  const steps = segmentSteps(gsm, { mode: 'lines', min_chars: 0 });
  assert.deepEqual(
    steps.map((s) => s.text),
    [
      'A robe takes 2 bolts of blue fiber and 2/2 = 1 bolt of white fiber.',
      'So in total, it takes 2 + 1 = <<2+1=3>>3 bolts.',
      '#### 3',
    ],
  );
  for (const s of steps) assert.equal(gsm.slice(s.start, s.end), s.text);
});

test('a step shorter than min_chars joins its neighbour; a short final answer line joins the last step', () => {
  const steps = segmentSteps('So:\nx = 4 * 3 = 12 apples\n#### 12', { mode: 'lines', min_chars: 8 });
  assert.deepEqual(
    steps.map((s) => s.text),
    ['So:\nx = 4 * 3 = 12 apples\n#### 12'],
  );
  const lone = segmentSteps('#### 12', { min_chars: 8 });
  assert.deepEqual(
    lone.map((s) => s.text),
    ['#### 12'],
  );
});

test('numbered: continuation lines belong to the numbered step above', () => {
  const text = 'Step 1: Find the price.\nIt is $4.\nStep 2: Multiply by 3.\n2) also numbered\n- a bullet';
  const steps = segmentSteps(text, { mode: 'numbered', min_chars: 0 });
  assert.deepEqual(
    steps.map((s) => s.text),
    ['Step 1: Find the price.\nIt is $4.', 'Step 2: Multiply by 3.', '2) also numbered', '- a bullet'],
  );
});

test('sentences: cuts after a sentence end but never inside a number or an equation', () => {
  const steps = segmentSteps('He pays 2.5 dollars each. So 3*2.5=7.5 dollars. The answer is 7.5.', {
    mode: 'sentences',
    min_chars: 0,
  });
  assert.deepEqual(
    steps.map((s) => s.text),
    ['He pays 2.5 dollars each.', 'So 3*2.5=7.5 dollars.', 'The answer is 7.5.'],
  );
});

test('max_steps folds everything past the cap into the last step', () => {
  const text = Array.from({ length: 10 }, (_, i) => `line number ${i}`).join('\n');
  const steps = segmentSteps(text, { max_steps: 3, min_chars: 0 });
  assert.equal(steps.length, 3);
  assert.equal(steps[2]?.end, text.length);
  assert.match(steps[2]?.text ?? '', /line number 2\n[\s\S]*line number 9$/);
});

test('stepPrefix returns the response up to the end of step k, and empty text for k = 0', () => {
  const steps = segmentSteps(gsm, { min_chars: 0 });
  assert.equal(stepPrefix(gsm, steps, 0), '');
  assert.equal(
    stepPrefix(gsm, steps, 1),
    ' A robe takes 2 bolts of blue fiber and 2/2 = 1 bolt of white fiber.',
  );
  assert.equal(stepPrefix(gsm, steps, 99), gsm.trimEnd());
});

test('an empty or blank response has no steps; a bad option is a clear error', () => {
  assert.deepEqual(segmentSteps(''), []);
  assert.deepEqual(segmentSteps(' \n\n '), []);
  // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid option
  assert.throws(() => segmentSteps('x', { mode: 'paragraphs' as any }), /mode/);
});

test('stepProbeText: the prompt alone before any step, then prompt, blank line, steps so far', () => {
  assert.equal(stepProbeText('Q?', ''), 'Q?');
  assert.equal(stepProbeText('Q?', '  \n'), 'Q?');
  assert.equal(stepProbeText('Q?', ' 2 + 2 = 4\n'), 'Q?\n\n2 + 2 = 4');
});
