import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EncoderHost } from '../../src/encoder/encoder-host.js';
import { EncoderDisposedError, EncoderOverloadedError, InvalidEncodeRequestError } from '../../src/errors.js';
import { createEncoder } from '../support/default-encoder.js';

/**
 * Admission control and cancellation with the real encoder (issue 16, #3): a routing request whose
 * client left or whose deadline passed stops costing encoder time, and work the encoder cannot clear in
 * time is refused at once instead of queueing.
 */
const LONG = Array.from({ length: 60 }, (_, i) => `Sentence ${i} talks about the weather and the sea.`).join(
  ' ',
);
const SHORT = 'What is the capital of France?';
const layers = { layers: [6], pooling: 'last' as const };

describe('encoder admission and cancellation', () => {
  let encoder: EncoderHost;
  before(async () => {
    encoder = await createEncoder({ maxQueueWaitMs: 60_000 });
  });
  after(async () => {
    await encoder?.dispose();
  });

  it('drops a queued prompt whose caller gave up, and still answers the one ahead of it', async () => {
    const controller = new AbortController();
    const ahead = encoder.encode([LONG], layers);
    const behind = encoder.encode([SHORT], layers, { signal: controller.signal });
    await new Promise((resolve) => setImmediate(resolve)); // the drain loop starts on a microtask
    assert.equal(encoder.pending, 1, 'the long prompt runs, the short one waits');
    controller.abort(new Error('client went away'));
    await assert.rejects(behind, /client went away/);
    assert.equal(encoder.pending, 0, 'the abandoned prompt left the queue');
    const [result] = await ahead;
    assert.ok(result!.tokens > 500);
  });

  it('stops a running decode nobody waits for, and the next decode is unaffected', async () => {
    const [before] = await encoder.encode([SHORT], layers);
    const controller = new AbortController();
    const cancelledBefore = encoder.cancelledDecodes;
    const running = encoder.encode([LONG], layers, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('deadline')), 20);
    await assert.rejects(running, /deadline/);
    // The native capture ends by cancellation rather than running to its end.
    while (encoder.pending > 0) await new Promise((r) => setTimeout(r, 10));
    const [after] = await encoder.encode([SHORT], layers);
    assert.equal(encoder.cancelledDecodes, cancelledBefore + 1);
    assert.deepEqual(after!.last![0], before!.last![0], 'activations after a cancel are bit-identical');
  });

  it('refuses at once what the measured rate says cannot be served in time', async () => {
    await encoder.encode([SHORT], layers); // a measured rate exists from here on
    const queued = encoder.encode([LONG], layers);
    assert.ok((encoder.estimatedWaitMs() ?? 0) > 0);
    await assert.rejects(encoder.encode([LONG], layers, { deadlineMs: 1 }), (e: unknown) => {
      assert.ok(e instanceof EncoderOverloadedError);
      assert.ok((e.retryAfterMs ?? 0) >= 1000);
      return true;
    });
    await queued;
  });

  it('takes any call when idle, so tiny prompts cannot talk it into refusing everything', async () => {
    // Empty turns have a decode's fixed cost over one or two tokens; as a rate per token they once made
    // every later prompt look minutes long, and nothing was admitted again (the reliability harness).
    for (let i = 0; i < 4; i += 1) await encoder.encode(['', 'a'], layers);
    const [long] = await encoder.encode([LONG], layers, { deadlineMs: 1 });
    assert.ok(long!.tokens > 500, 'admitted although its own estimate exceeds the deadline: nothing waits');
    const ms = encoder.estimatedWaitMs();
    assert.equal(ms, 0, 'idle: no work queued');
  });

  it('refuses when the queued work exceeds max_queue_wait_ms', async () => {
    const strict = await createEncoder({ maxQueueWaitMs: 1 });
    try {
      await strict.encode([SHORT], layers);
      const first = strict.encode([LONG], layers);
      await assert.rejects(strict.encode([SHORT], layers), EncoderOverloadedError);
      // Refused before its prompt is even read: ill-formed UTF-8 gets the overload answer, not the 400,
      // so turning a long prompt away costs no tokenization on the event loop.
      await assert.rejects(strict.encode([new Uint8Array([0xff, 0xfe])], layers), EncoderOverloadedError);
      await first;
      await assert.rejects(strict.encode([new Uint8Array([0xff, 0xfe])], layers), InvalidEncodeRequestError);
      await strict.encode([SHORT], layers); // accepted again once the queue has cleared
    } finally {
      await strict.dispose();
    }
  });

  it('stops the running decode when disposed, instead of finishing it for nobody', async () => {
    const closing = await createEncoder({});
    const running = closing.encode([LONG], layers);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await closing.dispose();
    await assert.rejects(running, EncoderDisposedError);
  });

  it('cuts an over-long prompt to its head and tail with overflow head-tail', async () => {
    const capped = await createEncoder({ maxPromptTokens: 48, overflow: 'head-tail', headTokens: 16 });
    const left = await createEncoder({ maxPromptTokens: 48, overflow: 'truncate-left' });
    try {
      const [headTail] = await capped.encode([LONG], layers);
      const [tailOnly] = await left.encode([LONG], layers);
      assert.equal(headTail!.tokens, 48);
      assert.equal(headTail!.truncated, true);
      // Same last 32 tokens, different first 16: the last token's state differs.
      assert.notDeepEqual(headTail!.last![0], tailOnly!.last![0]);
      const [short] = await capped.encode([SHORT], layers);
      assert.equal(short!.truncated, false);
    } finally {
      await capped.dispose();
      await left.dispose();
    }
  });
});
