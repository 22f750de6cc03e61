import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from '../../../src/errors.js';
import { workerFor } from '../../../src/router/mode-plans.js';
import { requestMode } from '../../../src/server/answer-mode.js';
import { httpStatusOf } from '../../../src/server/http-errors.js';

test('the mode header picks the answer mode; without it the config default applies', () => {
  assert.deepEqual(requestMode({}, 'route'), { mode: 'route' });
  assert.deepEqual(requestMode({}, 'advisor'), { mode: 'advisor' });
  assert.deepEqual(requestMode({ 'x-mechroute-mode': ' Steps ' }, 'route'), { mode: 'steps' });
  assert.deepEqual(
    requestMode({ 'x-mechroute-mode': 'steps', 'x-mechroute-step-threshold': '0.25' }, 'route'),
    {
      mode: 'steps',
      stepThreshold: 0.25,
    },
  );
  assert.deepEqual(requestMode({ 'x-mechroute-step-threshold': '1' }, 'steps'), {
    mode: 'steps',
    stepThreshold: 1,
  });
});

test('bad mode headers are 400s naming the header', () => {
  const bad = (headers: Record<string, string | string[]>, pattern: RegExp) =>
    assert.throws(
      () => requestMode(headers, 'route'),
      (error: unknown) =>
        error instanceof ApiError && httpStatusOf(error) === 400 && pattern.test(error.message),
    );
  bad({ 'x-mechroute-mode': 'sideways' }, /x-mechroute-mode/);
  bad({ 'x-mechroute-mode': 'steps', 'x-mechroute-step-threshold': '1.5' }, /x-mechroute-step-threshold/);
  bad({ 'x-mechroute-mode': 'steps', 'x-mechroute-step-threshold': '0x1' }, /decimal/);
  bad({ 'x-mechroute-step-threshold': '0.5' }, /mode "steps" only/);
  bad({ 'x-mechroute-mode': ['steps', 'advisor'] }, /given 2 times/);
});

test('the worker: the configured one for the router model, a named tier, or a 404', () => {
  assert.equal(workerFor('mechroute', 'local', ['local', 'big']), 'local');
  assert.equal(workerFor('big', 'local', ['local', 'big']), 'big');
  assert.throws(
    () => workerFor('nope', 'local', ['local']),
    (error: unknown) => error instanceof ApiError && httpStatusOf(error) === 404,
  );
});
