import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  type ActivationRecord,
  ActivationStore,
  type ActivationStoreOptions,
  activationStoreDir,
  promptHash,
} from '../../../src/activations/activation-store.js';
import {
  ActivationNotCachedError,
  ActivationStoreLockedError,
  ActivationStoreMismatchError,
  InvalidFileError,
} from '../../../src/errors.js';

const SHA = 'a'.repeat(64);
const LAYERS = 3;
/** Fewer mean-pooled layers than last-token ones, as with the real encoder. */
const MEAN_LAYERS = 2;
const WIDTH = 4;
/** Header, one exponent byte per vector (padded to 4), the float16 vectors. */
const RECORD_BYTES = 48 + 8 + (LAYERS + MEAN_LAYERS) * WIDTH * 2;

/** Values that are exact in float16, so round trips can be compared with equality. */
function syntheticRecord(seed: number, tokens = 10 + seed): ActivationRecord {
  const vector = (pooling: number, layer: number) =>
    Float32Array.from({ length: WIDTH }, (_, i) => (seed * 64 + pooling * 16 + layer * 4 + i) / 8 - 20);
  return {
    tokens,
    truncated: seed % 2 === 1,
    batched: seed % 3 === 1,
    last: Array.from({ length: LAYERS }, (_, l) => vector(0, l)),
    mean: Array.from({ length: MEAN_LAYERS }, (_, l) => vector(1, l)),
  };
}

