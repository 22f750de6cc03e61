import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  isRetryableStatus,
  parseRetryAfter,
  redact,
  UpstreamAbortedError,
  UpstreamNetworkError,
  UpstreamProtocolError,
  UpstreamStatusError,
  UpstreamTimeoutError,
  UpstreamTruncatedError,
} from '../../../src/tiers/tier-model.js';

describe('isRetryable', () => {
  const table: Array<[number, boolean]> = [
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [408, true],
    [409, true],
    [422, false],
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [529, true],
  ];
  for (const [status, retryable] of table) {
    test(`HTTP ${status} → ${retryable}`, () => {
      assert.equal(isRetryableStatus(status), retryable);
      assert.equal(new UpstreamStatusError(status, 't/0', '').isRetryable, retryable);
    });
  }

  test('network errors, timeouts, truncations and protocol errors are retryable; a caller abort is not', () => {
    assert.equal(new UpstreamNetworkError('t/0', new TypeError('fetch failed')).isRetryable, true);
    assert.equal(new UpstreamTimeoutError('t/0', 'first byte', 100).isRetryable, true);
    assert.equal(new UpstreamTruncatedError('t/0', 3).isRetryable, true);
    assert.equal(new UpstreamProtocolError('t/0', 'x').isRetryable, true);
    assert.equal(new UpstreamAbortedError('t/0').isRetryable, false);
  });

  test('codes are MR_ERR_UPSTREAM_*', () => {
    assert.equal(new UpstreamStatusError(500, 't/0', '').code, 'MR_ERR_UPSTREAM_STATUS');
    assert.equal(new UpstreamTimeoutError('t/0', 'total', 1).code, 'MR_ERR_UPSTREAM_TIMEOUT');
  });

  test('a network error names the socket error code in its detail, and only the tier to clients', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 10.0.3.7:8000'), { code: 'UND_ERR_SOCKET' });
    const error = new UpstreamNetworkError('t/0', Object.assign(new TypeError('fetch failed'), { cause }));
    assert.match(error.detail ?? '', /UND_ERR_SOCKET connect ECONNREFUSED 10\.0\.3\.7/);
    assert.equal(error.message, 'network error talking to the upstream (tier t)');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  test('seconds, milliseconds, HTTP date, garbage', () => {
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': '2' }), now), 2000);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': '0.5' }), now), 500);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after-ms': '150', 'retry-after': '9' }), now), 150);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:03 GMT' }), now), 3000);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'Tue, 31 Dec 2024 00:00:00 GMT' }), now), 0);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'soon' }), now), undefined);
    assert.equal(parseRetryAfter(new Headers(), now), undefined);
  });
});

test('redact replaces every occurrence of a secret and ignores short or missing ones', () => {
  assert.equal(
    redact('key sk-abc123 and sk-abc123', ['sk-abc123', undefined, 'ab']),
    'key [redacted] and [redacted]',
  );
});
