import { constants, readSync } from 'node:fs';
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ActivationNotCachedError, FileUnreadableError, InvalidFileError } from '../errors.js';
import { isSha256Hex, Sha256HexSchema as sha256Hex } from '../hashes.js';
import { mechrouteHome } from '../paths.js';
import {
  type ActivationRecord,
  decodeRecord,
  decodeVector,
  encodeRecord,
  exponentOffset,
  layersOf,
  POOLINGS,
  recordBytes,
  recordHash,
  recordIsValid,
  type StoredPooling,
  type StoreMeta,
  vectorOffset,
} from './store-format.js';
import { StoreLock } from './store-lock.js';
import { loadOrCreateMeta } from './store-meta.js';

export { type ActivationRecord, promptHash, type StoredPooling } from './store-format.js';

export const ActivationStoreOptionsSchema = z.object({
  encoder: z.object({ name: z.string().min(1), sha256: sha256Hex }),
  /**
   * Shape and prompt limit: needed to create a store, checked against an existing one. `layers`:
   * last-token vectors (blocks + final norm); `meanLayers`: mean-pooled vectors (layers 0..meanLayers-1).
   */
  layers: z.number().int().positive().optional(),
  meanLayers: z.number().int().nonnegative().optional(),
  width: z.number().int().positive().optional(),
  maxPromptTokens: z.number().int().positive().optional(),
  /** Default: `<mechroute home>/activations/<encoder sha256>/`. */
  dir: z.string().min(1).optional(),
  /** Readers take no lock, never create or repair anything, and see the records present when opened. */
  readOnly: z.boolean().default(false),
  /** Records buffered before one write + fsync; a kill loses at most these. */
  flushEvery: z.number().int().min(1).default(32),
});
export type ActivationStoreOptions = z.input<typeof ActivationStoreOptionsSchema>;

export function activationStoreDir(encoderSha256: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(mechrouteHome(env), 'activations', encoderSha256);
}

/** What opening found in records.bin. */
export interface StoreRecovery {
  /** Bytes of a torn or never-completed tail that were cut away (or, read-only, ignored). */
  droppedBytes: number;
}

/**
 * Encoder activations of prompts, keyed by prompt hash, for one encoder (see store-format.ts for the
 * bytes). Appends are buffered and made durable in batches: a killed writer loses at most its unflushed
 * batch, and the next open cuts away whatever part of it reached the disk.
 */
export class ActivationStore implements AsyncDisposable {
  readonly dir: string;
  readonly meta: StoreMeta;
  readonly recordBytes: number;
  readonly recovery: StoreRecovery;
  readonly readOnly: boolean;
  readonly #flushEvery: number;
  readonly #index: Map<string, number>;
  #handle: FileHandle | undefined;
  /** Records on disk and fsync'ed; the unflushed ones follow them, by position. */
  #flushed: number;
  #records: number;
  readonly #unflushed = new Map<number, Buffer>();
  #lock: StoreLock | undefined;
  #closed = false;
  #flushing: Promise<void> = Promise.resolve();

  private constructor(init: {
    dir: string;
    meta: StoreMeta;
    handle: FileHandle | undefined;
    index: Map<string, number>;
    records: number;
    recovery: StoreRecovery;
    lock: StoreLock | undefined;
    readOnly: boolean;
    flushEvery: number;
  }) {
    this.dir = init.dir;
    this.meta = init.meta;
    this.recordBytes = recordBytes(init.meta);
    this.recovery = init.recovery;
    this.readOnly = init.readOnly;
    this.#flushEvery = init.flushEvery;
    this.#index = init.index;
    this.#flushed = init.records;
    this.#records = init.records;
    this.#handle = init.handle;
    this.#lock = init.lock;
  }

