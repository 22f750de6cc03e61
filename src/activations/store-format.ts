import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { z } from 'zod';
import { Sha256HexSchema as sha256Hex } from '../hashes.js';
import { readFloat16, writeFloat16 } from './float16.js';

/**
 * The on-disk format of an activation store: `meta.json` plus `records.bin`, a sequence of fixed-size
 * records. Fixed size is what makes a record's place computable (offset = index · recordBytes), a torn
 * tail detectable from the file size alone, and the index rebuildable by one scan with no side file.
 *
 * Record layout (little-endian):
 *
 * | bytes | field |
 * |---|---|
 * | 0..32 | sha256 of the prompt text (see `promptHash`) |
 * | 32..36 | tokens encoded (uint32) |
 * | 36..40 | flags (uint32): bit 0 = the prompt was truncated to fit the encoder; bit 1 = decoded in a batch |
 * | 40..44 | crc32 of bytes 0..40 and of the payload |
 * | 44..48 | reserved, 0 |
 * | 48.. | one int8 exponent e per vector (vector order below), padded to a multiple of 4 bytes |
 * | then | float16 vectors: `last` of layers 0..layers-1, then `mean` of 0..mean_layers-1; value = half · 2^e |
 *
 * Fewer mean vectors than last-token ones: llama.cpp computes the last block and the final norm for the
 * last token only, so the encoder has no mean pooling there (see EncoderHost.encode).
 *
 * The checksum catches what the size cannot: a tail of whole-sized but never-written records (zeros
 * after a power loss on some file systems).
 */

export const STORE_FORMAT_VERSION = 1;
export const HEADER_BYTES = 48;
export const POOLINGS = ['last', 'mean'] as const;
export type StoredPooling = (typeof POOLINGS)[number];

const FLAG_TRUNCATED = 1;
const FLAG_BATCHED = 2;

export const StoreMetaSchema = z
  .object({
    version: z.literal(STORE_FORMAT_VERSION),
    encoder: z.object({ name: z.string().min(1), sha256: sha256Hex }),
    /** Last-token vectors per record: the encoder's blocks plus the output after its final norm (index n). */
    layers: z.number().int().positive(),
    /** Mean-pooled vectors per record: layers 0..mean_layers-1 (see above for why not all). */
    mean_layers: z.number().int().nonnegative(),
    width: z.number().int().positive(),
    dtype: z.literal('float16'),
    poolings: z.tuple([z.literal('last'), z.literal('mean')]),
    /**
     * The encoder's prompt limit when the records were written. A prompt longer than this was truncated,
     * so the same text under another limit would give other activations: a writer must match it.
     */
    max_prompt_tokens: z.number().int().positive(),
    created_at: z.string().optional(),
  })
  .refine((meta) => meta.mean_layers <= meta.layers, { message: 'mean_layers must not exceed layers' });
export type StoreMeta = z.infer<typeof StoreMetaSchema>;

type Shape = Pick<StoreMeta, 'layers' | 'mean_layers' | 'width'>;

/** Vectors a record holds for a pooling. */
export function layersOf(meta: Shape, pooling: StoredPooling): number {
  return pooling === 'last' ? meta.layers : meta.mean_layers;
}

/** Position of a vector among a record's vectors: the last-token ones, then the mean-pooled ones. */
function vectorIndex(meta: Shape, layer: number, pooling: StoredPooling): number {
  return (pooling === 'last' ? 0 : meta.layers) + layer;
}

/** One int8 exponent per vector, padded to 4 bytes so the payload stays aligned. */
function exponentBytes(meta: Shape): number {
  return Math.ceil((meta.layers + meta.mean_layers) / 4) * 4;
}

export function recordBytes(meta: Shape): number {
  return HEADER_BYTES + exponentBytes(meta) + (meta.layers + meta.mean_layers) * meta.width * 2;
}

/** Byte offset, inside a record, of one layer's vector under one pooling. */
export function vectorOffset(meta: Shape, layer: number, pooling: StoredPooling): number {
  return HEADER_BYTES + exponentBytes(meta) + vectorIndex(meta, layer, pooling) * meta.width * 2;
}

/** Byte offset, inside a record, of the exponent of one layer's vector under one pooling. */
export function exponentOffset(meta: Shape, layer: number, pooling: StoredPooling): number {
  return HEADER_BYTES + vectorIndex(meta, layer, pooling);
}

const HALF_MAX = 65504;

