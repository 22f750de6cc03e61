import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { FastifyReply } from 'fastify';
import { InflightRequests, RequestTimeoutError } from '../../../src/server/inflight.js';

/** The parts of a fastify reply that tracking reads: its age and its socket's close event. */
function fakeReply(): FastifyReply {
  const raw = Object.assign(new EventEmitter(), { writableFinished: false });
  return { elapsedTime: 0, raw } as unknown as FastifyReply;
}

function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Keep the event loop busy so the deadline's timer cannot run first.
  }
}

describe('InflightRequests', () => {
  it('reports a request timeout once the deadline has passed, even before its timer has fired', () => {
    const inflight = new InflightRequests(20);
    const tracked = inflight.track(fakeReply());
    try {
      assert.equal(tracked.abortError(), undefined);
      blockFor(30);
      assert.equal(tracked.remainingMs(), 0);
      const error = tracked.abortError();
      assert.ok(error instanceof RequestTimeoutError, String(error));
      assert.equal(error.code, 'MR_ERR_REQUEST_TIMEOUT');
      // The work the request started is cancelled with the same reason.
      assert.equal(tracked.signal.aborted, true);
      assert.equal(tracked.signal.reason, error);
    } finally {
      tracked.release();
    }
    assert.equal(inflight.size, 0);
  });

  it('reports the client going away as that, not as a timeout', () => {
    const inflight = new InflightRequests(60_000);
    const reply = fakeReply();
    const tracked = inflight.track(reply);
    reply.raw.emit('close');
    assert.equal(tracked.abortError()?.code, 'MR_ERR_UPSTREAM_ABORTED');
    tracked.release();
  });
});
