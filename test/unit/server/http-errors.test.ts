import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { ERROR_CODES, type ErrorCode } from '../../../src/error-codes.js';
import { MechrouteError } from '../../../src/errors.js';
import { toHttpError } from '../../../src/server/http-errors.js';
import { jsonDepth } from '../../../src/server/json-body.js';
import type { RouterServices } from '../../../src/server/services.js';
import {
  LocalModelError,
  MissingCredentialsError,
  TierExhaustedError,
  TierUnavailableError,
  UpstreamNetworkError,
  UpstreamRequestError,
  UpstreamStatusError,
} from '../../../src/tiers/tier-errors.js';
import { buildTestApp } from '../../support/test-app.js';

describe('the error registry, code by code', () => {
  test('every code answers with its status, the OpenAI shape and its retry advice', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES) as [
      ErrorCode,
      (typeof ERROR_CODES)[ErrorCode],
    ][]) {
      const { status, headers, body, internal } = toHttpError(new MechrouteError(code, `the ${code} case`));
      assert.equal(status, spec.status, code);
      assert.equal(body.error.code, code);
      assert.equal(internal, spec.status === 500, code);
      // A 500 is a bug: its message stays in the log.
      assert.equal(body.error.message.includes(`the ${code} case`), spec.status !== 500, code);
      if (spec.retry === 'never') assert.equal(headers['x-should-retry'], 'false', code);
      else if (spec.retry === 'later' || spec.status === 503 || spec.status === 429) {
        assert.equal(headers['x-should-retry'], 'true', code);
        assert.ok(Number(headers['retry-after']) >= 1, code);
      } else assert.equal(headers['x-should-retry'], undefined, code);
      assert.ok(body.error.type.length > 0);
    }
  });

  test('a wait the error carries becomes retry-after, rounded up to whole seconds', () => {
    const error = new MechrouteError('MR_ERR_ENCODER_OVERLOADED', 'busy', { retryAfterMs: 2300 });
    assert.deepEqual(toHttpError(error).headers, { 'x-should-retry': 'true', 'retry-after': '3' });
  });

  test('upstream statuses are translated: the request’s faults stay 4xx, the deployment’s become 502', () => {
    const cases: [TierErrorLike, number, string | undefined][] = [
      [new UpstreamStatusError(400, 'gpt-4/0', 'context length exceeded'), 400, 'false'],
      [new UpstreamStatusError(429, 'gpt-4/0', '', 7000), 429, 'true'],
      [new UpstreamStatusError(500, 'gpt-4/0', 'db_password=hunter2 at 10.0.0.4'), 502, undefined],
      [new UpstreamStatusError(401, 'gpt-4/0', 'bad key'), 502, undefined],
      [new UpstreamStatusError(408, 'gpt-4/0', ''), 504, undefined],
      [new LocalModelError('gemma/0', 'prompt too long', 400), 400, 'false'],
      [new LocalModelError('gemma/0', 'queue full', 429), 429, 'true'],
      [new LocalModelError('gemma/0', 'ggml_abort at 0x7f', 500), 502, undefined],
      [new UpstreamRequestError('gpt-4/0', 'Maximum call stack size exceeded'), 400, 'false'],
      [new TierUnavailableError('gpt-4', 'cooling down', 12_000), 503, 'true'],
      [new TierUnavailableError('gpt-4', 'no credentials'), 503, 'false'],
      [new MissingCredentialsError('gpt-4/0', 'OPENAI_API_KEY'), 503, 'false'],
      [new TierExhaustedError('gpt-4', [new UpstreamStatusError(429, 'gpt-4/0', '', 2000)]), 429, 'true'],
      // An upstream's 503 without a wait of its own: still "later" (found by the reliability harness).
      [new TierExhaustedError('gpt-4', [new UpstreamStatusError(503, 'gpt-4/0', '')]), 503, 'true'],
      [new TierExhaustedError('gpt-4', [new UpstreamStatusError(404, 'gpt-4/0', '')]), 502, undefined],
    ];
    for (const [error, status, retry] of cases) {
      const response = toHttpError(error, 'req-1');
      assert.equal(response.status, status, `${error.code} ${error.message}`);
      assert.equal(response.headers['x-should-retry'], retry, `${error.code} ${error.message}`);
    }
  });

  test('upstream words never reach the client; the tier and the request id do', () => {
    const leaky = new UpstreamStatusError(500, 'gpt-4/3', 'db_password=hunter2 <html>oops</html>');
    const { body } = toHttpError(leaky, 'req-42');
    assert.doesNotMatch(body.error.message, /hunter2|html|gpt-4\/3/);
    assert.match(body.error.message, /HTTP 500/);
    assert.match(body.error.message, /tier gpt-4/);
    assert.match(body.error.message, /req-42/);
    const socket = new UpstreamNetworkError(
      'gpt-4/0',
      new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 10.1.2.3:443') }),
    );
    assert.doesNotMatch(toHttpError(socket).body.error.message, /10\.1\.2\.3/);
  });

  test('anything that is not a MechrouteError is an internal 500 with no details', () => {
    const { status, body } = toHttpError(new TypeError('secret internals'));
    assert.equal(status, 500);
    assert.equal(body.error.code, 'MR_ERR_INTERNAL');
    assert.doesNotMatch(body.error.message, /secret internals/);
  });

  test('long messages are bounded', () => {
    const { body } = toHttpError(new MechrouteError('MR_ERR_BAD_REQUEST', 'x'.repeat(900_000)));
    assert.ok(body.error.message.length < 2100);
  });
});

type TierErrorLike = MechrouteError;

test('jsonDepth counts nesting outside strings and stops early past the limit', () => {
  assert.equal(jsonDepth('{"a":[1,[2]]}', 64), 3);
  assert.equal(jsonDepth('{"a":"[[[[[[["}', 64), 1);
  assert.equal(jsonDepth('"\\"[[["', 64), 0);
  assert.equal(jsonDepth('[]', 64), 1);
  assert.equal(jsonDepth(`${'['.repeat(6000)}${']'.repeat(6000)}`, 64), 65);
});

describe('request edge', () => {
  let dir: string;
  let app: FastifyInstance;
  let services: RouterServices;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-edge-'));
    ({ app, services } = await buildTestApp(dir));
  });
  after(async () => {
    await app?.close();
    await services?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a deeply nested body before anything parses or forwards it', async () => {
    const nested = `${'['.repeat(6000)}${']'.repeat(6000)}`;
    const response = await app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { 'content-type': 'application/json' },
      payload: `{"model":"gpt-4-1106-preview","messages":[{"role":"user","content":"hi","x":${nested}}]}`,
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().error.code, 'MR_ERR_BAD_REQUEST');
    assert.match(response.json().error.message, /nested deeper than 64/);
    assert.equal(response.headers['x-should-retry'], 'false');
  });

  it('answers malformed JSON, a wrong media type and a bad feedback id in the OpenAI shape', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/route',
      headers: { 'content-type': 'application/json' },
      payload: '{"prompt":',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'MR_ERR_BAD_REQUEST');
    const media = await app.inject({
      method: 'POST',
      url: '/v1/route',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'prompt=x',
    });
    assert.equal(media.statusCode, 415);
    assert.equal(media.json().error.code, 'MR_ERR_UNSUPPORTED_MEDIA_TYPE');
    const huge = await app.inject({
      method: 'POST',
      url: '/v1/feedback',
      payload: { request_id: 'r'.repeat(900_000), success: true },
    });
    assert.equal(huge.statusCode, 400);
    assert.ok(huge.body.length < 3000, 'the id is not echoed back');
  });
});