describe('ActivationStore', () => {
  let dir: string;
  const options = (extra: Partial<ActivationStoreOptions> = {}): ActivationStoreOptions => ({
    encoder: { name: 'test-encoder', sha256: SHA },
    layers: LAYERS,
    meanLayers: MEAN_LAYERS,
    width: WIDTH,
    maxPromptTokens: 2048,
    dir,
    ...extra,
  });
  const records = () => join(dir, 'records.bin');

  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'mechroute-store-')), 'store');
  });
  afterEach(async () => {
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  it('lives under the mechroute home by default, one folder per encoder', () => {
    assert.equal(activationStoreDir(SHA, { MECHROUTE_HOME: '/x/home' }), `/x/home/activations/${SHA}`);
  });

  it('hashes the prompt text as the encoder sees it', () => {
    assert.equal(promptHash('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(promptHash('a\uD800b'), promptHash('a\uFFFDb')); // lone surrogates are replaced, as in encode
  });

  it('round-trips records, with meta.json describing them', async () => {
    const hashes = [0, 1, 2, 3, 4].map((i) => promptHash(`prompt ${i}`));
    {
      await using store = await ActivationStore.open(options({ flushEvery: 2 }));
      for (const [i, hash] of hashes.entries())
        assert.equal(await store.append(hash, syntheticRecord(i)), true);
      assert.equal(store.size, 5);
      assert.equal(store.flushedSize, 4);
      // The unflushed record is readable before it reaches the disk.
      assert.deepEqual(store.get(hashes[4]!), syntheticRecord(4));
    }
    const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8'));
    assert.deepEqual(
      { ...meta, created_at: undefined },
      {
        version: 1,
        encoder: { name: 'test-encoder', sha256: SHA },
        layers: LAYERS,
        mean_layers: MEAN_LAYERS,
        width: WIDTH,
        dtype: 'float16',
        poolings: ['last', 'mean'],
        max_prompt_tokens: 2048,
        created_at: undefined,
      },
    );
    assert.equal((await stat(records())).size, 5 * RECORD_BYTES);

    await using store = await ActivationStore.open(
      options({ readOnly: true, layers: undefined, width: undefined }),
    );
    assert.equal(store.size, 5);
    assert.equal(store.recordBytes, RECORD_BYTES);
    assert.deepEqual(store.hashes(), hashes);
    for (const [i, hash] of hashes.entries()) {
      assert.ok(store.has(hash));
      assert.deepEqual(store.get(hash), syntheticRecord(i));
    }
    assert.equal(store.get(promptHash('never stored')), undefined);

    const picked = [hashes[3]!, hashes[0]!];
    const matrix = store.matrix(picked, 1, 'mean');
    assert.deepEqual([...matrix], [...syntheticRecord(3).mean[1]!, ...syntheticRecord(0).mean[1]!]);
    assert.deepEqual(
      [...store.matrix([hashes[2]!], LAYERS - 1, 'last')],
      [...syntheticRecord(2).last[LAYERS - 1]!],
    );
    assert.deepEqual([...store.matrix([hashes[1]!], 0, 'last')], [...syntheticRecord(1).last[0]!]);
    assert.throws(() => store.matrix([promptHash('missing')], 0, 'last'), ActivationNotCachedError);
    assert.throws(() => store.matrix(picked, LAYERS, 'last'), RangeError);
    assert.throws(() => store.matrix(picked, MEAN_LAYERS, 'mean'), RangeError);
  });

  it('stores float32 input within float16 precision', async () => {
    await using store = await ActivationStore.open(options());
    const record = syntheticRecord(0);
    record.last[1] = Float32Array.from([Math.PI, -1e-3, 123.456, 7e-6]);
    await store.append(promptHash('x'), record);
    const back = store.get(promptHash('x'))!.last[1]!;
    record.last[1]!.forEach((v, i) => {
      assert.ok(Math.abs(back[i]! - v) <= Math.max(Math.abs(v) * 2 ** -11, 2 ** -25));
    });
  });

  it('keeps vectors beyond the float16 range by scaling them by a power of two', async () => {
    await using store = await ActivationStore.open(options());
    const record = syntheticRecord(0);
    record.last[2] = Float32Array.from([70000, -3.5e5, 1.5, -0.25]);
    record.mean[0] = Float32Array.from([1e9, 1, 2, 3]);
    await store.append(promptHash('huge'), record);
    await store.flush();
    const check = (back: Float32Array, want: Float32Array) =>
      want.forEach((v, i) => {
        assert.ok(Number.isFinite(back[i]!));
        assert.ok(
          Math.abs(back[i]! - v) <= Math.abs(v) * 2 ** -11 + 1e-3 * Math.abs(want[0]!) * 2 ** -11,
          `${v}`,
        );
      });
    const back = store.get(promptHash('huge'))!;
    check(back.last[2]!, record.last[2]!);
    check(back.mean[0]!, record.mean[0]!);
    assert.deepEqual(back.last[1], record.last[1]); // unscaled vectors are untouched
    check(store.matrix([promptHash('huge')], 2, 'last'), record.last[2]!);
    check(store.matrix([promptHash('huge')], 0, 'mean'), record.mean[0]!);
  });

  it('cuts a torn trailing record away on open and keeps appending after the intact ones', async () => {
    const hashes = [0, 1, 2].map((i) => promptHash(`p${i}`));
    {
      await using store = await ActivationStore.open(options({ flushEvery: 1 }));
      for (const [i, hash] of hashes.entries()) await store.append(hash, syntheticRecord(i));
    }
    await truncate(records(), 3 * RECORD_BYTES - 10); // killed while the third record was being written
    {
      await using store = await ActivationStore.open(options());
      assert.equal(store.recovery.droppedBytes, RECORD_BYTES - 10);
      assert.equal(store.size, 2);
      assert.equal((await stat(records())).size, 2 * RECORD_BYTES);
      assert.ok(!store.has(hashes[2]!));
      assert.deepEqual(store.get(hashes[1]!), syntheticRecord(1));
      assert.equal(await store.append(hashes[2]!, syntheticRecord(2)), true);
      assert.equal(await store.append(promptHash('p3'), syntheticRecord(3)), true);
    }
    await using store = await ActivationStore.open(options({ readOnly: true }));
    assert.equal(store.size, 4);
    assert.equal(store.recovery.droppedBytes, 0);
    assert.deepEqual(store.get(hashes[2]!), syntheticRecord(2));
    assert.deepEqual(store.get(promptHash('p3')), syntheticRecord(3));
  });

  it('cuts whole-sized records that were never written (zeros) from the tail', async () => {
    {
      await using store = await ActivationStore.open(options());
      await store.append(promptHash('p0'), syntheticRecord(0));
    }
    await appendFile(records(), Buffer.alloc(2 * RECORD_BYTES));
    await using store = await ActivationStore.open(options());
    assert.equal(store.size, 1);
    assert.equal(store.recovery.droppedBytes, 2 * RECORD_BYTES);
    assert.equal((await stat(records())).size, RECORD_BYTES);
  });

  it('refuses a damaged record that has intact records after it', async () => {
    {
      await using store = await ActivationStore.open(options());
      for (let i = 0; i < 3; i++) await store.append(promptHash(`p${i}`), syntheticRecord(i));
    }
    const bytes = await readFile(records());
    bytes[RECORD_BYTES + 60] = bytes[RECORD_BYTES + 60]! ^ 0xff;
    await writeFile(records(), bytes);
    await assert.rejects(ActivationStore.open(options()), InvalidFileError);
    assert.ok(!existsSync(join(dir, 'writer.lock')), 'a failed open releases its lock');
  });

  it('never writes a hash twice', async () => {
    const hash = promptHash('same prompt');
    {
      await using store = await ActivationStore.open(options());
      assert.equal(await store.append(hash, syntheticRecord(0)), true);
      assert.equal(await store.append(hash, syntheticRecord(1)), false);
      assert.equal(store.size, 1);
    }
    {
      await using store = await ActivationStore.open(options());
      assert.equal(await store.append(hash, syntheticRecord(2)), false);
    }
    assert.equal((await stat(records())).size, RECORD_BYTES);
    await using store = await ActivationStore.open(options({ readOnly: true }));
    assert.deepEqual(store.get(hash), syntheticRecord(0));
  });

  it('refuses a store written for another encoder, shape or prompt limit', async () => {
    {
      await using store = await ActivationStore.open(options());
      await store.append(promptHash('p'), syntheticRecord(0));
    }
    const mismatches: Partial<ActivationStoreOptions>[] = [
      { encoder: { name: 'test-encoder', sha256: 'b'.repeat(64) } },
      { width: WIDTH + 1 },
      { layers: LAYERS - 1 },
      { meanLayers: MEAN_LAYERS - 1 },
      { maxPromptTokens: 512 },
    ];
    for (const extra of mismatches) {
      await assert.rejects(
        ActivationStore.open(options(extra)),
        ActivationStoreMismatchError,
        JSON.stringify(extra),
      );
    }
    // A reader does not depend on the writer's prompt limit.
    await (await ActivationStore.open(options({ readOnly: true, maxPromptTokens: 512 }))).close();
    // Renaming the model does not change what the weights compute.
    await (await ActivationStore.open(options({ encoder: { name: 'renamed', sha256: SHA } }))).close();
  });

  it('refuses a malformed meta.json', async () => {
    await (await ActivationStore.open(options())).close();
    await writeFile(join(dir, 'meta.json'), JSON.stringify({ version: 1, layers: 'three' }));
    await assert.rejects(ActivationStore.open(options()), InvalidFileError);
    await writeFile(join(dir, 'meta.json'), '{not json');
    await assert.rejects(ActivationStore.open(options()), InvalidFileError);
  });

  it('allows one writer at a time, and takes over the lock of a dead one', async () => {
    const writer = await ActivationStore.open(options({ flushEvery: 1 }));
    await assert.rejects(ActivationStore.open(options()), ActivationStoreLockedError);
    await writer.append(promptHash('p'), syntheticRecord(0));
    // Readers need no lock and see what was flushed.
    const reader = await ActivationStore.open(options({ readOnly: true }));
    assert.equal(reader.size, 1);
    await reader.close();
    await writer.close();

    // A pid that has exited (a killed writer never removes its lock).
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    await writeFile(join(dir, 'writer.lock'), `${child.stdout.toString()}\n`);
    await (await ActivationStore.open(options())).close();
    assert.ok(!existsSync(join(dir, 'writer.lock')));
  });

  it('checks the shape of what is appended', async () => {
    await using store = await ActivationStore.open(options());
    const short = syntheticRecord(0);
    short.mean.pop();
    await assert.rejects(store.append(promptHash('a'), short), TypeError);
    const narrow = syntheticRecord(0);
    narrow.last[0] = new Float32Array(WIDTH - 1);
    await assert.rejects(store.append(promptHash('b'), narrow), TypeError);
    await assert.rejects(store.append('not-a-hash', syntheticRecord(0)), TypeError);
    assert.equal(store.size, 0);
  });
});
