import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffDelay, createCircuitBreaker } from '../../../src/tiers/circuit-breaker.js';

function breaker() {
  let now = 0;
  const b = createCircuitBreaker({ failures: 3, cooldownMs: 30_000, now: () => now });
  return { b, advance: (ms: number) => (now += ms) };
}

describe('circuit breaker', () => {
  test('closed → open after N consecutive failures → half-open after the cooldown → closed on a good probe', () => {
    const { b, advance } = breaker();
    assert.equal(b.state(), 'closed');
    b.failure();
    b.failure();
    assert.equal(b.state(), 'closed', 'below the threshold');
    b.failure();
    assert.equal(b.state(), 'open');
    assert.equal(b.tryAcquire(), false);
    assert.equal(b.openUntil(), 30_000);
    advance(29_999);
    assert.equal(b.tryAcquire(), false);
    advance(1);
    assert.equal(b.state(), 'half-open');
    assert.equal(b.tryAcquire(), true, 'the probe');
    assert.equal(b.tryAcquire(), false, 'only one probe at a time');
    b.success();
    assert.equal(b.state(), 'closed');
    assert.equal(b.consecutiveFailures, 0);
    assert.equal(b.tryAcquire(), true);
  });

  test('a failed probe reopens for a full cooldown at once', () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    advance(30_000);
    assert.ok(b.tryAcquire());
    b.failure();
    assert.equal(b.state(), 'open');
    advance(29_000);
    assert.equal(b.state(), 'open');
    advance(1_000);
    assert.equal(b.state(), 'half-open');
  });

  test('a success resets the count: failures must be consecutive', () => {
    const { b } = breaker();
    b.failure();
    b.failure();
    b.success();
    b.failure();
    b.failure();
    assert.equal(b.state(), 'closed');
  });

  test('an unused probe slot is given back', () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    advance(30_000);
    assert.ok(b.tryAcquire());
    b.release();
    assert.ok(b.tryAcquire());
  });

  test('openFor parks a deployment for as long as its retry-after asks', () => {
    const { b, advance } = breaker();
    b.openFor(60_000);
    assert.equal(b.state(), 'open');
    advance(60_000);
    assert.equal(b.state(), 'half-open');
  });
});

describe('backoff', () => {
  const o = (random: number) => ({ baseMs: 250, maxMs: 8_000, random: () => random });
  test('doubles per retry, with half the step jittered, capped', () => {
    assert.equal(backoffDelay(1, undefined, o(0)), 125);
    assert.equal(backoffDelay(1, undefined, o(1)), 250);
    assert.equal(backoffDelay(2, undefined, o(0)), 250);
    assert.equal(backoffDelay(3, undefined, o(1)), 1000);
    assert.equal(backoffDelay(20, undefined, o(1)), 8_000);
  });
  test('retry-after wins when longer than the backoff', () => {
    assert.equal(backoffDelay(1, 2_000, o(1)), 2_000);
    assert.equal(backoffDelay(3, 10, o(1)), 1_000);
  });
});
