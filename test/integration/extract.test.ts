import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ActivationStore, promptHash } from '../../src/activations/activation-store.js';
import { hostLimitsFor } from '../../src/activations/encode-steps.js';
import { type ExtractSummary, extractActivations } from '../../src/activations/extract-activations.js';
import type { EncoderHost } from '../../src/encoder/encoder-host.js';
import { DEFAULT_ENCODER_MODEL } from '../../src/models/manifest.js';
import { packageRoot } from '../../src/paths.js';
import { createEncoder, relativeError, sharedEncoder } from '../support/default-encoder.js';

const run = promisify(execFile);
const CLI = join(packageRoot, 'bin', 'mechroute.js');

/**
 * Short prompts (~16 tokens: 2 shared cores encode them fast), extracted one per decode (`batch: 1`)
 * wherever stored values are compared with a fresh encode: at present the encoder is not batch-invariant
 * once a decode holds 64 tokens or more (see the todo test below), which is the encoder's matter, not the
 * store's.
 */
const question = (i: number) => `Question ${i}: what is ${i} plus ${3 * i}?\nAnswer:`;
const CHAT = 'Name a prime number between 10 and 20.';
const traceLine = (i: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    id: `q${i}`,
    dataset: i % 2 ? 'odd' : 'even',
    prompt: question(i),
    outcomes: { a: true },
    ...extra,
  });

/** Stored float16 vectors against a fresh float32 encode of the same prompt. */
async function assertMatchesFreshEncode(encoder: EncoderHost, store: ActivationStore, text: string) {
  const stored = store.get(promptHash(text));
  assert.ok(stored, `"${text}" is stored`);
  const blocks = encoder.info.layers;
  const all = Array.from({ length: blocks + 1 }, (_, i) => i);
  const [[last], [mean]] = await Promise.all([
    encoder.encode([text], { layers: all, pooling: 'last' }),
    encoder.encode([text], { layers: all.slice(0, blocks - 1), pooling: 'mean' }),
  ]);
  assert.equal(stored.tokens, last!.tokens);
  assert.equal(stored.last.length, blocks + 1);
  assert.equal(stored.mean.length, blocks - 1);
  for (const [l, v] of stored.last.entries()) {
    assert.ok(relativeError(last!.last![l]!, v) < 1e-3, `last, layer ${l}`);
  }
  for (const [l, v] of stored.mean.entries()) {
    assert.ok(relativeError(mean!.mean![l]!, v) < 1e-3, `mean, layer ${l}`);
  }
}

