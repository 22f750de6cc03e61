import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Token } from 'node-llama-cpp';
import { endingTokenStop } from '../../../src/tiers/providers/local-llama/chat-prompt.js';
import { createSequencePool } from '../../../src/tiers/providers/local-llama/sequence-pool.js';
import { createStopMatcher } from '../../../src/tiers/providers/local-llama/stop-matcher.js';

/** Feeds `pieces` as a growing text, as the detokenizer does token by token. */
function run(stops: string[], pieces: string[]) {
  const m = createStopMatcher(stops);
  let text = '';
  const emitted: string[] = [];
  let stopped = false;
  for (const piece of pieces) {
    text += piece;
    const r = m.update(text);
    if (r.emit) emitted.push(r.emit);
    if (r.stopped) {
      stopped = true;
      break;
    }
  }
  if (!stopped) emitted.push(m.flush());
  return { out: emitted.join(''), stopped, emitted };
}

describe('stop matcher', () => {
  test('a stop string split across tokens is cut, and none of it leaks', () => {
    const r = run(['<end>'], ['Hello', ' <', 'en', 'd>', ' more']);
    assert.deepEqual(r, { out: 'Hello ', stopped: true, emitted: ['Hello', ' '] });
  });

  test('a held-back prefix that stops matching is released', () => {
    const r = run(['<end>'], ['a <', 'b']);
    assert.equal(r.out, 'a <b');
    assert.equal(r.stopped, false);
  });

  test('the earliest of several stops wins', () => {
    assert.equal(run(['\n\n', 'User:'], ['Yes. User: hi\n\nx']).out, 'Yes. ');
  });

  test('a half-received multi-byte character is held until complete', () => {
    const m = createStopMatcher([]);
    assert.equal(m.update('caf\uFFFD').emit, 'caf');
    assert.equal(m.update('café').emit, 'é');
  });

  test('with no stops everything flows', () => {
    assert.equal(run([], ['a', 'b']).out, 'ab');
  });
});

test('token stops match the tail of the generated ids', () => {
  const t = (...ids: number[]) => ids as Token[];
  assert.equal(endingTokenStop(t(1, 2, 106, 107), [t(106, 107)]), 2);
  assert.equal(endingTokenStop(t(1, 2, 106), [t(106, 107)]), 0);
  assert.equal(endingTokenStop(t(5), [t(4, 5, 6)]), 0);
});

describe('sequence pool', () => {
  test('lends items, queues FIFO beyond them, refuses past the queue bound', async () => {
    const pool = createSequencePool(['a', 'b'], { maxQueue: 1, onQueueFull: () => new Error('full') });
    const first = await pool.acquire();
    const second = await pool.acquire();
    const third = pool.acquire();
    await assert.rejects(pool.acquire(), /full/);
    assert.equal(pool.waiting, 1);
    pool.release(first);
    assert.equal(await third, first);
    pool.release(second);
    assert.equal(pool.idle, 1);
  });

  test('lends the idle item its rank scores highest (first on ties), else the first idle', async () => {
    const pool = createSequencePool(['ab', 'abcd', 'x'], {
      maxQueue: 1,
      onQueueFull: () => new Error('full'),
    });
    assert.equal(await pool.acquire(undefined, (item) => item.length), 'abcd');
    assert.equal(await pool.acquire(undefined, () => 0), 'ab');
    assert.equal(await pool.acquire(), 'x');
  });

  test('an aborted waiter leaves the queue with the abort reason', async () => {
    const pool = createSequencePool(['a'], { maxQueue: 4, onQueueFull: () => new Error('full') });
    await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    controller.abort(new Error('gone'));
    await assert.rejects(waiting, /gone/);
    assert.equal(pool.waiting, 0);
  });

  test('close rejects waiters and later acquires', async () => {
    const pool = createSequencePool(['a'], { maxQueue: 4, onQueueFull: () => new Error('full') });
    await pool.acquire();
    const waiting = pool.acquire();
    pool.close(new Error('disposed'));
    await assert.rejects(waiting, /disposed/);
    await assert.rejects(pool.acquire(), /disposed/);
  });
});