/**
 * The power of two a vector is divided by before it is stored as half. Gemma's residual stream reaches
 * ~40,000 in a few channels at the deepest blocks (measured on MMLU prompts), close to the half maximum
 * of 65,504; a vector beyond it is scaled down whole rather than turned into Infinity. 0 for almost all.
 */
function scaleExponent(vector: Float32Array): number {
  let max = 0;
  for (const x of vector) {
    const magnitude = Math.abs(x);
    if (magnitude > max && magnitude !== Number.POSITIVE_INFINITY) max = magnitude;
  }
  return max > HALF_MAX ? Math.min(127, Math.ceil(Math.log2(max / HALF_MAX))) : 0;
}

/**
 * The cache key of a prompt: sha256 of its UTF-8 text, after the same lone-surrogate repair the encoder
 * applies (`toWellFormed`), so the key names exactly the text that was encoded.
 */
export function promptHash(text: string): string {
  return createHash('sha256').update(text.toWellFormed(), 'utf8').digest('hex');
}

export interface ActivationRecord {
  tokens: number;
  truncated: boolean;
  /**
   * Decoded together with other prompts. The encoder is not bit-for-bit batch-invariant today (a decode
   * of 64 tokens or more differs from a lone one by ~1e-2 relative in middle layers), so a lone request
   * at serve time matches unbatched records exactly and batched ones only approximately.
   */
  batched?: boolean;
  /** One vector per layer 0..layers-1. */
  last: Float32Array[];
  /** One vector per layer 0..mean_layers-1. */
  mean: Float32Array[];
}

/** One whole record, checksum included. The caller has checked the vectors' count and width. */
export function encodeRecord(meta: StoreMeta, hash: string, record: ActivationRecord): Buffer {
  const buffer = Buffer.alloc(recordBytes(meta));
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  buffer.write(hash, 0, 32, 'hex');
  view.setUint32(32, record.tokens, true);
  view.setUint32(36, (record.truncated ? FLAG_TRUNCATED : 0) | (record.batched ? FLAG_BATCHED : 0), true);
  for (const pooling of POOLINGS) {
    record[pooling].forEach((vector, layer) => {
      const exponent = scaleExponent(vector);
      view.setInt8(exponentOffset(meta, layer, pooling), exponent);
      writeFloat16(
        exponent === 0 ? vector : vector.map((x) => x * 2 ** -exponent),
        view,
        vectorOffset(meta, layer, pooling),
      );
    });
  }
  view.setUint32(40, recordChecksum(buffer), true);
  return buffer;
}

/** crc32 of everything but the checksum field itself. */
function recordChecksum(record: Buffer): number {
  return crc32(record.subarray(44), crc32(record.subarray(0, 40)));
}

/** Whether a whole record's checksum matches its content. */
export function recordIsValid(record: Buffer): boolean {
  return record.readUInt32LE(40) === recordChecksum(record) && record.readUInt32LE(44) === 0;
}

export function recordHash(record: Buffer): string {
  return record.toString('hex', 0, 32);
}

export function decodeRecord(meta: StoreMeta, record: Buffer): ActivationRecord {
  const vectors = (pooling: StoredPooling) =>
    Array.from({ length: layersOf(meta, pooling) }, (_, layer) => {
      const vector = new Float32Array(meta.width);
      decodeVector(meta, record, layer, pooling, vector, 0);
      return vector;
    });
  return {
    tokens: record.readUInt32LE(32),
    truncated: (record.readUInt32LE(36) & FLAG_TRUNCATED) !== 0,
    batched: (record.readUInt32LE(36) & FLAG_BATCHED) !== 0,
    last: vectors('last'),
    mean: vectors('mean'),
  };
}

/**
 * Decodes one vector into `target` at `targetOffset`. `source` holds the record's bytes from
 * `sourceStart` on (a whole record by default; a partial read passes the offset it started at).
 */
export function decodeVector(
  meta: StoreMeta,
  source: { exponent: number; bytes: Buffer } | Buffer,
  layer: number,
  pooling: StoredPooling,
  target: Float32Array,
  targetOffset: number,
): void {
  const { exponent, bytes, offset } = Buffer.isBuffer(source)
    ? {
        exponent: source.readInt8(exponentOffset(meta, layer, pooling)),
        bytes: source,
        offset: vectorOffset(meta, layer, pooling),
      }
    : { ...source, offset: 0 };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  readFloat16(view, offset, meta.width, target, targetOffset, 2 ** exponent);
}
