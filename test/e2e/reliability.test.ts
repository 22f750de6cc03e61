import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ALL_PARTS, type ReliabilityResult, runReliability, sizeDefaults } from '../../bench/reliability.js';

/**
 * The reliability harness at its small size (issue 16, "prove it, repeatably"): the real server as a
 * child process with the real encoder, loopback upstreams, and the goals asserted — no 5xx from client
 * input, no auth bypass, no hang, no crash, nothing cut silently. `npm run bench -- reliability` is the
 * full size; RELIABILITY.md has its figures.
 */
let result: ReliabilityResult;
const lines: string[] = [];
const explain = (what: unknown) =>
  `${String(JSON.stringify(what, null, 1)).slice(0, 4000)}\n${lines.slice(-20).join('\n')}`;

describe('reliability, small size', () => {
  before(
    async () => {
      result = await runReliability(
        { size: 'small', parts: ALL_PARTS, ...sizeDefaults('small'), seed: 1, upstream: 'scripted' },
        (line) => void lines.push(line),
      );
    },
    { timeout: 300_000 },
  );

  it('does not crash, log an internal error or leak a secret', () => {
    assert.equal(result.crashes, 0, explain(result.error_log_lines.slice(0, 5)));
    assert.equal(result.internal_errors, 0, explain(result.error_log_lines.slice(0, 5)));
    assert.equal(result.secrets_in_logs, 0);
  });

  it('answers every hostile request, none with a 5xx from its input, a bypass or fastify’s error shape', () => {
    const f = result.fuzz!;
    assert.ok(f.sent >= 1000);
    assert.equal(f.status_5xx - f.capacity_5xx, 0, explain(f.examples));
    assert.equal(f.auth_bypasses, 0, explain(f.examples['auth bypass']));
    assert.equal(f.hangs, 0, explain(f.examples.hang));
    assert.equal(f.closed_without_answer + f.cut, 0, explain(f.examples));
    assert.equal(f.bad_shape, 0, explain(f.examples));
    assert.equal(f.leaked_secrets, 0);
  });

  it('under overload answers every request, or sheds it with a retry-after, within its deadline', () => {
    for (const load of [result.load!.route!, result.load!.chat!]) {
      assert.ok(load.sent >= load.clients, load.kind);
      assert.equal(load.hangs, 0, explain(load));
      assert.equal(load.cut, 0, explain(load));
      assert.equal(load.errors, 0, explain(load.by_status));
      assert.equal(load.past_deadline, 0, explain(load));
      assert.equal(load.health.failures, 0, explain(load.health));
    }
  });

  it('fails over and never hangs past the deadline when upstreams fail', () => {
    const f = result.faults!;
    assert.equal(f.hangs, 0, explain(f.examples));
    assert.equal(f.past_deadline, 0, explain(f.examples));
    assert.equal(f.leaked_upstream_text, 0, explain(f.examples));
    for (const [fault, cell] of Object.entries(f.cells['one deployment bad'])) {
      assert.equal(cell.unexpected, 0, `${fault}: ${explain(f.examples)}`);
    }
    for (const [fault, cell] of Object.entries(f.cells['whole tier bad'])) {
      assert.equal(cell.unexpected, 0, `${fault}: ${explain(f.examples)}`);
    }
  });

  it('answers a failing named tier with the status its fault deserves', () => {
    assert.equal(result.faults!.unexpected, 0, explain(result.faults!.examples));
  });

  it('drains on SIGTERM: requests finish or get MR_ERR_SHUTTING_DOWN, none cut silently, and it exits', () => {
    const s = result.sigterm!;
    assert.equal(s.cut_silently, 0, explain(s));
    assert.equal(s.short_not_finished, 0, explain(s));
    assert.equal((s.by_verdict.finished ?? 0) + (s.by_verdict.shutdown ?? 0), s.in_flight, explain(s));
    assert.equal(s.exit_code, 0, explain(s));
    assert.ok(s.exit_ms < s.drain_ms + 10_000, explain(s));
  });

  it('keeps the running policy until a whole policy file is there (SIGHUP)', () => {
    assert.ok(result.sighup!.alive);
    assert.equal(result.sighup!.failed, 0, explain(result.sighup!.steps));
  });

  it('loses no feedback, stats or policy history over a restart', () => {
    assert.ok(result.restart!.ok, explain(result.restart));
  });
});