  static async open(options: ActivationStoreOptions): Promise<ActivationStore> {
    const parsed = ActivationStoreOptionsSchema.parse(options);
    const dir = parsed.dir ?? activationStoreDir(parsed.encoder.sha256);
    if (!parsed.readOnly) await mkdir(dir, { recursive: true });
    const lock = parsed.readOnly ? undefined : await StoreLock.acquire(join(dir, 'writer.lock'));
    let handle: FileHandle | undefined;
    try {
      const meta = await loadOrCreateMeta(dir, parsed);
      const file = join(dir, 'records.bin');
      if (parsed.readOnly) {
        handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return undefined;
          throw new FileUnreadableError(file, error);
        });
      } else {
        // Positional writes, so not O_APPEND (which would ignore the position on Linux).
        handle = await open(file, constants.O_RDWR | constants.O_CREAT, 0o644);
      }
      const { index, records, size } = handle
        ? await scanRecords(handle, file, meta)
        : { index: new Map<string, number>(), records: 0, size: 0 };
      const validBytes = records * recordBytes(meta);
      if (!parsed.readOnly && size > validBytes) {
        await handle!.truncate(validBytes);
        await handle!.datasync();
      }
      return new ActivationStore({
        dir,
        meta,
        handle,
        index,
        records,
        recovery: { droppedBytes: size - validBytes },
        lock,
        readOnly: parsed.readOnly,
        flushEvery: parsed.flushEvery,
      });
    } catch (error) {
      await handle?.close();
      await lock?.release();
      throw error;
    }
  }

  /** Records held, unflushed ones included. */
  get size(): number {
    return this.#index.size;
  }

  /** Records made durable so far. */
  get flushedSize(): number {
    return this.#flushed;
  }

  has(hash: string): boolean {
    return this.#index.has(hash);
  }

  /** Every stored hash, in the order the records were written. */
  hashes(): string[] {
    return [...this.#index.keys()];
  }

  get(hash: string): ActivationRecord | undefined {
    const position = this.#index.get(hash);
    if (position === undefined) return undefined;
    return decodeRecord(this.meta, this.#read(position, 0, this.recordBytes));
  }

  /**
   * One layer's vectors under one pooling for many prompts, as a row-major rows × width matrix (row i is
   * `hashes[i]`): the shape probe training consumes, read without decoding the other layers.
   */
  matrix(hashes: readonly string[], layer: number, pooling: StoredPooling): Float32Array {
    this.#assertOpen();
    if (!POOLINGS.includes(pooling)) throw new RangeError(`pooling must be one of ${POOLINGS.join(', ')}`);
    const count = layersOf(this.meta, pooling);
    if (!Number.isInteger(layer) || layer < 0 || layer >= count) {
      throw new RangeError(
        `this store has ${pooling}-pooled vectors for layers 0..${count - 1}, not ${layer}`,
      );
    }
    const { width } = this.meta;
    const out = new Float32Array(hashes.length * width);
    const offset = vectorOffset(this.meta, layer, pooling);
    const exponentAt = exponentOffset(this.meta, layer, pooling);
    hashes.forEach((hash, row) => {
      const position = this.#index.get(hash);
      if (position === undefined) throw new ActivationNotCachedError(this.dir, hash);
      const exponent = this.#read(position, exponentAt, 1).readInt8(0);
      const bytes = this.#read(position, offset, width * 2);
      decodeVector(this.meta, { exponent, bytes }, layer, pooling, out, row * width);
    });
    return out;
  }

  /**
   * Adds a prompt's activations (one vector per layer 0..n for each pooling). Returns false, writing
   * nothing, when the hash is already stored.
   */
  async append(hash: string, record: ActivationRecord): Promise<boolean> {
    this.#assertOpen();
    if (this.readOnly) throw new Error(`the activation store ${this.dir} is open read-only`);
    if (!isSha256Hex(hash)) throw new TypeError(`not a lowercase hex sha256: ${hash}`);
    if (this.#index.has(hash)) return false;
    this.#checkShape(record);
    const position = this.#records++;
    this.#index.set(hash, position);
    this.#unflushed.set(position, encodeRecord(this.meta, hash, record));
    if (this.#records - this.#flushed >= this.#flushEvery) await this.flush();
    return true;
  }

  /** Writes the pending records in one write and fsyncs them. */
  flush(): Promise<void> {
    // Chained, so a flush called while one runs waits for it instead of writing at the same offset.
    this.#flushing = this.#flushing.then(() => this.#flushPending());
    return this.#flushing;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (!this.readOnly) await this.flush();
    } finally {
      this.#closed = true;
      await this.#handle?.close();
      this.#handle = undefined;
      await this.#lock?.release();
      this.#lock = undefined;
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #flushPending(): Promise<void> {
    const from = this.#flushed;
    const to = this.#records;
    if (to === from || !this.#handle) return;
    const positions = Array.from({ length: to - from }, (_, i) => from + i);
    const bytes = Buffer.concat(positions.map((p) => this.#unflushed.get(p)!));
    let written = 0;
    // On failure the records stay unflushed: a retry rewrites them at the same offset, and a reopen
    // cuts away whatever part of them reached the disk.
    while (written < bytes.length) {
      const position = from * this.recordBytes + written;
      const result = await this.#handle.write(bytes, written, bytes.length - written, position);
      written += result.bytesWritten;
    }
    await this.#handle.datasync();
    this.#flushed = to;
    for (const p of positions) this.#unflushed.delete(p);
  }

  #read(position: number, offset: number, length: number): Buffer {
    this.#assertOpen();
    const unflushed = this.#unflushed.get(position);
    if (unflushed) return unflushed.subarray(offset, offset + length);
    const buffer = Buffer.alloc(length);
    // Synchronous on purpose: a pread of a few KB, usually from the page cache, called in tight training
    // loops where a promise per row would cost more than the read.
    readSync(this.#handle!.fd, buffer, 0, length, position * this.recordBytes + offset);
    return buffer;
  }

  #checkShape(record: ActivationRecord): void {
    const { width } = this.meta;
    for (const pooling of POOLINGS) {
      const layers = layersOf(this.meta, pooling);
      const vectors = record[pooling];
      if (vectors?.length !== layers) {
        throw new TypeError(`${pooling}: expected ${layers} layer vectors, got ${vectors?.length ?? 'none'}`);
      }
      const bad = vectors.findIndex((v) => v.length !== width);
      if (bad >= 0)
        throw new TypeError(`${pooling}[${bad}]: expected width ${width}, got ${vectors[bad]!.length}`);
    }
    if (!Number.isInteger(record.tokens) || record.tokens < 0 || record.tokens > 0xffffffff) {
      throw new TypeError(`tokens must be a uint32, got ${record.tokens}`);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error(`the activation store ${this.dir} is closed`);
  }
}

/**
 * Builds the hash → record index. Records that fail their checksum are accepted only as a tail (what a
 * killed or crashed writer leaves); a bad record with good ones after it is damage, not a torn write, and
 * is refused rather than silently skipped.
 */
async function scanRecords(
  handle: FileHandle,
  file: string,
  meta: StoreMeta,
): Promise<{ index: Map<string, number>; records: number; size: number }> {
  const size = (await handle.stat()).size;
  const bytesPerRecord = recordBytes(meta);
  const whole = Math.floor(size / bytesPerRecord);
  const perChunk = Math.max(1, Math.floor((4 << 20) / bytesPerRecord));
  const index = new Map<string, number>();
  let firstBad: number | undefined;
  const chunk = Buffer.alloc(perChunk * bytesPerRecord);
  for (let start = 0; start < whole; start += perChunk) {
    const count = Math.min(perChunk, whole - start);
    const { bytesRead } = await handle.read(chunk, 0, count * bytesPerRecord, start * bytesPerRecord);
    if (bytesRead !== count * bytesPerRecord) throw new FileUnreadableError(file, new Error('short read'));
    for (let i = 0; i < count; i++) {
      const record = chunk.subarray(i * bytesPerRecord, (i + 1) * bytesPerRecord);
      const position = start + i;
      if (!recordIsValid(record)) {
        firstBad ??= position;
        continue;
      }
      if (firstBad !== undefined) {
        throw new InvalidFileError(
          'activation store',
          file,
          `record ${firstBad} (byte ${firstBad * bytesPerRecord}) fails its checksum but later records are intact; ` +
            'the file is damaged (delete the store directory to rebuild it)',
        );
      }
      // A repeat cannot come from this writer (it checks before appending); keep the first if one exists.
      const hash = recordHash(record);
      if (!index.has(hash)) index.set(hash, position);
    }
  }
  return { index, records: firstBad ?? whole, size };
}