describe('mechroute extract with the real encoder', () => {
  let encoder: EncoderHost;
  let dir: string;
  before(async () => {
    encoder = await sharedEncoder();
    dir = await mkdtemp(join(tmpdir(), 'mechroute-extract-'));
  });
  after(async () => {
    await encoder.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores every prompt once, reports bad lines, and skips cached prompts on a rerun', async () => {
    const traces = join(dir, 'six.jsonl');
    const chat = { id: 'chat', messages: [{ role: 'user', content: CHAT }], outcomes: {} };
    await writeFile(
      traces,
      [
        ...[0, 1, 2, 3, 4].map((i) => traceLine(i)),
        '{"id": "broken", "prompt": 42, "outcomes": {}}',
        JSON.stringify(chat),
        traceLine(0, { id: 'same-prompt-again' }),
        '',
      ].join('\n'),
    );
    const storeDir = join(dir, 'store-six');
    const first = await extractActivations({ tracesFile: traces, storeDir, encoder, batch: 1 });
    assert.equal(first.bad_lines, 1);
    assert.equal(first.errors[0]!.line, 6);
    assert.equal(first.selected, 7);
    assert.equal(first.unique_prompts, 6);
    assert.equal(first.encoded, 6);
    assert.equal(first.skipped_cached, 0);
    assert.equal(first.store_records, 6);
    assert.equal(first.interrupted, false);
    assert.equal(first.batched, 0);
    assert.ok(first.tokens > 6 * 10);

    const second = await extractActivations({ tracesFile: traces, storeDir, encoder });
    assert.equal(second.encoded, 0);
    assert.equal(second.skipped_cached, 6);

    await using store = await ActivationStore.open({
      encoder: first.encoder,
      dir: storeDir,
      readOnly: true,
    });
    assert.equal(store.size, 6);
    assert.equal(store.meta.encoder.name, DEFAULT_ENCODER_MODEL);
    await assertMatchesFreshEncode(encoder, store, question(3));
    await assertMatchesFreshEncode(encoder, store, `user: ${CHAT}`);
    const matrix = store.matrix([promptHash(question(0)), promptHash(question(1))], 6, 'mean');
    assert.equal(matrix.length, 2 * encoder.info.embeddingWidth);
  });

  it('batched extraction stores what one-by-one extraction stores', {
    todo: 'the encoder is not batch-invariant for decodes of 64 tokens or more',
  }, async () => {
    const traces = join(dir, 'batched.jsonl');
    await writeFile(traces, `${[0, 1, 2, 3].map((i) => traceLine(200 + i)).join('\n')}\n`);
    const alone = await extractActivations({
      tracesFile: traces,
      storeDir: join(dir, 'alone'),
      encoder,
      batch: 1,
    });
    await extractActivations({ tracesFile: traces, storeDir: join(dir, 'batched'), encoder, batch: 4 });
    await using one = await ActivationStore.open({
      encoder: alone.encoder,
      dir: join(dir, 'alone'),
      readOnly: true,
    });
    await using four = await ActivationStore.open({
      encoder: alone.encoder,
      dir: join(dir, 'batched'),
      readOnly: true,
    });
    for (const i of [0, 1, 2, 3]) {
      const hash = promptHash(question(200 + i));
      const [a, b] = [one.get(hash)!, four.get(hash)!];
      for (const [l, v] of a.last.entries()) {
        assert.ok(relativeError(v, b.last[l]!) < 1e-3, `prompt ${i}, last, layer ${l}`);
      }
    }
  });

  it('resumes after SIGKILL: no duplicates, no recomputation, everything stored', async () => {
    // Six steps of four: the kill comes after the first, the resumed run does the rest.
    const count = 24;
    const lines = Array.from({ length: count }, (_, i) => traceLine(100 + i));
    const traces = join(dir, 'twenty-four.jsonl');
    await writeFile(traces, `${lines.join('\n')}\n`);
    const storeDir = join(dir, 'store-twenty-four');
    // Batched (fast), flushed once per step: a resumed run then starts on a step boundary and decodes
    // the same groups of prompts as an uninterrupted run would.
    const args = [
      CLI,
      'extract',
      '--traces',
      traces,
      '--store',
      storeDir,
      '--batch',
      '4',
      '--flush-every',
      '4',
    ];

    const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Kill as soon as the first batch is durable: records.bin then holds at least one whole record.
    // Header, 36 exponent bytes, 19 last-token and 17 mean vectors of 640 halves.
    const recordBytes = 48 + 36 + (19 + 17) * 640 * 2;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const size = (await stat(join(storeDir, 'records.bin')).catch(() => undefined))?.size ?? 0;
      if (size >= recordBytes) break;
      assert.ok(child.exitCode === null, `the extraction ended before it was killed:\n${stderr}`);
      assert.ok(Date.now() < deadline, 'no record was flushed within 2 minutes');
      await sleep(20);
    }
    child.kill('SIGKILL');
    await exited;

    const { stdout } = await run(process.execPath, [...args, '--json'], { maxBuffer: 1 << 24 });
    const resumed = JSON.parse(stdout) as ExtractSummary;
    assert.ok(resumed.skipped_cached >= 4, 'the first run’s flushed records are reused');
    assert.ok(resumed.skipped_cached < count, 'the first run was killed before it finished');
    assert.equal(resumed.encoded, count - resumed.skipped_cached);
    assert.equal(resumed.store_records, count);

    await using store = await ActivationStore.open({
      encoder: resumed.encoder,
      dir: storeDir,
      readOnly: true,
    });
    assert.equal(store.size, count);
    assert.equal((await stat(join(storeDir, 'records.bin'))).size, count * store.recordBytes);
    const expected = Array.from({ length: count }, (_, i) => promptHash(question(100 + i)));
    assert.deepEqual(new Set(store.hashes()), new Set(expected));

    // A fresh in-process extraction of the first two steps (from before the kill) and the last one
    // (after it) decodes the same groups, so it must store exactly the same bytes.
    // Sized as the CLI sizes its own host for --batch 4, so a step is one decode here too.
    await using batching = await createEncoder(hostLimitsFor({ prompts: 4, tokens: 512 }, 2048));
    for (const [from, to] of [
      [0, 8],
      [count - 4, count],
    ] as const) {
      const part = join(dir, `part-${from}.jsonl`);
      await writeFile(part, `${lines.slice(from, to).join('\n')}\n`);
      const reference = join(dir, `reference-${from}`);
      await extractActivations({ tracesFile: part, storeDir: reference, encoder: batching, batch: 4 });
      await using fresh = await ActivationStore.open({
        encoder: resumed.encoder,
        dir: reference,
        readOnly: true,
      });
      for (const hash of fresh.hashes()) assert.deepEqual(store.get(hash), fresh.get(hash));
    }
  });
});
