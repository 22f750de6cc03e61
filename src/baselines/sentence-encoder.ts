import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { DEFAULT_SENTENCE_MODEL } from '../models/manifest.js';
import { companionPath, createManifestRegistry, resolveCachedModel } from '../models/manifest-registry.js';

/**
 * A sentence-transformers encoder run with onnxruntime-node: WordPiece tokens → the ONNX graph's
 * `last_hidden_state` → attention-masked mean pooling → L2 normalisation, as the all-MiniLM-L6-v2 model
 * card prescribes. The semantic-router baseline's feature extractor, and the `text-embedding` signal.
 */
export interface SentenceEncoder extends AsyncDisposable {
  readonly name: string;
  readonly sha256: string;
  readonly dim: number;
  /** One unit vector per text, in order. */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

export interface SentenceEncoderOptions {
  /** Manifest name (default the shipped all-MiniLM-L6-v2). */
  model?: string;
  /** Texts per ONNX run (default 32). */
  batchSize?: number;
  /** onnxruntime intra-op threads (default 1: the router shares the CPU with the encoder). */
  threads?: number;
}

export interface EmbedOptions {
  /**
   * Which end of a text longer than the model's context is kept: `head` (sentence-transformers' default)
   * or `tail`, for prompts whose question comes last — a few-shot prompt's opening examples are the same
   * for every question, so its head says nothing about the one asked.
   */
  keep?: 'head' | 'tail';
}

/** Pads a batch to its longest row (BERT ignores padded positions through the attention mask). */
function batchTensors(rows: readonly number[][]): Record<string, ort.Tensor> {
  const length = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * length);
  const mask = new BigInt64Array(rows.length * length);
  for (const [r, row] of rows.entries()) {
    for (const [t, id] of row.entries()) {
      ids[r * length + t] = BigInt(id);
      mask[r * length + t] = 1n;
    }
  }
  const dims = [rows.length, length];
  return {
    input_ids: new ort.Tensor('int64', ids, dims),
    attention_mask: new ort.Tensor('int64', mask, dims),
    // One segment: all zeros (the graph requires the input).
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(rows.length * length), dims),
  };
}

/** Mean over the unmasked positions of each row, then L2-normalised. */
export function meanPoolNormalize(
  hidden: Float32Array,
  lengths: readonly number[],
  paddedLength: number,
  dim: number,
): Float32Array[] {
  return lengths.map((len, r) => {
    const out = new Float32Array(dim);
    for (let t = 0; t < len; t += 1) {
      const base = (r * paddedLength + t) * dim;
      for (let d = 0; d < dim; d += 1) out[d]! += hidden[base + d]!;
    }
    let norm = 0;
    for (let d = 0; d < dim; d += 1) norm += out[d]! * out[d]!;
    // sentence-transformers' Normalize divides by max(‖v‖, 1e-12); the mean itself is not divided first
    // since normalisation cancels the 1/len factor.
    const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
    for (let d = 0; d < dim; d += 1) out[d]! *= scale;
    return out;
  });
}

export async function createSentenceEncoder(options: SentenceEncoderOptions = {}): Promise<SentenceEncoder> {
  const registry = createManifestRegistry();
  const { manifest, path } = resolveCachedModel(options.model ?? DEFAULT_SENTENCE_MODEL, registry);
  const tokenizerFile = manifest.companions.find((c) => c.file.endsWith('.json'))?.file;
  if (!tokenizerFile) throw new Error(`model ${manifest.name} has no tokenizer.json companion`);
  const tokenizer = new Tokenizer(
    JSON.parse(readFileSync(companionPath(manifest, tokenizerFile), 'utf8')),
    {},
  );
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: options.threads ?? 1,
    interOpNumThreads: 1,
  });
  const maxTokens = manifest.context_length;
  const sep = tokenizer.token_to_id('[SEP]');
  const batchSize = options.batchSize ?? 32;
  const dim = manifest.embedding_width;

  const tokenize = (text: string, keep: 'head' | 'tail'): number[] => {
    const { ids } = tokenizer.encode(text);
    if (ids.length <= maxTokens) return ids;
    // The opening [CLS] and the closing [SEP] stay either way, as sentence-transformers keeps them.
    if (keep === 'tail') return [ids[0]!, ...ids.slice(ids.length - (maxTokens - 1))];
    return sep === undefined ? ids.slice(0, maxTokens) : [...ids.slice(0, maxTokens - 1), sep];
  };

  async function run(rows: number[][]): Promise<Float32Array[]> {
    const feeds = batchTensors(rows);
    const out = await session.run(feeds);
    const hidden = out.last_hidden_state;
    if (!hidden) throw new Error(`${manifest.name}: the ONNX graph has no last_hidden_state output`);
    const [, length, width] = hidden.dims as number[];
    if (width !== dim) throw new Error(`${manifest.name}: hidden width ${width}, manifest says ${dim}`);
    return meanPoolNormalize(
      hidden.data as Float32Array,
      rows.map((r) => r.length),
      length!,
      dim,
    );
  }

  return {
    name: manifest.name,
    sha256: manifest.sha256,
    dim,
    async embed(texts, embedOptions = {}) {
      const tokens = texts.map((t) => tokenize(t, embedOptions.keep ?? 'head'));
      // Similar lengths together: less padding per batch.
      const order = tokens.map((_, i) => i).sort((a, b) => tokens[a]!.length - tokens[b]!.length);
      const out = new Array<Float32Array>(texts.length);
      for (let start = 0; start < order.length; start += batchSize) {
        const chunk = order.slice(start, start + batchSize);
        const vectors = await run(chunk.map((i) => tokens[i]!));
        for (const [k, i] of chunk.entries()) out[i] = vectors[k]!;
      }
      return out;
    },
    async dispose() {
      await session.release();
    },
    async [Symbol.asyncDispose]() {
      await session.release();
    },
  };
}
